"""Classification algorithms: train a classifier, classify an image, assess accuracy."""
import functools

from qgis.core import (
    QgsProcessingException,
    QgsProcessingParameterNumber,
)

from ..engine.declare import declaration
from ..engine.jobs import ServeSource
from ..ml.classifiers import SETTINGS
from ..ml.jobs import AccuracyJob, ClassifyJob, DeepFeatures, DesignJob, TrainClassifierJob
from .base import (
    FeedbackProgress,
    RasterInput,
    RsdlAlgorithm,
    advanced,
    api,
)

TRAIN_HELP = """<p>Trains a classical classifier (random forest, SVM, gradient boosting,
k-nearest neighbours, decision tree, normal Bayes) on raw pixel values or on the outputs of
a deep model (deep features, as OTBTF's composite applications), and saves everything
classification needs in one file.</p>
<h3>Samples</h3>
<ul>
<li><b>INPUT</b>: the image (SOURCE1 of the deep model).</li>
<li><b>VECTOR</b> + <b>FIELD</b>: training polygons or points (e.g. from Sample
selection) and their class field (integers or text).</li>
<li><b>SAMPLES</b>: at most this many pixels per class, drawn at random.</li>
<li><b>VALID_FRACTION</b>: share of the samples kept for validation, split by polygon
(a polygon's pixels are all in one set).</li>
<li><b>SEED</b>: the same seed gives the same samples and classifier.</li>
<li><b>TRUST_MODEL</b> (advanced, off): a model is code; before loading one, rsdl checks
that it only computes, and refuses a model that writes or reads files, calls Python or
uses the network, naming the operation. Tick it only for a model you trust.</li>
</ul>
<h3>Features</h3>
<p>Without <b>MODEL</b>: the pixel values of INPUT (its bands <b>SOURCE1_BANDS</b>,
e.g. 1,2,3; empty: all but an alpha band, which is a mask) and, per band, their mean and
standard deviation in square windows around each pixel, of the sizes in
<b>NEIGHBOURHOOD</b> (default 3,7,15 pixels; empty: the pixel values alone). A pixel
alone cannot tell a mixed pixel (a shore, a field edge) from a pure one: on the sample
data, the random forest on pixel values alone maps half of the land along the shores as
urban; with the windows, a fifth (docs/classification.md). With MODEL (a SavedModel or .keras
file): its outputs, computed only at the samples, with the same parameters as Apply a
model: <b>SOURCE1_RFIELD</b>, <b>SOURCE1_NAME</b>, <b>SOURCE1_BANDS</b>,
<b>SOURCE1_NODATA</b>, extra sources <b>SOURCE2..SOURCE{MAX_SOURCES}</b> with <b>SOURCEn_RFIELD</b>,
<b>SOURCEn_NAME</b>, <b>SOURCEn_BANDS</b>, <b>SOURCEn_NODATA</b>, <b>OUTPUT_NAMES</b>,
<b>EFIELD</b> and <b>SCALE</b> (both must be 1: one feature vector per pixel) and
<b>FULLY_CONV</b>. For a model trained by Train a model the receptive fields, input
names, mode and outputs (its probabilities) come from its metadata: give only MODEL.</p>
<h3>Classifier</h3>
<ul>
<li><b>CLASSIFIER</b>: rf, svm, gbt, knn, dt or bayes. Main settings: <b>RF_TREES</b>,
<b>MAX_DEPTH</b> (rf, dt, gbt; 0 = no limit), <b>MIN_SAMPLES_LEAF</b> (rf, dt),
<b>SVM_C</b>, <b>SVM_GAMMA</b> (0 = automatic), <b>GBT_ITERATIONS</b>,
<b>GBT_LEARNING_RATE</b>, <b>KNN_K</b>. Features are standardised first.</li>
<li><b>OUTPUT</b>: the classifier file (.rsdlc): feature recipe including the
deep model itself, scaler, classifier, class codes and names. It is read without running
any code from it (skops); a modified file is refused.</li>
<li><b>OUTPUT_REPORT</b>: HTML report of the validation (confusion matrix, per-class
precision, recall, F1, overall accuracy, kappa).</li>
</ul>
<p>Results: OA, KAPPA, F1_MEAN (validation set), TRAIN_SAMPLES, VALID_SAMPLES.</p>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:trainclassifier -- INPUT=scene.tif VECTOR=polygons.gpkg
  FIELD=class CLASSIFIER=rf OUTPUT=rf.rsdlc OUTPUT_REPORT=rf.html</pre>
"""


