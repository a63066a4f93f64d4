"""The Processing provider ``rsdl``."""
import glob
import os
import re

from qgis.core import (
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingFeedback,
    QgsProcessingModelAlgorithm,
    QgsProcessingProvider,
)
from qgis.PyQt.QtCore import Qt

from .algorithms import ALGORITHMS
from .algorithms.base import icon
from .version import __version__


class ThreadedModel(QgsProcessingModelAlgorithm):
    """A shipped modeler model that runs as a background task from its dialog.

    QGIS 3.22 runs every model in the GUI thread (QgsProcessingModelAlgorithm::flags
    adds FlagNoThreading without looking at the children), so a chain of trainings and
    servings froze QGIS for its whole run. The shipped models hold only rsdl's own
    algorithms, which all run in task threads."""

    def flags(self):
        return super().flags() & ~QgsProcessingAlgorithm.FlagNoThreading

    def name(self):
        """A stable id from the file's name (land_cover_chain.model3: landcoverchain); the
        model's own name is the readable one the toolbox and the modeler show."""
        stem = os.path.splitext(os.path.basename(self.sourceFilePath() or ""))[0]
        return re.sub(r"[^a-z0-9]", "", stem.lower()) or super().name()

    def displayName(self):  # noqa: N802
        return super().name()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        """QGIS's run of the steps, with the progress bar shared by the steps' usual
        length (STEP_WEIGHTS) rather than equally: training is most of a chain's time and
        moved a sixth of the bar."""
        if feedback is None:
            return super().processAlgorithm(parameters, context, feedback)
        weighted = WeightedFeedback(feedback, [STEP_WEIGHTS.get(
            self.childAlgorithm(cid).algorithmId(), 1.0) for cid in self.execution_order()])
        return super().processAlgorithm(parameters, context, weighted)

    def execution_order(self):
        """The children in an order QGIS may run them in: each after what it depends on.
        QGIS picks among the ready ones in its own order; in the shipped chains the only
        choice is between steps of equal weight, so the bar is the same either way."""
        children = sorted(self.childAlgorithms())
        needs = {c: set(self.dependsOnChildAlgorithms(c)) for c in children}
        done: list = []
        while len(done) < len(children):
            before = len(done)
            for c in children:
                if c not in done and needs[c] <= set(done):
                    done.append(c)
            if len(done) == before:          # a cycle: QGIS refuses such a model anyway
                break
        return done

    def createInstance(self):  # noqa: N802 (QGIS's name): the copy QGIS runs
        copy = ThreadedModel()
        copy.loadVariant(self.toVariant())
        copy.adopt(self.sourceFilePath())
        return copy

    def adopt(self, path):
        """After loading: the file it came from (its id) and its outputs in step order."""
        self.setSourceFilePath(path)
        self.order_outputs()

    def order_outputs(self):
        """The steps' outputs in the order of the steps, left to right. The model's file
        orders its inputs (parameterOrder); QGIS 3.22 lists the outputs by name."""
        defs = [d.clone() for d in self.destinationParameterDefinitions()]
        where = {f"{cid}:{name}": (child.position().x(), child.position().y())
                 for cid, child in self.childAlgorithms().items()
                 for name in child.modelOutputs()}
        for d in defs:
            self.removeParameter(d.name())
        for d in sorted(defs, key=lambda d: where.get(d.name(), (float("inf"), 0.0))):
            self.addParameter(d, True)      # with its output: results, HTML reports


#: a step's share of a chain's time, by algorithm (measured on the demo: training about
#: 20 times sample selection, serving 3 times)
STEP_WEIGHTS = {"rsdl:trainmodel": 20.0, "rsdl:modelserve": 3.0, "rsdl:classify": 3.0,
                "rsdl:trainclassifier": 3.0}


class WeightedFeedback(QgsProcessingFeedback):
    """The model's feedback, with its progress rescaled from equal steps to weighted ones;
    messages and the cancel pass through."""

    def __init__(self, feedback, weights):
        super().__init__(False)
        self.outer, self.weights = feedback, list(weights) or [1.0]
        self.total = sum(self.weights)
        # direct: the run's thread waits without an event loop, and a cancel comes from
        # the dialog's thread
        self.progressChanged.connect(self._progress, Qt.ConnectionType.DirectConnection)
        feedback.canceled.connect(self.cancel, Qt.ConnectionType.DirectConnection)
        if feedback.isCanceled():
            self.cancel()

    def _progress(self, value):
        n = len(self.weights)
        step = min(n - 1, int(value * n / 100.0))
        within = value * n / 100.0 - step
        done = sum(self.weights[:step]) + self.weights[step] * min(1.0, max(0.0, within))
        self.outer.setProgress(100.0 * done / self.total)

    def setProgressText(self, text):  # noqa: N802
        self.outer.setProgressText(text)

    def pushInfo(self, info):  # noqa: N802
        self.outer.pushInfo(info)

    def pushWarning(self, warning):  # noqa: N802
        self.outer.pushWarning(warning)

    def pushCommandInfo(self, info):  # noqa: N802
        self.outer.pushCommandInfo(info)

    def pushDebugInfo(self, info):  # noqa: N802
        self.outer.pushDebugInfo(info)

    def pushConsoleInfo(self, info):  # noqa: N802
        self.outer.pushConsoleInfo(info)

    def reportError(self, error, fatalError=False):  # noqa: N802, N803
        self.outer.reportError(error, fatalError)

    if hasattr(QgsProcessingFeedback, "pushFormattedMessage"):          # QGIS 3.36 and later
        def pushFormattedMessage(self, html, text):  # noqa: N802
            self.outer.pushFormattedMessage(html, text)


class RsdlProvider(QgsProcessingProvider):
    def id(self):
        return "rsdl"

    def name(self):
        return "Remote sensing deep learning"

    def longName(self):  # noqa: N802
        return f"Remote sensing deep learning (rsdl_qgis {__version__})"

    def icon(self):
        return icon("rsdl")

    def versionInfo(self):  # noqa: N802
        return __version__

    def loadAlgorithms(self):  # noqa: N802
        for cls in ALGORITHMS:
            self.addAlgorithm(cls())
        # graphical modeler models shipped with the plugin (e.g. rsdl:landcoverchain)
        folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "processing_models")
        for path in sorted(glob.glob(os.path.join(folder, "*.model3"))):
            model = ThreadedModel()
            if model.fromFile(path):
                model.adopt(path)
                self.addAlgorithm(model)
            else:
                QgsMessageLog.logMessage(f"cannot read the model {path}", "rsdl_qgis")

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]
