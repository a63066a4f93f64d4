"""A session in the real QGIS desktop, driven as a user would, for screenshots and checks.

Run inside QGIS (`qgis --code scripts/desktop-session.py`, see scripts/desktop-session):
the Processing toolbox shows the provider, algorithm dialogs run the chain on the bundled
sample data as background tasks (every algorithm of the provider, and the shipped chain
model), a run is cancelled, and the class map is loaded with its style. While algorithms
run, a timer in the GUI thread measures how long the event loop is ever blocked, and the
dialog's progress bar is sampled.

Writes into $RSDL_DESKTOP_OUT: report.json (measurements, or the error that stopped the
session) and the screenshots toolbox.png, dialog.png, running.png, class_map.png.
QGIS exits when the session ends (status 0, or 1 on failure).
"""
import json
import os
import sys
import time
import traceback

from qgis.core import QgsApplication, QgsProject, QgsRasterLayer, QgsVectorLayer
from qgis.PyQt.QtCore import Qt, QTimer
from qgis.PyQt.QtGui import QImage
from qgis.PyQt.QtWidgets import QApplication, QDockWidget, QProgressBar, QTextEdit
from qgis.utils import iface

ROOT = os.environ.get("RSDL_ROOT", os.getcwd())  # QGIS runs --code without __file__
DATA = os.path.join(ROOT, "sample-data", "landsat")
OUT = os.environ["RSDL_DESKTOP_OUT"]
WIDTH, HEIGHT = 1400, 900
#: one dialog's run may take this long; the whole session is stopped at DESKTOP_TIMEOUT
STEP_LIMIT_S = int(os.environ.get("DESKTOP_STEP_LIMIT", "420"))
report = {"steps": [], "runs": {}}


class Heartbeat:
    """Ticks every 20 ms in the GUI thread; the longest gap is how long QGIS froze."""

    def __init__(self):
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self.tick)
        self.last = None
        self.max_gap = 0.0
        self.ticks = 0

    def start(self):
        self.last, self.max_gap, self.ticks = time.perf_counter(), 0.0, 0
        self.t0, self.freezes = self.last, []
        self.timer.start()

    def tick(self):
        now = time.perf_counter()
        gap = now - self.last
        self.max_gap = max(self.max_gap, gap)
        if gap > 0.15:
            self.freezes.append((round(now - self.t0 - gap, 2), round(gap, 3)))
        self.last, self.ticks = now, self.ticks + 1

    def stop(self):
        self.timer.stop()
        return {"max_gui_gap_s": round(self.max_gap, 3), "ticks": self.ticks,
                "freezes": self.freezes}


def save(pixmap, name):
    """PNG with a 256-colour palette: a fifth of the size, no visible loss on a UI."""
    flags = Qt.ImageConversionFlag.ThresholdDither | Qt.ImageConversionFlag.PreferDither
    image = pixmap.toImage().convertToFormat(QImage.Format.Format_Indexed8, flags)
    image.save(os.path.join(OUT, name), "PNG", 9)


def grab_screen(name):
    QApplication.processEvents()
    save(QApplication.primaryScreen().grabWindow(0), name)


def grab(widget, name):
    QApplication.processEvents()
    save(widget.grab(), name)


def toolbox():
    from qgis.utils import plugins
    return plugins["processing"].toolbox


def open_dialog(alg_id, params):
    import processing
    dlg = processing.createAlgorithmDialog(alg_id, params)
    dlg.resize(640, 760)
    dlg.move(WIDTH - 660, 60)
    dlg.show()
    return dlg


def progress_of(dlg):
    return dlg.findChild(QProgressBar).value()


def log_of(dlg):
    logs = [w for w in dlg.findChildren(QTextEdit) if w.objectName() == "txtLog"]
    return logs[0].toPlainText() if logs else ""


