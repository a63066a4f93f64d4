"""rsdl:trainmodel through processing.run: the chain from polygons to a served map."""
import os

import pytest

from tests.conftest import LANDSAT, read_raster
from tests.polygons import classes_on_crop


@pytest.mark.tensorflow
def test_train_then_cancel_keeps_best_then_serve(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsProcessingFeedback
    crop, polys = classes_on_crop(LANDSAT, tmp_path, [300, 100, 300, 300], 120, seed=3)
    sel = processing.run("rsdl:sampleselection", {
        "INPUT": crop, "VECTOR": polys, "FIELD": "code", "STRATEGY": 1, "SAMPLES": 150,
        "VALID_FRACTION": 0.3, "OUTPUT": str(tmp_path / "t.gpkg"),
        "OUTPUT_VALID": str(tmp_path / "v.gpkg")})
    files = {}
    for s, pts in (("t", sel["OUTPUT"]), ("v", sel["OUTPUT_VALID"])):
        pe = processing.run("rsdl:patchesextraction", {
            "VECTOR": pts, "FIELD": "code", "SOURCE1": crop, "SOURCE1_PATCH_SIZE": 8,
            "OUTPUT_SOURCE1": str(tmp_path / f"{s}_p.tif"), "OUTPUT_LABELS": str(tmp_path / f"{s}_l.tif")})
        files[s] = (pe["OUTPUT_SOURCE1"], pe["OUTPUT_LABELS"])

    class CancelInSecondEpoch(QgsProcessingFeedback):
        def setProgress(self, p):  # noqa: N802
            super().setProgress(p)
            if p > 40:
                self.cancel()

    res = processing.run("rsdl:trainmodel", {
        "ARCHITECTURE": 1, "TRAIN_SOURCE1": files["t"][0], "TRAIN_LABELS": files["t"][1],
        "VALID_SOURCE1": files["v"][0], "VALID_LABELS": files["v"][1], "EPOCHS": 3,
        "BATCH_SIZE": 16, "OUTPUT": str(tmp_path / "model"),
        "OUTPUT_REPORT": str(tmp_path / "r.html")}, feedback=CancelInSecondEpoch())
    assert res["BEST_EPOCH"] == 1 and res["EPOCHS"] == 1
    assert 0 <= res["OA"] <= 1 and os.path.exists(tmp_path / "r.html")
    served = processing.run("rsdl:modelserve", {
        "MODEL": res["OUTPUT"], "SOURCE1": crop, "OUTPUT": str(tmp_path / "map.tif")})
    assert read_raster(served["OUTPUT"])[0].shape == (293, 293, 1)   # FCN, RF 8
    # OUTPUT_TYPE automatic: a byte class map that any GIS shows with the model's classes
    import json

    from osgeo import gdal
    ds = gdal.Open(served["OUTPUT"])
    band = ds.GetRasterBand(1)
    classes = json.loads(ds.GetMetadataItem("RSDL_CLASSES"))
    assert band.DataType == gdal.GDT_Byte and band.GetNoDataValue() not in map(int, classes)
    assert band.GetColorTable() is not None
    assert {c: band.GetCategoryNames()[int(c)] for c in classes} == classes
    ds = None
    # deep features from that model, given only MODEL: the rest comes from its metadata
    # and equals what a user would have typed (rsdl:trainmodel's FCN: RF 8, input x1,
    # fully convolutional, features = probabilities)
    import zipfile
    common = {"INPUT": crop, "VECTOR": sel["OUTPUT"], "FIELD": "code", "SAMPLES": 100,
              "VALID_FRACTION": 0, "SEED": 2, "RF_TREES": 10, "MODEL": res["OUTPUT"]}
    implicit = processing.run("rsdl:trainclassifier", dict(
        common, OUTPUT=str(tmp_path / "implicit.rsdlc")))
    explicit = processing.run("rsdl:trainclassifier", dict(
        common, SOURCE1_RFIELD=8, SOURCE1_NAME="x1", OUTPUT_NAMES="probabilities",
        FULLY_CONV=True, OUTPUT=str(tmp_path / "explicit.rsdlc")))

    def recipe(path):
        with zipfile.ZipFile(path) as z:
            return json.loads(z.read("manifest.json"))["recipe"]
    assert recipe(implicit["OUTPUT"]) == recipe(explicit["OUTPUT"])
    r = recipe(implicit["OUTPUT"])
    assert (r["rfields"], r["names"], r["fully_conv"], r["output_names"]) == \
        ([8], ["x1"], True, ["probabilities"])
    maps = [read_raster(processing.run("rsdl:classify", {
        "INPUT": crop, "CLASSIFIER": c, "OUTPUT": str(tmp_path / f"{i}.tif")})["OUTPUT"])[0]
        for i, c in enumerate((implicit["OUTPUT"], explicit["OUTPUT"]))]
    assert (maps[0] == maps[1]).all()


def test_training_on_workers_without_a_scheduler_is_one_line(qgis_app, tmp_path):
    """DISTRIBUTION workers (2) needs SCHEDULER: refused in one line naming it, and no
    model folder is left."""
    import processing
    from qgis.core import QgsProcessingException
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:trainmodel", {
            "TRAIN_SOURCE1": LANDSAT, "TRAIN_LABELS": LANDSAT, "DISTRIBUTION": 2,
            "OUTPUT": str(tmp_path / "model")})
    msg = str(e.value)
    assert msg.startswith("SCHEDULER:") and "\n" not in msg and "Dask cluster" in msg
    assert not (tmp_path / "model").exists()
