"""Neighbourhood statistics of raw-pixel features (ml/features.py ContextModel): equal to
a direct numpy oracle, the same whatever the blocks, nodata left out, and a map that
covers the whole image and tells texture apart where pixel values alone cannot."""
import json

import numpy as np
import pytest
from osgeo import gdal, osr

from rsdl_qgis.errors import ParameterError
from rsdl_qgis.ml.features import ContextModel
from rsdl_qgis.ml.pipeline import (
    ClassifyJob,
    TrainClassifierJob,
    classify,
    parse_windows,
    train_classifier,
)


def oracle(img, windows, nodata=None):
    """Per pixel, its values and the mean and standard deviation of each window over the
    valid pixels of a reflected copy of the image (what the engine reads past edges)."""
    h, w, b = img.shape
    m = max(windows) // 2
    pad = np.pad(img.astype(np.float64), ((m, m), (m, m), (0, 0)), mode="symmetric")
    valid = np.ones(pad.shape[:2], bool) if nodata is None else ~np.all(pad == nodata, -1)
    out = np.zeros((h, w, b * (1 + 2 * len(windows))))
    for y in range(h):
        for x in range(w):
            parts = [img[y, x].astype(np.float64)]
            for s in windows:
                r = s // 2
                win = pad[y + m - r:y + m + r + 1, x + m - r:x + m + r + 1]
                ok = valid[y + m - r:y + m + r + 1, x + m - r:x + m + r + 1]
                v = win[ok] if ok.any() else np.zeros((1, b))
                parts += [v.mean(0), v.std(0)]
            out[y, x] = np.concatenate(parts)
    return out


def test_statistics_equal_the_oracle_with_nodata():
    rng = np.random.default_rng(3)
    img = rng.integers(1, 500, (9, 11, 2)).astype(np.float32)
    img[2:4, 5:8] = 0                              # nodata, every band
    model = ContextModel(2, [3, 5], nodata=0)
    m = 2
    pad = np.pad(img, ((m, m), (m, m), (0, 0)), mode="symmetric")
    got = model.run({"x": pad[None]}, ["x"])[0][0]
    want = oracle(img, [3, 5], nodata=0)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-3)
    assert got.shape == (9, 11, 2 * 5)


def test_a_pixel_gets_the_same_bytes_whatever_the_block():
    """A map does not depend on how it is cut: one block or 1 x 1 tiles (the samples')."""
    rng = np.random.default_rng(4)
    img = rng.normal(8000, 400, (20, 17, 3)).astype(np.float32)
    model = ContextModel(3, [3, 7, 15])
    m = 7
    pad = np.pad(img, ((m, m), (m, m), (0, 0)), mode="symmetric")
    whole = model.run({"x": pad[None]}, ["x"])[0][0]
    for y, x in [(0, 0), (5, 9), (19, 16)]:
        one = model.run({"x": pad[None, y:y + 2 * m + 1, x:x + 2 * m + 1]}, ["x"])[0][0, 0, 0]
        assert one.tobytes() == whole[y, x].tobytes()


@pytest.mark.parametrize("text,want", [("3,7,15", [3, 7, 15]), ("15 3", [3, 15]), ("", []),
                                       (" 5 , 5 ", [5])])
def test_windows_parse(text, want):
    assert parse_windows(text) == want


@pytest.mark.parametrize("text", ["4", "1", "3,x", "65", "3,5,7,9,11,13,15,17,19"])
def test_bad_windows_name_the_parameter(text):
    with pytest.raises(ParameterError) as e:
        parse_windows(text)
    assert e.value.param == "NEIGHBOURHOOD" and "3,7,15" in str(e.value)


