"""The algorithms the provider registers: an explicit list, never discovered by name.

Only algorithms that work are listed here.
"""
from .sampling import ClassStatistics, PatchesExtraction, SampleSelection
from .serving import ModelServe

ALGORITHMS = [
    ClassStatistics,
    SampleSelection,
    PatchesExtraction,
    ModelServe,
]
