"""The jobs of sampling, in a module that imports nothing heavy: the dialogs are built from
their declarations when QGIS loads the plugin (declare.py). The Python API and the
dialogs share every default declared here."""
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from . import declare
from .choices import MAX_BATCH, MAX_PATCH, OUTPUT_TYPES, SAMPLERS, STRATEGIES
from .declare import param


@dataclass
class SelectionJob:
    """A sample selection (rsdl:sampleselection)."""
    image: str = param("INPUT", "Image", "raster")
    output: str = param("OUTPUT", "Training samples", "vector_out")
    vector: Optional[str] = param("VECTOR", "Training polygons or points", "vector", None,
                                  geometries=("polygon", "point"))
    labels: Optional[str] = param("LABELS", "Label raster (instead of polygons)", "raster",
                                  None)
    field: Optional[str] = param("FIELD", "Class field", "field", None, parent="VECTOR")
    strategy: str = param("STRATEGY", "Strategy", "choice", "smallest", choices=STRATEGIES)
    samples: int = param("SAMPLES", "Samples (constant: per class; total: in all)", "int",
                         1000, minimum=1, maximum=100_000_000)
    percent: float = param("PERCENT", "Percent of each class (percent strategy)", "float",
                           50.0, minimum=0.0001, maximum=100.0)
    class_counts: str = param("CLASS_COUNTS", "Samples of each class (byclass strategy: "
                              "1:500,2:300)", "str", "", optional=True)
    sampler: str = param("SAMPLER", "Sampler", "choice", "periodic", choices=SAMPLERS)
    seed: int = declare.seed()
    mask: Optional[str] = param("MASK", "Mask (samples only where non-zero)", "raster", None)
    grid_step: int = param("GRID_STEP", "Minimum spacing between samples (pixels)", "int", 1,
                           minimum=1, maximum=10000)
    valid_fraction: float = param("VALID_FRACTION", "Validation fraction", "float", 0.3,
                                  minimum=0.0, maximum=0.99)
    test_fraction: float = param("TEST_FRACTION", "Test fraction", "float", 0.0, minimum=0.0,
                                 maximum=0.99)
    split_by_polygon: bool = param("SPLIT_BY_POLYGON", "Split by polygon (no spatial "
                                   "leakage)", "bool", True)
    #: None with VALID_FRACTION above 0: beside OUTPUT (train.gpkg -> train_valid.gpkg)
    output_valid: Optional[str] = param("OUTPUT_VALID", "Validation samples", "vector_out",
                                        None)
    output_test: Optional[str] = param("OUTPUT_TEST", "Test samples", "vector_out", None,
                                       create=False)
    labels_nodata: Optional[float] = param("LABELS_NODATA", "Label raster nodata value",
                                           "float", None, advanced=True)


# The settings of a numbered source (SOURCEn_RFIELD...): declared once, each becomes a
# parameter per source, named and labelled after its source (algorithms/base.py).

def _rfield() -> Any:
    return param("RFIELD", "receptive field (pixels; empty = from the model)", "int",
                 minimum=1, maximum=MAX_PATCH, optional=True)


def _name() -> Any:
    return param("NAME", "model input name", "str", "", optional=True)


def _bands() -> Any:
    return param("BANDS", "bands (e.g. 1,2,3; empty: all but alpha)", "bands", None)


def _nodata() -> Any:
    return param("NODATA", "nodata value", "float", None)


@dataclass
class PatchSource:
    path: str
    patch_size: int = param("PATCH_SIZE", "patch size (pixels)", "int", minimum=1,
                            maximum=MAX_PATCH, suggested=8)
    output: str = param("OUTPUT", "Patches of source {i}", "raster_out", before=True)
    nodata: Optional[float] = _nodata()
    bands: Optional[List[int]] = _bands()   # 1-based bands cut; None: all but an alpha band


@dataclass
class PatchesJob:
    """A patches extraction (rsdl:patchesextraction); the sources are its numbered
    ones."""
    vector: str = param("VECTOR", "Sample points", "vector", geometries=("point",))
    sources: List[PatchSource] = param("SOURCE", "Source {i}", "raster", numbered=True)
    field: Optional[str] = param("FIELD", "Class field", "field", None, parent="VECTOR")
    output_labels: Optional[str] = param("OUTPUT_LABELS", "Labels (1 x n)", "raster_out",
                                         None)
    label_raster: Optional[str] = param("LABEL_RASTER", "Label raster (dense labels)",
                                        "raster", None)
    label_patch_size: int = param("LABEL_PATCH_SIZE", "Label patch size (pixels)", "int", 16,
                                  minimum=1, maximum=MAX_PATCH)
    output_label_patches: Optional[str] = param("OUTPUT_LABEL_PATCHES", "Label patches",
                                                "raster_out", None, create=False)
    output_points: Optional[str] = param("OUTPUT_POINTS", "Kept points", "vector_out", None,
                                         create=False)
    batch: int = 1024
    cache_mb: int = 256


