"""The plugin's desktop side: the dependency installer task and the environment report."""
import os
import sys

import pytest

from rsdl_qgis import deps


@pytest.mark.tensorflow
def test_environment_reports_versions_and_devices(qgis_app):
    info = deps.environment()
    assert info["TensorFlow"].startswith("2.") and "CPU" in info["Devices"]
    assert info["GDAL"].startswith("3.") and "GPU" in info
    # numpy: the private 1.26 where the host's is too old (QGIS 3.22), else the host's own
    import numpy
    assert info["numpy"].startswith(numpy.__version__)
    assert "Installed" in info and "apply" in info["Install kinds"]


def test_environment_says_which_kind_is_installed_and_offers_the_other(tmp_path, monkeypatch):
    folder = tmp_path / "deps"
    folder.mkdir()
    (folder / deps.MARKER).write_text('{"kind": "apply"}')
    monkeypatch.setenv(deps.ENV_VAR, str(folder))
    info = deps.environment()
    assert info["Installed"] == deps.KINDS["apply"]
    assert "everything" in info["To train and use TensorFlow models"] or \
        "no build for Python" in info["To train and use TensorFlow models"]
    (folder / deps.MARKER).write_text('{"kind": "full"}')
    info = deps.environment()
    assert info["Installed"] == deps.KINDS["full"] and "apply models only" in info["A lighter install"]


def test_the_menu_installs_with_qgis_python_into_the_shared_folder(qgis_app, monkeypatch, tmp_path):
    """The menu's two installs run deps.py with QGIS's own interpreter (never apt or make),
    into the folder every profile of this QGIS shares; while QGIS uses it, as .next."""
    from qgis.PyQt.QtWidgets import QMessageBox

    from rsdl_qgis import plugin
    started = []
    monkeypatch.setattr(QMessageBox, "question", lambda *a, **k: QMessageBox.StandardButton.Yes)
    monkeypatch.setattr(plugin.QgsApplication.taskManager(), "addTask",
                        lambda task: started.append(task))
    folder = tmp_path / "QGIS3" / "rsdl_qgis" / "python-deps" / deps.host_tag()
    monkeypatch.setenv(deps.ENV_VAR, str(folder))

    class Iface:
        def mainWindow(self):
            return None
    p = plugin.RsdlPlugin(Iface())
    p.install_deps("apply")
    args = started[-1].args
    assert args[0] == deps.find_python() and os.path.basename(args[1]) == "deps.py"
    assert args[2:] == ["install", "--kind", "apply", "--target", str(folder)]
    folder.mkdir(parents=True)
    p.install_deps("full")
    assert started[-1].args[-1] == "--next-start" and "full" in started[-1].args


def test_install_task_reports_progress_and_failures(qgis_app, tmp_path):
    from rsdl_qgis.plugin import InstallDepsTask
    ok_args = [sys.executable, "-c", "print('Collecting numpy'); print('Successfully installed x')",
               "--target", str(tmp_path / "a")]
    task = InstallDepsTask(ok_args)
    assert task.run() is True and task.progress() == 100.0
    assert task.report()[0] is True
    bad_args = [sys.executable, "-c", "import sys; print('ERROR: No matching distribution found "
                "for tensorflow'); sys.exit(1)", "--target", str(tmp_path / "b")]
    task = InstallDepsTask(bad_args)
    assert task.run() is False
    ok, message = task.report()
    assert not ok and "No matching distribution" in message and "status 1" in message


def test_loading_the_plugin_imports_no_numpy_gdal_or_runtime():
    """QGIS start-up and the toolbox pay for the plugin's own modules only: numpy, GDAL's
    bindings, TensorFlow and the engine come with the first run (docs/performance.md,
    Start-up). In a fresh process, as QGIS loads it."""
    import subprocess
    import sys

    from tests.conftest import ROOT
    # QGIS 3.40 imports numpy itself while it starts: what was loaded before the plugin
    # is not the plugin's
    code = ("import sys; from qgis.core import QgsApplication; "
            "app = QgsApplication([], False); app.initQgis(); "
            "before = set(sys.modules); "
            "import rsdl_qgis; p = rsdl_qgis.classFactory(None); p.initProcessing(); "
            "from qgis.core import QgsApplication as A; "
            "assert A.processingRegistry().algorithmById('rsdl:modelserve') is not None; "
            "print(sorted(m for m in ('numpy', 'osgeo.gdal', 'tensorflow', 'sklearn', "
            "'rsdl_qgis.engine.serve', 'rsdl_qgis.api') if m in sys.modules and m not in before))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.strip().splitlines()[-1] == "[]"


def test_the_chain_model_reads_in_workflow_order(qgis_app):
    """The shipped chain: a readable name, inputs in workflow order with help, every
    output labelled, and its steps laid out left to right."""
    from qgis.core import QgsApplication
    alg = QgsApplication.processingRegistry().algorithmById("rsdl:landcoverchain").create()
    assert alg.displayName() == "Land-cover map from training polygons (network)"
    params = [d for d in alg.parameterDefinitions() if not d.isDestination()]
    assert [d.name() for d in params] == ["image", "polygons", "field", "test_polygons",
                                          "valid_fraction", "patch", "architecture",
                                          "epochs", "seed"]
    assert all(d.help() for d in params)
    outputs = [d for d in alg.parameterDefinitions() if d.isDestination()]
    assert [d.name() for d in outputs] == ["train:model", "train:training_report",
                                          "serve:class_map", "accuracy:accuracy_report"]
    assert all(d.description() and ":" not in d.description() for d in outputs)
    # each output is a result too (the reports reach the Results Viewer as HTML)
    assert [(d.name(), d.type()) for d in alg.outputDefinitions()] == [
        ("train:model", "outputFolder"), ("train:training_report", "outputHtml"),
        ("serve:class_map", "outputRaster"), ("accuracy:accuracy_report", "outputHtml")]
    x = {cid: c.position().x() for cid, c in alg.childAlgorithms().items()}
    assert x["select"] < x["patches_train"] < x["train"] < x["serve"] < x["accuracy"]


def test_the_chain_bar_follows_the_steps_length(qgis_app):
    """The chain's progress is shared by the steps' usual length: QGIS's equal sixths
    become weighted ones, in the order QGIS runs the steps; a cancel passes through."""
    from qgis.core import QgsApplication, QgsProcessingFeedback

    from rsdl_qgis.provider import STEP_WEIGHTS, WeightedFeedback
    model = QgsApplication.processingRegistry().algorithmById("rsdl:landcoverchain").create()
    order = model.execution_order()
    assert order == ["select", "patches_train", "patches_valid", "train", "serve", "accuracy"]
    weights = [STEP_WEIGHTS.get(model.childAlgorithm(c).algorithmId(), 1.0) for c in order]
    assert weights == [1.0, 1.0, 1.0, 20.0, 3.0, 1.0]
    outer = QgsProcessingFeedback()
    seen = []
    outer.progressChanged.connect(seen.append)
    inner = WeightedFeedback(outer, weights)
    for value in (100.0 * 3 / 6, 100.0 * 3.5 / 6, 100.0 * 4 / 6, 100.0):
        inner.setProgress(value)
    total = sum(weights)
    assert seen == pytest.approx([100 * 3 / total, 100 * 13 / total,
                                  100 * 23 / total, 100.0])
    outer.cancel()
    assert inner.isCanceled()
