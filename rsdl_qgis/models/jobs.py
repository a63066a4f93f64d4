"""The jobs of training, in a module that imports nothing heavy: the dialogs are built
from their declarations when QGIS loads the plugin (engine/declare.py)."""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from ..engine import declare
from ..engine.choices import MAX_BATCH
from ..engine.declare import param
from . import zoo

#: learning-rate schedules (engine/choices.py) as the dialog shows them
SCHEDULE_LABELS = {"cosine": "cosine: decays to 1 % by the last epoch", "constant": "constant"}
#: where a training runs (engine/choices.py), as the dialog shows it
DISTRIBUTION_LABELS = {"none": "this process (one CPU or GPU)",
                       "gpus": "every GPU of this machine",
                       "workers": "the workers of a Dask cluster (SCHEDULER)"}


@dataclass
class TrainSource:
    path: str
    name: str = param("NAME", "model input name", "str", "", optional=True)


@dataclass
class TrainModelJob:
    """A training. The fields declared with `param` are rsdl:trainmodel's parameters, with
    the dialog's defaults (engine/declare.py); the sources are its numbered ones."""
    train_sources: List[TrainSource] = param("TRAIN_SOURCE", "Training patches, source {i}",
                                             "raster", numbered=True)
    train_labels: str = param("TRAIN_LABELS", "Training labels", "raster")
    output_model: str = param("OUTPUT", "Trained model", "folder_out")
    valid_sources: List[TrainSource] = param("VALID_SOURCE", "Validation patches, source {i}",
                                             "raster", [], optional=True, numbered=True)
    valid_labels: Optional[str] = param("VALID_LABELS", "Validation labels", "raster", None)
    model: Optional[str] = param("MODEL", "Model to train further (instead of a built-in "
                                 "one)", "model", None, trainable=True)
    architecture: str = param("ARCHITECTURE", "Built-in architecture", "choice", "fcn",
                              choices={k: a.label for k, a in zoo.ARCHITECTURES.items()})
    epochs: int = param("EPOCHS", "Epochs", "int", 20, minimum=1, maximum=10000)
    batch_size: int = param("BATCH_SIZE", "Batch size", "int", 64, minimum=1,
                            maximum=MAX_BATCH)
    learning_rate: float = param("LEARNING_RATE", "Learning rate", "float", 3e-4,
                                 minimum=1e-8, maximum=1.0)   # Adam's peak rate
    schedule: str = param("SCHEDULE", "Learning-rate schedule", "choice", "cosine",
                          choices=SCHEDULE_LABELS)
    patience: int = param("PATIENCE", "Stop after this many epochs without a better "
                          "validation loss (0: never)", "int", 8, minimum=0, maximum=10000)
    average: bool = True                  # validate and keep the weights' moving average
    class_weights: bool = param("CLASS_WEIGHTS", "Balance classes", "bool", True)
    augment: bool = param("AUGMENT", "Augment (flips, rotations)", "bool", True)
    restore: bool = param("RESTORE", "Start from the model's weights (fine-tuning)", "bool",
                          True)
    seed: int = declare.seed()
    label_nodata: Optional[int] = param("LABEL_NODATA", "Label value to ignore", "int", None,
                                        advanced=True)
    output_report: Optional[str] = param("OUTPUT_REPORT", "Training report", "file_out",
                                         None, filter="HTML files (*.html)")
    trust_model: bool = declare.trust_model("the model to train further")
    distribution: str = param("DISTRIBUTION", "Train on", "choice", "none",
                              choices=DISTRIBUTION_LABELS, advanced=True)
    scheduler: str = declare.scheduler(
        "with 'Train on' the workers of a Dask cluster, each worker trains on its share of "
        "every batch, reading the patches from the same paths (a shared folder)")
    workers: int = param("WORKERS", "Dask workers to train on (0: all)", "int", 0, minimum=0,
                         maximum=4096, advanced=True)

    def to_dict(self) -> Dict[str, Any]:
        from dataclasses import asdict
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "TrainModelJob":
        d = dict(d)
        for k in ("train_sources", "valid_sources"):
            d[k] = [TrainSource(**s) for s in d.get(k) or []]
        return cls(**d)
