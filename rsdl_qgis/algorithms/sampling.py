"""Sampling algorithms: class statistics, sample selection, patch extraction."""
from qgis.core import (
    QgsProcessing,
    QgsProcessingException,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterRasterDestination,
    QgsProcessingUtils,
)

from ..engine.declare import declaration, numbered, param_name
from ..engine.jobs import PatchesJob, PatchSource, SelectionJob
from .base import MAX_SOURCES, FeedbackProgress, RasterInput, RsdlAlgorithm, advanced, api

CLASS_STATS_HELP = """<p>Counts, for each class, the pixels of INPUT whose centre lies inside
the training polygons (or that contain the training points), and the polygons that hold at
least one pixel: OTB's PolygonClassStatistics, as a table.</p>
<h3>Parameters</h3>
<ul>
<li><b>INPUT</b>: the image (only its grid is used).</li>
<li><b>VECTOR</b>: training polygons or points; another CRS is reprojected on the fly.</li>
<li><b>FIELD</b>: the class field (integers or text).</li>
<li><b>MASK</b> (optional): a raster on INPUT's grid; only its non-zero pixels count.</li>
<li><b>OUTPUT</b>: the table (columns class, pixels, polygons); CSV when the name ends in
.csv, else a GeoPackage table.</li>
</ul>
<p>A pixel inside two polygons counts once for each, as in OTB. Classes without any pixel
are an error: their polygons are smaller than the pixels or outside the image.</p>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:classstatistics -- INPUT=scene.tif VECTOR=polygons.gpkg
  FIELD=class OUTPUT=stats.csv</pre>
"""


class ClassStatistics(RsdlAlgorithm):
    NAME = "classstatistics"
    GROUP = "sampling"
    DISPLAY = "Class statistics of training polygons"
    HELP = CLASS_STATS_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(RasterInput("INPUT", self.tr("Image")))
        self.add_vector([QgsProcessing.TypeVectorPolygon, QgsProcessing.TypeVectorPoint])
        self.addParameter(advanced(RasterInput(
            "MASK", self.tr("Mask (non-zero pixels are used)"), optional=True)))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", self.tr("Class statistics"), "CSV files (*.csv);;GeoPackage (*.gpkg)"))

    def process(self, parameters, context, feedback):
        res = self.run_engine(
            api.class_statistics,
            self.raster_path(parameters, "INPUT", context),
            self.vector_path(parameters, "VECTOR", context, feedback),
            self.parameterAsString(parameters, "FIELD", context),
            self.parameterAsFileOutput(parameters, "OUTPUT", context),
            self.raster_path(parameters, "MASK", context), FeedbackProgress(feedback))
        return {"OUTPUT": res["OUTPUT"], "TOTAL_PIXELS": res["TOTAL_PIXELS"],
                "CLASSES": len(res["CLASSES"])}


SELECTION_HELP = """<p>Selects training samples (pixel centres) inside training polygons,
at training points, or in a label raster, with OTB's SampleSelection strategies, and splits
them into training, validation and test sets.</p>
<h3>Parameters</h3>
<ul>
<li><b>INPUT</b>: the image; samples are at the centres of its pixels.</li>
<li><b>VECTOR</b> + <b>FIELD</b>: training polygons or points and their class field
(integers or text). Or <b>LABELS</b>: a label raster on INPUT's grid instead (OTBTF's
LabelImageSampleSelection); its nodata pixels are not sampled.</li>
<li><b>STRATEGY</b>: <i>smallest</i> (as many per class as the smallest class has),
<i>constant</i> (SAMPLES per class, or all of a smaller class), <i>percent</i> (PERCENT),
<i>total</i> (SAMPLES in all, shared in proportion to the classes),
<i>byclass</i> (CLASS_COUNTS), <i>all</i>.</li>
<li><b>SAMPLES</b>, <b>PERCENT</b>, <b>CLASS_COUNTS</b> (e.g. <code>1:500,2:300</code> or
<code>water:500,crop:300</code>): the numbers of the strategy; the dialog enables only
those the chosen strategy reads.</li>
<li><b>SAMPLER</b>: <i>periodic</i> (evenly spread) or <i>random</i>; <b>SEED</b>: the same
seed gives the same samples and split.</li>
<li><b>MASK</b> (optional): only pixels where this raster (on INPUT's grid) is non-zero.</li>
<li><b>GRID_STEP</b>: only pixels whose row and column are multiples of this step are
candidates, so samples are at least this many pixels apart: patches of that size never
overlap, and training and validation patches share no pixel.</li>
<li><b>VALID_FRACTION</b> (default 0.3), <b>TEST_FRACTION</b> (default 0): shares of each
class's samples written to OUTPUT_VALID and OUTPUT_TEST; the rest goes to OUTPUT.</li>
<li><b>SPLIT_BY_POLYGON</b>: all samples of one polygon go to the same set, so validation
measures generalisation to new places (with LABELS: 64 x 64-pixel blocks).</li>
<li><b>OUTPUT</b>, <b>OUTPUT_VALID</b>, <b>OUTPUT_TEST</b>: point layers carrying the class
field (same name) and <code>originfid</code>, the polygon each sample comes from. Text
classes get integer codes, saved beside each output as <code>NAME.classes.csv</code> and
reused by the next steps.</li>
<li><b>LABELS_NODATA</b> (advanced): the label raster's nodata value, when it has none.</li>
</ul>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:sampleselection -- INPUT=scene.tif VECTOR=polygons.gpkg
  FIELD=class STRATEGY=constant SAMPLES=500 OUTPUT=train.gpkg
  OUTPUT_VALID=valid.gpkg</pre>
"""


