"""What the serving engine asks of a model: the one interface every adapter implements.

The engine (engine/serve.py) runs any object with this shape: TF1, TF2 and Keras models
(models/adapters.py), ONNX models (models/onnx_model.py), the identity and the
deep-feature models of classification (ml/features.py), and test doubles. It never
imports a framework.
"""
from typing import Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

import numpy as np

#: a tensor's shape in the engine's layout (batch, rows, cols, bands; None = any) and its
#: numpy dtype name
TensorInfo = Tuple[Optional[Tuple[Optional[int], ...]], str]


@runtime_checkable
class Model(Protocol):
    """A model as the serving engine sees it.

    - ``inputs`` and ``outputs``: name -> TensorInfo, always in the engine's layout
      (batch, rows, cols, bands), whatever the framework's own;
    - ``input_dtype(name)``: the numpy dtype the engine casts that input to;
    - ``run(feeds, output_names)``: feeds are name -> (batch, rows, cols, bands) arrays;
      returns one array per output name, in that order. An output may come flat or with
      any shape whose element count is right: the engine copies it in row-major order.
    """
    inputs: Dict[str, TensorInfo]
    outputs: Dict[str, TensorInfo]

    def input_dtype(self, name: str) -> str:
        ...

    def run(self, feeds: Dict[str, np.ndarray], output_names: Sequence[str]) -> List[np.ndarray]:
        ...
