"""The algorithms the provider registers: an explicit list, never discovered by name.

Only algorithms that work are listed here.
"""
from .serving import ModelServe

ALGORITHMS = [
    ModelServe,
]
