"""Parity with OTBTF's TensorflowModelServe on its own models and images.

Oracles are independent of the engine: patches cut at the physical point of every
output pixel (GDAL geotransforms, plain indexing) and fed to the model directly, or the
model applied once to the whole aligned image.
"""
import os

import numpy as np
import pytest

from rsdl_qgis.api import ServeJob, ServeSource, serve_model
from rsdl_qgis.models import load_model
from tests.conftest import read_raster

# OTBTF's SavedModels and Keras: TensorFlow (conftest skips these without it)
pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings("ignore")]


def img(otbtf, name):
    a, gt, _ = read_raster(os.path.join(otbtf, name))
    return a.astype(np.float32), gt


def patch_oracle(model, out_gt, shape, sources, output):
    """Per output pixel, one centred patch per source; returns (rows, cols) values."""
    rows, cols = shape
    feeds = {}
    for name, (array, gt, rf) in sources.items():
        patches = []
        for r in range(rows):
            for c in range(cols):
                x = out_gt[0] + (c + 0.5) * out_gt[1]
                y = out_gt[3] + (r + 0.5) * out_gt[5]
                ci = int(np.floor((x - gt[0]) / gt[1] + 1e-6)) - rf // 2
                ri = int(np.floor((y - gt[3]) / gt[5] + 1e-6)) - rf // 2
                assert ci >= 0 and ri >= 0
                patches.append(array[ri:ri + rf, ci:ci + rf])
        feeds[name] = np.stack(patches)
    return model.run(feeds, [output])[0].reshape(rows, cols)


def serve(tmp_path, model, sources, output, **kw):
    out = str(tmp_path / "out.tif")
    job = ServeJob(model, [ServeSource(p, rf, n) for p, rf, n in sources], out, [output], **kw)
    serve_model(job)
    got, gt, _ = read_raster(out)
    return got[..., 0], gt


def test_model1_patch_based(tmp_path, otbtf):
    pxs, pgt = img(otbtf, "pxs_subset.tif")
    got, gt = serve(tmp_path, f"{otbtf}/models/model1", [(f"{otbtf}/pxs_subset.tif", 16, "x")],
                    "prediction", batch_size=100, tile_size=48)
    assert got.shape == (113, 113)
    assert gt[0] == pgt[0] + 8 * 1.5 and gt[3] == pgt[3] - 8 * 1.5
    m = load_model(f"{otbtf}/models/model1")
    expected = patch_oracle(m, gt, got.shape, {"x": (pxs, pgt, 16)}, "prediction")
    np.testing.assert_array_equal(got, expected)
    assert len(np.unique(got)) > 1


@pytest.mark.parametrize("fully_conv", [False, True])
def test_model3_both_modes_equal_whole_image(tmp_path, otbtf, fully_conv):
    pxs, pgt = img(otbtf, "pxs_subset.tif")
    got, gt = serve(tmp_path, f"{otbtf}/models/model3", [(f"{otbtf}/pxs_subset.tif", 16, "x")],
                    "prediction", fully_conv=fully_conv, tile_size=40)
    m = load_model(f"{otbtf}/models/model3")
    whole = m.run({"x": pxs[None]}, ["prediction"])[0].reshape(113, 113)
    assert gt[0] == pgt[0] + 12
    np.testing.assert_array_equal(got, whole)


def test_model4_fully_conv_64_to_32(tmp_path, otbtf):
    pxs2, pgt = img(otbtf, "pxs_subset2.tif")
    got, gt = serve(tmp_path, f"{otbtf}/models/model4", [(f"{otbtf}/pxs_subset2.tif", 64, "x")],
                    "prediction_fcn", efield=32, fully_conv=True, tile_size=32)
    assert got.shape == (96, 96)
    assert gt[0] == pytest.approx(pgt[0] + 16 * 1.5) and gt[3] == pytest.approx(pgt[3] - 16 * 1.5)
    m = load_model(f"{otbtf}/models/model4")
    whole = m.run({"x": pxs2[None, :128, :128]}, ["prediction_fcn"])[0].reshape(96, 96)
    np.testing.assert_array_equal(got, whole)


