"""rsdl:modelserve: apply a TensorFlow model to rasters of any size."""
import functools

from ..engine.jobs import ServeJob, ServeSource
from .base import FeedbackProgress, RsdlAlgorithm, api

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
<li><b>MODEL</b>: {MODEL_FORMATS}</li>
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
        job = ServeJob                       # engine/jobs.py declares the parameters
        self.declare(job, "model")
        self.add_sources(("RFIELD", "NAME", "BANDS", "NODATA"))
        self.declare(job, "output_names", "efield", "scale", "fully_conv", "pad", "tile_size",
                     "memory_mb", "batch_size", "output_type", "output_nodata", "trust_model")
        self.add_distribution()
        self.declare(job, "output")

    def process(self, parameters, context, feedback):
        sources = []
        for i in self.numbered(parameters, "SOURCE{}"):
            key = f"SOURCE{i}"
            settings = self.source_settings(ServeSource, key, parameters, context)
            sources.append(ServeSource(self.raster_path(parameters, key, context), **settings))
        job = self.job(ServeJob, parameters, context, feedback, sources=sources)
        resume, scheduler = self.distribution(parameters, context)
        return self.run_engine(functools.partial(api.serve_model, resume=resume,
                                                 scheduler=scheduler),
                               job, FeedbackProgress(feedback))
