"""rsdl:modelserve: apply a TensorFlow model to rasters of any size."""
import functools

from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
)

from ..engine.choices import OUTPUT_TYPES
from .base import FeedbackProgress, RsdlAlgorithm, advanced, api, model_parameter, serving_mode

HELP = """<p>Applies a TensorFlow model to one to four rasters of any size, with bounded
memory, as OTBTF's TensorflowModelServe does. The output is a tiled, compressed GeoTIFF on
the grid of SOURCE1 (times SCALE), exactly georeferenced, with no seams between tiles.</p>
<h3>Modes</h3>
<p><b>Patch-based</b> (default): one patch of the receptive field is cut around every
output pixel (every EFIELD x EFIELD block) and the patches are fed to the model in
batches. For a 128 x 128 image and a receptive field of 16 the output is 113 x 113 pixels,
shifted by 8 input pixels. <b>Fully-convolutional</b>: the model receives whole regions
and returns the expression field of each; much faster for convolutional models.</p>
<h3>Parameters</h3>
<ul>
<li><b>MODEL</b>: a SavedModel folder (choose its saved_model.pb), a .keras or an .onnx
file. TF1 models (OTBTF's) are addressed by tensor names, TF2 models by signature keys.
ONNX models made to Deepness's contract are served as Deepness serves them (pixels / 255
and its standardisation, class names, class threshold, tile overlap; a regression model
gives values, a super-resolution model a finer map); object detection models are
refused.</li>
<li><b>SOURCE1..SOURCE{MAX_SOURCES}</b>: input rasters. SOURCE1 is the reference grid; the other
sources are aligned on it by coordinates (other resolutions and extents allowed; another
CRS is warped on the fly).</li>
<li><b>SOURCEn_RFIELD</b>: receptive field (patch size, in pixels of that source) of the
model input fed by source n. Models trained by rsdl:trainmodel carry it in their metadata:
leave it empty (and EFIELD, FULLY_CONV, SOURCEn_NAME and OUTPUT_NAMES too).</li>
<li><b>SOURCEn_NAME</b>: the model input the source feeds (may stay empty when the model
has one input).</li>
<li><b>SOURCEn_BANDS</b>: the bands of the source fed to the model, as OTB's channel
lists: 1,2,3 or 1-3. Empty: every band but an alpha band. An alpha band (RGBA
orthophotos) is never fed to a model: alpha 0 is nodata. A 4-band image without alpha
given to a 3-band model is refused: say which bands here.</li>
<li><b>SOURCEn_NODATA</b>: nodata value of the source (default: the raster's own). Output
pixels whose SOURCE1 pixel is nodata are nodata; tiles of nodata only are not computed.</li>
<li><b>OUTPUT_NAMES</b>: comma-separated model outputs, stacked as bands (may stay
empty when the model has one output).</li>
<li><b>EFIELD</b>: expression field: the size of the output block one input patch
gives (1 for a classifier, e.g. 32 for a segmentation net of 64 -> 32).</li>
<li><b>SCALE</b>: output spacing = SOURCE1 spacing x SCALE. Empty: from the model (0.5
for a super-resolution model whose output is twice as fine), else 1.</li>
<li><b>FULLY_CONV</b>: true for the fully-convolutional mode, false for patch-based;
when not given, from the model's metadata, else patch-based (in the dialog: "From the
model's metadata").</li>
<li><b>PAD</b> (map extent): empty, tile models (a model whose output is its input
tile, like a U-Net or a Deepness model, or finer) map the whole image and other models
get OTBTF's extent. False: OTBTF's extent, which loses RF // 2 pixels of SOURCE1 at the
start of each axis and RF - 1 - RF // 2 at the end, where no whole patch fits. True: the
map is on SOURCE1's whole grid (times SCALE); the sources are mirrored at their edges
(reflection about the edge pixels), so values near the edges come from mirrored
pixels. Tile models run on overlapping tiles and keep each tile's centre: no seam.</li>
<li><b>TILE_SIZE</b>: output tile side in pixels; 0 picks it from MEMORY_MB.</li>
<li><b>BATCH_SIZE</b>: patches per model call in patch-based mode (a model whose batch
size is fixed, often 1 in ONNX files, is always fed batches of that size).</li>
<li><b>OUTPUT_TYPE</b>: automatic (default), float32, uint8, uint16, int16 or int32
(values are clipped to the type's range). Automatic: the class map of a model that names
its classes (one trained here, or an ONNX file with class names) gets the smallest integer
type with a nodata value that is no class, and carries its classes (colour table and
category names, shown by any GIS, and a QGIS style); any other output is float32.</li>
<li><b>OUTPUT_NODATA</b> (advanced): nodata value of the output (default: -9999 for
float32, the largest value for unsigned types, the smallest for signed ones).</li>
<li><b>MEMORY_MB</b> (advanced): memory budget used when TILE_SIZE is 0.</li>
<li><b>TRUST_MODEL</b> (advanced, off): a model is code; before loading one, rsdl checks
that it only computes, and refuses a model that writes or reads files, calls Python or
uses the network, naming the operation. Tick it only for a model you trust.</li>
<li><b>RESUME</b> (advanced, on): the output is computed in chunks, kept beside it
(<code>.NAME.rsdl-resume</code>) until it is complete; running the same job again after a
crash, a kill or a cancel continues from the finished chunks, and the output is the
same bytes as an uninterrupted run. A job whose inputs, model or parameters changed
starts over, and the log says why.</li>
<li><b>SCHEDULER</b> (advanced): the address of a Dask scheduler
(<code>tcp://host:8786</code>); its workers compute the chunks, reading the inputs and
the model from the same paths, and this process writes the output. Empty: in this
process.</li>
</ul>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:modelserve -- MODEL=models/model3 SOURCE1=pxs.tif
  SOURCE1_RFIELD=16 SOURCE1_NAME=x OUTPUT_NAMES=prediction FULLY_CONV=true
  OUTPUT=map.tif</pre>
"""