def texture_scene(path, size=96):
    """Left half: rough (values 50 or 150 at random), right half: smooth (100 +- 5). Pixel
    values alone overlap; the windows' standard deviation does not."""
    rng = np.random.default_rng(5)
    img = np.where(rng.random((size, size)) < 0.5, 50, 150).astype(np.float32)
    img[:, size // 2:] = rng.normal(100, 5, (size, size // 2))
    img[:, size // 2:][rng.random((size, size // 2)) < 0.4] = 150   # a smooth field's
    #                                                                 bright speckles
    ds = gdal.GetDriverByName("GTiff").Create(path, size, size, 1, gdal.GDT_Float32)
    ds.SetGeoTransform((0, 10, 0, 0, 0, -10))
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    ds.SetProjection(srs.ExportToWkt())
    ds.GetRasterBand(1).WriteArray(img)
    ds = None
    return size


def polygons(path, size):
    from osgeo import ogr
    drv = ogr.GetDriverByName("GPKG")
    src = drv.CreateDataSource(path)
    srs = osr.SpatialReference()
    srs.ImportFromEPSG(32631)
    lyr = src.CreateLayer("p", srs, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    half = size * 10 / 2
    for name, x0 in (("rough", 0), ("smooth", half)):
        for y0 in (0, -half):
            f = ogr.Feature(lyr.GetLayerDefn())
            f.SetField("name", name)
            g = ogr.CreateGeometryFromWkt(
                f"POLYGON(({x0 + 80} {y0 - 80},{x0 + half - 80} {y0 - 80},"
                f"{x0 + half - 80} {y0 - half + 80},{x0 + 80} {y0 - half + 80},"
                f"{x0 + 80} {y0 - 80}))")
            f.SetGeometry(g)
            lyr.CreateFeature(f)
    src = None


def test_texture_classes_need_the_neighbourhood(tmp_path):
    image, vector = str(tmp_path / "t.tif"), str(tmp_path / "p.gpkg")
    size = texture_scene(image)
    polygons(vector, size)
    truth = np.zeros((size, size), np.int64)
    truth[:, size // 2:] = 1
    got = {}
    for key, windows in (("pixel", []), ("neighbourhood", [3, 7])):
        rsdlc, out = str(tmp_path / f"{key}.rsdlc"), str(tmp_path / f"{key}.tif")
        train_classifier(TrainClassifierJob(image, vector, "name", rsdlc, samples=300,
                                            valid_fraction=0, neighbourhood=windows))
        classify(ClassifyJob(image, rsdlc, out))
        ds = gdal.Open(out)
        assert (ds.RasterXSize, ds.RasterYSize) == (size, size)     # the whole grid
        names = json.loads(ds.GetMetadataItem("RSDL_CLASSES"))
        codes = ds.ReadAsArray()
        smooth = [int(c) for c, n in names.items() if n == "smooth"][0]
        got[key] = np.mean((codes == smooth) == (truth == 1))
    assert got["pixel"] < 0.85, got            # a bright speckle looks rough, pixel alone
    assert got["neighbourhood"] > 0.95, got


@pytest.mark.parametrize("context,rfields", [([4001], [4001]), ([3, 8], [8]), (["x"], [3]),
                                             ([3, 7], [1])])
def test_a_forged_classifier_file_cannot_ask_for_huge_windows(tmp_path, context, rfields):
    """The windows come from the file's manifest, which anyone can edit: only what Train a
    classifier writes is read, and the rest is one line naming CLASSIFIER, no output."""
    import zipfile

    from rsdl_qgis.errors import ModelError
    image, vector = str(tmp_path / "t.tif"), str(tmp_path / "p.gpkg")
    size = texture_scene(image, 64)
    polygons(vector, size)
    good = tmp_path / "good.rsdlc"
    train_classifier(TrainClassifierJob(image, vector, "name", str(good), samples=50,
                                        valid_fraction=0, neighbourhood=[3, 7]))
    bad = tmp_path / "forged.rsdlc"
    with zipfile.ZipFile(good) as z, zipfile.ZipFile(bad, "w") as out:
        for name in z.namelist():
            data = z.read(name)
            if name == "manifest.json":
                manifest = json.loads(data)
                manifest["recipe"].update(context=context, rfields=rfields)
                data = json.dumps(manifest).encode()
            out.writestr(name, data)
    with pytest.raises(ModelError) as e:
        classify(ClassifyJob(image, str(bad), str(tmp_path / "map.tif")))
    assert e.value.param == "CLASSIFIER" and "neighbourhood windows" in str(e.value)
    assert not (tmp_path / "map.tif").exists()
