"""The Processing provider ``rsdl``."""
import glob
import os

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

    def createInstance(self):  # noqa: N802 (QGIS's name): the copy QGIS runs
        copy = ThreadedModel()
        copy.loadVariant(self.toVariant())
        copy.setSourceFilePath(self.sourceFilePath())
        return copy


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
                self.addAlgorithm(model)
            else:
                QgsMessageLog.logMessage(f"cannot read the model {path}", "rsdl_qgis")

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]
