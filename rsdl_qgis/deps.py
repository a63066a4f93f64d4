"""The plugin's Python dependencies: which ones this host needs, where they live, how they
are installed.

Everything the plugin needs beyond QGIS goes into a private dependency folder, shared by
every QGIS profile of one Python (``<QGIS settings root>/rsdl_qgis/python-deps/<host tag>``),
which goes first on ``sys.path`` when the plugin loads. The folder never holds a library
that QGIS's own bindings were built against while the host's is usable: numpy is private
only where the host's is older than the pinned packages accept (Debian 12's 1.24, QGIS
3.22); elsewhere the host's numpy is used, and the folder is resolved against it.

This module is the one place where versions are chosen (:data:`PINS`, :func:`plan`). The
Makefile and the plugin menu both install through it (``python deps.py install``), with
wheels only (no compiler, ever), after a dry run that says in one line what is missing.
No qgis import at module level: the engine's tests and the Makefile use this module too.
"""
import importlib
import json
import os
import platform
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, Optional

PLUGIN_DIR = os.path.dirname(os.path.abspath(__file__))
ENV_VAR = "RSDL_QGIS_DEPS"
#: written into a dependency folder by :func:`install`: what it holds
MARKER = "rsdl-deps.json"

#: every pinned Python dependency: the one place where versions are set
PINS = {
    "numpy": "1.26.4",            # private only where the host's numpy is too old (below)
    "scikit-learn": "1.7.2",
    "skops": "0.13.0",            # classifier files loaded without pickle's code execution
    "onnx": "1.23.2",             # reading and checking ONNX models
    "onnxruntime": "1.31.1",      # serving ONNX models (onnxruntime-gpu with an NVIDIA GPU)
    "dask": "2026.8.0",           # serving and classification on a cluster (SCHEDULER)
    "distributed": "2026.8.0",
    "dask-jobqueue": "0.9.0",     # SLURM / PBS clusters
    "tensorflow": "2.21.0",       # tensorflow-cpu, or tensorflow[and-cuda] with a GPU
    "tf2onnx": "1.17.0",          # exporting trained models to ONNX
}
#: the oldest numpy every pinned package accepts (TensorFlow 2.21: 1.26); an older host
#: numpy gets a private PINS["numpy"], a newer one is used as it is
NUMPY_MIN = (1, 26)
#: the Python versions (first, last) with wheels of the pinned release
TENSORFLOW_PYTHONS = ((3, 9), (3, 13))
PRIVATE_NUMPY_PYTHONS = ((3, 9), (3, 12))
#: libraries QGIS's own bindings are built against: never shadowed by the folder
HOST_LIBRARIES = ("numpy", "osgeo", "GDAL", "PyQt5", "PyQt6", "sip", "qgis")

#: what can be installed: kind -> what it gives
KINDS = {
    "full": "Everything: TensorFlow (train, serve, export) and ONNX Runtime",
    "apply": "Apply models only: ONNX Runtime and classical classifiers, no TensorFlow",
}
#: what each kind takes on disk, as measured on Linux (docs/hosts.md, Sizes)
KIND_SIZES = {"full": "about 1.8-1.9 GB", "apply": "about 350-450 MB"}
#: the packages of each kind (names of PINS)
_APPLY = ("scikit-learn", "skops", "onnx", "onnxruntime", "dask", "distributed", "dask-jobqueue")
KIND_PACKAGES = {"apply": _APPLY, "full": _APPLY + ("tensorflow", "tf2onnx")}


def _version_tuple(text):
    out = []
    for part in str(text).split("."):
        digits = "".join(c for c in part if c.isdigit()) if part[:1].isdigit() else ""
        if not digits:
            break
        out.append(int(digits))
    return tuple(out)


def _in(version, bounds):
    return bounds[0] <= tuple(version[:2]) <= bounds[1]


def host_tag(version=None, system=None, machine=None):
    """The name of this host's shared dependency folder: Python version, OS, processor
    (e.g. py3.13-linux-x86_64): profiles of one QGIS share it, another Python gets its own."""
    major, minor = (version or sys.version_info)[:2]
    machine = (machine or platform.machine() or "unknown").lower()
    return f"py{major}.{minor}-{system or sys.platform}-{machine}"


def shared_deps_dir(settings_root, tag=None):
    """The dependency folder of every profile under a QGIS settings root (the folder that
    holds profiles/, e.g. ~/.local/share/QGIS/QGIS3)."""
    return os.path.join(settings_root, "rsdl_qgis", "python-deps", tag or host_tag())


