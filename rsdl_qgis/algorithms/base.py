"""What every rsdl algorithm shares: groups, icons, help, errors, progress."""
import os

from qgis.PyQt.QtGui import QIcon
from qgis.core import (QgsProcessingAlgorithm, QgsProcessingException,
                       QgsProcessingParameterDefinition)

from ..engine.serve import Progress
from ..errors import CancelledError, RsdlError

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


class FeedbackProgress(Progress):
    """Engine progress callbacks on top of a QgsProcessingFeedback."""

    def __init__(self, feedback):
        self.feedback = feedback

    def set(self, fraction):
        if self.feedback is not None:
            self.feedback.setProgress(100.0 * fraction)

    def cancelled(self):
        return self.feedback is not None and self.feedback.isCanceled()

    def info(self, message):
        if self.feedback is not None:
            self.feedback.pushInfo(message)


def advanced(param):
    param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


class RsdlAlgorithm(QgsProcessingAlgorithm):
    """Base class: subclasses set NAME, DISPLAY, GROUP, HELP and implement ``process``."""
    NAME = ""
    DISPLAY = ""
    GROUP = ""
    HELP = ""

    def name(self):
        return self.NAME

    def displayName(self):  # noqa: N802
        return self.DISPLAY

    def group(self):
        return GROUPS[self.GROUP]

    def groupId(self):  # noqa: N802
        return self.GROUP

    def icon(self):
        return icon(self.GROUP)

    def shortHelpString(self):  # noqa: N802
        return self.HELP

    def createInstance(self):  # noqa: N802
        return type(self)()

    def processAlgorithm(self, parameters, context, feedback):  # noqa: N802
        try:
            return self.process(parameters, context, feedback)
        except CancelledError as exc:
            raise QgsProcessingException(f"{exc}: no output was written") from exc
        except RsdlError as exc:
            raise QgsProcessingException(str(exc)) from exc
        except MemoryError as exc:
            raise QgsProcessingException(
                "Out of memory: lower TILE_SIZE, BATCH_SIZE or the memory budget") from exc

    def process(self, parameters, context, feedback):
        """Read parameters, call one api function, return its results."""
        raise NotImplementedError
