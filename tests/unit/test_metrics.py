"""Accuracy figures against published ones (independent oracles)."""
import numpy as np
import pytest

from rsdl_qgis.engine.metrics import area_adjusted, confusion, scores

# Olofsson et al. 2014 (Remote Sensing of Environment 148: 42-57), section 5 and
# tables 8 and 9: sample counts with rows = map, columns = reference, the map's pixels per
# class (30 m pixels: 0.09 ha), and the estimates the paper publishes.
OLOFSSON_COUNTS = np.array([[66, 0, 5, 4], [0, 55, 8, 12], [1, 0, 153, 11], [2, 1, 9, 313]])
OLOFSSON_PIXELS = np.array([200000, 150000, 3200000, 6450000])
AREA_HA = [21158, 11686, 285770, 581386]
AREA_CI_HA = [6158, 3756, 15510, 16282]
USER = [0.88, 0.73, 0.93, 0.96]
USER_CI = [0.07, 0.10, 0.04, 0.02]
PRODUCER = [0.75, 0.85, 0.93, 0.96]
PRODUCER_CI = [0.21, 0.25, 0.03, 0.02]


def test_area_adjusted_estimates_are_olofssons():
    got = area_adjusted(OLOFSSON_COUNTS.T, OLOFSSON_PIXELS)   # ours: rows = reference
    ha = OLOFSSON_PIXELS.sum() * 0.09
    assert np.round(got["area"] * ha) == pytest.approx(AREA_HA, abs=1)
    assert np.round(got["area_ci"] * ha) == pytest.approx(AREA_CI_HA, abs=1)
    assert np.round(got["user"], 2) == pytest.approx(USER)
    assert np.round(got["user_ci"], 2) == pytest.approx(USER_CI)
    assert np.round(got["producer"], 2) == pytest.approx(PRODUCER)
    assert np.round(got["producer_ci"], 2) == pytest.approx(PRODUCER_CI)
    assert round(got["oa"], 2) == 0.95 and round(got["oa_ci"], 2) == 0.02


def test_area_adjusted_on_an_equal_allocation_is_the_plain_confusion():
    """Strata sampled in proportion to their area: the estimates are the sample's own."""
    counts = np.array([[40, 10], [5, 45]])            # rows = reference
    got = area_adjusted(counts, counts.sum(axis=0) * 1000)
    sc = scores(counts)
    assert got["oa"] == pytest.approx(sc["OA"])
    assert got["user"] == pytest.approx(sc["PRECISION"])
    assert got["producer"] == pytest.approx(sc["RECALL"])
    assert got["area"] == pytest.approx(counts.sum(axis=1) / counts.sum())


def test_a_map_class_with_one_sample_has_no_interval():
    counts = np.array([[10, 0, 0], [0, 10, 0], [0, 0, 1]])
    got = area_adjusted(counts, [100, 100, 5])
    assert np.isnan(got["user_ci"][2]) and np.isfinite(got["user_ci"][:2]).all()


def test_kappa_of_congalton_and_green():
    """Congalton & Green, Assessing the Accuracy of Remotely Sensed Data (2009), table 5-1
    error matrix: overall 0.74, kappa 0.65 (rows = map there, transposed here)."""
    m = np.array([[65, 4, 22, 24], [6, 81, 5, 8], [0, 11, 85, 19], [4, 7, 3, 90]]).T
    sc = scores(m)
    assert round(sc["OA"], 2) == 0.74 and round(sc["KAPPA"], 2) == 0.65
    got, labels = confusion([1, 1, 2], [1, 2, 2])
    assert got.tolist() == [[1, 1], [0, 1]] and labels.tolist() == [1, 2]


def test_the_report_names_what_it_assessed_and_a_map_class_with_no_reference(tmp_path):
    """A map class that no reference pixel falls on counts in no estimate: the report
    says so, beside the map, the reference and the class areas (hectares: 2 m pixels)."""
    from rsdl_qgis.ml.pipeline import AccuracyJob, accuracy
    from tests.conftest import write_raster
    mp = np.ones((10, 10, 1), np.uint8)
    mp[:, 5:] = 2
    mp[8:, :] = 3
    ref = mp.copy()
    ref[8:, :] = 0                                  # no reference on class 3
    write_raster(tmp_path / "map.tif", mp, nodata=0)
    write_raster(tmp_path / "ref.tif", ref, nodata=0)
    res = accuracy(AccuracyJob(str(tmp_path / "map.tif"), str(tmp_path / "ref.tif"),
                               output_report=str(tmp_path / "r.html")))
    assert res["OA"] == 1.0 and res["CLASSES"] == ["1", "2", "3"]
    import html as markup
    html = markup.unescape((tmp_path / "r.html").read_text())
    assert "No reference pixel falls on the map's 3" in html
    assert "map.tif" in html and "ref.tif" in html and "Assessed" in html
    assert "map area (ha)" in html and "Area-adjusted accuracy" in html