@dataclass
class ServeSource:
    path: str
    rfield: Optional[int] = _rfield()   # None: from the model (api.resolve_job)
    name: str = _name()
    nodata: Optional[float] = _nodata()
    param: str = ""                     # the parameter errors name (default SOURCEn)
    bands: Optional[List[int]] = _bands()   # 1-based bands read; None: all but alpha


@dataclass
class ServeJob:
    """A serving (rsdl:modelserve); the sources are its numbered ones. What is None is
    taken from the model by the Python API (api.resolve_job), as the dialog does, and is
    1, 1.0, patch-based and OTBTF's extent for the engine alone."""
    model: str = param("MODEL", "Model (a SavedModel folder, a .keras or an .onnx file)",
                       "model")
    sources: List[ServeSource] = param("SOURCE", "Source {i}", "raster", numbered=True)
    output: str = param("OUTPUT", "Model output", "raster_out")
    output_names: List[str] = param("OUTPUT_NAMES", "Model output names (comma separated)",
                                    "names", [])
    efield: Optional[int] = param("EFIELD", "Expression field (pixels; empty = from the "
                                  "model's metadata, else 1)", "int", None, minimum=1,
                                  maximum=8192)
    scale: Optional[float] = param("SCALE", "Output spacing scale factor (empty = from the "
                                   "model, else 1)", "float", None, minimum=1e-6, maximum=100)
    fully_conv: Optional[bool] = param(
        "FULLY_CONV", "Mode (fully convolutional or patch-based)", "bool", None,
        widget="rsdl_qgis.algorithms.widgets.ServingModeWrapper")
    tile_size: int = declare.tile_size()
    batch_size: int = param("BATCH_SIZE", "Batch size (patch-based mode)", "int", 256,
                            minimum=1, maximum=MAX_BATCH)
    output_type: str = param("OUTPUT_TYPE", "Output data type", "choice", "automatic",
                             choices=OUTPUT_TYPES)
    output_nodata: Optional[float] = param("OUTPUT_NODATA", "Output nodata value", "float",
                                           None, advanced=True)
    memory_mb: int = declare.memory_mb()
    chunk_size: int = 0                 # output pixels a chunk's side; 0 picks it
    pad: Optional[bool] = param(
        "PAD", "Map extent (empty: the whole image for tile models)", "bool", None,
        widget="rsdl_qgis.algorithms.widgets.EdgesWrapper",
        help="Empty: tile models (a U-Net, a Deepness model) map the whole image, others "
        "as OTBTF does. False: OTBTF's extent, which loses half a receptive field at each "
        "edge. True: the sources are mirrored at their edges and the map is on SOURCE1's "
        "whole grid.")
    trust_model: bool = declare.trust_model()
    metadata: Dict[str, Any] = field(default_factory=dict)    # more metadata items
    classes: Dict[str, Any] = field(default_factory=dict)     # {"codes", "names"}: a class
    #                                                 map's colour table and category names

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "ServeJob":
        d = dict(d)
        d["sources"] = [ServeSource(**s) for s in d["sources"]]
        return cls(**d)


#: serving's parameters, for the errors and logs of what serves a model (declare.py)
SERVE, SERVE_SOURCE = declare.names(ServeJob), declare.names(ServeSource)
#: the parameters of sample selection: the image, its training vectors and class field
SELECT = declare.names(SelectionJob)
#: what generic writers and readers name by default: the output, the model
OUTPUT, MODEL = SERVE.output, SERVE.model
#: a chunked run's options (RunOptions declares them, engine/serve.py)
RESUME = declare.resume().metadata["param"].name
SCHEDULER = declare.chunk_scheduler().metadata["param"].name


def source_param(index: int, setting: str = "") -> str:
    """The parameter of serving source `index` (SOURCE2), or of one of its settings (a
    field of ServeSource: "rfield" gives SOURCE2_RFIELD)."""
    return declare.numbered(SERVE.sources, index,
                            getattr(SERVE_SOURCE, setting) if setting else "")
