"""A QGIS application for tests that run outside QGIS: the session's (tests/qgis), and
one with widgets for the dialogs (tests/dialogs.py, a process of its own)."""
import sys


def start_qgis(gui=False):
    """QGIS started as qgis_process starts it, with Processing's own algorithms."""
    from qgis.core import QgsApplication
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], gui)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    return app
