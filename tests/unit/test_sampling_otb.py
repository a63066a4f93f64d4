"""Class statistics and sample selection against OTB 8.1 on the Landsat scene."""
import numpy as np
import pytest
from osgeo import gdal, ogr

from rsdl_qgis.engine.selection import SelectionJob, class_statistics, sample_selection
from rsdl_qgis.errors import GridError, ParameterError
from tests.conftest import LANDSAT, write_on_grid_of
from tests.otb import class_counts, otbcli, read_stats_xml
from tests.polygons import rotated_polygons


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    d = tmp_path_factory.mktemp("landsat")
    polys = rotated_polygons(LANDSAT, d / "polygons.gpkg", 700, seed=11)
    stats = d / "otb_stats.xml"
    otbcli("PolygonClassStatistics", "-in", LANDSAT, "-vec", polys, "-field", "code",
           "-out", stats)
    return {"dir": d, "polygons": polys, "stats": stats}


def per_feature_pixels(res_rows):
    return {r[0]: r[1] for r in res_rows}


def test_class_statistics_equal_otb(scene, tmp_path):
    out = tmp_path / "stats.csv"
    res = class_statistics(LANDSAT, scene["polygons"], "code", str(out))
    otb_class, _ = read_stats_xml(scene["stats"])
    assert {str(c): p for c, p, _ in res["CLASSES"]} == otb_class
    assert len(otb_class) == 4 and min(otb_class.values()) > 1000
    lines = out.read_text().splitlines()
    assert lines[0] == "class,pixels,polygons" and len(lines) == 5
    polygons = class_counts(scene["polygons"], "code")
    assert {str(c): n for c, _, n in res["CLASSES"]} == polygons


def test_per_polygon_pixels_equal_otb(scene):
    """Each polygon's pixel count equals OTB's samplesPerVector (same centre rule)."""
    from rsdl_qgis.engine.selection import candidates
    cand = candidates(LANDSAT, scene["polygons"], "code")
    per = np.bincount(cand.spans.feature, weights=cand.counts, minlength=cand.feats.count)
    mine = {int(f): int(n) for f, n in zip(cand.feats.fid, per) if n}
    _, otb_vec = read_stats_xml(scene["stats"])
    assert mine == otb_vec


def test_text_field_in_another_crs_equal_otb(scene, tmp_path):
    polys = rotated_polygons(LANDSAT, tmp_path / "wgs84.gpkg", 300, seed=5, epsg=4326)
    xml = tmp_path / "otb.xml"
    otbcli("PolygonClassStatistics", "-in", LANDSAT, "-vec", polys, "-field", "name", "-out", xml)
    res = class_statistics(LANDSAT, polys, "name", None)
    otb_class, _ = read_stats_xml(xml)
    assert {c: p for c, p, _ in res["CLASSES"]} == otb_class


STRATEGIES = [("constant", ["-strategy.constant.nb", 3000], dict(samples=3000)),
              ("smallest", [], {}),
              ("all", [], {}),
              ("percent", ["-strategy.percent.p", 0.37], dict(percent=37.0)),
              ("total", ["-strategy.total.v", 5003], dict(samples=5003))]


def read_points(path, field):
    ds = ogr.Open(str(path))
    lyr = ds.GetLayer(0)
    pts = [(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY(), f.GetField(field),
            f.GetField("originfid")) for f in lyr]
    return pts


@pytest.mark.parametrize("strategy,otb_args,kwargs", STRATEGIES, ids=[s[0] for s in STRATEGIES])
def test_selection_counts_equal_otb(scene, tmp_path, strategy, otb_args, kwargs):
    otb_out = tmp_path / "otb.sqlite"
    otbcli("SampleSelection", "-in", LANDSAT, "-vec", scene["polygons"], "-field", "code",
           "-instats", scene["stats"], "-strategy", strategy, *otb_args, "-sampler", "random",
           "-rand", 1, "-out", otb_out)
    otb = class_counts(otb_out, "code")
    for sampler in ("random", "periodic"):
        out = tmp_path / f"{sampler}.gpkg"
        res = sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"],
                                            field="code", strategy=strategy, sampler=sampler,
                                            seed=4, **kwargs, valid_fraction=0))
        mine = class_counts(out, "code")
        assert mine == otb, sampler
        assert res["SAMPLES"] == sum(otb.values())


