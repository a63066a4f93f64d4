"""What the serving engine asks of a model: the one interface every adapter implements.

The engine (engine/serve.py) runs any object with the shape of Model: TF1, TF2 and Keras models
(models/adapters.py), ONNX models (models/onnx_model.py), the identity and the
deep-feature models of classification (ml/features.py), and test doubles. It never
imports a framework. A model loaded from a file (models.load_model) is a LoadedModel:
the Python API (api.py) also resolves names with it, describes it and reads its metadata.
Progress is what every run reports to; a Job, what the binder of the dialogs reads.
"""
from typing import Any, ClassVar, Dict, List, Optional, Protocol, Sequence, Tuple, runtime_checkable

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


@runtime_checkable
class LoadedModel(Model, Protocol):
    """A model from a file (models/formats.py), as the Python API uses it.

    - ``metadata``: what the model says of itself (rsdl metadata, an ONNX file's
      metadata_props, Deepness's keys), None when it says nothing;
    - ``resolve_input(name, param)`` / ``resolve_output(name, param)``: the model's name
      for a name the user gave (empty: the only one), else a ModelError naming `param`;
    - ``describe()``: one line for the log.
    """
    metadata: Optional[Dict[str, Any]]

    def resolve_input(self, name: str, param: str = ...) -> str:
        ...

    def resolve_output(self, name: str, param: str = ...) -> str:
        ...

    def describe(self) -> str:
        ...


@runtime_checkable
class ProgressLike(Protocol):
    """What a run reports to (engine/progress.py's Progress and its subclasses, the
    algorithms' FeedbackProgress)."""

    def set(self, fraction: float) -> None:
        ...

    def cancelled(self) -> bool:
        ...

    def info(self, message: str) -> None:
        ...


class Job(Protocol):
    """A job: a dataclass whose fields declare its parameters (engine/declare.py)."""
    __dataclass_fields__: ClassVar[Dict[str, Any]]