def profile_deps_dir(profile_dir):
    """Where earlier versions installed dependencies: one folder per profile (still read)."""
    return os.path.join(profile_dir, "rsdl_qgis", "python-deps")


def settings_root_of(profile_dir):
    """The settings root of a profile folder (<root>/profiles/<name>)."""
    return os.path.dirname(os.path.dirname(os.path.normpath(profile_dir)))


def deps_dir():
    """The dependency folder in use: $RSDL_QGIS_DEPS, else the shared folder of the active
    QGIS's settings root (or a profile's own folder of an earlier install, if only that
    exists)."""
    if os.environ.get(ENV_VAR):
        return os.environ[ENV_VAR]
    try:
        from qgis.core import QgsApplication
    except ImportError:
        return None
    profile = QgsApplication.qgisSettingsDirPath()
    shared = shared_deps_dir(settings_root_of(profile))
    legacy = profile_deps_dir(profile)
    if not os.path.isdir(shared) and os.path.isdir(legacy):
        return legacy
    return shared


def activate(path=None):
    """Put the dependency folder first on sys.path, after promoting an update installed
    while QGIS was running (folder.next). Returns the folder, or None."""
    path = path or deps_dir()
    if not path:
        return None
    promote_next(path)
    if not os.path.isdir(path):
        return None
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)
    importlib.invalidate_caches()
    return path


def promote_next(path):
    """An install made while the folder was in use waits beside it as `path.next`: it
    replaces the folder now, before anything imports from it. Returns True if it did."""
    nxt = path + ".next"
    if not os.path.isfile(os.path.join(nxt, MARKER)):
        return False
    old = f"{path}.old-{os.getpid()}"
    try:
        if os.path.isdir(path):
            os.replace(path, old)
        os.replace(nxt, path)
    except OSError:          # still in use (another QGIS): keep the current folder
        if not os.path.isdir(path) and os.path.isdir(old):
            os.replace(old, path)
        return False
    shutil.rmtree(old, ignore_errors=True)
    return True


def installed(path=None):
    """What a dependency folder holds (its marker as a dict), or None."""
    path = path or deps_dir()
    try:
        with open(os.path.join(path, MARKER), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, TypeError, ValueError):
        return None


def host_numpy_version(exclude=()):
    """The numpy version of the host Python (QGIS's), looked up without importing it and
    ignoring the folders in `exclude` and every folder this installer made (it holds
    MARKER); None if none."""
    from importlib import metadata
    skip = {os.path.abspath(p) for p in exclude if p}
    paths = [p for p in sys.path if p and os.path.abspath(p) not in skip
             and not os.path.isfile(os.path.join(p, MARKER))]
    for dist in metadata.distributions(name="numpy", path=paths):
        return dist.version
    return None


def has_nvidia_gpu():
    return bool(shutil.which("nvidia-smi"))


@dataclass
class Plan:
    """What to install on one host: the pip requirements, and why."""
    kind: str                       # what is installed: full or apply
    asked: str                      # what was asked for
    python: tuple
    host_numpy: object              # the host's numpy version (str), or None
    private_numpy: bool             # the folder holds numpy (the host's is too old)
    requirements: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def to_dict(self):
        d = asdict(self)
        d["python"] = ".".join(map(str, self.python))
        return d


def plan(kind="full", python=None, host_numpy="detect", gpu=None):
    """The requirements for this host (or the one described): the pinned packages of
    `kind`, TensorFlow only on a Python it has wheels for, and numpy pinned to the host's
    version (resolved against, then left out of the folder) unless that is too old."""
    if kind not in KINDS:
        raise ValueError(f"unknown kind {kind!r}: one of {', '.join(KINDS)}")
    python = tuple((python or sys.version_info)[:2])
    if host_numpy == "detect":
        host_numpy = host_numpy_version(exclude=[deps_dir()])
    gpu = has_nvidia_gpu() if gpu is None else gpu
    notes, names, got = [], list(KIND_PACKAGES[kind]), kind
    pyname = f"Python {python[0]}.{python[1]}"
    if kind == "full" and not _in(python, TENSORFLOW_PYTHONS):
        names = list(KIND_PACKAGES["apply"])
        got = "apply"
        notes.append(tensorflow_unavailable_message(python))
    reqs = []
    for name in names:
        pin = PINS[name]
        if name == "tensorflow":
            reqs.append(f"tensorflow[and-cuda]=={pin}" if gpu else f"tensorflow-cpu=={pin}")
        elif name == "onnxruntime":
            reqs.append(f"onnxruntime-gpu=={pin}" if gpu else f"onnxruntime=={pin}")
        else:
            reqs.append(f"{name}=={pin}")
    private = host_numpy is None or _version_tuple(host_numpy)[:2] < NUMPY_MIN
    if private:
        reqs.insert(0, f"numpy=={PINS['numpy']}")
        why = ("no numpy" if host_numpy is None else f"numpy {host_numpy}, older than "
               f"{NUMPY_MIN[0]}.{NUMPY_MIN[1]} that the pinned packages need")
        notes.append(f"The host has {why}: a private numpy {PINS['numpy']} goes into the folder.")
        if not _in(python, PRIVATE_NUMPY_PYTHONS):
            notes.append(f"numpy {PINS['numpy']} has no wheel for {pyname}: install numpy "
                         f">= {NUMPY_MIN[0]}.{NUMPY_MIN[1]} for QGIS's Python first.")
    else:
        reqs.insert(0, f"numpy=={host_numpy}")
        notes.append(f"The host's numpy {host_numpy} is used: the folder is resolved against "
                     "it and holds no numpy of its own.")
    return Plan(got, kind, python, host_numpy, private, reqs, notes)


