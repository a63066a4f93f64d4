"""The algorithms the provider registers: an explicit list, never discovered by name.

Only algorithms that work are listed here.
"""
from .classification import Accuracy, Classify, SamplingDesign, TrainClassifier
from .sampling import ClassStatistics, PatchesExtraction, SampleSelection
from .serving import ModelServe
from .training import ExportOnnx, TrainModel

ALGORITHMS = [
    ClassStatistics,
    SampleSelection,
    PatchesExtraction,
    TrainModel,
    ExportOnnx,
    TrainClassifier,
    Classify,
    SamplingDesign,
    Accuracy,
    ModelServe,
]
