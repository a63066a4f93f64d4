"""Classifiers on raw pixels and deep features, against OTB 8.1 and scikit-learn."""
import json
import os
import re
import zipfile

import numpy as np
import pytest
from osgeo import gdal

from rsdl_qgis.engine.metrics import confusion, scores
from rsdl_qgis.engine.selection import SelectionJob, sample_selection
from rsdl_qgis.errors import RsdlIOError
from rsdl_qgis.ml.pipeline import (
    AccuracyJob,
    ClassifyJob,
    DeepFeatures,
    TrainClassifierJob,
    accuracy,
    classify,
    train_classifier,
)
from tests.conftest import LANDSAT, OTBTF, read_raster
from tests.otb import otbcli
from tests.polygons import classes_on_crop, rotated_polygons, spectral_classes


@pytest.fixture(scope="module")
def landsat(tmp_path_factory):
    """A 600 x 600 crop of the scene, polygons with spectral classes, a split by polygon."""
    d = tmp_path_factory.mktemp("classify")
    crop, polys = classes_on_crop(LANDSAT, d, [300, 100, 600, 600], 500, seed=8)
    train, valid = str(d / "train.gpkg"), str(d / "valid.gpkg")
    sample_selection(SelectionJob(crop, train, vector=polys, field="code", strategy="constant",
                                  samples=400, sampler="random", seed=1, valid_fraction=0.3,
                                  output_valid=valid))
    return {"dir": d, "image": crop, "polygons": polys, "train": train, "valid": valid}


def test_metrics_equal_scikit_learn():
    from sklearn.metrics import cohen_kappa_score, confusion_matrix, f1_score, precision_score
    rng = np.random.default_rng(0)
    ref = rng.integers(1, 6, 3000)
    pred = np.where(rng.random(3000) < 0.7, ref, rng.integers(1, 6, 3000))
    m, labels = confusion(ref, pred)
    np.testing.assert_array_equal(m, confusion_matrix(ref, pred, labels=labels))
    s = scores(m)
    assert s["KAPPA"] == pytest.approx(cohen_kappa_score(ref, pred))
    assert s["F1"] == pytest.approx(list(f1_score(ref, pred, average=None)))
    assert s["PRECISION"] == pytest.approx(list(precision_score(ref, pred, average=None)))
    assert s["OA"] == pytest.approx(np.mean(ref == pred))


def test_raw_pixel_forest_matches_otb(landsat, tmp_path):
    """Same training points, same-size forest: OA within 2 points of OTB's."""
    d = tmp_path
    otb_model = d / "otb_rf.yml"
    otbcli("TrainImagesClassifier", "-io.il", landsat["image"], "-io.vd", landsat["train"],
           "-sample.vfn", "code", "-sample.mt", -1, "-sample.mv", -1, "-sample.vtr", 0,
           "-classifier", "rf", "-classifier.rf.max", 10, "-classifier.rf.nbtrees", 100,
           "-rand", 1, "-io.out", otb_model)
    otb_map = d / "otb_map.tif"
    otbcli("ImageClassifier", "-in", landsat["image"], "-model", otb_model, "-out", otb_map, "uint8")
    res = train_classifier(TrainClassifierJob(
        landsat["image"], landsat["train"], "code", str(d / "rf.rsdlc"), "rf",
        {"trees": 100, "max_depth": 10}, samples=100000, valid_fraction=0.0, seed=1,
        neighbourhood=[]))                    # pixel values alone, as OTB's
    from osgeo import ogr
    assert res["TRAIN_SAMPLES"] == ogr.Open(landsat["train"]).GetLayer(0).GetFeatureCount()
    classify(ClassifyJob(landsat["image"], str(d / "rf.rsdlc"), str(d / "map.tif"),
                         confidence=str(d / "conf.tif")))
    mine = accuracy(AccuracyJob(str(d / "map.tif"), landsat["valid"], "code"))
    otb = accuracy(AccuracyJob(str(otb_map), landsat["valid"], "code"))
    assert otb["OA"] > 0.6
    assert abs(mine["OA"] - otb["OA"]) <= 0.02, (mine["OA"], otb["OA"])
    cmap, _, ds = read_raster(d / "map.tif")
    assert cmap.dtype == np.uint8 and set(np.unique(cmap)) <= {1, 2, 3, 4}
    conf, _, _ = read_raster(d / "conf.tif")
    assert conf.min() >= 0.25 - 1e-6 and conf.max() <= 1.0
    assert (d / "map.qml").exists() and 'label="1"' in (d / "map.qml").read_text()
    # the map displays in any GIS: its own colour table and category names, as GDAL's
    # gdalinfo reads them (category names live in the .aux.xml GTiff keeps beside it)
    info = gdal.Info(str(d / "map.tif"), format="json")["bands"][0]
    assert info["colorInterpretation"] == "Palette"
    qml = (d / "map.qml").read_text()
    for code in (1, 2, 3, 4):
        colour = re.search(rf'value="{code}" color="#(\w{{6}})"', qml).group(1)
        entry = info["colorTable"]["entries"][code]
        assert entry[:3] == [int(colour[i:i + 2], 16) for i in (0, 2, 4)]
    assert info["categories"][1:5] == ["1", "2", "3", "4"]