class TrainClassifier(RsdlAlgorithm):
    NAME = "trainclassifier"
    DISPLAY = "Train a classifier (pixels or deep features)"
    GROUP = "classification"
    HELP = TRAIN_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        job, deep = TrainClassifierJob, DeepFeatures     # ml/jobs.py declares them
        self.declare(job, "image", "vector", "field", "samples", "valid_fraction", "seed",
                     "classifier")
        for s in SETTINGS.values():          # ml/classifiers.py: every classifier's settings
            self.addParameter(advanced(QgsProcessingParameterNumber(
                s.param, self.tr(s.label), QgsProcessingParameterNumber.Integer if s.integer
                else QgsProcessingParameterNumber.Double, defaultValue=s.default,
                minValue=s.lowest, maxValue=s.highest)))
        self.declare(job, "neighbourhood")
        self.declare(deep, "model")
        # SOURCE1 of the deep model is INPUT: its raster is not asked again
        self.add_sources(("RFIELD", "NAME", "BANDS", "NODATA"), "Deep model: source {i}",
                         rasters_from=2, required=0, hidden=True)
        self.declare(deep, "output_names", "efield", "scale", "fully_conv")
        self.declare(job, "trust_model", "output", "report")
        self.add_metrics()

    def process(self, parameters, context, feedback):
        field = self.parameterAsString(parameters, "FIELD", context)
        if not field:
            raise QgsProcessingException(self.tr("FIELD: choose the class field of VECTOR"))
        settings = {k: self.parameterAsDouble(parameters, s.param, context)
                    for k, s in SETTINGS.items()}
        deep = None
        if self.parameterAsFile(parameters, "MODEL", context):
            extra = self.numbered(parameters, "SOURCE{}", first=2, required=False)
            per_source = [self.source_settings(ServeSource, f"SOURCE{i}", parameters, context)
                          for i in range(1, 2 + len(extra))]
            deep = self.job(
                DeepFeatures, parameters, context, feedback,
                sources=[self.raster_path(parameters, f"SOURCE{i}", context) for i in extra],
                rfields=[s["rfield"] for s in per_source],
                names=[s["name"] for s in per_source],
                nodata=[s["nodata"] for s in per_source],
                bands=[s["bands"] for s in per_source])
        job = self.job(
            TrainClassifierJob, parameters, context, feedback, settings=settings, deep=deep,
            bands=self.bands(parameters, "SOURCE1_BANDS", context))
        return self.run_engine(api.train_classifier, job, FeedbackProgress(feedback))


