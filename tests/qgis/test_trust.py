"""Trust: the algorithms, as a careless or hostile user drives them through processing.run.

Every refused case asserts the same things: a QgsProcessingException of one line that
names the parameter to fix (no traceback), no output and no temporary file left, and
every file in the input and output folders unchanged by checksum. The hostile files are
built here (tests/hostile.py); a full disk is a small tmpfs the test mounts (as root;
skipped elsewhere with the reason).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
from osgeo import gdal, ogr

from tests import disk, hostile
from tests.conftest import LANDSAT, OTBTF, ROOT, read_raster, tensorflow_available, write_raster
from tests.polygons import classes_on_crop

ogr.UseExceptions()


# --- the data a user has: made once for the module --------------------------------------

@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from rsdl_qgis import api
    d = tmp_path_factory.mktemp("trust")
    image, polys = classes_on_crop(LANDSAT, d, [300, 100, 160, 160], 45, seed=2)
    _add_layer(polys, "roads")                       # a project GeoPackage: several layers
    points = str(d / "points.gpkg")
    api.sample_selection(api.SelectionJob(image, points, vector=polys, field="name",
                                          strategy="constant", samples=60, seed=1, valid_fraction=0))
    patches, labels = str(d / "patches.tif"), str(d / "labels.tif")
    api.extract_patches(api.PatchesJob(points, [api.PatchSource(image, 8, patches)],
                                       field="name", output_labels=labels))
    rf = str(d / "rf.rsdlc")
    api.train_classifier(api.TrainClassifierJob(image, points, "name", rf, "rf",
                                                {"trees": 10}, samples=40, valid_fraction=0))
    # the network and the classifier on its features: only where TensorFlow is (the tests
    # that use them are marked tensorflow; the rest run on every host)
    model = deep = None
    if tensorflow_available():
        model = str(d / "model")
        api.train_model(api.TrainModelJob([api.TrainSource(patches, "x1")], labels, model,
                                          architecture="fcn", epochs=1, batch_size=16))
        deep = str(d / "deep.rsdlc")
        api.train_classifier(api.TrainClassifierJob(
            image, points, "name", deep, "rf", {"trees": 5}, samples=30, valid_fraction=0,
            deep=api.DeepFeatures(model)))
    classes = str(d / "classes.tif")
    api.classify(api.ClassifyJob(image, rf, classes))
    shp = str(d / "polys.shp")
    gdal.VectorTranslate(shp, polys, layers=["polygons"])
    return {"dir": d, "image": image, "polys": polys, "points": points, "patches": patches,
            "labels": labels, "model": model, "rf": rf, "deep": deep, "classes": classes,
            "shp": shp}


def _add_layer(gpkg, name):
    ds = ogr.Open(str(gpkg), 1)
    lyr = ds.CreateLayer(name, ds.GetLayer(0).GetSpatialRef(), ogr.wkbLineString)
    lyr.CreateField(ogr.FieldDefn("kind", ogr.OFTString))
    f = ogr.Feature(lyr.GetLayerDefn())
    f.SetField("kind", "track")
    ext = ds.GetLayer(0).GetExtent()
    f.SetGeometry(ogr.CreateGeometryFromWkt(f"LINESTRING({ext[0]} {ext[2]},{ext[1]} {ext[3]})"))
    lyr.CreateFeature(f)
    ds = None


def layers(gpkg):
    """{layer: (feature count, checksum of its attributes and geometries)}."""
    ds = ogr.Open(str(gpkg))
    out = {}
    for i in range(ds.GetLayerCount()):
        lyr = ds.GetLayer(i)
        h = hashlib.sha256()
        for f in lyr:
            h.update(repr(f.items()).encode())
            g = f.GetGeometryRef()
            h.update(g.ExportToWkb() if g is not None else b"")
        out[lyr.GetName()] = (lyr.GetFeatureCount(), h.hexdigest())
    return out


# --- the checks every refused case makes -------------------------------------------------

def tree(*folders):
    """{path: sha256} of every file under the folders, hidden ones included."""
    out = {}
    for folder in folders:
        for root, _, names in os.walk(folder):
            for n in names:
                p = os.path.join(root, n)
                with open(p, "rb") as fh:
                    out[p] = hashlib.sha256(fh.read()).hexdigest()
    return out


def refused(alg, params, param, folders, *words):
    import processing
    from qgis.core import QgsProcessingException
    before = tree(*folders)
    with pytest.raises(QgsProcessingException) as e:
        processing.run(alg, params)
    msg = str(e.value)
    # processing.run puts this line before what QGIS's own parameter checks say
    msg = msg.replace("Unable to execute algorithm\n", "")
    assert f"{param}:" in msg or f"{param} " in msg, msg
    assert "Traceback" not in msg and "\n" not in msg.strip(), msg
    for w in words:
        assert w in msg, msg
    after = tree(*folders)
    assert set(after) == set(before), set(after) ^ set(before)      # nothing left, nothing lost
    assert after == before                                           # inputs unchanged
    return msg


def run_ok(alg, params):
    import processing
    return processing.run(alg, params)


# --- 1. an output that is an input is refused before any work ----------------------------

def same_as_input_cases(d):
    return [
        ("rsdl:classstatistics", dict(INPUT=d["image"], VECTOR=d["polys"], FIELD="name",
                                      OUTPUT=d["image"]), "OUTPUT", "INPUT"),
        ("rsdl:classstatistics", dict(INPUT=d["image"], VECTOR=d["shp"], FIELD="name",
                                      OUTPUT=d["shp"]), "OUTPUT", "VECTOR"),
        ("rsdl:sampleselection", dict(INPUT=d["image"], VECTOR=d["polys"] + "|layername=polygons",
                                      FIELD="name",
                                      OUTPUT=d["polys"] + "|layername=polygons"), "OUTPUT", "VECTOR"),
        ("rsdl:sampleselection", dict(INPUT=d["image"], VECTOR=d["polys"], FIELD="name",
                                      OUTPUT=d["image"]), "OUTPUT", "INPUT"),
        ("rsdl:sampleselection", dict(INPUT=d["image"], VECTOR=d["shp"], FIELD="name",
                                      VALID_FRACTION=0.3, OUTPUT=str(d["dir"] / "t.gpkg"),
                                      OUTPUT_VALID=d["shp"]), "OUTPUT_VALID", "VECTOR"),
        ("rsdl:patchesextraction", dict(VECTOR=d["points"], FIELD="name", SOURCE1=d["image"],
                                        SOURCE1_PATCH_SIZE=8, OUTPUT_SOURCE1=d["image"]),
         "OUTPUT_SOURCE1", "SOURCE1"),
        ("rsdl:patchesextraction", dict(VECTOR=d["points"], FIELD="name", SOURCE1=d["image"],
                                        SOURCE1_PATCH_SIZE=8, OUTPUT_SOURCE1=str(d["dir"] / "p.tif"),
                                        OUTPUT_LABELS=d["image"]), "OUTPUT_LABELS", "SOURCE1"),
        ("rsdl:patchesextraction", dict(VECTOR=d["points"], FIELD="name", SOURCE1=d["image"],
                                        SOURCE1_PATCH_SIZE=8, OUTPUT_SOURCE1=str(d["dir"] / "p.tif"),
                                        OUTPUT_POINTS=d["points"]), "OUTPUT_POINTS", "VECTOR"),
        ("rsdl:trainmodel", dict(TRAIN_SOURCE1=d["patches"], TRAIN_LABELS=d["labels"],
                                 MODEL=d["model"] + "/saved_model.pb", EPOCHS=1,
                                 OUTPUT=d["model"]), "OUTPUT", "MODEL"),
        ("rsdl:trainmodel", dict(TRAIN_SOURCE1=d["patches"], TRAIN_LABELS=d["labels"], EPOCHS=1,
                                 OUTPUT=str(d["dir"] / "m2"),
                                 OUTPUT_REPORT=d["patches"]), "OUTPUT_REPORT", "TRAIN_SOURCE1"),
        ("rsdl:trainclassifier", dict(INPUT=d["image"], VECTOR=d["points"], FIELD="name",
                                      OUTPUT=d["image"]), "OUTPUT", "INPUT"),
        ("rsdl:trainclassifier", dict(INPUT=d["image"], VECTOR=d["points"], FIELD="name",
                                      VALID_FRACTION=0.3, OUTPUT=str(d["dir"] / "c.rsdlc"),
                                      OUTPUT_REPORT=d["points"]), "OUTPUT_REPORT", "VECTOR"),
        ("rsdl:classify", dict(INPUT=d["image"], CLASSIFIER=d["rf"], OUTPUT=d["image"]),
         "OUTPUT", "INPUT"),
        ("rsdl:classify", dict(INPUT=d["image"], CLASSIFIER=d["rf"], OUTPUT=d["rf"]),
         "OUTPUT", "CLASSIFIER"),
        ("rsdl:classify", dict(INPUT=d["image"], CLASSIFIER=d["rf"],
                               OUTPUT=str(d["dir"] / "m.tif"), OUTPUT_CONFIDENCE=d["image"]),
         "OUTPUT_CONFIDENCE", "INPUT"),
        ("rsdl:accuracy", dict(INPUT=d["classes"], REFERENCE=d["polys"], FIELD="name",
                               OUTPUT_MATRIX=d["classes"]), "OUTPUT_MATRIX", "INPUT"),
        ("rsdl:accuracy", dict(INPUT=d["classes"], REFERENCE=d["shp"], FIELD="name",
                               OUTPUT_REPORT=d["shp"]), "OUTPUT_REPORT", "REFERENCE"),
        ("rsdl:modelserve", dict(MODEL=d["model"], SOURCE1=d["image"], OUTPUT=d["image"]),
         "OUTPUT", "SOURCE1"),
        ("rsdl:modelserve", dict(MODEL=d["model"], SOURCE1=d["image"],
                                 OUTPUT=d["model"] + "/variables/map.tif"), "OUTPUT", "MODEL"),
    ]


@pytest.mark.tensorflow
@pytest.mark.parametrize("case", range(19))
def test_an_output_that_is_an_input_is_refused(qgis_app, data, case):
    alg, params, param, other = same_as_input_cases(data)[case]
    refused(alg, params, param, [data["dir"]], other, "Choose another file name")


@pytest.mark.tensorflow
def test_an_input_reached_through_a_link_is_refused(qgis_app, data, tmp_path):
    link = tmp_path / "link.tif"
    os.symlink(data["image"], link)
    refused("rsdl:modelserve", dict(MODEL=data["model"], SOURCE1=data["image"], OUTPUT=str(link)),
            "OUTPUT", [data["dir"], tmp_path], "SOURCE1")


@pytest.mark.parametrize("alg,key,other", [
    ("rsdl:classify", "OUTPUT_CONFIDENCE", "OUTPUT"),
    ("rsdl:sampleselection", "OUTPUT_VALID", "OUTPUT"),
    ("rsdl:patchesextraction", "OUTPUT_LABELS", "OUTPUT_SOURCE1"),
    ("rsdl:accuracy", "OUTPUT_REPORT", "OUTPUT_MATRIX")])
def test_two_outputs_with_one_name_are_refused(qgis_app, data, tmp_path, alg, key, other):
    d = data
    same = str(tmp_path / "same.out")
    params = {
        "rsdl:classify": dict(INPUT=d["image"], CLASSIFIER=d["rf"]),
        "rsdl:sampleselection": dict(INPUT=d["image"], VECTOR=d["polys"], FIELD="name",
                                     VALID_FRACTION=0.3),
        "rsdl:patchesextraction": dict(VECTOR=d["points"], FIELD="name", SOURCE1=d["image"],
                                       SOURCE1_PATCH_SIZE=8),
        "rsdl:accuracy": dict(INPUT=d["classes"], REFERENCE=d["polys"], FIELD="name")}[alg]
    ext = ".gpkg" if alg == "rsdl:sampleselection" else ".tif" if alg != "rsdl:accuracy" else ".csv"
    same += ext
    params.update({key: same, other: same})
    refused(alg, params, key, [d["dir"], tmp_path], other, "its own file name")


def test_a_report_inside_the_model_folder_is_refused(qgis_app, data, tmp_path):
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                    EPOCHS=1, OUTPUT=str(tmp_path / "m"),
                                    OUTPUT_REPORT=str(tmp_path / "m" / "report.html")),
            "OUTPUT_REPORT", [data["dir"], tmp_path], "OUTPUT")


# --- 2. a GeoPackage keeps its other layers -----------------------------------------------

def project_gpkg(data, tmp_path):
    p = tmp_path / "project.gpkg"
    shutil.copy(data["polys"], p)
    return str(p)


def test_sample_points_into_the_polygons_geopackage_keep_its_layers(qgis_app, data, tmp_path):
    gpkg = project_gpkg(data, tmp_path)
    before = layers(gpkg)
    run_ok("rsdl:sampleselection", dict(INPUT=data["image"], VECTOR=gpkg + "|layername=polygons",
                                        FIELD="name", STRATEGY=1, SAMPLES=30,
                                        OUTPUT=gpkg + "|layername=train_points"))
    after = layers(gpkg)
    assert {k: after[k] for k in before} == before          # polygons and roads untouched
    assert after["train_points"][0] > 0
    # again to the same layer: it is replaced, the others still untouched
    run_ok("rsdl:sampleselection", dict(INPUT=data["image"], VECTOR=gpkg + "|layername=polygons",
                                        FIELD="name", STRATEGY=1, SAMPLES=10,
                                        OUTPUT=gpkg + "|layername=train_points"))
    again = layers(gpkg)
    assert {k: again[k] for k in before} == before
    assert again["train_points"][0] < after["train_points"][0]
    # the dialog's "Save to GeoPackage..." gives the output in QGIS's own URI form
    run_ok("rsdl:sampleselection", dict(INPUT=data["image"], VECTOR=gpkg + "|layername=polygons",
                                        FIELD="name", STRATEGY=1, SAMPLES=5,
                                        OUTPUT=f"ogr:dbname='{gpkg}' table=\"few\" (geom)"))
    last = layers(gpkg)
    assert {k: last[k] for k in again} == again and last["few"][0] > 0
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


@pytest.mark.parametrize("alg", ["rsdl:classstatistics", "rsdl:patchesextraction"])
def test_outputs_into_an_existing_geopackage_keep_its_layers(qgis_app, data, tmp_path, alg):
    gpkg = project_gpkg(data, tmp_path)
    before = layers(gpkg)
    if alg == "rsdl:classstatistics":
        run_ok(alg, dict(INPUT=data["image"], VECTOR=data["polys"], FIELD="name", OUTPUT=gpkg))
        new = "project"
    else:
        run_ok(alg, dict(VECTOR=data["points"], FIELD="name", SOURCE1=data["image"],
                         SOURCE1_PATCH_SIZE=8, OUTPUT_SOURCE1=str(tmp_path / "p.tif"),
                         OUTPUT_POINTS=gpkg + "|layername=kept"))
        new = "kept"
    after = layers(gpkg)
    assert {k: after[k] for k in before} == before and after[new][0] > 0


# --- 3. model folders -----------------------------------------------------------------

def test_a_folder_with_the_users_files_is_not_replaced(qgis_app, data, tmp_path):
    folder = tmp_path / "mywork"
    folder.mkdir()
    (folder / "notes.txt").write_text("three weeks of field notes")
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                    EPOCHS=1, OUTPUT=str(folder)),
            "OUTPUT", [data["dir"], tmp_path], "notes.txt", "did not write")


def test_an_otbtf_model_folder_is_not_replaced(qgis_app, data, tmp_path):
    shutil.copytree(os.path.join(OTBTF, "models", "model3"), tmp_path / "model3")
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                    EPOCHS=1, OUTPUT=str(tmp_path / "model3")),
            "OUTPUT", [data["dir"], tmp_path], "saved_model.pb")


def test_a_file_given_as_model_folder_is_refused(qgis_app, data, tmp_path):
    (tmp_path / "model").write_text("a file")
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                    EPOCHS=1, OUTPUT=str(tmp_path / "model")),
            "OUTPUT", [data["dir"], tmp_path], "is a file")


@pytest.mark.tensorflow
def test_a_model_written_by_rsdl_is_replaced_in_place(qgis_app, data, tmp_path):
    shutil.copytree(data["model"], tmp_path / "model")
    run_ok("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                   EPOCHS=1, ARCHITECTURE=0, OUTPUT=str(tmp_path / "model")))
    import json
    meta = json.loads((tmp_path / "model" / "rsdl_metadata.json").read_text())
    assert meta["architecture"] == "cnn"                    # the new one, swapped in
    assert os.listdir(tmp_path) == ["model"]                # no temporary folder left


# --- 4. files that attack the loader ---------------------------------------------------

@pytest.fixture(scope="module")
def evil(data, tmp_path_factory):
    d = tmp_path_factory.mktemp("evil")
    target = d / "written_by_a_model.txt"
    out = {"dir": d, "target": target,
           "tf2": hostile.tf2_model_writing_a_file(d / "tf2", target),
           "tf1": hostile.tf1_model_writing_a_file(d / "tf1", target),
           "tf1_features": hostile.tf1_model_writing_a_file(d / "tf1f", target, "x1",
                                                             "probabilities"),
           "lambda": hostile.keras_with_lambda(d / "lambda.keras")}
    out["rsdlc_tf2"] = hostile.classifier_with_model(data["deep"], d / "tf2.rsdlc", out["tf2"])
    out["rsdlc_tf1"] = hostile.classifier_with_model(data["deep"], d / "tf1.rsdlc",
                                                     out["tf1_features"])
    return out


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind,param", [("tf2", "MODEL"), ("tf1", "MODEL")])
def test_modelserve_refuses_a_model_that_writes_files(qgis_app, data, evil, tmp_path, kind, param):
    params = dict(MODEL=evil[kind], SOURCE1=data["image"], SOURCE1_RFIELD=1, SOURCE1_NAME="x",
                  FULLY_CONV=True, OUTPUT=str(tmp_path / "map.tif"))
    if kind == "tf1":
        params["OUTPUT_NAMES"] = "prediction"
    refused("rsdl:modelserve", params, param, [data["dir"], tmp_path, evil["dir"]],
            "WriteFile", "TRUST_MODEL")
    assert not evil["target"].exists()


@pytest.mark.tensorflow
def test_a_trusted_model_runs_as_it_is(qgis_app, data, evil, tmp_path):
    """TRUST_MODEL is the user's word: the model then runs, with its effects."""
    run_ok("rsdl:modelserve", dict(MODEL=evil["tf2"], SOURCE1=data["image"], SOURCE1_RFIELD=1,
                                   SOURCE1_NAME="x", FULLY_CONV=True, TRUST_MODEL=True,
                                   OUTPUT=str(tmp_path / "map.tif")))
    assert evil["target"].exists()
    evil["target"].unlink()