class ModelServe(RsdlAlgorithm):
    NAME = "modelserve"
    DISPLAY = "Apply a model (model serve)"
    GROUP = "serving"
    HELP = HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(model_parameter(
            "MODEL", "Model (a SavedModel folder, a .keras or an .onnx file)"))
        self.add_sources(("RFIELD", "NAME", "BANDS", "NODATA"))
        self.add_output_names()
        self.addParameter(QgsProcessingParameterNumber(
            "EFIELD", "Expression field (pixels; empty = from the model's metadata, else 1)",
            QgsProcessingParameterNumber.Integer, minValue=1, optional=True))
        self.addParameter(QgsProcessingParameterNumber(
            "SCALE", "Output spacing scale factor (empty = from the model, else 1)",
            QgsProcessingParameterNumber.Double, minValue=1e-6, optional=True))
        self.addParameter(serving_mode(QgsProcessingParameterBoolean(
            "FULLY_CONV", "Mode (fully convolutional or patch-based)", optional=True)))
        self.add_pad(automatic=True)
        self.add_tiling()
        self.addParameter(QgsProcessingParameterNumber(
            "BATCH_SIZE", "Batch size (patch-based mode)",
            QgsProcessingParameterNumber.Integer, defaultValue=256, minValue=1))
        self.addParameter(QgsProcessingParameterEnum(
            "OUTPUT_TYPE", "Output data type", options=list(OUTPUT_TYPES), defaultValue=0))
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "OUTPUT_NODATA", "Output nodata value", QgsProcessingParameterNumber.Double,
            optional=True)))
        self.add_trust_model()
        self.add_distribution()
        self.addParameter(QgsProcessingParameterRasterDestination("OUTPUT", "Model output"))

    def process(self, parameters, context, feedback):
        sources = []
        for i in self.numbered(parameters, "SOURCE{}"):
            key = f"SOURCE{i}"
            sources.append(api.ServeSource(
                self.raster_path(parameters, key, context),
                self.optional_int(parameters, f"{key}_RFIELD", context),
                self.parameterAsString(parameters, f"{key}_NAME", context).strip(),
                self.optional_double(parameters, f"{key}_NODATA", context),
                bands=self.bands(parameters, f"{key}_BANDS", context)))
        job = api.ServeJob(
            model=self.parameterAsFile(parameters, "MODEL", context),
            sources=sources,
            output=self.parameterAsOutputLayer(parameters, "OUTPUT", context),
            output_names=self.parameterAsString(parameters, "OUTPUT_NAMES", context).split(","),
            efield=self.optional_int(parameters, "EFIELD", context),
            scale=self.optional_double(parameters, "SCALE", context),
            fully_conv=self.optional_bool(parameters, "FULLY_CONV", context),
            tile_size=self.parameterAsInt(parameters, "TILE_SIZE", context),
            batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
            output_type=OUTPUT_TYPES[self.parameterAsEnum(parameters, "OUTPUT_TYPE", context)],
            output_nodata=self.optional_double(parameters, "OUTPUT_NODATA", context),
            memory_mb=self.parameterAsInt(parameters, "MEMORY_MB", context),
            pad=self.optional_bool(parameters, "PAD", context),
            trust_model=self.parameterAsBool(parameters, "TRUST_MODEL", context))
        resume, scheduler = self.distribution(parameters, context)
        return self.run_engine(functools.partial(api.serve_model, resume=resume,
                                                 scheduler=scheduler),
                               job, FeedbackProgress(feedback))
