"""Model adapters, introspection and (later) the model zoo and training."""
from .adapters import load_model  # noqa: F401