@pytest.mark.tensorflow
def test_a_keras_lambda_layer_is_refused(qgis_app, data, evil, tmp_path):
    refused("rsdl:modelserve", dict(MODEL=evil["lambda"], SOURCE1=data["image"], SOURCE1_RFIELD=1,
                                    FULLY_CONV=True, OUTPUT=str(tmp_path / "m.tif")),
            "MODEL", [data["dir"], tmp_path], "Lambda")


@pytest.mark.tensorflow
def test_fine_tuning_refuses_a_keras_lambda_layer(qgis_app, data, evil, tmp_path):
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["labels"],
                                    MODEL=evil["lambda"], EPOCHS=1,
                                    OUTPUT=str(tmp_path / "m")),
            "MODEL", [data["dir"], tmp_path], "Lambda")


@pytest.mark.tensorflow
def test_deep_features_refuse_a_model_that_writes_files(qgis_app, data, evil, tmp_path):
    refused("rsdl:trainclassifier", dict(INPUT=data["image"], VECTOR=data["points"], FIELD="name",
                                         MODEL=evil["tf2"], SOURCE1_RFIELD=1, SOURCE1_NAME="x",
                                         FULLY_CONV=True, OUTPUT=str(tmp_path / "c.rsdlc")),
            "MODEL", [data["dir"], tmp_path], "WriteFile")
    assert not evil["target"].exists()


