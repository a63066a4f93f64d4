"""QGIS entry point: registers the Processing provider (also under qgis_process), and in
QGIS desktop a menu: install or update the Python dependencies, show the environment."""
import os
import subprocess
import sys

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask

from . import deps
from .provider import RsdlProvider

MENU = "Remote sensing deep learning"


class InstallDepsTask(QgsTask):
    """pip install into the plugin's private folder, as a background task with progress;
    the report names what failed."""

    def __init__(self, args, on_done=None):
        super().__init__("rsdl_qgis: install Python dependencies", QgsTask.CanCancel)
        self.args, self.on_done = args, on_done
        self.log, self.returncode, self.error = [], None, None

    def run(self):
        try:
            os.makedirs(os.path.dirname(self.args[self.args.index("--target") + 1]),
                        exist_ok=True)
            proc = subprocess.Popen(self.args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                    text=True, bufsize=1, **deps.NO_WINDOW)
        except OSError as exc:
            self.error = str(exc)
            return False
        seen = 0
        for line in proc.stdout or ():
            self.log.append(line.rstrip())
            if line.startswith(("Collecting", "Downloading", "Installing", "Successfully")):
                seen += 1
                self.setProgress(min(95.0, 3.0 * seen))
            if self.isCanceled():
                proc.terminate()
                proc.wait()
                self.error = "cancelled"
                return False
        self.returncode = proc.wait()
        self.setProgress(100.0)
        return self.returncode == 0

    def report(self):
        if self.returncode == 0:
            return True, "Dependencies installed. Restart QGIS to use them."
        # the installer's own one line first (deps.py: "rsdl_qgis: ..."), else pip's errors
        tail = ("\n".join(line for line in self.log if line.startswith("rsdl_qgis:")) or
                "\n".join(line for line in self.log if "error" in line.lower())[-2000:] or
                "\n".join(self.log[-15:]))
        why = self.error or f"the installer exited with status {self.returncode}"
        return False, (f"Installing the dependencies failed ({why}).\n{tail}\n\nCommand: "
                       + " ".join(self.args))

    def finished(self, result):  # noqa: D401 (QGIS callback, in the main thread)
        ok, message = self.report()
        QgsMessageLog.logMessage("\n".join(self.log[-200:]), "rsdl_qgis",
                                 Qgis.Info if ok else Qgis.Critical)
        if self.on_done:
            self.on_done(ok, message)


class RsdlPlugin:
    def __init__(self, iface):
        self.iface = iface
        self.provider = None
        self.actions = []
        self.task = None

    def initProcessing(self):  # noqa: N802 (QGIS's name), called by qgis_process too
        if self.provider is None:
            self.provider = RsdlProvider()
            QgsApplication.processingRegistry().addProvider(self.provider)
            # models shipped with the plugin resolve their steps (rsdl:...) only once the
            # provider is registered: load them again now
            self.provider.refreshAlgorithms()

    def initGui(self):  # noqa: N802
        self.initProcessing()
        from qgis.PyQt.QtWidgets import QAction

        from .algorithms.base import icon
        for text, slot in (
                ("Install Python dependencies: everything (TensorFlow)",
                 lambda: self.install_deps("full")),
                ("Install Python dependencies: apply models only (ONNX Runtime)",
                 lambda: self.install_deps("apply")),
                ("Environment", self.show_environment)):
            action = QAction(icon("serving"), text, self.iface.mainWindow())
            action.triggered.connect(slot)
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)

    def unload(self):
        for action in self.actions:
            self.iface.removePluginMenu(MENU, action)
        self.actions = []
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None

    def install_deps(self, kind="full"):
        """Install (or update) the dependencies of `kind` with QGIS's own Python, into the
        folder shared by the profiles of this QGIS; while QGIS uses the current folder, the
        new one is swapped in at the next start."""
        from qgis.PyQt.QtWidgets import QMessageBox
        folder = deps.deps_dir()
        python = deps.find_python()
        if python is None:
            QMessageBox.critical(
                self.iface.mainWindow(), MENU,
                f"QGIS's Python interpreter was not found (QGIS runs as {sys.executable}, "
                f"Python in {sys.exec_prefix}). Install with: {deps.install_command(kind=kind)}")
            return
        p = deps.plan(kind)
        args = [python, os.path.join(deps.PLUGIN_DIR, "deps.py"), "install", "--kind", kind,
                "--target", folder]
        if folder in sys.path or os.path.isdir(folder):
            args.append("--next-start")
        answer = QMessageBox.question(
            self.iface.mainWindow(), MENU,
            f"{deps.KINDS[p.kind]}.\n\nInstall or update into\n{folder}\n(shared by the "
            f"profiles of this QGIS)?\n\n" + "\n".join(p.notes) +
            f"\n\nThis downloads with pip ({deps.KIND_SIZES[p.kind]} installed) and runs in the background; "
            f"the new packages are used after QGIS restarts.\n\n" + " ".join(args))
        if answer != QMessageBox.StandardButton.Yes:
            return
        self.task = InstallDepsTask(args, self._install_done)
        QgsApplication.taskManager().addTask(self.task)

    def _install_done(self, ok, message):
        bar = self.iface.messageBar()
        if ok:
            bar.pushSuccess(MENU, message)
        else:
            from qgis.PyQt.QtWidgets import QMessageBox
            bar.pushCritical(MENU, "Installing the dependencies failed: see the details")
            QMessageBox.critical(self.iface.mainWindow(), MENU, message)

    def show_environment(self):
        from qgis.PyQt.QtCore import Qt
        from qgis.PyQt.QtWidgets import QMessageBox
        info = deps.environment()
        text = "\n".join(f"{k}: {v}" for k, v in info.items())
        box = QMessageBox(QMessageBox.Icon.Information, f"{MENU}: environment", text,
                          QMessageBox.StandardButton.Ok, self.iface.mainWindow())
        box.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        box.exec()
