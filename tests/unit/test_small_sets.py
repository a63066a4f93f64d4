"""Small training sets: the hold-out by polygon never takes a class's last polygons.

Ten rectangles drawn by hand, two or three per class, is what a user tries first. The
split must keep every class in training, say which classes got no validation sample,
and say it where the user reads it (the log and the report).
"""
import json
import zipfile

import numpy as np
from osgeo import gdal, ogr

from rsdl_qgis.engine.sampling import split_sets
from rsdl_qgis.ml.pipeline import TrainClassifierJob, train_classifier
from tests.conftest import LANDSAT
from tests.log import Log


def test_one_polygon_stays_whole_and_the_last_polygon_stays_in_training():
    # class 1: one polygon; class 2: two polygons that a 0.9 hold-out would both take;
    # class 3: five polygons, split as asked
    cls = np.repeat([1, 2, 2, 3, 3, 3, 3, 3], 20)
    grp = np.repeat(np.arange(8), 20)
    notes = []
    sets = split_sets(cls, grp, 0.6, 0.3, True, 0, notes, {1: "water", 2: "crop", 3: "urban"}.get)
    for c in (1, 2, 3):
        assert (sets[cls == c] == 0).any(), c         # every class keeps training samples
    assert (sets[cls == 1] == 0).all()
    assert any("water has one polygon only: kept whole" in n for n in notes)
    assert any("crop has 2 polygons: one kept for training" in n for n in notes)
    assert not any("urban" in n for n in notes)
    # pixels shuffled one by one (no polygons): one sample at least stays too
    sets = split_sets(np.ones(3, int), np.arange(3), 0.6, 0.3, False, 0)
    assert (sets == 0).sum() >= 1


def test_ten_rectangles_drawn_by_hand(tmp_path):
    """#25's case: 10 rectangles, 2-3 per class (one class with 2 of very unequal size),
    the default 30 % hold-out: no class leaves training, and the log and the report name
    the classes without a validation sample."""
    ds = gdal.Open(LANDSAT)
    gt = ds.GetGeoTransform()
    src = ogr.GetDriverByName("GPKG").CreateDataSource(str(tmp_path / "rect.gpkg"))
    lyr = src.CreateLayer("r", ds.GetSpatialRef(), ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("name", ogr.OFTString))
    # (class, col, row, width, height) in pixels of the scene: hand-drawn rectangles
    rects = [("water", 700, 300, 20, 20), ("water", 500, 600, 15, 15), ("water", 820, 120, 6, 6),
             ("forest", 560, 400, 12, 12), ("forest", 300, 800, 4, 4),
             ("crop", 150, 150, 10, 10), ("crop", 880, 700, 10, 10), ("crop", 80, 400, 8, 8),
             ("urban", 100, 850, 25, 25), ("urban", 450, 930, 3, 3)]
    for name, c, r, w, h in rects:
        f = ogr.Feature(lyr.GetLayerDefn())
        f.SetField("name", name)
        x0, y0 = gt[0] + c * gt[1], gt[3] + r * gt[5]
        x1, y1 = x0 + w * gt[1], y0 + h * gt[5]
        f.SetGeometry(ogr.CreateGeometryFromWkt(
            f"POLYGON (({x0} {y0}, {x1} {y0}, {x1} {y1}, {x0} {y1}, {x0} {y0}))"))
        lyr.CreateFeature(f)
    src = None
    log = Log()
    res = train_classifier(TrainClassifierJob(
        LANDSAT, str(tmp_path / "rect.gpkg"), "name", str(tmp_path / "c.rsdlc"), "rf",
        {"trees": 20}, samples=200, valid_fraction=0.3, seed=3,
        report=str(tmp_path / "v.html")), log)
    said = "\n".join(log.lines)
    with zipfile.ZipFile(tmp_path / "c.rsdlc") as z:
        manifest = json.loads(z.read("manifest.json"))
    assert sorted(manifest["classes"]["names"]) == ["crop", "forest", "urban", "water"]
    assert res["TRAIN_SAMPLES"] > 0 and res["VALID_SAMPLES"] > 0
    page = (tmp_path / "v.html").read_text()
    warned = [ln for ln in log.lines if ln.startswith("Warning: class")]
    assert warned, said
    assert "no training sample left" not in said
    for line in warned:                       # each warning reaches the report too
        assert line.split(": ", 1)[1][:30] in page
