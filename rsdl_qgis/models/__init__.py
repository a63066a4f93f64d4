"""Models: adapters of every format behind one interface (adapters.py, onnx_model.py),
the check of what a model may run (safety.py), fields found from the model (fields.py),
the built-in architectures (zoo.py), training (training.py) and export (export.py).

Importing this package imports nothing heavy (the plugin's algorithms read names from
models.metadata and models.zoo when QGIS loads them); load_model imports the adapter of
the format it is given."""
import os

from ..errors import ModelError
from .metadata import model_folder, read_metadata


def load_model(path, param="MODEL", trusted=False):
    """Load a SavedModel folder, a .keras or an .onnx file as a model adapter;
    ``metadata`` holds the rsdl metadata of models trained by rsdl:trainmodel (None for
    others).

    Unless `trusted`, what the model may run is scanned first (models/safety.py): a
    model with operations acting outside the computation is refused, not loaded."""
    model = _load_model(path, param, trusted)
    if getattr(model, "metadata", None) is None:
        model.metadata = read_metadata(model_folder(path))
    return model


def _load_model(path, param="MODEL", trusted=False):
    if not path:
        raise ModelError("no model given: choose a SavedModel folder, a .keras or an .onnx "
                         "file", param)
    path = model_folder(path)
    if not os.path.exists(path):
        raise ModelError(f"'{path}' does not exist", param)
    if os.path.isfile(path):
        if path.endswith(".keras"):
            from ..deps import require_tensorflow
            from . import safety
            from .adapters import KerasModel
            safety.check_keras_file(path, param, trusted)
            return KerasModel(path, require_tensorflow(), safe_mode=not trusted)
        if path.lower().endswith(".onnx"):
            from .onnx_model import OnnxModel
            return OnnxModel(path, param, trusted)
        raise ModelError(f"'{path}' is not a model: choose a SavedModel folder (holding "
                         "saved_model.pb), a .keras or an .onnx file", param)
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise ModelError(f"'{path}' is not a SavedModel folder: it has no saved_model.pb", param)
    from ..deps import require_tensorflow
    from . import safety
    from .adapters import TF1Model, TF2Model
    tf = require_tensorflow()
    meta_graph = safety.check_saved_model(path, param, trusted)
    if len(meta_graph.object_graph_def.nodes):       # a TF2 object graph, not a TF1 graph
        try:
            loaded = tf.saved_model.load(path)
        except Exception as exc:
            raise ModelError(f"cannot load the SavedModel '{path}': {exc}", param) from exc
        if len(loaded.signatures):
            return TF2Model(path, tf, loaded)
    return TF1Model(path, tf, graph_def=None if trusted else meta_graph.graph_def, param=param)