@pytest.mark.tensorflow
@pytest.mark.parametrize("kind", ["rsdlc_tf2", "rsdlc_tf1"])
def test_a_classifier_file_with_a_hostile_model_is_refused(qgis_app, data, evil, tmp_path, kind):
    """The checksums are recomputed, as anyone can: the scan, not the checksum, stops it."""
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=evil[kind],
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path, evil["dir"]], "WriteFile")
    assert not evil["target"].exists()


@pytest.mark.tensorflow
def test_a_zip_bomb_is_refused_before_it_is_inflated(qgis_app, data, tmp_path):
    bomb = hostile.zip_bomb_classifier(data["deep"], tmp_path / "bomb.rsdlc", gib=1)
    assert os.path.getsize(bomb) < 20 << 20
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=bomb,
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path], "would inflate")


def test_a_member_name_that_climbs_out_is_refused(qgis_app, data, tmp_path):
    bad = hostile.forge_classifier(data["rf"], tmp_path / "climb.rsdlc",
                                   add={"../../escaped.txt": b"out of the folder"})
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=bad,
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path], "unsafe member name")
    assert not (tmp_path.parent / "escaped.txt").exists()


def test_a_pickle_in_a_classifier_file_is_never_unpickled(qgis_app, data, tmp_path):
    import pickle
    bad = hostile.forge_classifier(data["rf"], tmp_path / "pickle.rsdlc",
                                   replace={"classifier.skops": pickle.dumps(os.system)})
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=bad,
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path], "cannot be read")


