"""Training built-in networks on Landsat patches, serving them from their metadata,
fine-tuning, and bad input."""
import json
import os

import numpy as np
import pytest
from osgeo import gdal

from rsdl_qgis.api import (
    PatchesJob,
    PatchSource,
    SelectionJob,
    ServeJob,
    ServeSource,
    TrainModelJob,
    TrainSource,
    extract_patches,
    sample_selection,
    serve_model,
    train_model,
)
from rsdl_qgis.engine.progress import Progress
from rsdl_qgis.errors import GridError, ModelError, ParameterError
from tests.conftest import LANDSAT, read_raster, write_on_grid_of
from tests.polygons import classes_on_crop


@pytest.fixture(scope="module")
def patches(tmp_path_factory):
    """Patches of a Landsat crop around samples split by polygon (train / valid)."""
    d = tmp_path_factory.mktemp("training")
    crop, polys = classes_on_crop(LANDSAT, d, [300, 100, 500, 500], 300, seed=6)
    sample_selection(SelectionJob(crop, str(d / "train.gpkg"), vector=polys, field="name",
                                  strategy="constant", samples=250, sampler="random", seed=2,
                                  valid_fraction=0.3, output_valid=str(d / "valid.gpkg")))
    out = {"dir": d, "image": crop}
    for s in ("train", "valid"):
        extract_patches(PatchesJob(str(d / f"{s}.gpkg"), [PatchSource(crop, 12, str(d / f"{s}_p.tif"))],
                                   field="name", output_labels=str(d / f"{s}_l.tif")))
        out[s] = (str(d / f"{s}_p.tif"), str(d / f"{s}_l.tif"))
    return out


def job(patches, out, **kw):
    # what these tests were written with (a CNN); the API's default is now the dialog's fcn
    kw.setdefault("architecture", "cnn")
    kw.setdefault("epochs", 10)
    return TrainModelJob([TrainSource(patches["train"][0])], patches["train"][1], str(out),
                         [TrainSource(patches["valid"][0])], patches["valid"][1], **kw)


@pytest.mark.tensorflow
@pytest.mark.parametrize("arch", ["cnn", "fcn"])
def test_train_report_and_serve_from_metadata(patches, tmp_path, arch):
    res = train_model(job(patches, tmp_path / "model", architecture=arch, epochs=3,
                          output_report=str(tmp_path / "report.html")))
    assert res["OA"] > 0.4 and -1 <= res["KAPPA"] <= 1 and res["F1_MEAN"] > 0.3
    meta = json.loads((tmp_path / "model" / "rsdl_metadata.json").read_text())
    assert meta["inputs"] == [{"name": "x1", "rfield": 12, "bands": 3}]
    assert meta["classes"]["names"] == ["crop", "developed", "tree", "water"]
    assert meta["fully_conv"] == (arch == "fcn")
    html = (tmp_path / "report.html").read_text()
    assert "<svg" in html and "validation" in html and "log scale" in html
    assert "Confusion matrix" in html and "Learning rate (Adam)" in html
    # served with no receptive field, expression field or names given by hand
    out = tmp_path / "map.tif"
    sres = serve_model(ServeJob(str(tmp_path / "model"), [ServeSource(patches["image"], None)],
                                str(out), [], efield=None, fully_conv=None, output_type="uint8"))
    cmap, _, _ = read_raster(out)
    assert cmap.shape == (489, 489, 1) and sres["WIDTH"] == 489      # 500 - 12 + 1
    assert set(np.unique(cmap)) <= {1, 2, 3, 4}
    assert "crop" in gdal.Open(str(out)).GetMetadataItem("RSDL_CLASSES")
    assert 'label="water"' in (tmp_path / "map.qml").read_text()      # paletted style
    # the served map agrees with the validation accuracy the trainer reported
    import keras
    model = keras.saving.load_model(str(tmp_path / "model" / "model.keras"))
    x, _, _ = read_raster(patches["valid"][0])
    x = x.reshape(-1, 12, 12, 3).astype(np.float32)
    probs = model.predict(x, verbose=0).reshape(len(x), -1)
    labels, _, _ = read_raster(patches["valid"][1])
    oa = np.mean(np.array([1, 2, 3, 4])[probs.argmax(1)] == labels.ravel())
    assert oa == pytest.approx(res["OA"], abs=1e-9)