CLASSIFY_HELP = """<p>Classifies an image with a classifier file from Train a classifier.
The image streams through the serving engine (bounded memory, progress, cancel, nodata),
computing the deep features on the way when the classifier uses them.</p>
<ul>
<li><b>INPUT</b>: the image (same bands as the one the classifier was trained on).</li>
<li><b>CLASSIFIER</b>: the .rsdlc file.</li>
<li><b>SOURCE2..SOURCE{MAX_SOURCES}</b>: the deep model's other sources, when it has several.</li>
<li><b>MASK</b> (optional): pixels where this raster is 0 are left unclassified.</li>
<li><b>OUTPUT</b>: the class map, in the smallest integer type that holds the class codes,
with a paletted style showing the class names (loaded with the layer).</li>
<li><b>OUTPUT_CONFIDENCE</b> (optional): the probability of the chosen class.</li>
<li><b>PAD</b> (off): for deep features, mirror the image's edges so that the map covers
the whole image instead of losing half the deep model's receptive field at each edge
(as in Apply a model).</li>
<li><b>TILE_SIZE</b>, <b>MEMORY_MB</b>, <b>RESUME</b>, <b>SCHEDULER</b> (advanced): as
in Apply a model: a run can resume after a crash and run on a Dask cluster.</li>
<li><b>TRUST_MODEL</b> (advanced, off): a model is code; before loading one, rsdl checks
that it only computes, and refuses a model that writes or reads files, calls Python or
uses the network, naming the operation. Tick it only for a model you trust.</li>
</ul>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:classify -- INPUT=scene.tif CLASSIFIER=rf.rsdlc
  OUTPUT=classes.tif OUTPUT_CONFIDENCE=confidence.tif</pre>
"""


class Classify(RsdlAlgorithm):
    NAME = "classify"
    CLASS_MAP_INPUTS = ("MASK",)
    DISPLAY = "Classify an image"
    GROUP = "classification"
    HELP = CLASSIFY_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        job = ClassifyJob                                # ml/jobs.py declares it
        self.declare(job, "image", "classifier")
        self.add_sources((), "Deep model: source {i}", first=2, required=0, hidden=True)
        self.declare(job, "mask", "pad", "tile_size", "memory_mb", "trust_model")
        self.add_distribution()
        self.declare(job, "output", "confidence")

    def process(self, parameters, context, feedback):
        extra = [self.raster_path(parameters, f"SOURCE{i}", context)
                 for i in self.numbered(parameters, "SOURCE{}", first=2, required=False)]
        job = self.job(ClassifyJob, parameters, context, feedback, sources=extra)
        resume, scheduler = self.distribution(parameters, context)
        res = self.run_engine(functools.partial(api.classify, resume=resume, scheduler=scheduler),
                              job, FeedbackProgress(feedback))
        # the .qml styles beside the maps (palette with class names, confidence ramp) are
        # applied when QGIS loads them (RsdlAlgorithm.style_on_load)
        return {"OUTPUT": res["OUTPUT"], "OUTPUT_CONFIDENCE": res.get("OUTPUT_CONFIDENCE")}


ACCURACY_HELP = """<p>Assesses a class map against reference data: confusion matrix,
overall accuracy, kappa, and per-class precision, recall and F1 (OTB's
ComputeConfusionMatrix, plus the metrics).</p>
<ul>
<li><b>INPUT</b>: the class map.</li>
<li><b>REFERENCE</b>: reference polygons or points, with <b>FIELD</b>, their class
field (text classes are matched to the map's class names). Every pixel whose centre is
inside a polygon counts. Or else <b>REFERENCE_RASTER</b>: a reference raster on the
map's grid. Pixels on the map's or the reference raster's nodata
(<b>REFERENCE_NODATA</b>, default its own) are left out.</li>
<li><b>OUTPUT_MATRIX</b>: CSV, rows = reference, columns = predicted, labelled.</li>
<li><b>OUTPUT_REPORT</b>: HTML report.</li>
</ul>
<p><b>Good practice.</b> With a sample drawn by Sampling design for accuracy (its points
interpreted, FIELD = <i>reference</i>), the report gives design-based, unbiased
estimates of the overall, user's and producer's accuracies and of the class areas with
95 % confidence intervals (Olofsson et al. 2014; Stehman 2014 for a map other than the
one the strata came from). Polygons or a raster are not a probability sample: their
area-adjusted figures come without intervals, and the report says why.</p>
<p>Results: OA, KAPPA, F1_MEAN, OA_AREA_ADJUSTED (with a sampling design also OA_CI, the
half width of its 95 % interval), and PRECISION_c, RECALL_c, F1_c for each class c.</p>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:accuracy -- INPUT=classes.tif REFERENCE=valid.gpkg
  FIELD=class OUTPUT_MATRIX=matrix.csv OUTPUT_REPORT=accuracy.html</pre>
"""


