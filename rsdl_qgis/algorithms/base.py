"""What every rsdl algorithm shares: groups, icons, help, errors, progress."""
import os
import re
import threading

from qgis.core import (
    QgsApplication,
    QgsProcessingAlgorithm,
    QgsProcessingException,
    QgsProcessingLayerPostProcessorInterface,
    QgsProcessingOutputLayerDefinition,
    QgsProcessingOutputNumber,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProperty,
)
from qgis.PyQt.QtGui import QIcon

from ..engine import declare
from ..engine.declare import declaration, declared
from ..engine.jobs import PatchSource, ServeJob, ServeSource
from ..engine.output import check_paths
from ..engine.progress import Progress
from ..engine.styles import qml_path
from ..errors import CancelledError, RsdlError
from ..models.metadata import model_folder
from . import binder
from .parameters import Choice, RasterInput, model_parameter, raster_file  # noqa: F401

#: how many numbered sources (SOURCE1..SOURCE4, TRAIN_SOURCE1..4...) an algorithm takes
MAX_SOURCES = 4
#: the accuracy figures that training and assessment algorithms return
METRICS = ("OA", "KAPPA", "F1_MEAN")

#: the settings of a numbered source (SOURCEn_RFIELD...), as the jobs declare them
SOURCE_SETTINGS = {spec.name: spec for job in (ServeSource, PatchSource)
                   for _, spec in declared(job)}
#: vector formats handed to the engine as they are; others are exported by QGIS first
VECTOR_FORMATS = ["gpkg", "shp", "geojson", "sqlite", "fgb"]
_PKG = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GROUPS = {"sampling": "Sampling", "training": "Training", "serving": "Serving",
          "classification": "Classification"}


def icon(name):
    """An icon of the plugin: from the installed plugin folder, or the source tree."""
    for folder in (os.path.join(_PKG, "icons"), os.path.join(os.path.dirname(_PKG), "icons")):
        path = os.path.join(folder, f"{name}.svg")
        if os.path.exists(path):
            return QIcon(path)
    return QIcon()


def path_error(param, value):
    """What is wrong with a path the user typed, found before any work: a file input
    (a model, a classifier file) that does not exist, an output file that is a folder
    (found only when the finished map was renamed onto it, before)."""
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value = value.sink.staticValue()
    if not isinstance(value, str) or not value or value == "TEMPORARY_OUTPUT":
        return None
    key, path = param.name(), value.split("|")[0]
    if param.type() == "file" and not os.path.exists(model_folder(path)):
        return f"{key}: '{path}' does not exist"
    if param.type() in ("rasterDestination", "vectorDestination", "fileDestination") \
            and os.path.isdir(path):
        return (f"{key}: '{path}' is a folder: give a file name in it, for instance "
                f"'{os.path.join(path, 'output')}{destination_ext(param)}'")
    return None


def destination_ext(param):
    """The usual extension of a destination parameter ('.tif', '.gpkg', '.csv'...)."""
    try:
        ext = param.defaultFileExtension()
    except AttributeError:
        return ""
    return f".{ext}" if ext else ""


def open_quietly(path):
    """A raster file opened read-only by GDAL, or None: nothing is computed on it, so
    nothing is written back."""
    from osgeo import gdal
    gdal.PushErrorHandler("CPLQuietErrorHandler")
    try:
        ds = gdal.OpenEx(path, gdal.OF_RASTER | gdal.OF_READONLY)
    except RuntimeError:
        ds = None
    finally:
        gdal.PopErrorHandler()
    return ds if ds is not None and ds.RasterCount else None


def raster_file_error(key, path):
    """What is wrong with a raster file given to parameter `key` (None: GDAL reads it)."""
    if open_quietly(path) is None:
        return (f"{key}: '{path}' exists but is not a raster QGIS can read: choose a "
                "raster file (GeoTIFF...)")
    return None


def raster_wkt(path):
    """The WKT of a raster file's CRS ('' when it has none or cannot be read)."""
    ds = open_quietly(path)
    return (ds.GetProjection() or "") if ds is not None else ""