class SampleSelection(RsdlAlgorithm):
    NAME = "sampleselection"
    #: the dialog enables each strategy's numbers only when that strategy is chosen
    ENABLED_WHEN = {"SAMPLES": ("STRATEGY", ("constant", "total")),
                    "PERCENT": ("STRATEGY", ("percent",)),
                    "CLASS_COUNTS": ("STRATEGY", ("byclass",))}
    GROUP = "sampling"
    DISPLAY = "Sample selection (with train/validation/test split)"
    HELP = SELECTION_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.declare(SelectionJob,             # engine/jobs.py declares the parameters
                     "image", "vector", "field", "labels", "strategy", "samples", "percent",
                     "class_counts", "sampler", "seed", "mask", "grid_step", "valid_fraction",
                     "test_fraction", "split_by_polygon", "labels_nodata", "output",
                     "output_valid", "output_test")

    def process(self, parameters, context, feedback):
        job = self.job(SelectionJob, parameters, context, feedback,
                       output_valid=self.split_output(parameters, "OUTPUT_VALID",
                                                      "VALID_FRACTION", context, feedback),
                       output_test=self.split_output(parameters, "OUTPUT_TEST",
                                                     "TEST_FRACTION", context, feedback))
        if job.vector and not job.field:
            raise QgsProcessingException(self.tr("FIELD: choose the class field of VECTOR"))
        res = self.run_engine(api.sample_selection, job, FeedbackProgress(feedback))
        return {k: res.get(k) for k in ("OUTPUT", "OUTPUT_VALID", "OUTPUT_TEST", "SAMPLES",
                                        "TRAIN", "VALID", "TEST")}

    def split_output(self, parameters, key, fraction, context, feedback):
        """Where a split set goes: its output, or a temporary GeoPackage when the fraction
        asks for the set and the output was left out (from Python or qgis_process: the
        dialog gives one by default), so that the default split never fails."""
        path = self.parameterAsOutputLayer(parameters, key, context) or None
        if path is None and self.parameterAsDouble(parameters, fraction, context) > 0:
            path = QgsProcessingUtils.generateTempFilename(f"{key.lower()}.gpkg")
            feedback.pushInfo(f"{key} was not given: the set {fraction} asks for goes to {path}")
        return path