def tensorflow_unavailable_message(python=None):
    python = tuple((python or sys.version_info)[:2])
    first, last = TENSORFLOW_PYTHONS
    return (f"TensorFlow {PINS['tensorflow']} has no build for Python {python[0]}.{python[1]} "
            f"yet (it has for {first[0]}.{first[1]}-{last[0]}.{last[1]}): train or export "
            f"models on a QGIS with one of those (QGIS 3.40 LTR, say), export them to ONNX "
            f"(rsdl:exportonnx), and apply the ONNX model here.")


def find_python(executable=None, exec_prefix=None, system=None, version=None, isfile=None):
    """QGIS's own Python interpreter, for pip. Inside QGIS, sys.executable is the QGIS
    program on Windows (qgis-bin.exe) and often on macOS, so look where each layout keeps
    its interpreter: <exec_prefix>\\python.exe (OSGeo4W and the standalone installer:
    apps\\Python3xx), <exec_prefix>/bin/python3.x (Linux, conda), the macOS bundle's
    Contents/MacOS/bin/python3. Returns a path, or None where there is none."""
    executable = sys.executable if executable is None else executable
    exec_prefix = sys.exec_prefix if exec_prefix is None else exec_prefix
    system = system or sys.platform
    major, minor = (version or sys.version_info)[:2]
    isfile = isfile or os.path.isfile
    windows = system.startswith("win")
    join = (lambda *p: "\\".join(s.rstrip("\\/") for s in p)) if windows else os.path.join
    base = (executable.replace("/", "\\").rsplit("\\", 1)[-1] if windows
            else os.path.basename(executable)).lower()
    if base.startswith("python"):
        return executable
    if windows:
        candidates = [join(exec_prefix, "python.exe"), join(exec_prefix, "python3.exe")]
    else:
        exe_dir = os.path.dirname(executable)
        candidates = [join(exec_prefix, "bin", f"python{major}.{minor}"),
                      join(exec_prefix, "bin", "python3"),
                      join(exe_dir, "bin", "python3"),           # macOS: Contents/MacOS/bin
                      join(exe_dir, f"python{major}.{minor}"), join(exe_dir, "python3")]
    for c in candidates:
        if isfile(c):
            return c
    return None


#: on Windows, pip runs without a console window flashing up over QGIS
NO_WINDOW: Dict[str, Any] = {"creationflags": getattr(subprocess, "CREATE_NO_WINDOW", 0)}


def pip_base(python):
    return [python, "-m", "pip", "install", "--disable-pip-version-check", "--no-input",
            "--only-binary=:all:", "--no-warn-script-location"]


def check(p, python=None, run=subprocess.run):
    """A dry run of the install: every requirement must have a wheel for this Python.
    Returns None, or one line that says what is missing and what to do."""
    import tempfile
    python = python or find_python() or sys.executable
    with tempfile.TemporaryDirectory(prefix="rsdl-deps-check-") as tmp:
        # --target: a dry run into a folder, which PEP 668 allows on Debian's Python too
        cmd = pip_base(python) + ["--dry-run", "--ignore-installed", "-q", "--target", tmp,
                                  *p.requirements]
        r = run(cmd, capture_output=True, text=True, **NO_WINDOW)
    if r.returncode == 0:
        return None
    text = (r.stdout or "") + (r.stderr or "")
    missing = [line.split("for", 1)[1].strip() for line in text.splitlines()
               if "No matching distribution found for" in line]
    pyname = f"Python {p.python[0]}.{p.python[1]} on {sys.platform} {platform.machine()}"
    if missing:
        return (f"No wheel of {', '.join(missing)} for {pyname}: nothing was installed. "
                f"Install the 'apply' kind (no TensorFlow), or use a QGIS whose Python has "
                f"wheels; no compiler is needed or used.")
    last = [line for line in text.splitlines() if line.strip()][-1:] or ["(no output)"]
    return f"pip cannot resolve the dependencies for {pyname}: {last[0].strip()}"