def test_a_skops_payload_naming_os_system_is_refused(qgis_app, data, tmp_path):
    import skops.io as sio
    from sklearn.preprocessing import FunctionTransformer
    bad = hostile.forge_classifier(data["rf"], tmp_path / "skops.rsdlc", replace={
        "classifier.skops": sio.dumps(FunctionTransformer(os.system))})
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=bad,
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path], "posix.system")


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9, 0.97])
def test_a_damaged_classifier_file_is_refused(qgis_app, data, tmp_path, where):
    """One byte flipped, wherever it falls: compressed data, a header, the directory."""
    raw = bytearray(open(data["rf"], "rb").read())
    raw[int(len(raw) * where)] ^= 0xFF
    bad = tmp_path / "damaged.rsdlc"
    bad.write_bytes(bytes(raw))
    refused("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=str(bad),
                                  OUTPUT=str(tmp_path / "m.tif")),
            "CLASSIFIER", [data["dir"], tmp_path])


# --- 5. silent wrong results become errors ------------------------------------------

@pytest.mark.tensorflow
def test_an_expression_field_the_model_does_not_have(qgis_app, tmp_path):
    refused("rsdl:modelserve", dict(MODEL=os.path.join(OTBTF, "models", "model4"),
                                    SOURCE1=os.path.join(OTBTF, "pxs_subset2.tif"),
                                    SOURCE1_RFIELD=64, SOURCE1_NAME="x", EFIELD=1,
                                    OUTPUT_NAMES="prediction_fcn", FULLY_CONV=False,
                                    OUTPUT=str(tmp_path / "m.tif")),
            "EFIELD", [tmp_path, OTBTF], "32 x 32", "set EFIELD to 32")


