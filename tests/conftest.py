import os
import sys

import numpy as np
import pytest
from osgeo import gdal, osr

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
#: OTBTF's regression models and Spot-6/7 subsets, shipped with the tests (Apache-2.0)
OTBTF = os.path.join(ROOT, "tests", "data", "otbtf")
#: the Landsat 8 scene the demo ships: 1000 x 1000 pixels, red, green, blue, 30 m
LANDSAT = os.path.join(ROOT, "sample-data", "landsat", "scene.tif")
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
gdal.UseExceptions()

try:
    from hypothesis import HealthCheck, settings
    # on a busy 2-core machine (CI, TensorFlow threads still winding down) drawing even
    # small examples can take seconds: time is not what these properties test
    settings.register_profile("rsdl", deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile("rsdl")
except ImportError:      # the desktop session imports this file without the test deps
    pass


@pytest.fixture(scope="session")
def otbtf():
    return OTBTF


@pytest.fixture(scope="session")
def dask_cluster():
    """A Dask LocalCluster of 2 single-thread worker processes (localhost only), as a
    user's `dask scheduler` and `dask worker` would be; yields its address. The workers
    inherit PYTHONPATH (the plugin and its dependency folder), nothing else."""
    import logging

    import distributed
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                       dashboard_address=None, host="127.0.0.1",
                                       silence_logs=logging.ERROR)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def write_raster(path, array, gt=(1000.0, 2.0, 0.0, 5000.0, 0.0, -2.0), epsg=32631, nodata=None,
                 wkt=None):
    """Write a (rows, cols, bands) array as a GeoTIFF (CRS: `wkt`, else `epsg`)."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    types = {"uint8": gdal.GDT_Byte, "int16": gdal.GDT_Int16, "uint16": gdal.GDT_UInt16,
             "float32": gdal.GDT_Float32, "int32": gdal.GDT_Int32, "float64": gdal.GDT_Float64}
    ds = gdal.GetDriverByName("GTiff").Create(str(path), array.shape[1], array.shape[0],
                                               array.shape[2], types[array.dtype.name])
    ds.SetGeoTransform(gt)
    if wkt is None:
        srs = osr.SpatialReference()
        srs.ImportFromEPSG(epsg)
        wkt = srs.ExportToWkt()
    ds.SetProjection(wkt)
    for b in range(array.shape[2]):
        band = ds.GetRasterBand(b + 1)
        band.WriteArray(array[:, :, b])
        if nodata is not None:
            band.SetNoDataValue(nodata)
    ds = None
    return str(path)


def write_on_grid_of(path, array, like, nodata=None):
    """Write a 2-D uint8 array (a mask or a label raster), or a (rows, cols, bands) array
    of any type, as a GeoTIFF on the grid (geotransform and CRS) of the raster `like`."""
    src = gdal.Open(str(like))
    return write_raster(path, array if array.ndim == 3 else array.astype(np.uint8),
                        gt=src.GetGeoTransform(), wkt=src.GetProjection(), nodata=nodata)


def read_raster(path):
    ds = gdal.Open(str(path))
    a = ds.ReadAsArray()
    if a.ndim == 2:
        a = a[None]
    return np.moveaxis(a, 0, -1), ds.GetGeoTransform(), ds


_STATUS = []


def pytest_sessionfinish(session, exitstatus):
    _STATUS.append(int(exitstatus))


def pytest_unconfigure(config):
    """Leave at once when a QgsApplication ran in this process.

    Tearing down QGIS (exitQgis, or static destructors at exit) after TensorFlow has run
    in the same process crashes in C++ destructors; results are already reported here,
    so skip the teardown and keep pytest's exit status. qgis_process itself exits
    cleanly (tests/cli).
    """
    qgis_conftest = sys.modules.get("tests.qgis.conftest")   # never import it here: that
    started = qgis_conftest is not None and qgis_conftest.STARTED   # would start QGIS
    if started and _STATUS:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(_STATUS[0])


def tensorflow_available():
    return _tensorflow_missing() is None


def _tensorflow_missing():
    """Why TensorFlow cannot run here (None where it can): Python 3.14 has no build yet,
    and the 'apply models only' install has none."""
    import importlib.util
    if importlib.util.find_spec("tensorflow") is not None:
        return None
    from rsdl_qgis import deps
    if not deps._in(sys.version_info, deps.TENSORFLOW_PYTHONS):
        return deps.tensorflow_unavailable_message()
    return "TensorFlow is not installed (the 'apply models only' dependency set)"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "tensorflow: needs TensorFlow (an OTBTF SavedModel, Keras, training, "
        "export); skipped, with the reason, where this Python has none (QGIS 3.44, Python "
        "3.14) or the 'apply' set is installed. Every test without it runs there too.")


def pytest_collection_modifyitems(config, items):
    why = _tensorflow_missing()
    if why is None:
        return
    skip = pytest.mark.skip(reason=why)
    for item in items:
        if "tensorflow" in item.keywords:
            item.add_marker(skip)