@pytest.mark.tensorflow
def test_fine_tuning_starts_from_the_saved_weights(patches, tmp_path):
    first = tmp_path / "first"
    train_model(job(patches, first, epochs=2, seed=1))
    meta = json.loads((first / "rsdl_metadata.json").read_text())
    second = tmp_path / "second"
    res = train_model(job(patches, second, model=str(first), restore=True, epochs=1, seed=3))
    hist = json.loads((second / "rsdl_metadata.json").read_text())["history"]
    assert hist[0]["epoch"] == 0
    assert hist[0]["val_loss"] == pytest.approx(meta["best_val_loss"], rel=1e-5)
    assert res["EPOCHS"] == 1
    scratch = tmp_path / "scratch"
    train_model(job(patches, scratch, model=str(first), restore=False, epochs=1))
    h0 = json.loads((scratch / "rsdl_metadata.json").read_text())["history"][0]["val_loss"]
    assert h0 != pytest.approx(meta["best_val_loss"], rel=1e-3)


def test_counts_that_disagree(patches, tmp_path):
    with pytest.raises(GridError) as e:
        train_model(TrainModelJob([TrainSource(patches["train"][0])], patches["valid"][1],
                                  str(tmp_path / "m")))
    assert e.value.param == "TRAIN_LABELS" and "disagree" in str(e.value)
    assert not (tmp_path / "m").exists()