def test_accuracy_of_a_three_band_image_is_refused(qgis_app, data, tmp_path):
    refused("rsdl:accuracy", dict(INPUT=data["image"], REFERENCE=data["polys"], FIELD="name",
                                  OUTPUT_MATRIX=str(tmp_path / "m.csv")),
            "INPUT", [data["dir"], tmp_path], "3 bands")


def test_accuracy_of_a_probability_map_is_refused(qgis_app, data, tmp_path):
    ref, _, ds = read_raster(data["classes"])
    prob = write_raster(tmp_path / "prob.tif", (ref[..., 0] * 0.23).astype(np.float32),
                        gt=ds.GetGeoTransform(), wkt=ds.GetProjection())
    refused("rsdl:accuracy", dict(INPUT=prob, REFERENCE=data["polys"], FIELD="code",
                                  OUTPUT_MATRIX=str(tmp_path / "m.csv")),
            "INPUT", [data["dir"], tmp_path], "not whole numbers")


def test_accuracy_of_a_float_map_of_whole_numbers_runs_with_a_note(qgis_app, data, tmp_path):
    ref, _, ds = read_raster(data["classes"])
    as_float = write_raster(tmp_path / "f.tif", ref[..., 0].astype(np.float32),
                            gt=ds.GetGeoTransform(), wkt=ds.GetProjection())
    res = run_ok("rsdl:accuracy", dict(INPUT=as_float, REFERENCE_RASTER=data["classes"]))
    assert res["OA"] == 1.0


def test_knn_with_more_neighbours_than_samples_is_refused(qgis_app, data, tmp_path):
    refused("rsdl:trainclassifier", dict(INPUT=data["image"], VECTOR=data["points"], FIELD="name",
                                         CLASSIFIER=3, KNN_K=500, SAMPLES=20, VALID_FRACTION=0,
                                         OUTPUT=str(tmp_path / "knn.rsdlc")),
            "KNN_K", [data["dir"], tmp_path], "lower KNN_K")


def test_a_patches_image_given_as_labels_is_refused(qgis_app, data, tmp_path):
    """After extraction the patches image is the active layer: the dialog proposes it."""
    refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"], TRAIN_LABELS=data["patches"],
                                    EPOCHS=1, OUTPUT=str(tmp_path / "m")),
            "TRAIN_LABELS", [data["dir"], tmp_path], "patches image")


@pytest.mark.parametrize("alg,key", [("rsdl:modelserve", "SOURCE1"), ("rsdl:classify", "INPUT"),
                                     ("rsdl:patchesextraction", "SOURCE1"),
                                     ("rsdl:sampleselection", "INPUT")])
@pytest.mark.tensorflow
def test_a_patches_image_given_as_an_image_is_refused(qgis_app, data, tmp_path, alg, key):
    d = data
    params = {"rsdl:modelserve": dict(MODEL=d["model"], OUTPUT=str(tmp_path / "m.tif")),
              "rsdl:classify": dict(CLASSIFIER=d["rf"], OUTPUT=str(tmp_path / "m.tif")),
              "rsdl:patchesextraction": dict(VECTOR=d["points"], SOURCE1_PATCH_SIZE=4,
                                             OUTPUT_SOURCE1=str(tmp_path / "p.tif")),
              "rsdl:sampleselection": dict(VECTOR=d["polys"], FIELD="name",
                                           OUTPUT=str(tmp_path / "s.gpkg"))}[alg]
    params[key] = d["patches"]
    refused(alg, params, key, [d["dir"], tmp_path], "patches image")


@pytest.mark.tensorflow
def test_a_band_count_the_model_does_not_take(qgis_app, data, tmp_path):
    refused("rsdl:modelserve", dict(MODEL=os.path.join(OTBTF, "models", "model1"),
                                    SOURCE1=data["image"], SOURCE1_RFIELD=16, SOURCE1_NAME="x",
                                    OUTPUT_NAMES="prediction", OUTPUT=str(tmp_path / "m.tif")),
            "SOURCE1", [data["dir"], tmp_path], "3 band(s)", "takes 4")


def test_a_file_that_is_not_a_raster(qgis_app, data, tmp_path):
    notes = tmp_path / "notes.tif"
    notes.write_text("not an image")
    refused("rsdl:classify", dict(INPUT=str(notes), CLASSIFIER=data["rf"],
                                  OUTPUT=str(tmp_path / "m.tif")),
            "INPUT", [data["dir"], tmp_path])


@pytest.mark.parametrize("param,value", [("SOURCE1_PATCH_SIZE", 0), ("SOURCE1_RFIELD", -4)])
def test_a_bad_number_beside_a_good_raster_names_the_number(qgis_app, data, tmp_path, param,
                                                            value):
    """QGIS's own check names SOURCE1_PATCH_SIZE; SOURCE1, a prefix of it and a good
    raster, must not be blamed ("is not a raster")."""
    alg, params = (("rsdl:patchesextraction", dict(
        VECTOR=data["points"], FIELD="name", SOURCE1=data["image"],
        OUTPUT_SOURCE1=str(tmp_path / "p.tif"), OUTPUT_LABELS=str(tmp_path / "l.tif")))
        if param == "SOURCE1_PATCH_SIZE" else ("rsdl:modelserve", dict(
            MODEL=os.path.join(ROOT, "tests", "data", "models", "unet.onnx"),
            SOURCE1=data["image"], OUTPUT=str(tmp_path / "m.tif"))))
    params[param] = value
    msg = refused(alg, params, param, [data["dir"], tmp_path])
    assert "not a raster" not in msg and "SOURCE1:" not in msg
    assert f"{param}: {value} is out of range" in msg and "a whole number from 1 to 4096" in msg


# --- 5b. no silent wrong result -----------------------------------------------------------

def float_copy(data, folder, nodata=None):
    """The trust image as float32, with a 20 x 20 block of NaN, +inf in one band of a
    pixel, and no nodata declared (unless `nodata`)."""
    pixels, gt, ds = read_raster(data["image"])
    f = pixels.astype(np.float32)
    f[10:30, 10:30, :] = np.nan
    f[50, 50, 1] = np.inf
    path = str(folder / "float.tif")
    write_raster(path, f, gt=gt, wkt=ds.GetProjection(), nodata=nodata)
    return path


