"""rsdl:trainmodel: train a network on patches images, without writing code."""
from qgis.core import (
    QgsProcessingParameterBoolean,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterString,
)

from ..engine.choices import DISTRIBUTIONS, SCHEDULES
from ..models.zoo import ARCHITECTURES
from .base import MAX_SOURCES, FeedbackProgress, RasterInput, RsdlAlgorithm, advanced, api, model_parameter

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
<li><b>DISTRIBUTION</b>: <i>this process</i> (default); <i>every GPU of this machine</i>
(TensorFlow's MirroredStrategy: each batch is split between the GPUs); <i>the workers of a
Dask cluster</i> (MultiWorkerMirroredStrategy: one training process per worker, each on its
share of every batch, the gradients summed across them). The model files are those of a
one-process training.</li>
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
<pre>qgis_process.bin run rsdl:trainmodel -- ARCHITECTURE=1 TRAIN_SOURCE1=patches.tif
  TRAIN_LABELS=labels.tif VALID_SOURCE1=vpatches.tif VALID_LABELS=vlabels.tif EPOCHS=20
  OUTPUT=model OUTPUT_REPORT=training.html</pre>
"""


SCHEDULE_LABELS = {"cosine": "cosine: decays to 1 % by the last epoch", "constant": "constant"}


DISTRIBUTION_LABELS = {"none": "this process (one CPU or GPU)",
                       "gpus": "every GPU of this machine",
                       "workers": "the workers of a Dask cluster (SCHEDULER)"}


class TrainModel(RsdlAlgorithm):
    NAME = "trainmodel"
    DISPLAY = "Train a model"
    GROUP = "training"
    HELP = HELP

    def initAlgorithm(self, config=None):  # noqa: N802
        self.addParameter(QgsProcessingParameterEnum(
            "ARCHITECTURE", "Built-in architecture", options=list(ARCHITECTURES), defaultValue=1))
        self.addParameter(model_parameter(
            "MODEL", "Model to train further (instead of a built-in one)", optional=True,
            onnx=False))
        self.addParameter(QgsProcessingParameterBoolean(
            "RESTORE", "Start from the model's weights (fine-tuning)", defaultValue=True))
        for prefix, title in (("TRAIN", "Training"), ("VALID", "Validation")):
            for i in range(1, MAX_SOURCES + 1):
                self.addParameter(RasterInput(
                    f"{prefix}_SOURCE{i}", f"{title} patches, source {i}",
                    optional=(prefix == "VALID" or i > 1)))
                if prefix == "TRAIN":
                    self.addParameter(QgsProcessingParameterString(
                        f"TRAIN_SOURCE{i}_NAME", f"Source {i}: model input name",
                        defaultValue="", optional=True))
            self.addParameter(RasterInput(
                f"{prefix}_LABELS", f"{title} labels", optional=prefix == "VALID"))
        self.addParameter(QgsProcessingParameterNumber(
            "EPOCHS", "Epochs", QgsProcessingParameterNumber.Integer, defaultValue=20, minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            "BATCH_SIZE", "Batch size", QgsProcessingParameterNumber.Integer, defaultValue=64,
            minValue=1))
        self.addParameter(QgsProcessingParameterNumber(
            "LEARNING_RATE", "Learning rate", QgsProcessingParameterNumber.Double,
            defaultValue=0.0003, minValue=1e-8, maxValue=1.0))
        self.addParameter(QgsProcessingParameterEnum(
            "SCHEDULE", "Learning-rate schedule", options=[
                SCHEDULE_LABELS[k] for k in SCHEDULES], defaultValue=0))
        self.addParameter(QgsProcessingParameterNumber(
            "PATIENCE", "Stop after this many epochs without a better validation loss "
            "(0: never)", QgsProcessingParameterNumber.Integer, defaultValue=8, minValue=0))
        self.addParameter(QgsProcessingParameterBoolean(
            "CLASS_WEIGHTS", "Balance classes", defaultValue=True))
        self.addParameter(QgsProcessingParameterBoolean(
            "AUGMENT", "Augment (flips, rotations)", defaultValue=True))
        self.add_seed()
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "LABEL_NODATA", "Label value to ignore", QgsProcessingParameterNumber.Integer,
            optional=True)))
        self.add_trust_model("the model to train further")
        self.addParameter(advanced(QgsProcessingParameterEnum(
            "DISTRIBUTION", "Train on", options=[DISTRIBUTION_LABELS[k] for k in DISTRIBUTIONS],
            defaultValue=0)))
        self.add_scheduler("with 'Train on' the workers of a Dask cluster, each worker "
                           "trains on its share of every batch, reading the patches from "
                           "the same paths (a shared folder)")
        self.addParameter(advanced(QgsProcessingParameterNumber(
            "WORKERS", "Dask workers to train on (0: all)",
            QgsProcessingParameterNumber.Integer, defaultValue=0, minValue=0)))
        self.addParameter(QgsProcessingParameterFolderDestination("OUTPUT", "Trained model"))
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT_REPORT", "Training report", "HTML files (*.html)", optional=True))
        self.add_metrics()

    def _sources(self, parameters, prefix, context):
        out = []
        for i in self.numbered(parameters, prefix + "_SOURCE{}", required=prefix == "TRAIN"):
            name = self.parameterAsString(parameters, f"TRAIN_SOURCE{i}_NAME", context).strip()
            out.append(api.TrainSource(self.raster_path(parameters, f"{prefix}_SOURCE{i}", context),
                                       name))
        return out

    def process(self, parameters, context, feedback):
        job = api.TrainModelJob(
            train_sources=self._sources(parameters, "TRAIN", context),
            train_labels=self.raster_path(parameters, "TRAIN_LABELS", context),
            output_model=self.parameterAsFileOutput(parameters, "OUTPUT", context),
            valid_sources=self._sources(parameters, "VALID", context),
            valid_labels=self.raster_path(parameters, "VALID_LABELS", context),
            model=self.parameterAsFile(parameters, "MODEL", context) or None,
            architecture=ARCHITECTURES[self.parameterAsEnum(parameters, "ARCHITECTURE", context)],
            epochs=self.parameterAsInt(parameters, "EPOCHS", context),
            batch_size=self.parameterAsInt(parameters, "BATCH_SIZE", context),
            learning_rate=self.parameterAsDouble(parameters, "LEARNING_RATE", context),
            schedule=SCHEDULES[self.parameterAsEnum(parameters, "SCHEDULE", context)],
            patience=self.parameterAsInt(parameters, "PATIENCE", context),
            class_weights=self.parameterAsBool(parameters, "CLASS_WEIGHTS", context),
            augment=self.parameterAsBool(parameters, "AUGMENT", context),
            restore=self.parameterAsBool(parameters, "RESTORE", context),
            seed=self.parameterAsInt(parameters, "SEED", context),
            label_nodata=self.optional_int(parameters, "LABEL_NODATA", context),
            output_report=self.parameterAsFileOutput(parameters, "OUTPUT_REPORT", context) or None,
            trust_model=self.parameterAsBool(parameters, "TRUST_MODEL", context),
            distribution=DISTRIBUTIONS[self.parameterAsEnum(parameters, "DISTRIBUTION",
                                                            context)],
            scheduler=self.parameterAsString(parameters, "SCHEDULER", context).strip(),
            workers=self.parameterAsInt(parameters, "WORKERS", context))
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
            "MODEL", "Model folder written by Train a model", onnx=False))
        self.add_trust_model()
        self.addParameter(QgsProcessingParameterFileDestination(
            "OUTPUT", "ONNX model", "ONNX models (*.onnx)"))

    def process(self, parameters, context, feedback):
        return self.run_engine(api.export_onnx,
                               self.parameterAsFile(parameters, "MODEL", context),
                               self.parameterAsFileOutput(parameters, "OUTPUT", context),
                               self.parameterAsBool(parameters, "TRUST_MODEL", context),
                               FeedbackProgress(feedback))