def run_dialog(dlg, name, cancel_at=None):
    """Click Run; wait (yielding to the event loop) until the task ends. Records the
    progress bar, the tasks in QGIS's task manager and the GUI's longest freeze."""
    run = {"progress": [], "alg": dlg.algorithm().id()}
    done = {}
    dlg.algorithmFinished.connect(lambda ok, res: done.update(ok=ok, results=res))
    manager, tasks = QgsApplication.taskManager(), []

    ended = {}

    def added(task_id):
        task = manager.task(task_id)
        tasks.append(type(task).__name__ if task is not None else "?")
        if hasattr(task, "executed"):            # the algorithm's own task
            task.executed.connect(
                lambda ok, res: ended.update(ok=ok, at=time.perf_counter()))
    manager.taskAdded.connect(added)
    beat = Heartbeat()
    beat.start()
    start = time.perf_counter()
    dlg.runAlgorithm()
    cancelled_at = None
    while "ok" not in done:
        yield 100
        # QGIS 3.40 and later emit no algorithmFinished for a cancelled run (its
        # post-processing stops at the cancel): the task's own end says it then
        if ended.get("ok") is False and time.perf_counter() - ended["at"] > 2:
            done["ok"] = False
            break
        value = progress_of(dlg)
        if not run["progress"] or run["progress"][-1][1] != value:
            run["progress"].append((round(time.perf_counter() - start, 2), value))
        if cancel_at is not None and cancelled_at is None and cancel_at <= value < 100:
            cancelled_at = time.perf_counter()
            run["cancelled_at_progress"] = value
            dlg.cancelButton().click()
        if time.perf_counter() - start > STEP_LIMIT_S:
            # what the screen shows then says why (a dialog waiting for an answer, say)
            grab_screen(f"stuck-{name}.png")
            raise RuntimeError(f"{name}: not finished after {STEP_LIMIT_S} s "
                               f"(screen: stuck-{name}.png)")
    manager.taskAdded.disconnect(added)
    # a threaded run is a QgsProcessingAlgRunnerTask; a run in the GUI thread would only
    # show a QgsProxyProgressTask
    run["tasks"] = tasks
    run["background_task"] = "QgsProcessingAlgRunnerTask" in tasks
    run.update(beat.stop())
    run["seconds"] = round(time.perf_counter() - start, 2)
    run["ok"] = bool(done.get("ok", False))
    if cancelled_at is not None:
        run["stopped_after_cancel_s"] = round(time.perf_counter() - cancelled_at, 2)
    run["log"] = log_of(dlg)[-3000:]
    run["log_head"] = log_of(dlg)[:3000]          # the parameters the dialog passed
    report["runs"][name] = run
    return done.get("results", {})


