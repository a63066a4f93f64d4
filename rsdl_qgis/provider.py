"""The Processing provider ``rsdl``."""
from qgis.core import QgsProcessingProvider

from . import __version__
from .algorithms import ALGORITHMS
from .algorithms.base import icon


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

    def supportedOutputRasterLayerExtensions(self):  # noqa: N802
        return ["tif"]