def install(target, kind="full", python=None, next_start=False, log=None):
    """Install the plan of this host into `target`: dry run first, then pip into a
    temporary folder beside it, numpy left out where the host's is used, a marker, and
    the folder swapped in (or left as target.next for the next start, when QGIS is
    using the current one). Returns the plan."""
    log = log or (lambda line: print(line, flush=True))
    python = python or find_python()
    if python is None:
        raise _error("QGIS's Python interpreter was not found beside "
                     f"{sys.executable} ({sys.exec_prefix}): run "
                     "`python -m pip install` by hand (see README, Install)")
    p = plan(kind)
    for note in p.notes:
        log(note)
    problem = check(p, python)
    if problem:
        raise _error(problem)
    target = os.path.abspath(target)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    tmp = f"{target}.partial-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    cmd = pip_base(python) + ["--target", tmp, *p.requirements]
    log(" ".join(cmd))
    r = subprocess.run(cmd, **NO_WINDOW)
    if r.returncode:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _error(f"pip exited with status {r.returncode}; nothing was changed in {target}")
    if not p.private_numpy:
        prune(tmp, ("numpy",))
    hidden = [n for n in shadowed(tmp) if not (n == "numpy" and p.private_numpy)]
    if hidden:
        shutil.rmtree(tmp, ignore_errors=True)
        raise _error(f"the dependencies would shadow QGIS's own {', '.join(hidden)}; "
                     f"nothing was changed in {target}")
    with open(os.path.join(tmp, MARKER), "w", encoding="utf-8") as f:
        json.dump(p.to_dict(), f, indent=1)
    final = target + ".next" if next_start else target
    old = f"{target}.old-{os.getpid()}"
    shutil.rmtree(final + ".next" if not next_start else final, ignore_errors=True)
    if os.path.isdir(final):
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    log(f"Installed ({KINDS[p.kind]}) into {final}"
        + (": restart QGIS to use it." if next_start else "."))
    return p


def prune(folder, names):
    """Remove packages (module folders, .libs, dist-info, their scripts) from a --target
    folder; returns what was removed."""
    gone = []
    for entry in os.listdir(folder):
        low = entry.lower()
        for n in names:
            n = n.lower()
            if low in (n, f"{n}.libs") or (low.startswith(n + "-") and low.endswith(
                    (".dist-info", ".egg-info"))):
                shutil.rmtree(os.path.join(folder, entry), ignore_errors=True)
                gone.append(entry)
    bin_dir = os.path.join(folder, "bin")
    for script in ("f2py", "numpy-config"):
        for ext in ("", ".exe"):
            path = os.path.join(bin_dir, script + ext)
            if os.path.exists(path):
                os.remove(path)
                gone.append(os.path.join("bin", script + ext))
    return gone


def shadowed(folder, host_paths=None):
    """Libraries of HOST_LIBRARIES that the folder holds while the host has them too:
    what the folder would shadow (empty, unless numpy is private because the host's is
    too old)."""
    from importlib import metadata
    if host_paths is None:        # sys.path less this folder and the one in use
        skip = {os.path.abspath(p) for p in (folder, deps_dir()) if p}
        host_paths = [p for p in sys.path if p and os.path.abspath(p) not in skip]
    held = {e.lower() for e in os.listdir(folder)}
    out = []
    for name in HOST_LIBRARIES:
        if name.lower() in held and any(True for _ in metadata.distributions(
                name=name, path=host_paths)):
            out.append(name)
    return out


def _error(message):
    from .errors import DependencyError
    return DependencyError(message)


def install_command(path=None, kind="full"):
    """The shell command that installs the dependencies into the folder."""
    path = path or deps_dir() or "<QGIS settings>/rsdl_qgis/python-deps/" + host_tag()
    python = find_python() or "python3"
    return f"'{python}' '{os.path.join(PLUGIN_DIR, 'deps.py')}' install --kind {kind} --target '{path}'"


