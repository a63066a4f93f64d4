"""The jobs of classification, in a module that imports nothing heavy: the dialogs are
built from their declarations when QGIS loads the plugin (engine/declare.py)."""
from dataclasses import dataclass
from dataclasses import field as new
from typing import Any, Dict, List, Optional

from ..engine import declare
from ..engine.choices import NEIGHBOURHOOD
from ..engine.declare import param
from .classifiers import CLASSIFIERS, INDEX_ORDER


@dataclass
class DeepFeatures:
    """A deep model whose outputs are the features (same meaning as rsdl:modelserve's)."""
    model: str = param("MODEL", "Deep model for features (optional)", "model", None)
    sources: List[str] = new(default_factory=list)      # SOURCE2..4 (SOURCE1 = INPUT)
    # None, '' and []: from the model's metadata (models trained by rsdl:trainmodel)
    rfields: List[Optional[int]] = new(default_factory=lambda: [None])
    names: List[str] = new(default_factory=lambda: [""])
    nodata: List[Optional[float]] = new(default_factory=lambda: [None])
    output_names: List[str] = param("OUTPUT_NAMES", "Deep model: output names (comma "
                                    "separated)", "names", [], advanced=True)
    efield: int = param("EFIELD", "Deep model: expression field", "int", 1, minimum=1,
                        maximum=8192, advanced=True)
    scale: float = param("SCALE", "Deep model: spacing scale", "float", 1.0, minimum=1e-6,
                         maximum=100, advanced=True)
    fully_conv: Optional[bool] = param(
        "FULLY_CONV", "Deep model: mode (fully convolutional or patch-based)", "bool", None,
        advanced=True, widget="rsdl_qgis.algorithms.widgets.ServingModeWrapper")
    bands: List[Optional[List[int]]] = new(default_factory=lambda: [None])  # per source


@dataclass
class TrainClassifierJob:
    """A classifier's training (rsdl:trainclassifier); its settings are those of
    ml/classifiers.py's SETTINGS, by name."""
    image: str = param("INPUT", "Image", "raster")
    vector: str = param("VECTOR", "Training polygons or points", "vector",
                        geometries=("polygon", "point"))
    field: str = param("FIELD", "Class field", "field", parent="VECTOR")
    output: str = param("OUTPUT", "Classifier file", "file_out",
                        filter="rsdl classifier (*.rsdlc)")
    classifier: str = param("CLASSIFIER", "Classifier", "choice", "rf",
                            choices={k: f"{k}: {c.label}" for k, c in CLASSIFIERS.items()},
                            legacy=INDEX_ORDER)
    settings: Dict[str, Any] = new(default_factory=dict)
    samples: int = param("SAMPLES", "Samples per class (at most)", "int", 1000, minimum=1,
                         maximum=1_000_000)
    valid_fraction: float = param("VALID_FRACTION", "Validation fraction (split by polygon)",
                                  "float", 0.3, minimum=0.0, maximum=0.9)
    seed: int = declare.seed()
    deep: Optional[DeepFeatures] = None
    report: Optional[str] = param("OUTPUT_REPORT", "Validation report", "file_out", None,
                                  filter="HTML files (*.html)", create=False)
    trust_model: bool = declare.trust_model("the deep model")
    bands: Optional[List[int]] = None     # the image's bands (raw features, or the deep
    #                                       model's SOURCE1); None: all but an alpha band
    neighbourhood: List[int] = param(
        "NEIGHBOURHOOD", "Pixel features: neighbourhood windows (pixels, e.g. 3,7,15; empty: "
        "pixel values alone)", "windows", list(NEIGHBOURHOOD), optional=True)
    #                                       raw features: window sizes of the neighbourhood
    #                                       statistics (ContextModel); []: pixel values only


@dataclass
class ClassifyJob:
    """A classification (rsdl:classify); its sources are SOURCE2..4 of deep features."""
    image: str = param("INPUT", "Image", "raster")
    classifier: str = param("CLASSIFIER", "Classifier file", "file",
                            filter="rsdl classifier (*.rsdlc)")
    output: str = param("OUTPUT", "Class map", "raster_out")
    sources: List[str] = new(default_factory=list)
    confidence: Optional[str] = param("OUTPUT_CONFIDENCE", "Confidence", "raster_out", None,
                                      create=False)
    mask: Optional[str] = param("MASK", "Mask (0 = not classified)", "raster", None)
    tile_size: int = declare.tile_size(advanced=True)
    memory_mb: int = declare.memory_mb()
    trust_model: bool = declare.trust_model("the deep model inside the classifier file")
    chunk_size: int = 0
    pad: bool = param(                    # mirror the edges: the map covers the image
        "PAD", "Full extent: mirror the image's edges (the map covers the whole image)",
        "bool", False, help="Off (as OTBTF): the map loses half a receptive field at each "
        "edge. On: the sources are mirrored at their edges so every pixel gets a value.")


@dataclass
class AccuracyJob:
    """An accuracy assessment (rsdl:accuracy); the reference is REFERENCE (a vector, with
    FIELD) or REFERENCE_RASTER."""
    image: str = param("INPUT", "Class map", "raster")
    reference: str = param("REFERENCE", "Reference polygons or points", "vector",
                           geometries=("polygon", "point"), optional=True,
                           raster="REFERENCE_RASTER",
                           raster_label="Or a reference raster (on the map's grid)")
    field: Optional[str] = param("FIELD", "Class field of the reference", "field", None,
                                 parent="REFERENCE")
    output_matrix: Optional[str] = param("OUTPUT_MATRIX", "Confusion matrix", "file_out", None,
                                         filter="CSV files (*.csv)")
    output_report: Optional[str] = param("OUTPUT_REPORT", "Report", "file_out", None,
                                         filter="HTML files (*.html)")
    reference_nodata: Optional[float] = param("REFERENCE_NODATA", "Reference raster nodata",
                                              "float", None, advanced=True)


@dataclass
class DesignJob:
    """A stratified random sampling design (rsdl:samplingdesign)."""
    image: str = param("INPUT", "Class map (strata)", "raster")  # the map's classes: strata
    output: str = param("OUTPUT", "Sample points to interpret", "vector_out")
    samples: int = param("SAMPLES", "Points in all", "int", 300, minimum=1,
                         maximum=100_000_000)
    minimum: int = param("MINIMUM", "Points per class at least", "int", 30, minimum=0,
                         maximum=1_000_000)   # fewer where a class is smaller
    seed: int = declare.seed()