def test_selected_points_are_distinct_centres_inside_their_polygon(scene, tmp_path):
    out = tmp_path / "sel.gpkg"
    sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="code",
                                  strategy="constant", samples=400, sampler="random", seed=2,
                                  valid_fraction=0))
    pts = read_points(out, "code")
    ds = gdal.Open(LANDSAT)
    inv = gdal.InvGeoTransform(ds.GetGeoTransform())
    src_ds = ogr.Open(str(scene["polygons"]))
    polys = {f.GetFID(): (f.GetGeometryRef().Clone(), f.GetField("code"))
             for f in src_ds.GetLayer(0)}
    seen = set()
    for x, y, code, fid in pts:
        c, r = gdal.ApplyGeoTransform(inv, x, y)
        assert c % 1 == pytest.approx(0.5) and r % 1 == pytest.approx(0.5)
        seen.add((int(c), int(r)))
        geom, poly_code = polys[fid]
        p = ogr.Geometry(ogr.wkbPoint)
        p.AddPoint_2D(x, y)
        assert geom.Contains(p) and poly_code == code
    assert len(seen) == len(pts) == 1600


def test_same_seed_same_samples(scene, tmp_path):
    def run(name, seed):
        out = tmp_path / name
        sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="code",
                                      strategy="constant", samples=200, sampler="random",
                                      seed=seed, valid_fraction=0.3,
                                      output_valid=str(tmp_path / f"v{name}")))
        return read_points(out, "code")
    a, b, c = run("a.gpkg", 7), run("b.gpkg", 7), run("c.gpkg", 8)
    assert a == b and a != c


def test_split_by_polygon_has_no_leakage(scene, tmp_path):
    paths = [tmp_path / n for n in ("train.gpkg", "valid.gpkg", "test.gpkg")]
    res = sample_selection(SelectionJob(
        LANDSAT, str(paths[0]), vector=scene["polygons"], field="code", strategy="smallest",
        valid_fraction=0.2, test_fraction=0.1, split_by_polygon=True, seed=3,
        output_valid=str(paths[1]), output_test=str(paths[2])))
    sets = [read_points(p, "code") for p in paths]
    fids = [set(p[3] for p in s) for s in sets]
    assert not (fids[0] & fids[1]) and not (fids[0] & fids[2]) and not (fids[1] & fids[2])
    n = [len(s) for s in sets]
    assert sum(n) == res["SAMPLES"]
    assert 0.14 < n[1] / sum(n) < 0.26 and 0.06 < n[2] / sum(n) < 0.14
    for code in (1, 2, 3, 4):  # every class is in every set
        assert all(any(p[2] == code for p in s) for s in sets)


def test_split_by_sample_fractions_are_exact(scene, tmp_path):
    paths = [tmp_path / n for n in ("train.gpkg", "valid.gpkg")]
    sample_selection(SelectionJob(LANDSAT, str(paths[0]), vector=scene["polygons"], field="code",
                                  strategy="constant", samples=1000, valid_fraction=0.25,
                                  split_by_polygon=False, output_valid=str(paths[1])))
    assert class_counts(paths[1], "code") == {str(c): 250 for c in (1, 2, 3, 4)}