def fix_destination(parameters, key, path):
    """Make a temporary output's path final once resolved. Each resolution of
    TEMPORARY_OUTPUT draws a new file name and, for layers, asks QGIS to load it when the
    run ends: resolved again in `process`, the map was written to a second name while QGIS
    looked for the first ("layers were not correctly generated", in a model above all)."""
    if not path:
        return
    value = parameters.get(key)
    if isinstance(value, QgsProcessingOutputLayerDefinition):
        value.sink = QgsProperty.fromValue(path)
    elif isinstance(value, str):
        parameters[key] = path


class FeedbackProgress(Progress):
    """Engine progress callbacks on top of a QgsProcessingFeedback.

    The engine runs in a Python thread of its own (`run_engine`). A feedback's progress
    is a Qt signal: set from that thread, it is queued to the thread QGIS runs the
    algorithm in, which waits without an event loop, so inside a model (whose step
    feedback lives there) no progress arrived until the step ended. The engine's thread
    only records the fraction; QGIS's thread passes it on (`flush`) while it waits."""

    def __init__(self, feedback):
        self.feedback = feedback
        self.owner = threading.get_ident()
        self.fraction = None
        self.sent = None

    def set(self, fraction):
        self.fraction = fraction
        if threading.get_ident() == self.owner:
            self.flush()

    def flush(self):
        """Pass the last fraction on to the feedback (in the thread that made it)."""
        value = self.fraction
        if self.feedback is not None and value is not None and value != self.sent:
            self.sent = value
            self.feedback.setProgress(100.0 * value)

    def cancelled(self):
        return self.feedback is not None and self.feedback.isCanceled()

    def info(self, message):
        if self.feedback is not None:
            self.feedback.pushInfo(message)


def flowing_html(text):
    """Help HTML with the source's line breaks taken out (but in <pre>): QGIS's help panel
    turns every newline into a line break, which cut sentences in the middle."""
    parts = re.split(r"(<pre>.*?</pre>)", text, flags=re.S)
    return "".join(p if p.startswith("<pre>") else re.sub(r"\s*\n\s*", " ", p)
                   for p in parts).strip()


def plain_text(text, width=88):
    """The help HTML as plain text, for `qgis_process help` (which prints it as it is):
    paragraphs wrapped, list items as '- ', headings underlined, <pre> indented."""
    import html
    import textwrap
    blocks = []                                   # (kind, text)
    for part in re.split(r"(<pre>.*?</pre>)", text, flags=re.S):
        if part.startswith("<pre>"):
            code = html.unescape(re.sub(r"</?pre>", "", part)).strip("\n")
            blocks.append(("pre", textwrap.indent(code, "    ")))
            continue
        part = re.sub(r"<h3>(.*?)</h3>", "\n\n\x01\\1\n\n", part, flags=re.S)
        part = re.sub(r"<li>", "\n\n- ", part)
        part = re.sub(r"</?(p|ul|ol)>", "\n\n", part)
        part = html.unescape(re.sub(r"<[^>]+>", "", part))
        for block in re.split(r"\n\s*\n", part):
            words = " ".join(block.split())
            if words.startswith("\x01"):
                title = words[1:].strip()
                blocks.append(("h", f"{title}\n{'-' * len(title)}"))
            elif words.startswith("- "):
                blocks.append(("li", textwrap.fill(words, width, subsequent_indent="  ")))
            elif words:
                blocks.append(("p", textwrap.fill(words, width)))
    out = ""
    for i, (kind, block) in enumerate(blocks):
        if i:
            out += "\n" if kind == "li" and blocks[i - 1][0] == "li" else "\n\n"
        out += block
    return out


class _LazyApi:
    """rsdl_qgis.api, imported when an algorithm first runs: loading the plugin (QGIS
    start-up, the toolbox, `qgis_process list`) then imports no numpy, GDAL or engine."""

    def __getattr__(self, name):
        from .. import api as module
        return getattr(module, name)


