"""QGIS entry point: registers the Processing provider (also under qgis_process)."""
from qgis.core import QgsApplication

from .provider import RsdlProvider


class RsdlPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None

    def initProcessing(self):  # noqa: N802 (QGIS's name), called by qgis_process too
        if self.provider is None:
            self.provider = RsdlProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)

    def initGui(self):  # noqa: N802
        self.initProcessing()

    def unload(self):
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