def test_mask_equal_otb(scene, tmp_path):
    ds = gdal.Open(LANDSAT)
    mask = (ds.GetRasterBand(1).ReadAsArray() > 9000).astype(np.uint8)
    mpath = write_on_grid_of(tmp_path / "mask.tif", mask, LANDSAT)
    xml = tmp_path / "otb.xml"
    otbcli("PolygonClassStatistics", "-in", LANDSAT, "-mask", mpath, "-vec", scene["polygons"],
           "-field", "code", "-out", xml)
    res = class_statistics(LANDSAT, scene["polygons"], "code", None, mask=mpath)
    otb_class, _ = read_stats_xml(xml)
    assert {str(c): p for c, p, _ in res["CLASSES"]} == otb_class
    otb_out = tmp_path / "otb.sqlite"
    otbcli("SampleSelection", "-in", LANDSAT, "-mask", mpath, "-vec", scene["polygons"],
           "-field", "code", "-instats", xml, "-strategy", "smallest", "-out", otb_out)
    out = tmp_path / "masked.gpkg"
    sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="code",
                                  strategy="smallest", mask=mpath, sampler="random", valid_fraction=0))
    assert class_counts(out, "code") == class_counts(otb_out, "code")
    inv = gdal.InvGeoTransform(ds.GetGeoTransform())
    for x, y, _, _ in read_points(out, "code"):
        c, r = gdal.ApplyGeoTransform(inv, x, y)
        assert mask[int(r), int(c)] == 1


def test_grid_step_spaces_samples(scene, tmp_path):
    out = tmp_path / "grid.gpkg"
    sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="code",
                                  strategy="all", grid_step=5, valid_fraction=0))
    inv = gdal.InvGeoTransform(gdal.Open(LANDSAT).GetGeoTransform())
    cr = np.array([gdal.ApplyGeoTransform(inv, x, y) for x, y, _, _ in read_points(out, "code")])
    assert len(cr) > 500
    assert np.all(np.floor(cr) % 5 == 0)


def test_label_raster_selection(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=(300, 260)).astype(np.uint8)   # 0 = nodata
    labels[:40] = 0
    from tests.conftest import write_raster
    img = write_raster(tmp_path / "img.tif", rng.random((300, 260, 2)).astype(np.float32))
    lab = write_raster(tmp_path / "lab.tif", labels, nodata=0)
    out = tmp_path / "sel.gpkg"
    res = sample_selection(SelectionJob(img, str(out), labels=lab, strategy="constant",
                                        samples=5000, sampler="random", seed=1,
                                        valid_fraction=0.3, output_valid=str(tmp_path / "v.gpkg")))
    _, counts = np.unique(labels[labels > 0], return_counts=True)
    expect = {str(c): min(5000, int(n)) for c, n in zip((1, 2, 3), counts)}
    got = class_counts(out, "class")
    valid = class_counts(tmp_path / "v.gpkg", "class")
    assert {k: got[k] + valid[k] for k in got} == expect
    assert res["SAMPLES"] == sum(expect.values())
    inv = gdal.InvGeoTransform(gdal.Open(img).GetGeoTransform())
    for x, y, code, _ in read_points(out, "class"):
        c, r = gdal.ApplyGeoTransform(inv, x, y)
        assert labels[int(r), int(c)] == code


def test_text_classes_get_a_lookup_table(scene, tmp_path):
    out = tmp_path / "named.gpkg"
    sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="name",
                                  strategy="constant", samples=10, valid_fraction=0))
    table = (tmp_path / "named.classes.csv").read_text().splitlines()
    assert table == ["code,name", "1,crop", "2,developed", "3,tree", "4,water"]
    assert class_counts(out, "name") == {"crop": 10, "developed": 10, "tree": 10, "water": 10}


# bad input: clear errors naming the parameter, and no output left

def test_missing_field_lists_the_fields(scene, tmp_path):
    out = tmp_path / "x.gpkg"
    with pytest.raises(GridError) as e:
        sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="klass"))
    assert e.value.param == "FIELD" and "code, name, block" in str(e.value)
    assert not list(tmp_path.iterdir())
    # the GeoPackage's feature id, which QGIS's field lists offer first
    with pytest.raises(GridError) as e:
        sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"], field="fid"))
    assert "'fid' is the layer's feature id" in str(e.value) and "code, name, block" in str(e.value)
    assert not list(tmp_path.iterdir())