DESIGN_HELP = """<p>Draws a stratified random sample of points from a class map for an
accuracy assessment by good practice (Olofsson et al. 2014, <i>Remote Sensing of
Environment</i> 148: 42-57): the map's classes are the strata, every pixel of a class is
as likely to be drawn, and the sample's design travels with the points. Interpret each
point (type the class you see in its <i>reference</i> field), then run Accuracy
assessment with the layer as reference: it gives unbiased estimates of the overall,
user's and producer's accuracies and of each class's area, with 95 % confidence
intervals, for this map or any other map of the same area.</p>
<h3>Parameters</h3>
<ul>
<li><b>INPUT</b>: the class map whose classes are the strata.</li>
<li><b>SAMPLES</b>: points in all (default 300).</li>
<li><b>MINIMUM</b>: points per class at least (default 30; Olofsson et al. suggest 50 to
100 for rare classes); the rest go to the classes in proportion to their areas.</li>
<li><b>SEED</b>: the same seed gives the same points.</li>
<li><b>OUTPUT</b>: the points, in a random order, with <i>sample_id</i>, their stratum
(<i>stratum</i>, <i>stratum_name</i>), the stratum's size in pixels and its number of
points (<i>stratum_pixels</i>, <i>stratum_samples</i>), the inclusion probability and
weight, and an empty <i>reference</i> field (text: a class name of the map, or its
code).</li>
</ul>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:samplingdesign -- INPUT=map.tif SAMPLES=300 MINIMUM=30
  SEED=1 OUTPUT=sample.gpkg</pre>
"""


class SamplingDesign(RsdlAlgorithm):
    NAME = "samplingdesign"
    CLASS_MAP_INPUTS = ("INPUT",)
    DISPLAY = "Sampling design for accuracy (stratified random points)"
    GROUP = "classification"
    HELP = DESIGN_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.declare(DesignJob, "image", "samples", "minimum", "seed", "output")  # ml/jobs.py

    def process(self, parameters, context, feedback):
        job = self.job(DesignJob, parameters, context, feedback)
        res = self.run_engine(api.sampling_design, job, FeedbackProgress(feedback))
        res["ALLOCATION"] = ", ".join(f"{k}: {v}" for k, v in res["ALLOCATION"].items())
        return res


class Accuracy(RsdlAlgorithm):
    NAME = "accuracy"
    CLASS_MAP_INPUTS = ("INPUT", "REFERENCE")
    DISPLAY = "Accuracy assessment"
    GROUP = "classification"
    HELP = ACCURACY_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        job = AccuracyJob                                # ml/jobs.py declares it
        self.declare(job, "image")
        # two parameters, not one map layer of any type: QGIS 3.22's dialog crashes when a
        # field's parent is a map-layer parameter that holds a raster (the active layer)
        reference = declaration(job, "reference")
        self.declare(job, "reference", "field")
        self.addParameter(RasterInput(reference.option("raster"),
                                      self.tr(reference.option("raster_label")), optional=True))
        self.declare(job, "reference_nodata", "output_matrix", "output_report")
        self.add_metrics()

    def process(self, parameters, context, feedback):
        reference = declaration(AccuracyJob, "reference")
        vector = self.vector_path(parameters, reference.name, context, feedback)
        raster = self.raster_path(parameters, reference.option("raster"), context)
        if (vector is None) == (raster is None):
            raise QgsProcessingException(self.tr(
                "REFERENCE or REFERENCE_RASTER: give one reference, polygons or points "
                "(REFERENCE with FIELD) or a raster (REFERENCE_RASTER)"))
        job = self.job(AccuracyJob, parameters, context, feedback, reference=vector or raster)
        res = self.run_engine(api.accuracy, job, FeedbackProgress(feedback))
        res.pop("MATRIX", None)
        res["CLASSES"] = ", ".join(map(str, res["CLASSES"]))
        return res
