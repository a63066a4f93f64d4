"""The plugin's private dependency folder.

Pinned Python dependencies (TensorFlow, numpy 1.26, scikit-learn...) live in a folder of
their own, outside the system Python, and go first on ``sys.path`` when the plugin
loads. Debian's GDAL bindings break on numpy 2, so the order matters: this must run
before anything imports numpy. No qgis import at module level: the engine's tests use
this module too.
"""
import importlib
import os
import sys

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
REQUIREMENTS = os.path.join(PLUGIN_DIR, "requirements.txt")
ENV_VAR = "RSDL_QGIS_DEPS"


def profile_deps_dir(profile_dir):
    """Where `make install` and the plugin menu put dependencies for a QGIS profile."""
    return os.path.join(profile_dir, "rsdl_qgis", "python-deps")


def deps_dir():
    """The dependency folder in use: $RSDL_QGIS_DEPS, else the active QGIS profile's."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        from qgis.core import QgsApplication
    except ImportError:
        return None
    return profile_deps_dir(QgsApplication.qgisSettingsDirPath())


def activate(path=None):
    """Put the dependency folder first on sys.path. Returns the folder, or None."""
    path = path or deps_dir()
    if not path or not os.path.isdir(path):
        return None
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    importlib.invalidate_caches()
    return path


#: the one place where the versions of the accelerated runtimes are pinned (the Makefile
#: asks this module: `python3 rsdl_qgis/deps.py packages`)
TENSORFLOW = "2.21.0"
ONNXRUNTIME = "1.31.1"


def has_nvidia_gpu():
    import shutil
    return bool(shutil.which("nvidia-smi"))


def accelerated_packages(gpu=None):
    """TensorFlow and ONNX Runtime: their GPU builds where an NVIDIA driver is present,
    else the CPU builds."""
    gpu = has_nvidia_gpu() if gpu is None else gpu
    return ([f"tensorflow[and-cuda]=={TENSORFLOW}", f"onnxruntime-gpu=={ONNXRUNTIME}"] if gpu
            else [f"tensorflow-cpu=={TENSORFLOW}", f"onnxruntime=={ONNXRUNTIME}"])


def install_args(path=None, python="/usr/bin/python3"):
    """The pip command (as a list) that installs or updates the dependencies in `path`."""
    path = path or deps_dir()
    return [python, "-m", "pip", "install", "--upgrade", "--no-input", "--target", path,
            "-r", REQUIREMENTS, *accelerated_packages()]


def environment():
    """What the plugin runs with: versions, devices, the dependency folder (plain dict)."""
    info = {"Python": sys.version.split()[0], "Dependency folder": deps_dir() or "(none)",
            "Dependency folder on sys.path": bool(deps_dir() and deps_dir() in sys.path)}
    for module, label in (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("skops", "skops")):
        try:
            mod = importlib.import_module(module)
            info[label] = f"{mod.__version__} ({os.path.dirname(mod.__file__)})"
        except ImportError as exc:
            info[label] = f"missing ({exc})"
    try:
        from osgeo import gdal
        info["GDAL"] = gdal.__version__
    except ImportError:
        info["GDAL"] = "missing"
    try:
        tf = require_tensorflow()
        info["TensorFlow"] = tf.__version__
        devices = tf.config.list_physical_devices()
        info["Devices"] = ", ".join(f"{d.device_type} {d.name}" for d in devices)
        info["GPU"] = "yes" if any(d.device_type == "GPU" for d in devices) else "no (CPU only)"
    except Exception as exc:  # DependencyError, or a broken install
        info["TensorFlow"] = f"not available: {exc}"
    return info


def install_command(path=None):
    """The exact shell command that installs the dependencies into the folder."""
    path = path or deps_dir() or "<profile>/rsdl_qgis/python-deps"
    return (f"/usr/bin/python3 -m pip install --upgrade --target '{path}' "
            f"-r '{REQUIREMENTS}' " + " ".join(f"'{p}'" for p in accelerated_packages()))


def require(module, package):
    """Import a dependency or raise a DependencyError that says how to install it."""
    from .errors import DependencyError
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(
            f"{package} is not installed for the plugin ({exc}). Install the plugin's "
            f"dependencies with `make install` from its sources, or: {install_command()}") from exc


def require_tensorflow():
    """Import TensorFlow or raise a DependencyError that says how to install it."""
    from .errors import DependencyError
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # C++ INFO and WARNING lines
    try:
        tf = _import_tensorflow()
    except ImportError as exc:
        raise DependencyError(
            f"TensorFlow is not installed for the plugin ({exc}). Install it with "
            f"`make install` from the plugin's sources, the plugin menu "
            f"'Remote sensing deep learning > Install or update Python dependencies', "
            f"or: {install_command()}") from exc
    return tf


def _import_tensorflow():
    """Import TensorFlow so that its libraries bind to their own symbols first.

    QGIS's executables (qgis.bin, qgis_process.bin) link Debian's libprotobuf-lite,
    which sits in the process's global symbol scope; TensorFlow's libraries would resolve
    their own protobuf symbols to it and abort at import ("File already exists in
    database"). RTLD_DEEPBIND makes each TensorFlow library prefer its own definitions.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    old = sys.getdlopenflags()
    sys.setdlopenflags(os.RTLD_NOW | os.RTLD_DEEPBIND)
    try:
        with _start_up_lines_dropped():
            import tensorflow as tf
            tf.get_logger().setLevel("ERROR")      # deprecation notes of TF1 loading
    finally:
        sys.setdlopenflags(old)
    return tf


#: what TensorFlow prints while it loads, which says nothing to a user of the plugin
_START_UP_NOISE = ("All log messages before absl::InitializeLog()", "oneDNN custom operations",
                   "rebuild TensorFlow with the appropriate compiler flags",
                   "cpu_feature_guard", "Unable to register cu", "could not find cuda drivers",
                   "TF-TRT Warning")


class _start_up_lines_dropped:
    """Runs a block with the process's stderr (file descriptor 2, where TensorFlow's C++
    libraries write before their logging is set up) going to a temporary file; lines of
    start-up noise are dropped, anything else is written back to stderr afterwards."""

    def __enter__(self):
        import tempfile
        try:
            sys.stderr.flush()
            self.saved = os.dup(2)
            self.tmp = tempfile.TemporaryFile()
            os.dup2(self.tmp.fileno(), 2)
        except (OSError, ValueError, AttributeError):
            self.saved = None
        return self

    def __exit__(self, *exc):
        if self.saved is None:
            return False
        os.dup2(self.saved, 2)
        os.close(self.saved)
        self.tmp.seek(0)
        kept = [line for line in self.tmp.read().decode("utf-8", "replace").splitlines()
                if line.strip() and not any(n in line for n in _START_UP_NOISE)]
        self.tmp.close()
        if kept:
            os.write(2, ("\n".join(kept) + "\n").encode())
        return False


if __name__ == "__main__":          # the Makefile: which runtimes to install here
    if sys.argv[1:] == ["packages"]:
        print(" ".join(accelerated_packages()))