def test_nan_pixels_are_nodata_in_the_map(qgis_app, data, tmp_path):
    """Neither NaN nor an infinite band gets a class: they are the map's nodata, and
    their neighbours' classes are what the classifier says without them."""
    image = float_copy(data, tmp_path)
    out = tmp_path / "map.tif"
    run_ok("rsdl:classify", dict(INPUT=image, CLASSIFIER=data["rf"], OUTPUT=str(out)))
    got, _, ds = read_raster(out)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    assert (got[10:30, 10:30, 0] == nodata).all() and got[50, 50, 0] == nodata
    assert (got[40:, 60:, 0] != nodata).all()


def test_nan_pixels_are_not_counted_in_class_statistics(qgis_app, data, tmp_path):
    image = float_copy(data, tmp_path)
    base = run_ok("rsdl:classstatistics", dict(INPUT=data["image"], VECTOR=data["polys"],
                                                FIELD="name", OUTPUT=str(tmp_path / "a.csv")))
    nan = run_ok("rsdl:classstatistics", dict(INPUT=image, VECTOR=data["polys"],
                                               FIELD="name", OUTPUT=str(tmp_path / "b.csv")))
    _, gt, _ = read_raster(data["image"])
    # pixel centres inside the polygons: the NaN block and the pixel with an infinite band
    gone = [(r, c) for r in range(10, 30) for c in range(10, 30)] + [(50, 50)]
    assert base["TOTAL_PIXELS"] - nan["TOTAL_PIXELS"] == sum(
        _inside(data, gt, r, c) for r, c in gone) > 0


def _inside(data, gt, r, c):
    """How many polygons hold the centre of pixel (r, c)."""
    x, y = gt[0] + (c + 0.5) * gt[1], gt[3] + (r + 0.5) * gt[5]
    pt = ogr.CreateGeometryFromWkt(f"POINT({x} {y})")
    ds = ogr.Open(data["polys"])
    return sum(f.GetGeometryRef().Contains(pt) for f in ds.GetLayer("polygons"))


def test_an_all_nodata_raster_is_refused_by_class_statistics(qgis_app, data, tmp_path):
    pixels, gt, ds = read_raster(data["image"])
    empty = str(tmp_path / "empty.tif")
    write_raster(empty, np.zeros_like(pixels), gt=gt, wkt=ds.GetProjection(), nodata=0)
    msg = refused("rsdl:classstatistics", dict(INPUT=empty, VECTOR=data["polys"], FIELD="name",
                                               OUTPUT=str(tmp_path / "s.csv")),
                  "INPUT", [data["dir"], tmp_path])
    assert "nodata" in msg


def test_a_complex_raster_is_refused(qgis_app, data, tmp_path):
    ds = gdal.GetDriverByName("GTiff").Create(str(tmp_path / "slc.tif"), 160, 160, 3,
                                              gdal.GDT_CFloat32)
    src = gdal.Open(data["image"])
    ds.SetGeoTransform(src.GetGeoTransform())
    ds.SetProjection(src.GetProjection())
    ds = None
    for alg, params in (
            ("rsdl:classify", dict(CLASSIFIER=data["rf"], OUTPUT=str(tmp_path / "m.tif"))),
            ("rsdl:classstatistics", dict(VECTOR=data["polys"], FIELD="name",
                                          OUTPUT=str(tmp_path / "s.csv")))):
        msg = refused(alg, dict(params, INPUT=str(tmp_path / "slc.tif")), "INPUT",
                      [data["dir"], tmp_path])
        assert "complex values (CFloat32)" in msg


def test_an_output_nodata_outside_the_output_type_is_refused(qgis_app, data, tmp_path):
    msg = refused("rsdl:modelserve", dict(
        MODEL=os.path.join(ROOT, "tests", "data", "models", "unet.onnx"),
        SOURCE1=data["image"], OUTPUT_TYPE=2, OUTPUT_NODATA=1e300,
        OUTPUT=str(tmp_path / "m.tif")), "OUTPUT_NODATA", [data["dir"], tmp_path])
    assert "uint8" in msg and "from 0 to 255" in msg


@pytest.mark.tensorflow
def test_a_learning_rate_without_bound_is_refused(qgis_app, data, tmp_path):
    msg = refused("rsdl:trainmodel", dict(TRAIN_SOURCE1=data["patches"],
                                          TRAIN_LABELS=data["labels"], LEARNING_RATE=1e300,
                                          OUTPUT=str(tmp_path / "model")),
                  "LEARNING_RATE", [data["dir"], tmp_path])
    assert "from 1e-08 to 1" in msg


# --- 5c. no hang: every number has its bound ----------------------------------------------

@pytest.mark.parametrize("key,value,takes", [
    ("RF_TREES", 1e9, "from 1 to 5000"), ("GBT_ITERATIONS", 1e9, "from 1 to 10000"),
    ("SVM_C", 1e300, "from 1e-06 to 1e+06"), ("SAMPLES", 1e12, "from 1 to 1000000"),
    ("SCALE", 1e9, "from 1e-06 to 100")])
def test_a_number_beyond_its_bound_is_refused_naming_it(qgis_app, data, tmp_path, key, value,
                                                        takes):
    msg = refused("rsdl:trainclassifier", {
        "INPUT": data["image"], "VECTOR": data["points"], "FIELD": "name", key: value,
        "OUTPUT": str(tmp_path / "c.rsdlc")}, key, [data["dir"], tmp_path])
    assert f"{key}: " in msg and "is out of range" in msg and takes in msg
    assert "EFIELD" not in msg


def test_a_grid_step_that_misses_every_polygon_names_it(qgis_app, data, tmp_path):
    msg = refused("rsdl:sampleselection", dict(
        INPUT=data["image"], VECTOR=data["polys"] + "|layername=polygons", FIELD="name",
        GRID_STEP=5000, OUTPUT=str(tmp_path / "p.gpkg")), "GRID_STEP", [data["dir"], tmp_path])
    assert "lower GRID_STEP" in msg and "do not overlap" not in msg


