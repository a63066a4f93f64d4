import os
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="rsdl-qgis-profile-"))

STARTED = []


def _start_qgis():
    """Start QGIS when this folder is collected, before any test loads TensorFlow.

    That is the order of QGIS and qgis_process (QGIS first, plugins later); creating a
    QgsApplication after TensorFlow is loaded crashes in initQgis.
    """
    from tests.qgisapp import start_qgis
    app = start_qgis()
    STARTED.append(app)
    return app


_APP = _start_qgis()


@pytest.fixture(scope="session")
def qgis_app():
    from qgis.core import QgsApplication

    from rsdl_qgis.provider import RsdlProvider
    provider = RsdlProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    provider.refreshAlgorithms()          # as the plugin does: shipped models resolve now
    yield _APP
    QgsApplication.processingRegistry().removeProvider(provider)
