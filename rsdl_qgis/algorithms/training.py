"""rsdl:trainmodel: train a network on patches images, without writing code."""
from qgis.core import (
    QgsProcessingParameterFileDestination,
)

from ..engine import declare
from ..engine.declare import declaration
from ..models.jobs import TrainModelJob, TrainSource
from . import binder
from .base import (
    MAX_SOURCES,
    FeedbackProgress,
    RasterInput,
    RsdlAlgorithm,
    api,
    model_parameter,
)

HELP = """<p>Trains a network on patches images (from Patches extraction): a built-in
architecture sized from the data, or your own model, which it can fine-tune. The result is
a SavedModel that Apply a model serves as it is, with no receptive field to type: its
metadata carries input names, receptive and expression fields, mode and classes.</p>
<h3>Model</h3>
<ul>
<li><b>ARCHITECTURE</b>: <i>cnn</i> (small patch-based CNN), <i>fcn</i> (the default: fully
convolutional, Maggiori et al. 2017: served fully convolutionally, fast), <i>unet</i>
(dense labels: LABEL patches from LABEL_RASTER), <i>m3</i> (fusion of a CNN on image
patches, TRAIN_SOURCE1, and a GRU on a pixel time series, TRAIN_SOURCE2 with patch size 1).
Band counts, patch sizes and class counts come from the data.</li>
<li><b>MODEL</b> (optional): a model folder written by this algorithm or a .keras file,
trained further instead of a built-in one. <b>RESTORE</b>: start from its weights
(fine-tuning); off: same architecture from scratch.</li>
<li><b>TRUST_MODEL</b> (advanced, off): a model is code; before loading one, rsdl checks
that it only computes, and refuses a model that writes or reads files, calls Python or
uses the network, naming the operation. Tick it only for a model you trust.</li>
</ul>
<h3>Data</h3>
<ul>
<li><b>TRAIN_SOURCE1..TRAIN_SOURCE{MAX_SOURCES}</b>: patches images; <b>TRAIN_SOURCEn_NAME</b>: the
model input each feeds (built-in models: x1..x{MAX_SOURCES} by default).</li>
<li><b>TRAIN_LABELS</b>: the 1 x n labels raster, or dense label patches (unet).</li>
<li><b>VALID_SOURCE1..VALID_SOURCE{MAX_SOURCES}</b>, <b>VALID_LABELS</b> (optional): the validation
set, e.g. from samples split by polygon.</li>
<li><b>LABEL_NODATA</b> (advanced): label value to ignore (default: the labels' nodata).</li>
</ul>
<p>Patches are streamed from disk, so training sets larger than memory work.
Normalisation statistics of the training patches are built into the model: serving takes
raw pixels.</p>
<h3>Training</h3>
<ul>
<li><b>EPOCHS</b> (default 20; the epoch with the best validation loss is kept),
<b>BATCH_SIZE</b>, <b>LEARNING_RATE</b> (Adam's peak, default 0.0003).</li>
<li><b>SCHEDULE</b>: <i>cosine</i> (default) lowers the learning rate smoothly to 1 % of
it by the last epoch, so that the last epochs settle; <i>constant</i> keeps it. The
weights are averaged as they train (an exponential moving average over about one epoch
of the demo), and validation and the kept model use the average: the validation curve
swings less from epoch to epoch.</li>
<li><b>PATIENCE</b> (default 8): training stops when the validation loss has not improved
for this many epochs (0: run every epoch). The report says in plain words what to change
when the curves swing, overfit or still improve.</li>
<li><b>CLASS_WEIGHTS</b>: balance classes by their frequency (on by default).</li>
<li><b>AUGMENT</b>: random flips and 90-degree rotations (on by default).</li>
<li><b>SEED</b>: the same seed gives the same model.</li>
</ul>
<h3>Several GPUs or machines (advanced)</h3>
<ul>
<li><b>DISTRIBUTION</b>: <i>this process</i> (<code>none</code>, the default); <i>every
GPU of this machine</i> (<code>gpus</code>: TensorFlow's MirroredStrategy, each batch is
split between the GPUs); <i>the workers of a Dask cluster</i> (<code>workers</code>:
MultiWorkerMirroredStrategy, one training process per worker, each on its share of every
batch, the gradients summed across them). The model files are those of a one-process
training.</li>
<li><b>SCHEDULER</b>: the cluster's address (rsdl-scheduler and rsdl-worker, or rsdl-slurm:
docs/cluster.md); the workers read the patches from the same paths.
<b>WORKERS</b>: how many of its workers (0: all).</li>
</ul>
<p>Progress moves per batch, the log gives each epoch's losses and accuracies. The model
kept is the one of the best epoch (validation loss, or training loss without validation).
Cancel stops after the current batch and saves the best model so far.</p>
<h3>Outputs</h3>
<ul>
<li><b>OUTPUT</b>: a folder: SavedModel (outputs <code>class</code>, the class
codes, and <code>probabilities</code>), <code>model.keras</code> for fine-tuning, and
<code>rsdl_metadata.json</code>.</li>
<li><b>OUTPUT_REPORT</b>: HTML with loss and accuracy curves, confusion matrix,
per-class precision/recall/F1, overall accuracy and kappa of the validation set.</li>
</ul>
<p>Results: OA, KAPPA, F1_MEAN of the validation set.</p>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:trainmodel -- ARCHITECTURE=fcn TRAIN_SOURCE1=patches.tif
  TRAIN_LABELS=labels.tif VALID_SOURCE1=vpatches.tif VALID_LABELS=vlabels.tif EPOCHS=20
  OUTPUT=model OUTPUT_REPORT=training.html</pre>
"""