# --- 5d. a cost check before any run ------------------------------------------------------

def huge_vrt(data, folder, side=1_000_000):
    """A VRT declaring `side` x `side` pixels over the trust image (mostly empty)."""
    src = gdal.Open(data["image"])
    w, h = src.RasterXSize, src.RasterYSize
    gt = ",".join(f"{v:.10g}" for v in src.GetGeoTransform())
    bands = "".join(
        f'<VRTRasterBand dataType="UInt16" band="{b}"><NoDataValue>0</NoDataValue>'
        f'<SimpleSource><SourceFilename relativeToVRT="0">{data["image"]}</SourceFilename>'
        f'<SourceBand>{b}</SourceBand><SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
        f'<DstRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/></SimpleSource></VRTRasterBand>'
        for b in range(1, src.RasterCount + 1))
    path = folder / "huge.vrt"
    path.write_text(f'<VRTDataset rasterXSize="{side}" rasterYSize="{side}"><SRS>'
                    f'{src.GetProjection().replace("<", "&lt;")}</SRS>'
                    f'<GeoTransform>{gt}</GeoTransform>{bands}</VRTDataset>')
    return str(path)


def test_a_run_that_cannot_fit_on_the_disk_is_refused_before_it_writes(qgis_app, data,
                                                                       tmp_path):
    """A VRT of 10^6 x 10^6 pixels: the classification's kept chunks alone would be
    8 TB. Refused in one line with the figures, before anything is written (the trust
    image's folder and the output folder are unchanged)."""
    vrt = huge_vrt(data, tmp_path)
    start = time.monotonic()
    msg = refused("rsdl:classify", dict(INPUT=vrt, CLASSIFIER=data["rf"],
                                        OUTPUT=str(tmp_path / "m.tif")),
                  "OUTPUT", [data["dir"], tmp_path])
    assert time.monotonic() - start < 60
    assert "not enough disk space" in msg and "1000000 x 1000000 pixels" in msg
    assert "8.0 TB" in msg and "untick RESUME" in msg


def absurd_onnx(path, batch, side):
    """An ONNX Relu whose input is declared [batch, 3, side, side]."""
    from onnx import TensorProto, helper, save
    shape = [batch, 3, side, side]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    save(model, str(path))
    return str(path)


@pytest.mark.parametrize("batch,side,words", [(1, 2_000_000_000, "2000000000 x 2000000000"),
                                              (2_000_000_000, 64, "fixed batch of 2000000000")])
def test_an_onnx_model_declaring_absurd_sizes_is_one_line(qgis_app, data, tmp_path, batch,
                                                          side, words):
    """Was numpy's "array is too big ... this is a bug" traceback."""
    model = absurd_onnx(tmp_path / "big.onnx", batch, side)
    msg = refused("rsdl:modelserve", dict(MODEL=model, SOURCE1=data["image"],
                                          OUTPUT=str(tmp_path / "m.tif")),
                  "MODEL", [data["dir"], tmp_path])
    assert words in msg and "damaged or not made for images" in msg


# --- 5e. messages that say what is wrong with what the user set ----------------------------

@pytest.mark.parametrize("alg,key", [("rsdl:exportonnx", "MODEL"), ("rsdl:modelserve", "MODEL"),
                                     ("rsdl:classify", "CLASSIFIER")])
def test_a_missing_model_or_classifier_says_it_does_not_exist(qgis_app, data, tmp_path, alg,
                                                              key):
    params = {"rsdl:exportonnx": dict(OUTPUT=str(tmp_path / "m.onnx")),
              "rsdl:modelserve": dict(SOURCE1=data["image"], OUTPUT=str(tmp_path / "m.tif")),
              "rsdl:classify": dict(INPUT=data["image"], OUTPUT=str(tmp_path / "m.tif"))}[alg]
    msg = refused(alg, dict(params, **{key: str(tmp_path / "nowhere")}), key,
                  [data["dir"], tmp_path])
    assert msg.endswith("nowhere' does not exist") and "not a model" not in msg


@pytest.mark.parametrize("alg,key,params", [
    ("rsdl:classify", "OUTPUT", dict(CLASSIFIER="rf")),
    ("rsdl:classstatistics", "OUTPUT", dict(VECTOR="polys", FIELD="name")),
    ("rsdl:sampleselection", "OUTPUT", dict(VECTOR="polys", FIELD="name"))])
def test_an_output_that_is_a_folder_is_refused_before_any_work(qgis_app, data, tmp_path, alg,
                                                               key, params):
    """Found when the finished map was renamed onto it, before: now by the checks."""
    folder = tmp_path / "maps"
    folder.mkdir()
    params = {k: data.get(v, v) for k, v in params.items()}
    start = time.monotonic()
    msg = refused(alg, dict(params, INPUT=data["image"], **{key: str(folder)}), key,
                  [data["dir"], tmp_path])
    assert time.monotonic() - start < 10
    assert f"'{folder}' is a folder: give a file name in it" in msg


# --- 6. a full disk ----------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path):
    with disk.small_disk(tmp_path / "disk", "3m") as mnt:
        yield mnt


@pytest.mark.parametrize("case", range(8))
def test_a_read_only_output_folder_is_one_line(qgis_app, data, tmp_path, case):
    """A folder on a read-only disk, where even root cannot write: every output, the
    model folder of a training included, is one line naming it, no traceback."""
    with disk.small_disk(tmp_path / "ro", "64m", read_only=True) as ro:
        alg, params, key, name, _ = full_disk_cases(data, ro)[case]
        if alg in ("rsdl:trainmodel", "rsdl:modelserve") and not tensorflow_available():
            pytest.skip("the network needs TensorFlow")
        msg = refused(alg, dict(params, **{key: str(ro / name)}), key, [data["dir"]])
        assert "read-only disk" in msg, msg


