"""Classification algorithms: train a classifier, classify an image, assess accuracy."""
import functools

from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..engine.choices import NEIGHBOURHOOD
from ..ml.classifiers import BOUNDS, CLASSIFIERS
from .base import FeedbackProgress, RasterInput, RsdlAlgorithm, advanced, api, model_parameter, serving_mode

CLASSIFIER_KEYS = list(CLASSIFIERS)

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
  FIELD=class CLASSIFIER=0 OUTPUT=rf.rsdlc OUTPUT_REPORT=rf.html</pre>
"""


class TrainClassifier(RsdlAlgorithm):
    NAME = "trainclassifier"
    DISPLAY = "Train a classifier (pixels or deep features)"
    GROUP = "classification"
    HELP = TRAIN_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(RasterInput("INPUT", "Image"))
        self.add_vector([QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint])
        self.addParameter(QgsProcessingParameterNumber(
            "SAMPLES", "Samples per class (at most)", QgsProcessingParameterNumber.Integer,
            defaultValue=1000, minValue=1, maxValue=1_000_000))
        self.addParameter(QgsProcessingParameterNumber(
            "VALID_FRACTION", "Validation fraction (split by polygon)",
            QgsProcessingParameterNumber.Double, defaultValue=0.3, minValue=0.0, maxValue=0.9))
        self.add_seed()
        self.addParameter(QgsProcessingParameterEnum(
            "CLASSIFIER", "Classifier", options=[f"{k}: {CLASSIFIERS[k][0]}" for k in CLASSIFIER_KEYS],
            defaultValue=0))
        for key, label, typ, default, minimum in (
                ("RF_TREES", "Random forest: trees", "int", 100, 1),
                ("MAX_DEPTH", "Maximum tree depth (0 = no limit)", "int", 0, 0),
                ("MIN_SAMPLES_LEAF", "Minimum samples per leaf", "int", 1, 1),
                ("SVM_C", "SVM: C", "float", 1.0, 1e-6),
                ("SVM_GAMMA", "SVM: gamma (0 = automatic)", "float", 0.0, 0.0),
                ("GBT_ITERATIONS", "Gradient boosting: iterations", "int", 100, 1),
                ("GBT_LEARNING_RATE", "Gradient boosting: learning rate", "float", 0.1, 1e-6),
                ("KNN_K", "k-nearest neighbours: k", "int", 5, 1)):
            top = next(hi for _k, (p, _lo, hi) in BOUNDS.items() if p == key)
            self.addParameter(advanced(QgsProcessingParameterNumber(
                key, label, QgsProcessingParameterNumber.Integer if typ == "int"
                else QgsProcessingParameterNumber.Double, defaultValue=default, minValue=minimum,
                maxValue=top)))
        self.addParameter(QgsProcessingParameterString(
            "NEIGHBOURHOOD", "Pixel features: neighbourhood windows (pixels, e.g. 3,7,15; "
            "empty: pixel values alone)", defaultValue=",".join(map(str, NEIGHBOURHOOD)),
            optional=True))
        self.addParameter(model_parameter(
            "MODEL", "Deep model for features (optional)", optional=True))
        # SOURCE1 of the deep model is INPUT: its raster is not asked again
        self.add_sources(("RFIELD", "NAME", "BANDS", "NODATA"), "Deep model: source {i}",
                         rasters_from=2, required=0, hidden=True)
        self.add_output_names("Deep model: output names (comma separated)", hidden=True)
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "EFIELD", "Deep model: expression field", QgsProcessingParameterNumber.Integer,
            defaultValue=1, minValue=1)))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "SCALE", "Deep model: spacing scale", QgsProcessingParameterNumber.Double,
            defaultValue=1.0, minValue=1e-6)))
        self.addParameter(advanced(serving_mode(QgsProcessingParameterBoolean(
            "FULLY_CONV", "Deep model: mode (fully convolutional or patch-based)",
            optional=True))))
        self.add_trust_model("the deep model")
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "Classifier file", "rsdl classifier (*.rsdlc)"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_REPORT", "Validation report", "HTML files (*.html)", optional=True,
            createByDefault=False))
        self.add_metrics()

    def process(self, parameters, context, feedback):
        field = self.parameterAsString(parameters, "FIELD", context)
        if not field:
            raise QgsProcessingException("FIELD: choose the class field of VECTOR")
        name = CLASSIFIER_KEYS[self.parameterAsEnum(parameters, "CLASSIFIER", context)]
        num = lambda k: self.parameterAsDouble(parameters, k, context)  # noqa: E731
        settings = {"trees": num("RF_TREES"), "max_depth": num("MAX_DEPTH"),
                    "min_samples_leaf": num("MIN_SAMPLES_LEAF"), "c": num("SVM_C"),
                    "gamma": num("SVM_GAMMA"), "iterations": num("GBT_ITERATIONS"),
                    "learning_rate": num("GBT_LEARNING_RATE"), "k": num("KNN_K")}
        deep = None
        model = self.parameterAsFile(parameters, "MODEL", context)
        if model:
            extra = self.numbered(parameters, "SOURCE{}", first=2, required=False)
            n = 1 + len(extra)
            deep = api.DeepFeatures(
                model=model,
                sources=[self.raster_path(parameters, f"SOURCE{i}", context) for i in extra],
                rfields=[self.optional_int(parameters, f"SOURCE{i}_RFIELD", context)
                         for i in range(1, n + 1)],
                names=[self.parameterAsString(parameters, f"SOURCE{i}_NAME", context).strip()
                       for i in range(1, n + 1)],
                nodata=[self.optional_double(parameters, f"SOURCE{i}_NODATA", context)
                        for i in range(1, n + 1)],
                output_names=self.parameterAsString(parameters, "OUTPUT_NAMES", context).split(","),
                efield=self.parameterAsInt(parameters, "EFIELD", context),
                scale=self.parameterAsDouble(parameters, "SCALE", context),
                fully_conv=self.optional_bool(parameters, "FULLY_CONV", context),
                bands=[self.bands(parameters, f"SOURCE{i}_BANDS", context)
                       for i in range(1, n + 1)])
        job = api.TrainClassifierJob(
            image=self.raster_path(parameters, "INPUT", context),
            vector=self.vector_path(parameters, "VECTOR", context, feedback),
            field=field,
            output=self.parameterAsFileOutput(parameters, "OUTPUT", context),
            classifier=name, settings=settings,
            samples=self.parameterAsInt(parameters, "SAMPLES", context),
            valid_fraction=self.parameterAsDouble(parameters, "VALID_FRACTION", context),
            seed=self.parameterAsInt(parameters, "SEED", context), deep=deep,
            report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or None,
            trust_model=self.parameterAsBool(parameters, "TRUST_MODEL", context),
            bands=self.bands(parameters, "SOURCE1_BANDS", context),
            neighbourhood=api.parse_windows(
                self.parameterAsString(parameters, "NEIGHBOURHOOD", context)))
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
        self.addParameter(RasterInput("INPUT", "Image"))
        self.addParameter(QgsProcessingParameterFile(
            "CLASSIFIER", "Classifier file", fileFilter="rsdl classifier (*.rsdlc)"))
        self.add_sources((), "Deep model: source {i}", first=2, required=0, hidden=True)
        self.addParameter(RasterInput(
            "MASK", "Mask (0 = not classified)", optional=True))
        self.add_pad()
        self.add_tiling(hidden=True)
        self.add_trust_model("the deep model inside the classifier file")
        self.add_distribution()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Class map"))
        self.addParameter(QgsProcessingParameterRasterDestination(
            "OUTPUT_CONFIDENCE", "Confidence", optional=True, createByDefault=False))

    def process(self, parameters, context, feedback):
        extra = [self.raster_path(parameters, f"SOURCE{i}", context)
                 for i in self.numbered(parameters, "SOURCE{}", first=2, required=False)]
        job = api.ClassifyJob(
            image=self.raster_path(parameters, "INPUT", context),
            classifier=self.parameterAsFile(parameters, "CLASSIFIER", context),
            output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            sources=extra,
            confidence=self.parameterAsOutputLayer(parameters, "OUTPUT_CONFIDENCE", context) or None,
            mask=self.raster_path(parameters, "MASK", context),
            tile_size=self.parameterAsInt(parameters, "TILE_SIZE", context),
            memory_mb=self.parameterAsInt(parameters, "MEMORY_MB", context),
            pad=self.parameterAsBool(parameters, "PAD", context),
            trust_model=self.parameterAsBool(parameters, "TRUST_MODEL", context))
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
        self.addParameter(RasterInput("INPUT", "Class map (strata)"))
        self.addParameter(QgsProcessingParameterNumber(
            "SAMPLES", "Points in all", QgsProcessingParameterNumber.Integer,
            defaultValue=300, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            "MINIMUM", "Points per class at least", QgsProcessingParameterNumber.Integer,
            defaultValue=30, minValue=0))
        self.add_seed()
        self.addParameter(QgsProcessingParameterVectorDestination(
            "OUTPUT", "Sample points to interpret", QgsProcessing.TypeVectorPoint))

    def process(self, parameters, context, feedback):
        job = api.DesignJob(
            image=self.raster_path(parameters, "INPUT", context),
            output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            samples=self.parameterAsInt(parameters, "SAMPLES", context),
            minimum=self.parameterAsInt(parameters, "MINIMUM", context),
            seed=self.parameterAsInt(parameters, "SEED", context))
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
        self.addParameter(RasterInput("INPUT", "Class map"))
        # two parameters, not one map layer of any type: QGIS 3.22's dialog crashes when a
        # field's parent is a map-layer parameter that holds a raster (the active layer)
        self.addParameter(QgsProcessingParameterFeatureSource(
            "REFERENCE", "Reference polygons or points",
            [QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint], optional=True))
        self.addParameter(QgsProcessingParameterField(
            "FIELD", "Class field of the reference", parentLayerParameterName="REFERENCE",
            optional=True))
        self.addParameter(RasterInput(
            "REFERENCE_RASTER", "Or a reference raster (on the map's grid)", optional=True))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "REFERENCE_NODATA", "Reference raster nodata", QgsProcessingParameterNumber.Double,
            optional=True)))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_MATRIX", "Confusion matrix", "CSV files (*.csv)", optional=True))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_REPORT", "Report", "HTML files (*.html)", optional=True))
        self.add_metrics()

    def process(self, parameters, context, feedback):
        vector = self.vector_path(parameters, "REFERENCE", context, feedback)
        raster = self.raster_path(parameters, "REFERENCE_RASTER", context)
        if (vector is None) == (raster is None):
            raise QgsProcessingException(
                "REFERENCE or REFERENCE_RASTER: give one reference, polygons or points "
                "(REFERENCE with FIELD) or a raster (REFERENCE_RASTER)")
        reference = vector or raster
        job = api.AccuracyJob(
            image=self.raster_path(parameters, "INPUT", context), reference=reference,
            field=self.parameterAsString(parameters, "FIELD", context) or None,
            output_matrix=self.parameterAsFileOutput(parameters, "OUTPUT_MATRIX", context) or None,
            output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or None,
            reference_nodata=self.optional_double(parameters, "REFERENCE_NODATA", context))
        res = self.run_engine(api.accuracy, job, FeedbackProgress(feedback))
        res.pop("MATRIX", None)
        res["CLASSES"] = ", ".join(map(str, res["CLASSES"]))
        return res