def environment():
    """What the plugin runs with: versions, devices, the dependency folder (plain dict)."""
    folder = deps_dir()
    held = installed(folder) if folder else None
    info = {"Python": sys.version.split()[0], "Dependency folder": folder or "(none)",
            "Dependency folder on sys.path": bool(folder and folder in sys.path),
            "Installed": (KINDS[held["kind"]] if held and held.get("kind") in KINDS
                          else "nothing by the plugin's installer"),
            "Install kinds": "; ".join(f"{k}: {v}" for k, v in KINDS.items())}
    if held and held.get("kind") == "apply":
        info["To train and use TensorFlow models"] = (
            "menu 'Install Python dependencies: everything (TensorFlow)'"
            if _in(sys.version_info, TENSORFLOW_PYTHONS) else tensorflow_unavailable_message())
    elif held and held.get("kind") == "full":
        info["A lighter install"] = "menu 'Install Python dependencies: apply models only'"
    for module, label in (("numpy", "numpy"), ("sklearn", "scikit-learn"), ("skops", "skops"),
                          ("onnxruntime", "ONNX Runtime")):
        try:
            mod = importlib.import_module(module)
            info[label] = f"{mod.__version__} ({os.path.dirname(mod.__file__ or '')})"
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


def require(module, package):
    """Import a dependency or raise a DependencyError that says how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise _error(
            f"{package} is not installed for the plugin ({exc}). Install the plugin's "
            f"dependencies with the plugin menu 'Remote sensing deep learning > Install "
            f"Python dependencies', `make install` from its sources, or: "
            f"{install_command()}") from exc


def require_tensorflow():
    """Import TensorFlow or raise a DependencyError that says in one line why it is missing
    and what to do."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")      # C++ INFO and WARNING lines
    try:
        tf = _import_tensorflow()
    except ImportError as exc:
        if not _in(sys.version_info, TENSORFLOW_PYTHONS):
            raise _error(tensorflow_unavailable_message()) from exc
        held = installed(deps_dir()) if deps_dir() else None
        if held and held.get("kind") == "apply":
            raise _error(
                "TensorFlow is not installed: this install applies models only (ONNX "
                "Runtime). Install everything with the plugin menu 'Remote sensing deep "
                f"learning > Install Python dependencies: everything', or: "
                f"{install_command(kind='full')}") from exc
        raise _error(
            f"TensorFlow is not installed for the plugin ({exc}). Install it with the "
            f"plugin menu 'Remote sensing deep learning > Install Python dependencies: "
            f"everything', `make install` from the plugin's sources, or: "
            f"{install_command(kind='full')}") from exc
    return tf


def main(argv=None):
    """python deps.py requirements|plan|check|install|folder ... (the Makefile, the menu)."""
    import argparse
    ap = argparse.ArgumentParser(prog="deps.py", description=main.__doc__)
    ap.add_argument("verb", choices=("requirements", "plan", "check", "install", "folder", "tag"))
    ap.add_argument("--kind", default="full", choices=tuple(KINDS))
    ap.add_argument("--target", help="install: the dependency folder")
    ap.add_argument("--settings-root", help="folder: the QGIS settings root (holds profiles/)")
    ap.add_argument("--next-start", action="store_true",
                    help="install: leave the new folder as TARGET.next, swapped in at the next start")
    a = ap.parse_args(argv)
    if a.verb == "tag":
        print(host_tag())
        return 0
    if a.verb == "folder":
        print(shared_deps_dir(a.settings_root))
        return 0
    p = plan(a.kind)
    if a.verb == "requirements":
        print(" ".join(p.requirements))
        return 0
    if a.verb == "plan":
        print(json.dumps(p.to_dict(), indent=1))
        return 0
    if a.verb == "check":
        problem = check(p, sys.executable)
        if problem:
            print(f"rsdl_qgis: {problem}", file=sys.stderr)
            return 1
        return 0
    if not a.target:
        ap.error("install needs --target")
    try:
        install(a.target, a.kind, python=sys.executable, next_start=a.next_start)
    except Exception as exc:     # DependencyError: its one line
        print(f"rsdl_qgis: {exc}", file=sys.stderr)
        return 1
    return 0


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
            self.saved: Optional[int] = os.dup(2)
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


if __name__ == "__main__":          # python deps.py ...: as the package's module
    sys.path.insert(0, os.path.dirname(PLUGIN_DIR))
    _pkg = os.path.basename(PLUGIN_DIR)
    sys.exit(importlib.import_module(f"{_pkg}.deps").main())
