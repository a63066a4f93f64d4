"""Models: adapters of every format behind one interface (adapters.py, onnx_model.py),
the check of what a model may run (safety.py), fields found from the model (fields.py),
the built-in architectures (zoo.py), training (training.py) and export (export.py)."""
from .adapters import load_model  # noqa: F401