PATCHES_HELP = """<p>Cuts a patch of each source around each sample point and writes them in
OTBTF's patches-image format: n patches stacked in rows (width = patch size, height = n x
patch size), with the source's bands, data type and spacing; the classes go to a 1 x n
labels raster. Memory stays bounded whatever the number of points: patches are streamed to
disk.</p>
<h3>Parameters</h3>
<ul>
<li><b>VECTOR</b>: sample points (e.g. from Sample selection); <b>FIELD</b> (optional): their
class field, written to OUTPUT_LABELS (text classes become the codes of the
<code>.classes.csv</code> table beside the points, when there is one).</li>
<li><b>SOURCE1..SOURCE{MAX_SOURCES}</b>: the images; they may have different resolutions, extents and
CRSs: each source's patch is centred on the pixel of that source that contains the point
(for even sizes, the centre is index size/2, 0-based).</li>
<li><b>SOURCEn_PATCH_SIZE</b>: patch side in pixels of that source (default 8: 240 m of a
30 m image; 16 to 64 suit finer images). It becomes the receptive field of a network
trained on the patches.</li>
<li><b>SOURCEn_BANDS</b>: the bands cut, as OTB's channel lists (1,2,3 or 1-3). Empty:
every band but an alpha band; a sample whose patch has alpha 0 is rejected, as nodata.
Serve the model with the same band list.</li>
<li><b>SOURCEn_NODATA</b>: value marking nodata (default: the raster's own). A sample is
rejected when any source's patch leaves its image or contains this value in any band.</li>
<li><b>OUTPUT_SOURCE1..OUTPUT_SOURCE{MAX_SOURCES}</b>: the patches images.</li>
<li><b>OUTPUT_LABELS</b>: 1 x n raster of the class codes.</li>
<li><b>LABEL_RASTER</b> + <b>LABEL_PATCH_SIZE</b> -> <b>OUTPUT_LABEL_PATCHES</b>: dense label
patches cut the same way (for segmentation networks).</li>
<li><b>OUTPUT_POINTS</b>: the kept points, with <code>patch</code> (their row in the patches
images, 0-based) and <code>originfid</code>.</li>
<li><b>ADD_TO_MAP</b> (advanced, off): add the patches images and labels to the map. They
are training data, not maps, so by default they are written but not added.</li>
</ul>
<p>The log says how many samples were kept and why the others were rejected.</p>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:patchesextraction -- VECTOR=train.gpkg FIELD=class
  SOURCE1=scene.tif SOURCE1_PATCH_SIZE=16 OUTPUT_SOURCE1=patches.tif
  OUTPUT_LABELS=labels.tif</pre>
"""


#: the numbered sources' prefix (engine/jobs.py)
SOURCES = param_name(PatchesJob, "sources")


class PatchesExtraction(RsdlAlgorithm):
    NAME = "patchesextraction"
    GROUP = "sampling"
    DISPLAY = "Patches extraction"
    HELP = PATCHES_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.declare(PatchesJob, "vector", "field")     # engine/jobs.py
        self.add_sources(("PATCH_SIZE", "BANDS", "NODATA"))
        self.declare(PatchesJob, "label_raster", "label_patch_size")
        output = declaration(PatchSource, "output")      # OUTPUT_SOURCEn: engine/jobs.py
        for i in range(MAX_SOURCES):
            self.addParameter(QgsProcessingParameterRasterDestination(
                numbered(SOURCES, i, output), self.tr(output.label).format(i=i + 1),
                optional=i > 0, createByDefault=i == 0))
        self.declare(PatchesJob, "output_labels", "output_label_patches", "output_points")
        self.addParameter(advanced(QgsProcessingParameterBoolean(
            "ADD_TO_MAP", self.tr("Add the patches images and labels to the map"),
            defaultValue=False)))

    def process(self, parameters, context, feedback):
        given = self.numbered(parameters, SOURCES + "{}")
        sources = []
        for i in given:
            key = numbered(SOURCES, i - 1)
            settings = self.source_settings(PatchSource, key, parameters, context)
            if not settings["output"]:
                raise QgsProcessingException(self.tr(
                    "{out}: {key} is given, so give where its patches go").format(
                        out=numbered(SOURCES, i - 1, declaration(PatchSource, "output")),
                        key=key))
            sources.append(PatchSource(self.raster_path(parameters, key, context), **settings))
        job = self.job(PatchesJob, parameters, context, feedback, sources=sources)
        res = self.run_engine(api.extract_patches, job, FeedbackProgress(feedback))
        if not self.parameterAsBool(parameters, "ADD_TO_MAP", context):
            # patches images are training data, not maps: as layers they only clutter the
            # project, and the next dialog proposed them as inputs of the wrong kind
            self.do_not_load(context, [s.output for s in sources] +
                             [job.output_labels, job.output_label_patches])
        keys = [numbered(SOURCES, i - 1, declaration(PatchSource, "output")) for i in given] \
            + ["OUTPUT_LABELS", "OUTPUT_LABEL_PATCHES", "OUTPUT_POINTS", "KEPT", "REJECTED"]
        return {k: res.get(k) for k in keys}