@pytest.mark.tensorflow
def test_unknown_input_name_and_too_many_classes(patches, tmp_path):
    first = tmp_path / "first"
    train_model(job(patches, first, epochs=1))
    with pytest.raises(ModelError) as e:
        train_model(TrainModelJob([TrainSource(patches["train"][0], "image")],
                                  patches["train"][1], str(tmp_path / "m"), model=str(first)))
    assert "x1" in str(e.value) and e.value.param == "TRAIN_SOURCE1_NAME"
    # labels with a fifth class the model does not output
    lab, _, _ = read_raster(patches["train"][1])
    lab = lab.copy()
    lab[:10] = 9
    path = str(tmp_path / "labels9.tif")
    ds = gdal.GetDriverByName("GTiff").Create(path, 1, len(lab), 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(lab[..., 0])
    ds = None
    with pytest.raises(ModelError) as e:
        train_model(TrainModelJob([TrainSource(patches["train"][0])], path,
                                  str(tmp_path / "m"), model=str(first)))
    assert e.value.param == "TRAIN_LABELS" and "5 classes" in str(e.value)
    assert not (tmp_path / "m").exists()


@pytest.mark.tensorflow
def test_m3_fusion_with_a_time_series(patches, tmp_path):
    """CNN branch on 12 x 12 patches, GRU branch on a one-pixel 'series' (the 3 bands)."""
    d = patches["dir"]
    for s in ("train", "valid"):
        extract_patches(PatchesJob(str(d / f"{s}.gpkg"), [
            PatchSource(patches["image"], 12, str(tmp_path / f"{s}_a.tif")),
            PatchSource(patches["image"], 1, str(tmp_path / f"{s}_t.tif"))],
            field="name", output_labels=str(tmp_path / f"{s}_l.tif")))
    res = train_model(TrainModelJob(
        [TrainSource(str(tmp_path / "train_a.tif")), TrainSource(str(tmp_path / "train_t.tif"))],
        str(tmp_path / "train_l.tif"), str(tmp_path / "m3"),
        [TrainSource(str(tmp_path / "valid_a.tif")), TrainSource(str(tmp_path / "valid_t.tif"))],
        str(tmp_path / "valid_l.tif"), architecture="m3", epochs=2))
    assert res["OA"] > 0.3
    out = tmp_path / "m3.tif"
    serve_model(ServeJob(str(tmp_path / "m3"), [ServeSource(patches["image"], None),
                                                ServeSource(patches["image"], None)],
                         str(out), [], efield=None, fully_conv=None, output_type="uint8"))
    assert read_raster(out)[0].shape == (489, 489, 1)


@pytest.mark.tensorflow
def test_unet_on_dense_labels(patches, tmp_path):
    """Dense label patches from a label raster; served with an expression field of 8."""
    img = gdal.Open(patches["image"])
    bright = img.ReadAsArray().astype(float).sum(axis=0)
    labels = 1 + np.digitize(bright, np.quantile(bright, [0.33, 0.66])).astype(np.uint8)
    lab = write_on_grid_of(tmp_path / "labels.tif", labels, patches["image"])
    d = patches["dir"]
    for s in ("train", "valid"):
        extract_patches(PatchesJob(str(d / f"{s}.gpkg"), [PatchSource(patches["image"], 16,
                                                                      str(tmp_path / f"{s}_p.tif"))],
                                   label_raster=lab, label_patch_size=16,
                                   output_label_patches=str(tmp_path / f"{s}_lp.tif")))
    res = train_model(TrainModelJob([TrainSource(str(tmp_path / "train_p.tif"))],
                                    str(tmp_path / "train_lp.tif"), str(tmp_path / "unet"),
                                    [TrainSource(str(tmp_path / "valid_p.tif"))],
                                    str(tmp_path / "valid_lp.tif"), architecture="unet", epochs=2))
    assert res["OA"] > 0.34
    meta = json.loads((tmp_path / "unet" / "rsdl_metadata.json").read_text())
    assert (meta["inputs"][0]["rfield"], meta["efield"]) == (16, 8)
    out = tmp_path / "seg.tif"
    sres = serve_model(ServeJob(str(tmp_path / "unet"), [ServeSource(patches["image"], None)],
                                str(out), [], efield=None, fully_conv=None, output_type="uint8"))
    cmap = read_raster(out)[0]
    assert sres["WIDTH"] % 8 == 0 and set(np.unique(cmap)) <= {1, 2, 3}


def small_training_set(folder):
    """A small crop, its polygons, and patches of 8 px around samples: for tests that need
    a trained model quickly (ONNX export)."""
    crop, polys = classes_on_crop(LANDSAT, folder, [300, 100, 160, 160], 45, seed=2)
    pts = str(folder / "points.gpkg")
    sample_selection(SelectionJob(crop, pts, vector=polys, field="name", strategy="constant",
                                  samples=60, seed=1, valid_fraction=0))
    extract_patches(PatchesJob(pts, [PatchSource(crop, 8, str(folder / "patches.tif"))],
                               field="name", output_labels=str(folder / "labels.tif")))
    names = sorted({f for f in ("crop", "developed", "tree", "water")
                    if f in (folder / "labels.classes.csv").read_text()})
    return {"image": crop, "patches": str(folder / "patches.tif"),
            "labels": str(folder / "labels.tif"), "names": names}


@pytest.mark.tensorflow
def test_early_stop_keeps_the_best_epoch_and_the_report_advises(patches, tmp_path):
    """PATIENCE 1 at a rate too high to settle: training stops at the first epoch that
    does not beat the best validation loss, keeps that best epoch, and the report says
    so in plain words, with its settings."""
    lines = []

    class Log(Progress):
        def info(self, message):
            lines.append(message)

    res = train_model(job(patches, tmp_path / "model", architecture="fcn", epochs=10,
                          learning_rate=0.05, schedule="constant", patience=1,
                          output_report=str(tmp_path / "report.html")), Log())
    assert res["EPOCHS"] < 10 and res["BEST_EPOCH"] == res["EPOCHS"] - 1, res
    meta = json.loads((tmp_path / "model" / "rsdl_metadata.json").read_text())
    losses = [h["val_loss"] for h in meta["history"][1:]]
    assert losses[-1] >= min(losses[:-1]) and np.argmin(losses) == res["BEST_EPOCH"] - 1
    assert any(line.startswith("Early stop") for line in lines)
    stop = [t for t in lines if t.startswith("Advice: training stopped")]
    assert stop and f"epoch {res['BEST_EPOCH']} is kept" in stop[0]
    html = (tmp_path / "report.html").read_text()
    assert "training stopped at epoch" in html and "Learning-rate schedule" in html
    assert "constant" in html and "after 1 epochs" in html


def test_bad_schedule_and_patience_name_their_parameter(patches, tmp_path):
    from rsdl_qgis.errors import ParameterError
    with pytest.raises(ParameterError) as e:
        train_model(job(patches, tmp_path / "m", schedule="step"))
    assert e.value.param == "SCHEDULE"
    with pytest.raises(ParameterError) as e:
        train_model(job(patches, tmp_path / "m", patience=-1))
    assert e.value.param == "PATIENCE"


def fit_of(history, best, stopped=None, cancelled=False):
    from rsdl_qgis.models.training import _Fit
    return _Fit([{"epoch": 0}] + [dict(h, epoch=i + 1) for i, h in enumerate(history)],
                {"loss": 0.5, "weights": None, "epoch": best}, cancelled, "val_loss", stopped)


def test_advice_in_plain_words():
    from rsdl_qgis.models.training import advice
    j = TrainModelJob([], "", "", epochs=20, patience=5)
    swinging = [{"accuracy": 0.6 + 0.02 * i, "val_accuracy": v} for i, v in
                enumerate([0.5, 0.7, 0.55, 0.8, 0.78])]
    tips = advice(fit_of(swinging, best=4), j)
    assert any("fell by up to 15 points" in t and "Learning rate" in t for t in tips)
    assert not any("stopped" in t for t in tips)
    overfit = [{"accuracy": 0.99, "val_accuracy": 0.7}] * 3
    tips = advice(fit_of(overfit, best=1, stopped=3), j)
    assert any("learns the training polygons" in t for t in tips)
    assert any("stopped at epoch 3 of 20" in t and "epoch 1 is kept" in t for t in tips)
    rising = [{"accuracy": 0.5 + 0.1 * i, "val_accuracy": 0.5 + 0.1 * i} for i in range(4)]
    tips = advice(fit_of(rising, best=4), j)
    assert tips == ["the best epoch was the last one: the network was still improving; more "
                    "Epochs may give a better model"]
    assert "no validation patches" in advice(fit_of([{"accuracy": 0.9}], best=1), j)[0]
    smooth = [{"accuracy": 0.8, "val_accuracy": 0.78}, {"accuracy": 0.82, "val_accuracy": 0.8},
              {"accuracy": 0.83, "val_accuracy": 0.79}]
    assert advice(fit_of(smooth, best=2), j) == []


@pytest.mark.tensorflow
def test_a_loss_that_stops_being_a_number_writes_no_model(patches, tmp_path):
    """A learning rate of 1e30: the loss is NaN within the first epoch. The run stops
    there, names LEARNING_RATE with its value, and no model folder is left."""
    out = tmp_path / "model"
    with pytest.raises(ParameterError) as e:
        train_model(job(patches, out, architecture="fcn", epochs=3, learning_rate=1e30,
                        schedule="constant"))
    assert e.value.param == "LEARNING_RATE" and "1e+30" in str(e.value)
    assert "no model was written" in str(e.value) and "epoch 1" in str(e.value)
    assert not out.exists() and os.listdir(tmp_path) == []
