"""The plugin's version, as metadata.txt gives it."""
__version__ = "0.1.0"