def session():
    win = iface.mainWindow()
    win.setGeometry(0, 0, WIDTH, HEIGHT)
    out = os.path.join(OUT, "work")
    os.makedirs(out, exist_ok=True)
    scene = os.path.join(DATA, "scene.tif")
    polygons = os.path.join(DATA, "training.gpkg")
    test = os.path.join(DATA, "test.gpkg")
    project = QgsProject.instance()
    layer = QgsRasterLayer(scene, "scene (Landsat 8)")
    project.addMapLayer(layer)
    project.addMapLayer(QgsVectorLayer(polygons, "training"))
    project.addMapLayer(QgsVectorLayer(test, "test"))
    iface.mapCanvas().setExtent(layer.extent())
    iface.mapCanvas().refresh()

    # 1. the provider in the Processing toolbox
    box = toolbox()
    box.setVisible(True)
    box.raise_()
    for dock in win.findChildren(QDockWidget):
        if dock.objectName() == "Browser":
            dock.setVisible(False)
    box.searchBox.setText("rsdl")
    yield 1500
    grab(win, "toolbox.png")
    names = {a.id() for a in QgsApplication.processingRegistry().providerById("rsdl").algorithms()}
    report["provider_algorithms"] = sorted(names)
    report["steps"].append("toolbox")

    # the plugin's menu; "Environment" opens a modal box, read and closed by a timer
    menu = [m for m in iface.pluginMenu().actions() if m.text() == "Remote sensing deep learning"]
    actions = menu[0].menu().actions() if menu else []
    report["plugin_menu"] = [a.text() for a in actions]

    def read_box():
        box = QApplication.activeModalWidget()
        if box is not None:
            grab(box, "environment.png")
            report["environment"] = box.text() if hasattr(box, "text") else ""
            box.accept()
    QTimer.singleShot(1500, read_box)
    for a in actions:
        if a.text() == "Environment":
            a.trigger()
    yield 100

    # 2. sampling, from dialogs, as background tasks. Every dialog gets its inputs and
    # where to write; every other parameter keeps the dialog's default, but for the
    # samples: 300 per class (the suite's time; `make demo` runs the defaults)
    dlg = open_dialog("rsdl:classstatistics", {
        "INPUT": scene, "VECTOR": polygons, "FIELD": "name",
        "OUTPUT": os.path.join(out, "class_statistics.csv")})
    yield from run_dialog(dlg, "classstatistics")
    dlg.close()
    dlg = open_dialog("rsdl:sampleselection", {
        "INPUT": scene, "VECTOR": polygons, "FIELD": "name", "STRATEGY": 1, "SAMPLES": 300,
        "OUTPUT": os.path.join(out, "train_points.gpkg"),
        "OUTPUT_VALID": os.path.join(out, "valid_points.gpkg")})
    yield 500
    grab(dlg, "dialog.png")
    yield from run_dialog(dlg, "sampleselection")
    dlg.close()
    for s in ("train", "valid"):
        dlg = open_dialog("rsdl:patchesextraction", {
            "VECTOR": os.path.join(out, f"{s}_points.gpkg"), "FIELD": "name",
            "SOURCE1": scene,
            "OUTPUT_SOURCE1": os.path.join(out, f"{s}_patches.tif"),
            "OUTPUT_LABELS": os.path.join(out, f"{s}_labels.tif")})
        yield from run_dialog(dlg, f"patches_{s}")
        dlg.close()
    report["steps"].append("sampling")

    # 3. training, with a screenshot of the run in progress
    train = {"TRAIN_SOURCE1": os.path.join(out, "train_patches.tif"),
             "TRAIN_LABELS": os.path.join(out, "train_labels.tif"),
             "VALID_SOURCE1": os.path.join(out, "valid_patches.tif"),
             "VALID_LABELS": os.path.join(out, "valid_labels.tif"),
             "OUTPUT": os.path.join(out, "fcn_model"),
             "OUTPUT_REPORT": os.path.join(out, "training_report.html")}
    dlg = open_dialog("rsdl:trainmodel", train)
    shot = {"taken": False}

    def watch():
        if not shot["taken"] and 25 <= progress_of(dlg) < 90:
            shot["taken"] = True
            grab_screen("running.png")
            report["running_screenshot_progress"] = progress_of(dlg)
    watcher = QTimer()
    watcher.timeout.connect(watch)
    watcher.start(50)
    yield from run_dialog(dlg, "trainmodel")
    watcher.stop()
    dlg.close()
    report["steps"].append("training")

    # 4. cancel: serving patch-based (slow on purpose) stops and leaves no output
    cancelled = os.path.join(out, "cancelled.tif")
    dlg = open_dialog("rsdl:modelserve", {
        "MODEL": os.path.join(out, "fcn_model"), "SOURCE1": scene, "FULLY_CONV": False,
        "OUTPUT": cancelled})
    yield from run_dialog(dlg, "modelserve_cancel", cancel_at=1)
    report["runs"]["modelserve_cancel"]["output_left"] = os.path.exists(cancelled)
    dlg.close()
    report["steps"].append("cancel")

    # 5. serving; the class map loads with its style
    classes = os.path.join(out, "network_classes.tif")
    # the mode is left to the model's metadata (the dialog's default)
    dlg = open_dialog("rsdl:modelserve", {
        "MODEL": os.path.join(out, "fcn_model"), "SOURCE1": scene, "OUTPUT": classes})
    # the MODEL widget: a folder (a SavedModel) or a file, from its button's menu
    from rsdl_qgis.algorithms.widgets import ModelPanel
    panels = dlg.findChildren(ModelPanel)
    report["model_widget"] = {
        "value": panels[0].getValue() if panels else None,
        "choices": [a.text() for a in panels[0].btnSelect.menu().actions()] if panels else []}
    yield from run_dialog(dlg, "modelserve")
    dlg.close()
    loaded = [lyr for lyr in project.mapLayers().values()
              if os.path.abspath(lyr.source()) == os.path.abspath(classes)]
    report["class_map_loaded"] = bool(loaded)
    if loaded:
        lyr = loaded[0]
        renderer = lyr.renderer()
        report["class_map_renderer"] = renderer.type()
        if renderer.type() == "paletted":
            report["class_map_legend"] = [c.label for c in renderer.classes()]
        iface.layerTreeView().refreshLayerSymbology(lyr.id())
        # the legend open on the map's classes, the scene's three bands folded
        root = project.layerTreeRoot()
        root.findLayer(lyr.id()).setExpanded(True)
        root.findLayer(layer.id()).setExpanded(False)
    # as a user tidies up: the patches images and the panels of the earlier steps go
    for lyr in list(project.mapLayers().values()):
        if lyr.source().endswith(("_patches.tif", "_labels.tif")):
            project.removeMapLayer(lyr.id())
    for dock in win.findChildren(QDockWidget):
        if dock.objectName() in ("ProcessingToolbox", "ResultsViewer") or \
                dock.windowTitle() == "Results Viewer":
            dock.setVisible(False)
    iface.messageBar().clearWidgets()
    iface.mapCanvas().setExtent(layer.extent())
    iface.mapCanvas().refresh()
    yield 2500
    grab(win, "class_map.png")
    report["steps"].append("class_map")

    # 6. accuracy of the map on the test polygons (blocks no step trained on)
    dlg = open_dialog("rsdl:accuracy", {
        "INPUT": classes, "REFERENCE": test, "FIELD": "name",
        "OUTPUT_MATRIX": os.path.join(out, "matrix.csv"),
        "OUTPUT_REPORT": os.path.join(out, "accuracy.html")})
    results = yield from run_dialog(dlg, "accuracy")
    dlg.close()
    report["accuracy"] = {k: v for k, v in results.items() if k in ("OA", "KAPPA", "F1_MEAN")}
    # the points of a probability sample of the map, to interpret for good practice
    dlg = open_dialog("rsdl:samplingdesign", {
        "INPUT": classes, "OUTPUT": os.path.join(out, "design.gpkg")})
    results = yield from run_dialog(dlg, "samplingdesign")
    dlg.close()
    report["design"] = {k: results.get(k) for k in ("SAMPLES", "ALLOCATION")}
    report["steps"].append("accuracy")

    # 7. deep features: a random forest on the network's outputs (settings from the
    # model's metadata), then the image classified with it
    dlg = open_dialog("rsdl:trainclassifier", {
        "INPUT": scene, "VECTOR": polygons, "FIELD": "name",
        "MODEL": os.path.join(out, "fcn_model"),
        "OUTPUT": os.path.join(out, "deep_rf.rsdlc")})
    yield from run_dialog(dlg, "trainclassifier")
    dlg.close()
    dlg = open_dialog("rsdl:classify", {
        "INPUT": scene, "CLASSIFIER": os.path.join(out, "deep_rf.rsdlc"),
        "OUTPUT": os.path.join(out, "deep_rf_classes.tif"),
        "OUTPUT_CONFIDENCE": os.path.join(out, "deep_rf_confidence.tif")})
    yield from run_dialog(dlg, "classify")
    dlg.close()
    report["steps"].append("deep_features")

    # the trained network exported to ONNX, for other tools
    dlg = open_dialog("rsdl:exportonnx", {
        "MODEL": os.path.join(out, "fcn_model"), "OUTPUT": os.path.join(out, "fcn_model.onnx")})
    yield from run_dialog(dlg, "exportonnx")
    dlg.close()
    report["steps"].append("export_onnx")

    # 8. the shipped modeler model of the whole chain, from its dialog (3 epochs: the
    # network was trained with the defaults above already)
    dlg = open_dialog("rsdl:landcoverchain", {
        "image": scene, "polygons": polygons, "field": "name", "epochs": 3,
        "test_polygons": os.path.join(os.path.dirname(polygons), "test.gpkg"),
        "serve:class_map": os.path.join(out, "chain_classes.tif")})
    yield 500
    dlg.setParameters({"field": "name"})   # the dialog puts the layer's first field there
    yield 200
    before = set(QgsProject.instance().mapLayers())
    yield from run_dialog(dlg, "landcoverchain")
    # what the person sees after the run: the layers it added, the reports in the
    # Results Viewer (a layer not found is reported in the dialog's log)
    report["chain_layers"] = sorted(QgsProject.instance().mapLayer(i).name()
                                    for i in set(QgsProject.instance().mapLayers()) - before)
    from processing.core.ProcessingResults import resultsList
    report["results_viewer"] = [r.name for r in resultsList.getResults()]
    dlg.close()
    report["steps"].append("chain")


def finish(code):
    with open(os.path.join(OUT, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    sys.stdout.flush()
    os._exit(code)


def pump(gen):
    try:
        wait = next(gen)
    except StopIteration:
        finish(0)
        return
    except Exception:  # the report says what stopped the session
        report["error"] = traceback.format_exc()
        finish(1)
        return
    QTimer.singleShot(wait, lambda: pump(gen))


os.makedirs(OUT, exist_ok=True)
_session = session()
QTimer.singleShot(3000, lambda: pump(_session))
