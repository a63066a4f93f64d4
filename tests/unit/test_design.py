"""Sampling design for accuracy and its estimators, against independent oracles.

- When the strata are the map's classes, the design-based estimators (Stehman 2014) give
  exactly the formulas of Olofsson et al. (2014) that metrics.area_adjusted implements.
- Drawn again and again on a synthetic map whose truth is known everywhere, the
  estimates are unbiased (their mean is the true value) and the 95 % intervals cover the
  truth about 95 % of the time: for the map the strata came from, and for another map.
- Every pixel of a stratum is as likely to be drawn.
"""
import numpy as np
import pytest
from osgeo import gdal, ogr

from rsdl_qgis import api
from rsdl_qgis.engine.metrics import area_adjusted, confusion
from rsdl_qgis.errors import ParameterError
from rsdl_qgis.ml.design import allocate, draw, stratified_estimates
from tests.conftest import write_raster


def test_with_the_maps_classes_as_strata_the_estimates_are_olofssons():
    rng = np.random.default_rng(0)
    sizes = {1: 200000, 2: 150000, 3: 3200000, 4: 6450000}
    taken = {1: 66, 2: 55, 3: 153, 4: 313}
    st = np.repeat(list(taken), list(taken.values()))
    mp = st.copy()
    rf = np.where(rng.random(len(st)) < 0.85, st, rng.integers(1, 5, len(st)))
    got = stratified_estimates(mp, rf, st, sizes, [1, 2, 3, 4], fpc=False)
    m, _ = confusion(rf, mp, [1, 2, 3, 4])
    want = area_adjusted(m, [sizes[c] for c in (1, 2, 3, 4)])
    for key in ("oa", "oa_ci"):
        assert got[key] == pytest.approx(want[key], rel=1e-9)
    for key in ("area", "area_ci", "user", "user_ci", "producer", "producer_ci"):
        np.testing.assert_allclose(got[key], want[key], rtol=1e-9)
    # the error matrix in area proportions adds up to 1 and to the class areas
    assert got["matrix"].sum() == pytest.approx(1.0)
    np.testing.assert_allclose(got["matrix"].sum(axis=1), got["area"], rtol=1e-9)


def test_allocation_is_a_minimum_plus_proportional():
    counts = {1: 9000, 2: 900, 3: 90, 4: 10}
    n = allocate(counts, 300, 30)
    assert sum(n.values()) == 300
    assert n[4] == 10                                # a class smaller than the minimum: all
    # the 200 points left over go in proportion to the areas of the classes that have
    # pixels left (9000 : 900 : 90 -> 180.2, 18.0, 1.8), the largest remainder rounded up
    assert (n[1], n[2], n[3]) == (30 + 180, 30 + 18, 30 + 2)
    with pytest.raises(ParameterError) as e:
        allocate(counts, 50, 30)
    assert e.value.param == "SAMPLES" and "MINIMUM" in str(e.value)


