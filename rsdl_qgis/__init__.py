"""rsdl_qgis: deep learning for remote sensing images in QGIS Processing.

Importing this package has no side effect and needs no qgis: the engine's tests import
it as a plain library. QGIS calls :func:`classFactory`, which first puts the plugin's
private dependency folder on ``sys.path``.
"""
from .version import __version__  # noqa: F401  (the package's version)


def classFactory(iface):  # noqa: N802 (QGIS's name)
    from . import deps
    deps.activate()
    from .plugin import RsdlPlugin
    return RsdlPlugin(iface)