api = _LazyApi()


def advanced(param):
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


class LoadStyle(QgsProcessingLayerPostProcessorInterface):
    """Applies the .qml that the engine wrote beside an output when QGIS loads it as a
    result: Processing loads result layers without their default style."""
    _alive: dict = {}    # QGIS keeps a bare pointer to Python post-processors: hold them here

    def __init__(self, qml):
        super().__init__()
        self.qml = qml

    @classmethod
    def create(cls, qml):
        cls._alive[qml] = cls(qml)
        return cls._alive[qml]

    def postProcessLayer(self, layer, context, feedback):  # noqa: N802 (QGIS's name)
        message, ok = layer.loadNamedStyle(self.qml)
        if not ok and feedback is not None:
            feedback.reportError(f"The style {self.qml} did not load: {message}")
        layer.triggerRepaint()


class RsdlAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY, GROUP, HELP and implement ``process``."""
    NAME = ""
    DISPLAY = ""
    GROUP = ""
    HELP = ""

    def tr(self, text):
        """A user string in the language of QGIS (the plugin's translation, when one is
        installed), as QGIS's own algorithms translate theirs."""
        from qgis.PyQt.QtCore import QCoreApplication
        return QCoreApplication.translate("rsdl", text)

    def declare(self, job, *fields):
        """The parameters a job class declares for `fields`, in that order (binder.py)."""
        binder.add(self, job, *fields)

    def job(self, job, parameters, context, feedback=None, **given):
        """A `job` from a run's parameters (binder.py); `given` fields as they are."""
        return binder.read(self, job, parameters, context, feedback, **given)

    def source_settings(self, job, key, parameters, context):
        """{field: value} of the settings numbered source `key` has among those `job`
        (ServeSource, PatchSource) declares (SOURCE2_RFIELD -> rfield...)."""
        return binder.values(self, job, parameters, context, source=key)

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.tr(self.DISPLAY)

    def group(self):
        return self.tr(GROUPS[self.GROUP])

    def groupId(self):  # noqa: N802
        return self.GROUP

    def icon(self):
        return icon(self.GROUP)

    def help_text(self):
        """HELP with the number of numbered sources (``{MAX_SOURCES}``) and the model
        formats (``{MODEL_FORMATS}``, from models/formats.py) filled in."""
        from ..models.formats import help_text
        return self.tr(self.HELP).replace("{MAX_SOURCES}", str(MAX_SOURCES)).replace(
            "{MODEL_FORMATS}", help_text())

    def shortHelpString(self):  # noqa: N802
        # qgis_process prints the help as it is: plain text there, HTML in the dialogs
        if QgsApplication.platform() == "qgis_process":
            return plain_text(self.help_text())
        return flowing_html(self.labelled(self.help_text()))

    def labelled(self, text, ids=False):
        """The help in the words of the dialog: each parameter id (what qgis_process and
        Python take) becomes the label the dialog shows, short of its parenthesis; <pre>
        examples keep the ids. With `ids` (the reference docs), a bold label is followed
        by its id."""
        labels = {d.name(): d.description().split(" (")[0].strip()
                  for d in list(self.parameterDefinitions()) + list(self.outputDefinitions())
                  if d.description()}
        if not labels:
            return text
        one = "(" + "|".join(sorted(map(re.escape, labels), key=len, reverse=True)) + ")"
        word = re.compile(r"(?<![\w.=-])" + one + r"(?![\w=])")
        # a range of numbered ids, SOURCE1..SOURCE4: "Source 1 to 4"
        span = re.compile(r"(?<![\w.=-])" + one + r"\.\." + one + r"(?![\w=])")

        def spanned(m):
            a, b = labels[m.group(1)], labels[m.group(2)]
            na, nb = re.search(r"\d+$", a), re.search(r"\d+$", b)
            if na and nb and a[:na.start()] == b[:nb.start()]:
                return f"{a} to {nb.group()}"
            return f"{a} to {b}"

        if ids:
            bold = re.compile(r"<b>(" + one + r"(?:\.\." + one + r")?)</b>")

            def boldened(m):
                shown = span.sub(spanned, m.group(1)) if m.group(3) else labels[m.group(2)]
                return f"<b>{shown}</b> (<code>{m.group(1)}</code>)"

            text = bold.sub(boldened, text)
        parts = re.split(r"(<pre>.*?</pre>|<code>.*?</code>)", text, flags=re.S)
        return "".join(p if p.startswith(("<pre>", "<code>")) else
                       word.sub(lambda m: labels[m.group(1)], span.sub(spanned, p))
                       for p in parts)

    def createInstance(self):  # noqa: N802
        return type(self)()

    #: the raster inputs that take a class map rather than an image (dialog.py)
    CLASS_MAP_INPUTS: tuple = ()

    def image_inputs(self):
        """Names of the raster parameters that take an image (not a class map)."""
        return [p.name() for p in self.parameterDefinitions() if p.type() == "raster"
                and p.name() not in self.CLASS_MAP_INPUTS]

    def createCustomParametersWidget(self, parent=None):  # noqa: N802
        """QGIS's dialog, with a cancelled run that reads as a cancel (dialog.py)."""
        from .dialog import algorithm_dialog
        return algorithm_dialog(self.create(), parent)

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            self.check_outputs(parameters, context)
            results = self.process(parameters, context, feedback)
        except CancelledError as exc:
            raise QgsProcessingException(
                self.tr("{what}: no output was written").format(what=exc)) from exc
        except RsdlError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except MemoryError as exc:
            raise QgsProcessingException(self.tr(
                "Out of memory: lower TILE_SIZE, BATCH_SIZE or the memory budget")) from exc
        except QgsProcessingException:
            raise
        except Exception as exc:          # a bug: one line for the user, the trace in the log
            import traceback
            if feedback is not None:
                feedback.pushDebugInfo(traceback.format_exc())
            first = (str(exc).strip().splitlines() or [""])[0][:300]
            raise QgsProcessingException(self.tr(
                "Unexpected error in {name} ({kind}: {first}). This is a bug in rsdl_qgis: "
                "please report it with the log (Processing > History)").format(
                    name=self.NAME, kind=type(exc).__name__, first=first)) from exc
        self.style_on_load(results, context)
        return results

    def checkParameterValues(self, parameters, context):  # noqa: N802 (QGIS's name)
        """QGIS's own checks, with a message that says what is wrong with a layer given as a
        path: QGIS says 'not found' also for a file that exists but is not a layer.

        A raster given as a file is checked here with GDAL, not loaded as a QGIS layer:
        loading one computes a histogram for its renderer, which GDAL then writes into
        the user's files (a .aux.xml beside a GeoTIFF, statistics serialised into a VRT).
        No input file changes, ever."""
        ok, message = True, ""
        files = {p.name(): raster_file(parameters.get(p.name()), context)
                 for p in self.parameterDefinitions() if p.type() == "raster"}
        for p in self.parameterDefinitions():     # a raster file passes: RasterInput
            if not p.checkValueIsAcceptable(parameters.get(p.name()), context):
                ok, message = False, f"Incorrect parameter value for {p.name()}"
                break
        if ok:
            for p in self.parameterDefinitions():
                path = files.get(p.name())
                error = (raster_file_error(p.name(), path) if path is not None else
                         path_error(p, parameters.get(p.name())))
                if error:
                    return False, error
            return ok, message
        for p in self.parameterDefinitions():
            key = p.name()
            value = parameters.get(key)
            # the key as a whole word: SOURCE1 is not SOURCE1_PATCH_SIZE's problem
            if p.type() not in ("raster", "source", "vector", "file") \
                    or not isinstance(value, str) \
                    or not value or not re.search(rf"(?<!\w){re.escape(key)}(?!\w)", message):
                continue
            path = value.split("|")[0]
            if p.type() == "file":
                if not os.path.exists(model_folder(path)):
                    return False, f"{key}: '{path}' does not exist"
                return False, (f"{key}: '{path}' is not a file this parameter takes "
                               f"({p.fileFilter() or p.extension()})")
            kind = "raster" if p.type() == "raster" else "vector layer"
            if not os.path.exists(path):
                return False, f"{key}: '{path}' does not exist"
            if os.path.isdir(path):
                return False, f"{key}: '{path}' is a folder; choose a {kind} file"
            example = "GeoTIFF" if kind == "raster" else "GeoPackage, Shapefile"
            return False, (f"{key}: '{path}' exists but is not a {kind} QGIS can read: "
                           f"choose a {kind} file ({example}...)")
        return ok, self.number_message(parameters, message)

    def validateInputCrs(self, parameters, context):  # noqa: N802 (QGIS's name)
        """QGIS's check that the inputs share one CRS (qgis_process and the dialog warn
        when they do not), without loading a raster file as a layer (see
        checkParameterValues): its CRS is read with GDAL."""
        from qgis.core import QgsCoordinateReferenceSystem
        rest, crss = dict(parameters), []
        for p in self.parameterDefinitions():
            path = raster_file(parameters.get(p.name()), context) \
                if p.type() == "raster" else None
            if path is not None:
                rest.pop(p.name(), None)
                crss.append(QgsCoordinateReferenceSystem.fromWkt(raster_wkt(path)))
        if not super().validateInputCrs(rest, context):
            return False
        for p in self.parameterDefinitions():
            if p.type() in ("source", "vector") and rest.get(p.name()) not in (None, ""):
                source = self.parameterAsSource(rest, p.name(), context)
                if source is not None:
                    crss.append(source.sourceCrs())
        valid = [c for c in crss if c.isValid()]
        return all(c == valid[0] for c in valid)

    def number_message(self, parameters, message):
        """QGIS's "Incorrect parameter value for KEY" for a number, with the value given,
        the range it takes and the dialog's label."""
        m = re.search(r"(\w+)\s*$", message.strip())
        d = self.parameterDefinition(m.group(1)) if m else None
        if d is None or d.type() != "number":
            return message
        lo, hi = d.minimum(), d.maximum()
        big = 1e300
        fmt = (lambda v: str(int(v)) if d.dataType() == d.Integer else f"{v:g}")  # noqa: E731
        if lo > -big and hi < big:
            span = f"from {fmt(lo)} to {fmt(hi)}"
        elif lo > -big:
            span = f"of at least {fmt(lo)}"
        elif hi < big:
            span = f"of at most {fmt(hi)}"
        else:
            return message
        kind = "a whole number" if d.dataType() == d.Integer else "a number"
        return (f"{d.name()}: {parameters.get(d.name())!r} is out of range; "
                f"'{d.description()}' takes {kind} {span}")

    def check_outputs(self, parameters, context):
        """Before any work: no output may be an input of the run (after resolving paths
        and links) or another output. Layers of one GeoPackage are distinct."""
        inputs, outputs = {}, {}
        for p in self.parameterDefinitions():
            key = p.name()
            if parameters.get(key) in (None, ""):
                continue
            kind = p.type()
            if p.isDestination():
                if kind in ("rasterDestination", "vectorDestination"):
                    outputs[key] = self.parameterAsOutputLayer(parameters, key, context)
                elif kind == "fileDestination":
                    outputs[key] = self.parameterAsFileOutput(parameters, key, context)
                else:
                    outputs[key] = self.parameterAsString(parameters, key, context)
                fix_destination(parameters, key, outputs[key])
            elif kind == "raster":
                path = raster_file(parameters.get(key), context)
                if path is None:
                    layer = self.parameterAsRasterLayer(parameters, key, context)
                    path = layer.source() if layer is not None else None
                inputs[key] = path
            elif kind in ("source", "vector"):
                layer = self.parameterAsVectorLayer(parameters, key, context)
                inputs[key] = layer.source() if layer is not None else None
            elif kind == "file":
                inputs[key] = model_folder(self.parameterAsFile(parameters, key, context))
        check_paths({k: v for k, v in inputs.items() if v and not v.startswith("memory:")},
                    {k: v for k, v in outputs.items() if v})

    @staticmethod
    def do_not_load(context, paths):
        """Outputs that QGIS should not add to the project when the run ends."""
        layers = context.layersToLoadOnCompletion()
        for p in paths:
            if p:
                layers.pop(p, None)
        context.setLayersToLoadOnCompletion(layers)

    @staticmethod
    def style_on_load(results, context):
        """Outputs that QGIS will load get their file's name as layer name (a user who
        named map_2020.tif finds "map_2020" in the legend, not "Model output"; temporary
        outputs keep QGIS's name), and the style beside them when there is one."""
        from qgis.core import QgsProcessingUtils
        temp = os.path.realpath(QgsProcessingUtils.tempFolder())
        for value in (results or {}).values():
            if not isinstance(value, str) or not context.willLoadLayerOnCompletion(value):
                continue
            details = context.layerToLoadOnCompletionDetails(value)
            path = value.split("|")[0]
            if not os.path.realpath(path).startswith(temp + os.sep):
                details.name = os.path.splitext(os.path.basename(path))[0]
                if hasattr(details, "forceName"):
                    details.forceName = True
            qml = qml_path(value)
            if os.path.isfile(qml):
                details.setPostProcessor(LoadStyle.create(qml))

    def process(self, parameters, context, feedback):
        """Read parameters, call one api function (through run_engine), return its results."""
        raise NotImplementedError

    @staticmethod
    def run_engine(function, *args):
        """Runs an engine call in a thread of Python's own and waits for it.

        QGIS runs algorithms in pooled Qt threads, which Python did not create and whose
        thread state comes and goes with each call from C++. There, TensorFlow's pybind11
        modules crashed QGIS now and then (seen in the desktop in about one session in
        five: a segfault in pybind11's gil_scoped_acquire, deleting the thread state, at
        the end of a training). A Python thread keeps one thread state for its whole life.
        Parameters are still read in QGIS's thread, where the context lives."""
        box = {}

        def target():
            try:
                box["result"] = function(*args)
            except BaseException as exc:      # re-raised in QGIS's thread
                box["error"] = exc

        worker = threading.Thread(target=target, name="rsdl-engine", daemon=True)
        progress = [a for a in args if isinstance(a, FeedbackProgress)]
        worker.start()
        while worker.is_alive():
            worker.join(0.1)
            for p in progress:
                p.flush()
        if "error" in box:
            raise box["error"]
        return box["result"]

    # parameter helpers shared by the algorithms: they only turn parameters into values

    def add_vector(self, types, description="Training polygons or points", optional=False):
        """VECTOR and its class FIELD."""
        self.addParameter(QgsProcessingParameterFeatureSource(
            "VECTOR", self.tr(description), types, optional=optional))
        self.addParameter(QgsProcessingParameterField(
            "FIELD", self.tr("Class field"), parentLayerParameterName="VECTOR",
            optional=optional))

    def vector_path(self, parameters, key, context, feedback):
        """A file OGR can read for a vector parameter (selections and memory layers are
        exported to a temporary GeoPackage by QGIS); None when the parameter is empty."""
        if parameters.get(key) in (None, ""):
            return None
        source = self.parameterAsSource(parameters, key, context)
        if source is None:
            raise QgsProcessingException(self.invalidSourceError(parameters, key))
        path, layer = self.parameterAsCompatibleSourceLayerPathAndLayerName(
            parameters, key, context, VECTOR_FORMATS, "gpkg", feedback)
        return f"{path}|layername={layer}" if layer else path

    def raster_path(self, parameters, key, context):
        """The GDAL path of a raster parameter; None when the parameter is empty."""
        if parameters.get(key) in (None, ""):
            return None
        path = raster_file(parameters.get(key), context)
        if path is not None:
            return path
        layer = self.parameterAsRasterLayer(parameters, key, context)
        if layer is None or not layer.isValid():
            raise QgsProcessingException(self.invalidRasterError(parameters, key))
        if layer.providerType() != "gdal":
            raise QgsProcessingException(self.tr(
                "{key}: '{layer}' is a {provider} layer; save it as a GeoTIFF first (Export > "
                "Save As...)").format(key=key, layer=layer.name(), provider=layer.providerType()))
        return layer.source()

    def add_sources(self, fields=(), label=None, first=1, rasters_from=1, required=1,
                    hidden=False):
        """The numbered source blocks, SOURCEn and its per-source settings, for n = first
        .. MAX_SOURCES: the raster (from n = rasters_from; n <= required is mandatory) and
        `fields` among RFIELD, NAME, BANDS, NODATA and PATCH_SIZE, as ServeSource and
        PatchSource declare them. `hidden`: all advanced (sources 2..4 always are)."""
        def add(param):
            # sources 2..4 are for multi-source models: under Advanced, so that the
            # dialog of the common one-image case fits a laptop screen
            self.addParameter(advanced(param) if hidden or i > 1 else param)
        sources = declaration(ServeJob, "sources")          # SOURCEn: engine/jobs.py
        for i in range(first, MAX_SOURCES + 1):
            key = declare.numbered(sources.name, i - 1)
            what = self.tr(label or sources.label).format(i=i)
            if i >= rasters_from:
                add(RasterInput(
                    key, what + (self.tr(" (reference grid)") if i == 1 and "RFIELD" in fields
                                 else ""), optional=i > required))
            for f in fields:                # declared once: engine/jobs.py
                spec = binder.numbered(SOURCE_SETTINGS[f], key, what,
                                       optional=i > required if f == "PATCH_SIZE" else None)
                add(binder.definition(spec, self.tr))

    # parameters and results shared by several algorithms: defined once, here

    def add_metrics(self):
        """The OA, KAPPA and F1_MEAN results."""
        for key in METRICS:
            self.addOutput(QgsProcessingOutputNumber(key, key))

    def add_distribution(self):
        """RESUME and SCHEDULER (advanced): resumable chunked runs, on a Dask cluster."""
        self.add_declared(declare.resume(), declare.chunk_scheduler())

    def add_declared(self, *fields):
        """Parameters declared outside a job (engine/declare.py's shared ones)."""
        for f in fields:
            self.addParameter(binder.definition(f.metadata["param"], self.tr))

    def distribution(self, parameters, context):
        """(resume, scheduler) as the API takes them."""
        return (self.parameterAsBool(parameters, "RESUME", context),
                self.parameterAsString(parameters, "SCHEDULER", context).strip())

    def choice(self, parameters, key, context=None):
        """The name of the choice (a Choice parameter) given as `key`; an expression (a
        model's, a batch run's) is evaluated first."""
        param, value = self.parameterDefinition(key), parameters.get(key)
        if isinstance(value, QgsProperty) and \
                value.propertyType() != QgsProperty.StaticProperty:
            text = self.parameterAsString(parameters, key, context)
            parameters = {key: text}
        return param.value(parameters, context)

    def bands(self, parameters, key, context):
        """A band list parameter (SOURCEn_BANDS) as 1-based band numbers, None if empty."""
        from ..engine.raster import parse_bands
        return parse_bands(self.parameterAsString(parameters, key, context), key)

    def numbered(self, parameters, template, first=1, last=MAX_SOURCES, required=True):
        """Indices i of the given parameters template.format(i) (e.g. 'SOURCE{}'), which
        must run from `first` without gaps."""
        given = [i for i in range(first, last + 1)
                 if parameters.get(template.format(i)) not in (None, "")]
        if given != list(range(first, first + len(given))) or (required and not given):
            names = ", ".join(template.format(i) for i in given) or "none"
            raise QgsProcessingException(
                (self.tr("{first} is required and ").format(first=template.format(first))
                 if required else "")
                + self.tr("{first}..{last} are numbered from {n} without gaps (given: "
                          "{names})").format(first=template.format(first),
                                             last=template.format(last), n=first, names=names))
        return given