def _mem_band(array):
    ds = gdal.GetDriverByName("MEM").Create("", array.shape[1], array.shape[0], 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(array)
    return ds


def test_every_pixel_of_a_stratum_is_as_likely():
    rng = np.random.default_rng(1)
    cmap = rng.integers(1, 3, (5, 6)).astype(np.uint8)
    ds = _mem_band(cmap)
    counts = {c: int((cmap == c).sum()) for c in (1, 2)}
    alloc = {1: 3, 2: 2}
    hits = np.zeros(cmap.shape)
    reps = 4000
    for seed in range(reps):
        cols, rows, codes = draw(ds.GetRasterBand(1), 6, 5, None, alloc, counts, seed)
        assert len(set(zip(cols.tolist(), rows.tolist()))) == 5      # without replacement
        assert (cmap[rows, cols] == codes).all()
        assert (np.bincount(codes, minlength=3)[1:] == [3, 2]).all()
        hits[rows, cols] += 1
    for c in (1, 2):
        p = alloc[c] / counts[c]
        freq = hits[cmap == c] / reps
        # binomial: 4 standard errors
        assert np.abs(freq - p).max() < 4 * np.sqrt(p * (1 - p) / reps)


@pytest.fixture(scope="module")
def truth_and_maps():
    """A 120 x 100 'truth' of 4 classes in patches, a map with class-dependent errors
    (the strata), and a second map with other errors."""
    rng = np.random.default_rng(7)
    truth = np.kron(rng.choice(4, (10, 12), p=[0.55, 0.25, 0.13, 0.07]) + 1,
                    np.ones((10, 10), int))

    def noisy(rate, seed):
        r = np.random.default_rng(seed)
        wrong = r.random(truth.shape) < rate[truth - 1]
        return np.where(wrong, r.integers(1, 5, truth.shape), truth).astype(np.uint8)
    map_a = noisy(np.array([0.05, 0.2, 0.3, 0.4]), 1)
    map_b = noisy(np.array([0.15, 0.1, 0.1, 0.2]), 2)
    return truth, map_a, map_b


@pytest.mark.parametrize("which", ["strata map", "another map"])
def test_estimates_are_unbiased_and_intervals_cover(truth_and_maps, which):
    truth, map_a, map_b = truth_and_maps
    assessed = map_a if which == "strata map" else map_b
    ds = _mem_band(map_a)
    counts = {c: int((map_a == c).sum()) for c in (1, 2, 3, 4)}
    alloc = allocate(counts, 200, 25)
    true_oa = float((assessed == truth).mean())
    true_area = np.array([(truth == c).mean() for c in (1, 2, 3, 4)])
    oas, covered, areas, area_cover = [], 0, [], np.zeros(4)
    reps = 400
    for seed in range(reps):
        cols, rows, strata = draw(ds.GetRasterBand(1), 120, 100, None, alloc, counts, seed)
        est = stratified_estimates(assessed[rows, cols], truth[rows, cols], strata, counts,
                                   [1, 2, 3, 4])
        oas.append(est["oa"])
        covered += abs(est["oa"] - true_oa) <= est["oa_ci"]
        areas.append(est["area"])
        area_cover += np.abs(est["area"] - true_area) <= est["area_ci"]
    oas = np.array(oas)
    assert abs(oas.mean() - true_oa) < 4 * oas.std() / np.sqrt(reps)
    assert 0.90 <= covered / reps <= 0.99, covered / reps
    areas = np.array(areas)
    assert (np.abs(areas.mean(axis=0) - true_area) < 4 * areas.std(axis=0) / np.sqrt(reps)).all()
    assert ((area_cover / reps >= 0.88) & (area_cover / reps <= 0.99)).all(), area_cover / reps


def test_a_design_drawn_interpreted_and_assessed(truth_and_maps, tmp_path):
    """End to end: the sample written by Sampling design, its reference field filled as
    an interpreter would (here from the truth), then Accuracy assessment: its estimates
    are the estimator's on the same points, with intervals that hold the truth."""
    truth, map_a, map_b = truth_and_maps
    names = {1: "water", 2: "forest", 3: "crop", 4: "urban"}
    gt = (500000.0, 30.0, 0.0, 4000000.0, 0.0, -30.0)
    path = write_raster(tmp_path / "map.tif", map_a, gt=gt)
    ds = gdal.Open(path, gdal.GA_Update)
    import json
    ds.SetMetadataItem("RSDL_CLASSES", json.dumps({str(k): v for k, v in names.items()}))
    ds = None
    res = api.sampling_design(api.DesignJob(path, str(tmp_path / "design.gpkg"), 240, 30, 5))
    assert res["SAMPLES"] == 240 and sum(res["ALLOCATION"].values()) == 240
    src = ogr.Open(str(tmp_path / "design.gpkg"), 1)
    lyr = src.GetLayer(0)
    feats = list(lyr)
    assert len(feats) == 240 and all(f.GetField("reference") is None for f in feats)
    strata, mp, rf = [], [], []
    for i, f in enumerate(feats):
        g = f.GetGeometryRef()
        c, r = int((g.GetX() - gt[0]) / gt[1]), int((g.GetY() - gt[3]) / gt[5])
        assert f.GetField("stratum") == map_a[r, c]
        assert f.GetField("inclusion_probability") == pytest.approx(
            f.GetField("stratum_samples") / f.GetField("stratum_pixels"))
        if i < 230:                   # 10 points left uninterpreted
            f.SetField("reference", names[int(truth[r, c])])
            lyr.SetFeature(f)
            strata.append(map_a[r, c])
            mp.append(map_a[r, c])
            rf.append(truth[r, c])
    src = None
    from rsdl_qgis.engine.progress import Progress

    class Log(Progress):
        def __init__(self):
            self.lines = []

        def info(self, m):
            self.lines.append(m)
    log = Log()
    out = api.accuracy(api.AccuracyJob(path, str(tmp_path / "design.gpkg"), "reference",
                                       None, str(tmp_path / "r.html")), log)
    counts = {c: int((map_a == c).sum()) for c in (1, 2, 3, 4)}
    want = stratified_estimates(np.array(mp), np.array(rf), np.array(strata), counts,
                                [1, 2, 3, 4])
    assert out["PROBABILITY_SAMPLE"] and out["SAMPLES"] == 230
    assert out["OA_AREA_ADJUSTED"] == pytest.approx(want["oa"])
    assert out["OA_CI"] == pytest.approx(want["oa_ci"])
    assert abs(out["OA_AREA_ADJUSTED"] - (map_a == truth).mean()) <= 2 * out["OA_CI"]
    said = "\n".join(log.lines)
    assert "10 of the sample's points have no 'reference' value" in said
    assert "+/-" in said and "stratified random sample of 230 points" in said
    page = (tmp_path / "r.html").read_text()
    assert "Design-based estimates" in page and "&plusmn;" in page
    # a map that lost its edges (OTBTF's extent): the points it does not cover are left
    # out and counted, the rest assessed
    cropped = write_raster(tmp_path / "cropped.tif", map_a[5:-5, 5:-5],
                           gt=(gt[0] + 5 * gt[1], gt[1], 0.0, gt[3] + 5 * gt[5], 0.0, gt[5]))
    ds = gdal.Open(cropped, gdal.GA_Update)
    ds.SetMetadataItem("RSDL_CLASSES", json.dumps({str(k): v for k, v in names.items()}))
    ds = None
    log.lines.clear()
    out2 = api.accuracy(api.AccuracyJob(cropped, str(tmp_path / "design.gpkg"), "reference"), log)
    outside = 230 - out2["SAMPLES"]
    assert outside > 0 and f"{outside} sample points lie outside the map" in "\n".join(log.lines)
    # polygons are no probability sample: no interval anywhere
    poly = tmp_path / "poly.gpkg"
    pds = ogr.GetDriverByName("GPKG").CreateDataSource(str(poly))
    pl = pds.CreateLayer("p", gdal.Open(path).GetSpatialRef(), ogr.wkbPolygon)
    pl.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    f = ogr.Feature(pl.GetLayerDefn())
    f.SetField("name", "water")
    f.SetGeometry(ogr.CreateGeometryFromWkt(
        "POLYGON ((500300 3999700, 500900 3999700, 500900 3999100, 500300 3999100, "
        "500300 3999700))"))
    pl.CreateFeature(f)
    pds = None
    log.lines.clear()
    out = api.accuracy(api.AccuracyJob(path, str(poly), "name", None,
                                       str(tmp_path / "p.html")), log)
    assert not out["PROBABILITY_SAMPLE"] and out["OA_CI"] is None
    said = "\n".join(log.lines)
    assert "+/-" not in said and "not a probability sample" in said
    page = (tmp_path / "p.html").read_text()
    assert "&plusmn;" not in page and "No confidence interval" in page