@pytest.mark.parametrize("scale", [1.0, 4.0])
def test_model2_two_sources_patch_based(tmp_path, otbtf, scale):
    xs, xgt = img(otbtf, "xs_subset.tif")
    pan, pgt = img(otbtf, "pan_subset.tif")
    got, gt = serve(tmp_path, f"{otbtf}/models/model2",
                    [(f"{otbtf}/xs_subset.tif", 8, "x1"), (f"{otbtf}/pan_subset.tif", 32, "x2")],
                    "prediction", scale=scale, tile_size=5)
    assert gt[1] == 6.0 * scale
    assert got.shape == ((24, 24) if scale == 1 else (6, 6))
    m = load_model(f"{otbtf}/models/model2")
    expected = patch_oracle(m, gt, got.shape, {"x1": (xs, xgt, 8), "x2": (pan, pgt, 32)},
                            "prediction")
    np.testing.assert_array_equal(got, expected)


def test_model2_fully_conv_equals_patch_based(tmp_path, otbtf):
    sources = [(f"{otbtf}/xs_subset.tif", 8, "x1"), (f"{otbtf}/pan_subset.tif", 32, "x2")]
    pb, gt_pb = serve(tmp_path, f"{otbtf}/models/model2", sources, "prediction")
    fc, gt_fc = serve(tmp_path, f"{otbtf}/models/model2", sources, "prediction",
                      fully_conv=True, tile_size=7)
    assert gt_pb == gt_fc
    np.testing.assert_array_equal(pb, fc)


def test_patch_based_job_is_offered_fully_convolutional_only_when_equal(tmp_path, otbtf):
    """model3 and model2 give the same values both ways (test_model3_both_modes...,
    test_model2_fully_conv...): a patch-based run says so and suggests FULLY_CONV.
    model1 is a patch classifier (one value per patch): nothing is offered."""
    from rsdl_qgis.engine.progress import Progress
    from rsdl_qgis.engine.serve import runs_fully_conv

    class Log(Progress):
        def __init__(self):
            self.lines = []

        def info(self, message):
            self.lines.append(message)

    pxs = f"{otbtf}/pxs_subset.tif"
    log = Log()
    serve_model(ServeJob(f"{otbtf}/models/model3", [ServeSource(pxs, 16, "x")],
                         str(tmp_path / "m3.tif"), ["prediction"]), log)
    assert any("same values in fully-convolutional mode" in m for m in log.lines)
    m1 = load_model(f"{otbtf}/models/model1")
    job1 = ServeJob(f"{otbtf}/models/model1", [ServeSource(pxs, 16, "x")],
                    str(tmp_path / "m1.tif"), ["prediction"])
    assert not runs_fully_conv(job1, m1)
    log = Log()
    serve_model(job1, log)
    assert not any("fully-convolutional mode" in m for m in log.lines)
    # a job already fully convolutional is not offered anything either
    m3 = load_model(f"{otbtf}/models/model3")
    assert not runs_fully_conv(ServeJob(f"{otbtf}/models/model3", [ServeSource(pxs, 16, "x")],
                                        "", ["prediction"], fully_conv=True), m3)


@pytest.mark.parametrize("fully_conv", [True, False])
def test_pad_mirrors_the_edges_and_covers_the_whole_image(tmp_path, otbtf, fully_conv):
    """PAD: the output is on SOURCE1's own grid (128 x 128, same geotransform), and its
    values are the model's on the image mirrored by RF // 2 before and RF - 1 - RF // 2
    after (numpy's 'reflect'), applied once to the whole mirrored image."""
    pxs, pgt = img(otbtf, "pxs_subset.tif")
    got, gt = serve(tmp_path, f"{otbtf}/models/model3", [(f"{otbtf}/pxs_subset.tif", 16, "x")],
                    "prediction", fully_conv=fully_conv, tile_size=48, pad=True)
    assert got.shape == (128, 128) and gt == pgt
    mirrored = np.pad(pxs, ((8, 7), (8, 7), (0, 0)), mode="reflect")
    m = load_model(f"{otbtf}/models/model3")
    whole = m.run({"x": mirrored[None]}, ["prediction"])[0].reshape(128, 128)
    np.testing.assert_array_equal(got, whole)
    # without PAD the map is OTBTF's, RF - 1 pixels smaller
    plain, _ = serve(tmp_path, f"{otbtf}/models/model3", [(f"{otbtf}/pxs_subset.tif", 16, "x")],
                     "prediction", fully_conv=fully_conv, tile_size=48)
    np.testing.assert_array_equal(got[8:121, 8:121], plain)