def full_disk_cases(d, disk):
    """(algorithm, parameters, output, its name, whether it is larger than 40 KiB)"""
    from bench.serve import mosaic_vrt
    big = mosaic_vrt(d["image"], str(disk.parent / "big.vrt"), 4, 4)   # 640 x 640
    return [
        # RESUME off: with it, the check before the run refuses what cannot fit (tested
        # above); without it the map's pixels may compress to fit, and the disk fills
        # while the map is written
        ("rsdl:modelserve", dict(MODEL=d["model"], SOURCE1=big, OUTPUT_NAMES="probabilities",
                                 RESUME=False), "OUTPUT", "map.tif", True),
        ("rsdl:classify", dict(INPUT=big, CLASSIFIER=d["rf"], RESUME=False), "OUTPUT",
         "map.tif", True),
        ("rsdl:patchesextraction", dict(VECTOR=d["points"], FIELD="name", SOURCE1=d["image"],
                                        SOURCE1_PATCH_SIZE=32), "OUTPUT_SOURCE1", "p.tif", True),
        ("rsdl:sampleselection", dict(INPUT=d["image"], VECTOR=d["polys"], FIELD="name"),
         "OUTPUT", "s.gpkg", True),
        ("rsdl:trainclassifier", dict(INPUT=d["image"], VECTOR=d["points"], FIELD="name",
                                      SAMPLES=20, VALID_FRACTION=0), "OUTPUT",
         "c.rsdlc", False),
        ("rsdl:accuracy", dict(INPUT=d["classes"], REFERENCE=d["polys"], FIELD="name"),
         "OUTPUT_MATRIX", "m.csv", False),
        ("rsdl:classstatistics", dict(INPUT=d["image"], VECTOR=d["polys"], FIELD="name"),
         "OUTPUT", "stats.csv", False),
        ("rsdl:trainmodel", dict(TRAIN_SOURCE1=d["patches"], TRAIN_LABELS=d["labels"], EPOCHS=1),
         "OUTPUT", "model", True),
    ]


@pytest.mark.tensorflow
@pytest.mark.parametrize("case", range(8))
@pytest.mark.parametrize("leave", [0, 40 << 10], ids=["no-byte-free", "40-KiB-free"])
def test_a_full_disk_is_one_clear_error_and_keeps_the_previous_file(qgis_app, data, small_disk,
                                                                    case, leave):
    alg, params, key, name, large = full_disk_cases(data, small_disk)[case]
    if leave and not large:
        pytest.skip("this output fits in 40 KiB: only a disk with no byte free stops it")
    out = small_disk / name
    if name != "model":
        out.write_bytes(b"the previous result")            # kept as it was
    params = dict(params, **{key: str(out)})
    disk.fill(small_disk, leave)
    refused(alg, params, key, [data["dir"], small_disk], "the disk is full")


# --- 7. killed runs --------------------------------------------------------------------

KILLED = """
import sys
sys.path.insert(0, {root!r})
from rsdl_qgis import api
from bench.serve import mosaic_vrt
big = mosaic_vrt({image!r}, {vrt!r}, 30, 30)
api.serve_model(api.ServeJob({model!r}, [api.ServeSource(big, None, "")], {out!r}, tile_size=256))
"""


@pytest.mark.tensorflow
def test_a_killed_run_leaves_a_recognisable_temp_that_the_next_run_removes(qgis_app, data,
                                                                          tmp_path):
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = tmp_path / "map.tif"
    script = KILLED.format(root=root, image=data["image"], vrt=str(tmp_path / "big.vrt"),
                           model=data["model"], out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    temps = []
    deadline = time.monotonic() + 120
    while not temps and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.2)
        temps = [n for n in os.listdir(tmp_path) if n.startswith(".map.tif.rsdl-")]
    time.sleep(0.5)
    proc.kill()                                              # kill -9
    proc.wait()
    assert temps, "the run never started writing"
    assert not out.exists()
    left = [n for n in os.listdir(tmp_path) if n.startswith(".map.tif.rsdl-")]
    # its temporary output, and the resume state of the chunks it finished
    assert left and all(".part" in n or n == ".map.tif.rsdl-resume" for n in left)
    assert any(".part" in n for n in left)
    run_ok("rsdl:modelserve", dict(MODEL=data["model"], SOURCE1=data["image"], OUTPUT=str(out)))
    assert out.exists()
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".map.tif.")]


# --- 8. patches images are training data, not maps ---------------------------------------

@pytest.mark.parametrize("add", [False, True])
def test_patches_images_are_added_to_the_map_only_on_request(qgis_app, data, tmp_path, add):
    import processing
    from qgis.core import QgsProject
    project = QgsProject.instance()
    project.removeAllMapLayers()
    processing.runAndLoadResults("rsdl:patchesextraction", dict(
        VECTOR=data["points"], FIELD="name", SOURCE1=data["image"], SOURCE1_PATCH_SIZE=8,
        OUTPUT_SOURCE1=str(tmp_path / "p.tif"), OUTPUT_LABELS=str(tmp_path / "l.tif"),
        OUTPUT_POINTS=str(tmp_path / "k.gpkg"), ADD_TO_MAP=add))
    sources = {os.path.basename(lyr.source().split("|")[0])
               for lyr in project.mapLayers().values()}
    project.removeAllMapLayers()
    assert "k.gpkg" in sources                                # other outputs load as before
    assert ({"p.tif", "l.tif"} <= sources) == add
    assert not ({"p.tif", "l.tif"} & sources) or add


def test_a_style_the_user_made_beside_the_output_is_kept(qgis_app, data, tmp_path):
    mine = "<!DOCTYPE qgis><qgis>my own colours</qgis>"
    (tmp_path / "map.qml").write_text(mine)
    run_ok("rsdl:classify", dict(INPUT=data["image"], CLASSIFIER=data["rf"],
                                 OUTPUT=str(tmp_path / "map.tif")))
    assert (tmp_path / "map.qml").read_text() == mine
    assert (tmp_path / "map.tif").exists()
