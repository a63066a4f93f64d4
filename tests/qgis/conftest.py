import os
import sys
import tempfile

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QGIS_CUSTOM_CONFIG_PATH", tempfile.mkdtemp(prefix="rsdl-qgis-profile-"))


STARTED = []


@pytest.fixture(scope="session")
def qgis_app():
    from qgis.core import QgsApplication
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    from rsdl_qgis.provider import RsdlProvider
    provider = RsdlProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    STARTED.append(app)
    yield app
    QgsApplication.processingRegistry().removeProvider(provider)