def test_accuracy_matrix_equals_otb(landsat, tmp_path):
    """rsdl:accuracy's matrix equals ComputeConfusionMatrix's on the same map and reference."""
    d = tmp_path
    train_classifier(TrainClassifierJob(landsat["image"], landsat["train"], "code",
                                        str(d / "c.rsdlc"), "dt", samples=300, valid_fraction=0,
                                        neighbourhood=[]))   # the map OTB's recording saw
    classify(ClassifyJob(landsat["image"], str(d / "c.rsdlc"), str(d / "map.tif")))
    out = d / "otb.csv"
    otbcli("ComputeConfusionMatrix", "-in", d / "map.tif", "-ref", "vector", "-ref.vector.in",
           landsat["polygons"], "-ref.vector.field", "code", "-out", out)
    lines = out.read_text().splitlines()
    ref_labels = [int(v) for v in lines[0].split(":")[1].split(",")]
    prod_labels = [int(v) for v in lines[1].split(":")[1].split(",")]
    otb = np.array([[int(v) for v in line.split(",")] for line in lines[2:] if line.strip()])
    res = accuracy(AccuracyJob(str(d / "map.tif"), landsat["polygons"], "code",
                               str(d / "m.csv"), str(d / "r.html")))
    labels = [int(c) for c in res["CLASSES"]]
    mine = np.array(res["MATRIX"])
    full = {(r, p): 0 for r in labels for p in labels}
    for i, r in enumerate(ref_labels):
        for j, p in enumerate(prod_labels):
            full[(r, p)] = otb[i, j]
    np.testing.assert_array_equal(mine, [[full[(r, p)] for p in labels] for r in labels])
    assert (d / "m.csv").read_text().startswith("reference \\ predicted,1,2,3,4")
    assert "Overall accuracy" in (d / "r.html").read_text()


def test_text_classes_and_report(landsat, tmp_path):
    res = train_classifier(TrainClassifierJob(
        landsat["image"], landsat["polygons"], "name", str(tmp_path / "c.rsdlc"), "gbt",
        {"iterations": 30}, samples=200, valid_fraction=0.3, seed=2,
        report=str(tmp_path / "report.html")))
    assert 0.3 < res["OA"] <= 1 and -1 <= res["KAPPA"] <= 1 and res["VALID_SAMPLES"] > 0
    html = (tmp_path / "report.html").read_text()
    assert "water" in html and "Confusion matrix" in html
    classify(ClassifyJob(landsat["image"], str(tmp_path / "c.rsdlc"), str(tmp_path / "m.tif")))
    ds = gdal.Open(str(tmp_path / "m.tif"))
    names = json.loads(ds.GetMetadataItem("RSDL_CLASSES"))
    assert sorted(names.values()) == ["crop", "developed", "tree", "water"]
    acc = accuracy(AccuracyJob(str(tmp_path / "m.tif"), landsat["polygons"], "name"))
    assert set(acc["CLASSES"]) <= set(names.values())


@pytest.mark.parametrize("name", ["svm", "knn", "bayes"])
def test_other_classifiers_train_and_classify(landsat, tmp_path, name):
    res = train_classifier(TrainClassifierJob(landsat["image"], landsat["train"], "code",
                                              str(tmp_path / "c.rsdlc"), name, samples=150,
                                              valid_fraction=0.3))
    assert res["OA"] > 0.4
    classify(ClassifyJob(landsat["image"], str(tmp_path / "c.rsdlc"), str(tmp_path / "m.tif"),
                         tile_size=256))
    assert read_raster(tmp_path / "m.tif")[0].shape == (600, 600, 1)


