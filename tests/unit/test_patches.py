"""Patch extraction against an independent oracle: GDAL reads at the points."""
import os

import numpy as np
import pytest
from osgeo import gdal, ogr

from rsdl_qgis.engine.patches import PatchesJob, PatchSource, extract_patches
from rsdl_qgis.engine.selection import SelectionJob, sample_selection
from rsdl_qgis.errors import GridError
from tests.conftest import LANDSAT, OTBTF, read_raster, write_on_grid_of
from tests.polygons import rotated_polygons


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Landsat at 30 m with a diagonal footprint edge (nodata 0 beyond it, as at the edge
    of a Landsat scene) and a 90 m version of it."""
    d = tmp_path_factory.mktemp("patches")
    fine = str(d / "fine.tif")
    src = gdal.Open(LANDSAT)
    a = src.ReadAsArray()
    rows, cols = np.indices(a.shape[1:])
    a[:, rows + cols < 400] = 0
    write_on_grid_of(fine, np.moveaxis(a, 0, -1), LANDSAT, nodata=0)
    src = None
    coarse = str(d / "coarse.tif")
    gdal.Warp(coarse, fine, xRes=90, yRes=90, resampleAlg="average", srcNodata=0, dstNodata=0)
    polys = rotated_polygons(LANDSAT, d / "polys.gpkg", 400, seed=3, margin_px=0)
    pts = str(d / "points.gpkg")
    sample_selection(SelectionJob(LANDSAT, pts, vector=polys, field="name", strategy="constant",
                                  samples=150, sampler="random", seed=9, valid_fraction=0))
    return {"fine": fine, "coarse": coarse, "points": pts, "dir": d}


def oracle(points, field, sources, lookup):
    """Each point on its own: the patch of every source, or None when it is rejected."""
    ds = ogr.Open(points)
    out = []
    for f in ds.GetLayer(0):
        x, y = f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()
        patches = []
        for path, size in sources:
            r = gdal.Open(path)
            col, row = gdal.ApplyGeoTransform(gdal.InvGeoTransform(r.GetGeoTransform()), x, y)
            x0, y0 = int(np.floor(col)) - size // 2, int(np.floor(row)) - size // 2
            if x0 < 0 or y0 < 0 or x0 + size > r.RasterXSize or y0 + size > r.RasterYSize:
                patches = None
                break
            a = r.ReadAsArray(x0, y0, size, size).reshape(r.RasterCount, size, size)
            nd = r.GetRasterBand(1).GetNoDataValue()
            if nd is not None and (a == nd).any():
                patches = None
                break
            patches.append(np.moveaxis(a, 0, -1))
        if patches is not None:
            out.append(((x, y), patches, lookup[f.GetField(field)]))
    return out


def kept_points(path):
    """patch index -> (x, y) from OUTPUT_POINTS."""
    ds = ogr.Open(str(path))
    return {f.GetField("patch"): (f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
            for f in ds.GetLayer(0)}


def two_sources(data, d):
    """Patches of the 30 m image (12 px) and of the 90 m one (5 px), with labels and kept
    points in `d`; and what GDAL reads at each point, in the points' order."""
    res = extract_patches(PatchesJob(
        data["points"], [PatchSource(data["fine"], 12, str(d / "p1.tif")),
                         PatchSource(data["coarse"], 5, str(d / "p2.tif"))],
        field="name", output_labels=str(d / "labels.tif"), output_points=str(d / "kept.gpkg")))
    lookup = {"crop": 1, "developed": 2, "tree": 3, "water": 4}
    return res, oracle(data["points"], "name", [(data["fine"], 12), (data["coarse"], 5)],
                       lookup)


def test_two_resolutions_with_nodata_equal_gdal_reads(data, tmp_path):
    d = tmp_path
    res, expect = two_sources(data, d)
    n = len(expect)
    assert res["KEPT"] == n and res["REJECTED"] == 600 - n
    assert 0 < res["REJECTED"] < 300      # the footprint's nodata and edges reject some
    p1, gt1, ds1 = read_raster(d / "p1.tif")
    p2, gt2, _ = read_raster(d / "p2.tif")
    labels, _, _ = read_raster(d / "labels.tif")
    assert p1.shape == (12 * n, 12, 3) and p1.dtype == np.uint16
    assert p2.shape == (5 * n, 5, 3)
    assert labels.shape == (n, 1, 1)
    assert gt1[1] == 30 and gt1[5] == -30 and gt2[1] == 90
    where = kept_points(d / "kept.gpkg")
    assert sorted(where) == list(range(n))
    by_xy = {xy: (patches, code) for xy, patches, code in expect}
    for i in range(n):
        patches, code = by_xy[where[i]]
        np.testing.assert_array_equal(p1[12 * i:12 * (i + 1)], patches[0])
        np.testing.assert_array_equal(p2[5 * i:5 * (i + 1)], patches[1])
        assert labels[i, 0, 0] == code
    assert (d / "kept.classes.csv").exists() and (d / "labels.classes.csv").exists()


