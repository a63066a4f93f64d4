"""Models: adapters of every format behind one interface (adapters.py, onnx_model.py),
the check of what a model may run (safety.py), fields found from the model (fields.py),
the built-in architectures (zoo.py), training (training.py) and export (export.py).

Importing this package imports nothing heavy (the plugin's algorithms read names from
models.metadata and models.zoo when QGIS loads them); adapters come with load_model."""


def load_model(path, param="MODEL", trusted=False):
    """Load a model of any supported format (models/adapters.py: load_model)."""
    from .adapters import load_model as load
    return load(path, param, trusted)
