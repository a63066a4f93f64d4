"""Models: the table of formats (formats.py) and their adapters behind one interface
(adapters.py, onnx_model.py), the check of what a model may run (safety.py), fields found
from the model (fields.py), the built-in architectures (zoo.py), training (training.py)
and export (export.py).

Importing this package imports nothing heavy (the plugin's algorithms read names from
models.metadata, models.formats and models.zoo when QGIS loads them); load_model imports the adapter of
the format it is given."""
from typing import TYPE_CHECKING

from ..engine.jobs import MODEL
from .metadata import model_folder, read_metadata

if TYPE_CHECKING:                        # engine.model imports numpy: not at QGIS start-up
    from ..engine.model import LoadedModel


def load_model(path: str, param: str = MODEL, trusted: bool = False) -> "LoadedModel":
    """Load a model of any format of models/formats.py (a SavedModel folder, a .keras or
    an .onnx file) as a model adapter; ``metadata`` holds the rsdl metadata of models
    trained by rsdl:trainmodel (None for others).

    Unless `trusted`, what the model may run is scanned first (models/safety.py): a
    model with operations acting outside the computation is refused, not loaded."""
    from .formats import load
    model = load(path, param, trusted)
    if getattr(model, "metadata", None) is None:
        model.metadata = read_metadata(model_folder(path))
    return model