def test_empty_vector(tmp_path):
    path = tmp_path / "empty.gpkg"
    ds = ogr.GetDriverByName("GPKG").CreateDataSource(str(path))
    lyr = ds.CreateLayer("x", None, ogr.wkbPolygon)
    lyr.CreateField(ogr.FieldDefn("code", ogr.OFTInteger))
    ds = None
    with pytest.raises(GridError) as e:
        class_statistics(LANDSAT, str(path), "code", str(tmp_path / "s.csv"))
    assert e.value.param == "VECTOR" and "empty" in str(e.value)
    assert not (tmp_path / "s.csv").exists()


def test_no_overlap(tmp_path):
    from tests.conftest import write_raster
    far = write_raster(tmp_path / "far.tif", np.zeros((50, 50), np.uint8),
                       gt=(100000.0, 30.0, 0.0, 200000.0, 0.0, -30.0), epsg=32621)
    polys = rotated_polygons(LANDSAT, tmp_path / "p.gpkg", 20)
    with pytest.raises(GridError) as e:
        sample_selection(SelectionJob(far, str(tmp_path / "o.gpkg"), vector=polys, field="code"))
    assert e.value.param == "VECTOR" and "do not overlap" in str(e.value)
    assert not (tmp_path / "o.gpkg").exists()


def test_class_without_pixels(tmp_path):
    polys = rotated_polygons(LANDSAT, tmp_path / "p.gpkg", 40, seed=1)
    ds = ogr.Open(str(polys), 1)
    lyr = ds.GetLayer(0)
    gt = gdal.Open(LANDSAT).GetGeoTransform()
    f = ogr.Feature(lyr.GetLayerDefn())   # a sliver between pixel centres
    x, y = gt[0] + 100.1 * gt[1], gt[3] + 100.1 * gt[5]
    f.SetGeometry(ogr.CreateGeometryFromWkt(
        f"POLYGON(({x} {y},{x + 9} {y},{x + 9} {y - 9},{x} {y - 9},{x} {y}))"))
    f.SetField("code", 9)
    f.SetField("name", "tiny")
    lyr.CreateFeature(f)
    ds = None
    with pytest.raises(GridError) as e:
        sample_selection(SelectionJob(LANDSAT, str(tmp_path / "o.gpkg"), vector=polys, field="name"))
    assert "tiny" in str(e.value) and "no pixel" in str(e.value)
    assert not (tmp_path / "o.gpkg").exists()


def test_the_default_split_goes_beside_the_output(scene, tmp_path):
    """The Python API splits as the dialog does (VALID_FRACTION 0.3); the validation set
    it was not given a file for goes beside OUTPUT, never over a file that is there."""
    out = tmp_path / "train.gpkg"
    res = sample_selection(SelectionJob(LANDSAT, str(out), vector=scene["polygons"],
                                        field="code", strategy="constant", samples=60))
    valid = tmp_path / "train_valid.gpkg"
    assert res["OUTPUT_VALID"] == str(valid) and valid.exists()
    assert res["VALID"] > 0 and res["TRAIN"] + res["VALID"] == res["SAMPLES"]
    assert len(read_points(valid, "code")) == res["VALID"]
    mine = tmp_path / "b_valid.gpkg"
    mine.write_text("the user's")
    with pytest.raises(ParameterError) as e:
        sample_selection(SelectionJob(LANDSAT, str(tmp_path / "b.gpkg"),
                                      vector=scene["polygons"], field="code"))
    assert e.value.param == "OUTPUT_VALID" and "exists already" in str(e.value)
    assert mine.read_text() == "the user's" and not (tmp_path / "b.gpkg").exists()
