"""The plugin's desktop side: the dependency installer task and the environment report."""
import sys

from rsdl_qgis import deps


def test_environment_reports_versions_and_devices(qgis_app):
    info = deps.environment()
    assert info["TensorFlow"].startswith("2.") and "CPU" in info["Devices"]
    assert info["numpy"].startswith("1.26") and info["GDAL"].startswith("3.")
    assert "GPU" in info


def test_install_args_target_the_private_folder(tmp_path):
    args = deps.install_args(str(tmp_path / "deps"))
    assert args[args.index("--target") + 1] == str(tmp_path / "deps")
    assert any(a.startswith("tensorflow") for a in args) and deps.REQUIREMENTS in args


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
    code = ("import sys; from qgis.core import QgsApplication; "
            "app = QgsApplication([], False); app.initQgis(); "
            "import rsdl_qgis; p = rsdl_qgis.classFactory(None); p.initProcessing(); "
            "from qgis.core import QgsApplication as A; "
            "assert A.processingRegistry().algorithmById('rsdl:modelserve') is not None; "
            "print(sorted(m for m in ('numpy', 'osgeo.gdal', 'tensorflow', 'sklearn', "
            "'rsdl_qgis.engine.serve', 'rsdl_qgis.api') if m in sys.modules))")
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
    assert [d.name() for d in params] == ["image", "polygons", "field", "valid_fraction",
                                          "patch", "architecture", "epochs", "seed"]
    assert all(d.help() for d in params)
    outputs = [d for d in alg.parameterDefinitions() if d.isDestination()]
    assert [d.name() for d in outputs] == ["train:model", "train:training_report",
                                          "serve:class_map", "accuracy:accuracy_report"]
    assert all(d.description() and ":" not in d.description() for d in outputs)
    x = {cid: c.position().x() for cid, c in alg.childAlgorithms().items()}
    assert x["select"] < x["patches_train"] < x["train"] < x["serve"] < x["accuracy"]
