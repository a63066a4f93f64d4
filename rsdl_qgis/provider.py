"""The Processing provider ``rsdl``."""
import glob
import os
import re

from qgis.core import (
    QgsMessageLog,
    QgsProcessingAlgorithm,
    QgsProcessingModelAlgorithm,
    QgsProcessingProvider,
)

from . import __version__
from .algorithms import ALGORITHMS
from .algorithms.base import icon


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
            self.addParameter(d, False)


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