@pytest.mark.tensorflow
def test_deep_features_end_to_end(tmp_path):
    """OTBTF's model3 (FCN, RF 16) outputs as features: train, then classify the image;
    the features at the samples equal the model's output there (served)."""
    pxs = os.path.join(OTBTF, "pxs_subset.tif")
    polys = spectral_classes(pxs, rotated_polygons(pxs, tmp_path / "p.gpkg", 30, seed=3,
                                                   size_px=(3, 8), with_holes=False), classes=2)
    deep = DeepFeatures(os.path.join(OTBTF, "models", "model3"), rfields=[16], names=["x"],
                        output_names=["prediction"], fully_conv=True)
    res = train_classifier(TrainClassifierJob(pxs, polys, "code", str(tmp_path / "d.rsdlc"),
                                              "rf", {"trees": 20}, samples=50,
                                              valid_fraction=0.0, deep=deep))
    assert res["FEATURES"] == 1 and res["TRAIN_SAMPLES"] > 20
    with zipfile.ZipFile(tmp_path / "d.rsdlc") as z:
        assert "model/saved_model.pb" in z.namelist()     # the model travels in the file
    out = classify(ClassifyJob(pxs, str(tmp_path / "d.rsdlc"), str(tmp_path / "m.tif")))
    assert (out["WIDTH"], out["HEIGHT"]) == (113, 113)   # the model's output grid
    cmap, gt, _ = read_raster(tmp_path / "m.tif")
    assert set(np.unique(cmap)) <= {0, 1, 2}
    assert gt[0] == pytest.approx(gdal.Open(pxs).GetGeoTransform()[0] + 8 * 1.5)
    # oracle: the model served on its own, then the classifier on each pixel's output
    from rsdl_qgis.api import ServeJob, ServeSource, serve_model
    from rsdl_qgis.ml import persist
    serve_model(ServeJob(deep.model, [ServeSource(pxs, 16, "x")], str(tmp_path / "pred.tif"),
                         ["prediction"], fully_conv=True))
    pred, pgt, _ = read_raster(tmp_path / "pred.tif")
    assert pgt == gt
    with persist.load(tmp_path / "d.rsdlc") as loaded:
        expect = loaded.pipeline.predict(pred.reshape(-1, 1)).reshape(113, 113)
    nodata = gdal.Open(pxs).ReadAsArray()[:, 8:121, 8:121].max(axis=0) == 0
    np.testing.assert_array_equal(cmap[..., 0][~nodata], expect[~nodata])
    # PAD: the image's edges mirrored, the map covers the whole image; inside, the same
    out = classify(ClassifyJob(pxs, str(tmp_path / "d.rsdlc"), str(tmp_path / "full.tif"),
                               pad=True))
    full, fgt, _ = read_raster(tmp_path / "full.tif")
    assert (out["WIDTH"], out["HEIGHT"]) == (128, 128)
    assert fgt == gdal.Open(pxs).GetGeoTransform()
    np.testing.assert_array_equal(full[8:121, 8:121], cmap)


def test_tampered_classifier_fails_safely(landsat, tmp_path):
    path = tmp_path / "c.rsdlc"
    train_classifier(TrainClassifierJob(landsat["image"], landsat["train"], "code", str(path),
                                        "dt", samples=50, valid_fraction=0))
    # 1. a member changed
    bad = tmp_path / "changed.rsdlc"
    with zipfile.ZipFile(path) as z, zipfile.ZipFile(bad, "w") as out:
        for n in z.namelist():
            data = z.read(n)
            out.writestr(n, data + b"x" if n == "classifier.skops" else data)
    with pytest.raises(RsdlIOError) as e:
        classify(ClassifyJob(landsat["image"], str(bad), str(tmp_path / "m.tif")))
    assert "damaged or was changed" in str(e.value) and e.value.param == "CLASSIFIER"
    # 2. a pickle smuggled in, with a matching checksum: never unpickled
    import hashlib
    import pickle
    evil = pickle.dumps(os.system)
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(z.read("manifest.json"))

    def forged(name, payload):
        """A classifier file whose checksum matches `payload`, as a forger would make it."""
        manifest["files"]["classifier.skops"] = hashlib.sha256(payload).hexdigest()
        with zipfile.ZipFile(tmp_path / name, "w") as out:
            out.writestr("manifest.json", json.dumps(manifest))
            out.writestr("classifier.skops", payload)
        return tmp_path / name
    bad2 = forged("pickle.rsdlc", evil)
    with pytest.raises(RsdlIOError) as e:
        classify(ClassifyJob(landsat["image"], str(bad2), str(tmp_path / "m.tif")))
    assert "cannot be read" in str(e.value) or "types" in str(e.value)
    # 3. a skops file that names a dangerous type
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    bad3 = forged("types.rsdlc", sio.dumps(FunctionTransformer(os.system)))
    with pytest.raises(RsdlIOError) as e:
        classify(ClassifyJob(landsat["image"], str(bad3), str(tmp_path / "m.tif")))
    assert "posix.system" in str(e.value) and "not loaded" in str(e.value)
    assert not (tmp_path / "m.tif").exists()
    # 4. not a classifier at all
    (tmp_path / "junk.rsdlc").write_bytes(b"junk")
    with pytest.raises(RsdlIOError) as e:
        classify(ClassifyJob(landsat["image"], str(tmp_path / "junk.rsdlc"), str(tmp_path / "m.tif")))
    assert "not a classifier file" in str(e.value)