class TrainModel(RsdlAlgorithm):
    NAME = "trainmodel"
    DISPLAY = "Train a model"
    GROUP = "training"
    HELP = HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        job = TrainModelJob                # models/jobs.py declares the parameters
        self.declare(job, "architecture", "model", "restore")
        name = declaration(TrainSource, "name")
        for sources, labels in (("train_sources", "train_labels"),
                                ("valid_sources", "valid_labels")):
            spec = declaration(job, sources)
            for i in range(MAX_SOURCES):
                key = declare.numbered(spec.name, i)
                self.addParameter(RasterInput(key, self.tr(spec.label).format(i=i + 1),
                                              optional=spec.optional or i > 0))
                if sources == "train_sources":   # the validation sources feed the same inputs
                    self.addParameter(binder.definition(binder.numbered(
                        name, key, self.tr("Source {i}").format(i=i + 1)), self.tr))
            self.declare(job, labels)
        self.declare(job, "epochs", "batch_size", "learning_rate", "schedule", "patience",
                     "class_weights", "augment", "seed", "label_nodata", "trust_model",
                     "distribution", "scheduler", "workers", "output_model", "output_report")
        self.add_metrics()

    def _sources(self, parameters, field, context):
        """The numbered sources of `field` (train_sources, valid_sources), each with the
        model input name given for its training source."""
        spec, train = declaration(TrainModelJob, field), declaration(TrainModelJob,
                                                                     "train_sources")
        out = []
        for i in self.numbered(parameters, spec.name + "{}", required=not spec.optional):
            settings = self.source_settings(TrainSource, f"{train.name}{i}", parameters,
                                            context)
            out.append(TrainSource(self.raster_path(parameters, f"{spec.name}{i}", context),
                                   **settings))
        return out

    def process(self, parameters, context, feedback):
        job = self.job(TrainModelJob, parameters, context, feedback,
                       train_sources=self._sources(parameters, "train_sources", context),
                       valid_sources=self._sources(parameters, "valid_sources", context))
        res = self.run_engine(api.train_model, job, FeedbackProgress(feedback))
        return {k: res.get(k) for k in ("OUTPUT", "OUTPUT_REPORT", "OA", "KAPPA", "F1_MEAN",
                                        "EPOCHS", "BEST_EPOCH")}


EXPORT_HELP = """<p>Exports a model to ONNX, so that it runs in ONNX Runtime, Deepness or any
other tool, and here too: Apply a model and Train a classifier take .onnx files.</p>
<ul>
<li><b>MODEL</b>: a model folder written by Train a model (its saved_model.pb). Other
models (OTBTF's TensorFlow 1 graphs, any SavedModel) are served as they are and cannot
be exported.</li>
<li><b>OUTPUT</b>: the .onnx file. The model's rsdl metadata (input names, receptive and
expression fields, mode, classes) goes into the file's metadata
(<code>metadata_props</code>: <code>rsdl_metadata</code>, and the class names under
<code>class_names</code> as Deepness reads them), so the ONNX file is served with no
number to type.</li>
<li><b>TRUST_MODEL</b> (advanced, off): as in Apply a model.</li>
</ul>
<h3>Example</h3>
<pre>qgis_process.bin run rsdl:exportonnx -- MODEL=fcn_model OUTPUT=fcn_model.onnx</pre>
"""


class ExportOnnx(RsdlAlgorithm):
    NAME = "exportonnx"
    DISPLAY = "Export a model to ONNX"
    GROUP = "training"
    HELP = EXPORT_HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(model_parameter(
            "MODEL", self.tr("Model folder written by Train a model"), trainable=True))
        self.add_declared(declare.trust_model())
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", self.tr("ONNX model"), "ONNX models (*.onnx)"))

    def process(self, parameters, context, feedback):
        return self.run_engine(api.export_onnx,
                               self.parameterAsFile(parameters, "MODEL", context),
                               self.parameterAsFileOutput(parameters, "OUTPUT", context),
                               self.parameterAsBool(parameters, "TRUST_MODEL", context),
                               FeedbackProgress(feedback))