def test_otbtf_subsets_even_and_odd_sizes(tmp_path):
    """Spot pansharpened (1.5 m, nodata 0) and multispectral (6 m) around OTBTF's points."""
    pts = os.path.join(OTBTF, "vector_all.geojson")
    pxs, xs = os.path.join(OTBTF, "pxs_subset.tif"), os.path.join(OTBTF, "xs_subset.tif")
    res = extract_patches(PatchesJob(pts, [PatchSource(pxs, 16, str(tmp_path / "a.tif")),
                                           PatchSource(xs, 5, str(tmp_path / "b.tif"))],
                                     output_points=str(tmp_path / "k.gpkg")))
    expect = oracle_unlabelled(pts, [(pxs, 16), (xs, 5)])
    assert res["KEPT"] == len(expect) == 9
    a, _, _ = read_raster(tmp_path / "a.tif")
    b, _, _ = read_raster(tmp_path / "b.tif")
    where = kept_points(tmp_path / "k.gpkg")
    for i in range(9):
        patches = expect[where[i]]
        np.testing.assert_array_equal(a[16 * i:16 * (i + 1)], patches[0])
        np.testing.assert_array_equal(b[5 * i:5 * (i + 1)], patches[1])


def oracle_unlabelled(points, sources):
    ds = ogr.Open(points)
    out = {}
    for f in ds.GetLayer(0):
        x, y = f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()
        ps = out[(x, y)] = []
        for path, size in sources:
            r = gdal.Open(path)
            gt = r.GetGeoTransform()
            col, row = int((x - gt[0]) // gt[1]), int((y - gt[3]) // gt[5])
            a = r.ReadAsArray(col - size // 2, row - size // 2, size, size)
            ps.append(np.moveaxis(a, 0, -1))
    return out


def test_dense_label_patches(data, tmp_path):
    src = gdal.Open(LANDSAT)             # kept open while its band is read
    labels = (src.GetRasterBand(1).ReadAsArray() // 1000).astype(np.uint8)
    lab = write_on_grid_of(tmp_path / "lab.tif", labels, LANDSAT)
    res = extract_patches(PatchesJob(
        data["points"], [PatchSource(data["fine"], 8, str(tmp_path / "img.tif"))],
        label_raster=lab, label_patch_size=8, output_label_patches=str(tmp_path / "lp.tif")))
    img, _, _ = read_raster(tmp_path / "img.tif")
    lp, _, _ = read_raster(tmp_path / "lp.tif")
    assert lp.shape == (8 * res["KEPT"], 8, 1)
    np.testing.assert_array_equal(lp[..., 0], img[..., 0] // 1000)


def test_no_sample_kept_is_an_error_and_leaves_nothing(data, tmp_path):
    with pytest.raises(GridError) as e:
        extract_patches(PatchesJob(data["points"],
                                   [PatchSource(data["coarse"], 700, str(tmp_path / "p.tif"))]))
    assert e.value.param == "SOURCE1_PATCH_SIZE"
    with pytest.raises(GridError) as e:
        extract_patches(PatchesJob(
            data["points"], [PatchSource(data["fine"], 1000, str(tmp_path / "p.tif"))],
            field="name", output_labels=str(tmp_path / "l.tif"),
            output_points=str(tmp_path / "k.gpkg")))
    assert "no sample was kept" in str(e.value) and "leave SOURCE1" in str(e.value)
    assert not list(tmp_path.iterdir())


def test_polygons_are_refused(tmp_path):
    polys = rotated_polygons(LANDSAT, tmp_path / "p.gpkg", 10)
    with pytest.raises(GridError) as e:
        extract_patches(PatchesJob(polys, [PatchSource(LANDSAT, 8, str(tmp_path / "x.tif"))]))
    assert e.value.param == "VECTOR" and "Sample selection" in str(e.value)


def test_patches_come_in_the_points_order(data, tmp_path):
    """As OTBTF writes them: patch i and label i belong to the i-th kept point of the
    input, in the input's order (patches are read in spatial order, written in this one)."""
    d = tmp_path
    res, expect = two_sources(data, d)
    p1, _, _ = read_raster(d / "p1.tif")
    p2, _, _ = read_raster(d / "p2.tif")
    labels, _, _ = read_raster(d / "labels.tif")
    assert res["KEPT"] == len(expect) > 100
    for i, (_, patches, code) in enumerate(expect):
        np.testing.assert_array_equal(p1[12 * i:12 * (i + 1)], patches[0])
        np.testing.assert_array_equal(p2[5 * i:5 * (i + 1)], patches[1])
        assert labels[i, 0, 0] == code
    kept = ogr.Open(str(d / "kept.gpkg"))          # held while its layer is read
    rows = [(f.GetField("patch"), f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY())
            for f in kept.GetLayer(0)]
    assert [r[0] for r in rows] == list(range(len(expect)))          # in the points' order
    assert [(x, y) for _, x, y in rows] == [xy for xy, _, _ in expect]
