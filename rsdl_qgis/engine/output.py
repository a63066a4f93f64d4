"""One way to write every output: atomically, checked, and never over a user's input.

Every writer of the product (rasters, vectors, tables, reports, model folders, classifier
files) goes through this module:

- the output is written under a temporary name in its destination folder
  (``.NAME.rsdl-HOST-PID-XXXXXXXX.part.EXT``), then renamed onto its name when every
  write and the closing of the file succeeded; on any failure the temporary file is
  removed and the previous file at that path, if any, is left untouched;
- GDAL reports some errors (a full disk, say) only while a dataset is flushed or
  closed: :func:`gdal_checked` turns them into one clear :class:`RsdlIOError`;
- the temporary files of a run that was killed (kill -9, power cut) carry the host and
  process that wrote them: the next run to the same output removes those whose process
  is gone;
- :func:`check_paths` refuses, before any work, an output that is one of the run's
  inputs or another of its outputs.

No qgis import here: the engine and the algorithms share it.
"""
import contextlib
import errno
import os
import re
import shutil
import socket
import sys
import threading
import time
import uuid
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple, Union

from ..errors import RsdlIOError
from .jobs import OUTPUT

MARK = ".rsdl-"
_HOST = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname() or "host")[:32]
_OGR_URI = re.compile(r"^ogr:dbname='(?P<db>[^']*)'\s+table=\"(?P<table>[^\"]*)\"")
_TEMP = re.compile(r"^\.(?P<name>.+?)\.rsdl-(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)-[0-9a-f]{8}\.part")


# --- paths ---------------------------------------------------------------------------

def split_layer(path: str) -> Tuple[str, Union[str, int, None]]:
    """QGIS source strings: 'file.gpkg|layername=x' -> ('file.gpkg', 'x'),
    'file.gpkg|layerid=2' -> ('file.gpkg', 2), and the dialog's "Save to GeoPackage"
    form 'ogr:dbname='file.gpkg' table="x" (geom)' -> ('file.gpkg', 'x'); a plain path ->
    (path, None)."""
    path = str(path)
    m = _OGR_URI.match(path)
    if m:
        return m.group("db"), m.group("table")
    layer: Union[str, int, None] = None
    if "|" in path:
        path, *opts = path.split("|")
        for opt in opts:
            key, _, value = opt.partition("=")
            if key == "layername":
                layer = value
            elif key == "layerid" and layer is None:
                layer = int(value)
    return path, layer


def real(path: Any) -> str:
    """The absolute path with links resolved, for comparing paths."""
    return os.path.normcase(os.path.realpath(os.path.abspath(os.path.expanduser(str(path)))))


def _key(path, output):
    """(resolved file, layer) of a path. A GeoPackage output without a layer name writes
    the layer named after the file; a GeoPackage input without one is its first layer."""
    file, layer = split_layer(path)
    key = real(file)
    if key.lower().endswith(".shp"):          # a shapefile is its .shp, .dbf, .shx...
        key = key[:-4]
    if isinstance(layer, int):
        layer = _first_layer(file, layer) if not output else None
    if key.lower().endswith(".gpkg") and not layer:
        if output:
            layer = os.path.splitext(os.path.basename(file))[0]
        elif os.path.isfile(file):
            layer = _first_layer(file)
    return key, layer


def _first_layer(path, index=0):
    """The name of a vector file's layer number `index`."""
    try:
        from osgeo import ogr
        ds = ogr.Open(str(path))
        ok = ds is not None and 0 <= index < ds.GetLayerCount()
        return ds.GetLayer(index).GetName() if ok else None
    except RuntimeError:
        return None


def _inside(child, folder):
    return child != folder and child.startswith(folder.rstrip(os.sep) + os.sep)


def check_paths(inputs: Dict[str, str], outputs: Dict[str, str]) -> None:
    """Refuse an output that is an input of the same run, or another output.

    `inputs` and `outputs` map parameter names to paths (``path|layername=x`` for a
    layer of a GeoPackage; folders for models). Two layers of one GeoPackage are distinct
    (only the output's layer is written); a file inside an input folder (a model) is
    that input too. Raises an RsdlIOError naming both parameters.
    """
    ins = [(p, _key(v, False)) for p, v in inputs.items() if v]
    outs = [(p, _key(v, True)) for p, v in outputs.items() if v]
    for i, (po, (ko, lo)) in enumerate(outs):
        for pi, (ki, li) in ins:
            same_layer = lo is None or li is None or lo == li
            if (ko == ki and same_layer) or _inside(ko, ki) or _inside(ki, ko):
                raise RsdlIOError(
                    f"the output is the input {pi} ('{split_layer(inputs[pi])[0]}'): writing "
                    "it would destroy the input. Choose another file name for the output",
                    po)
        for pj, (kj, lj) in outs[:i]:
            if ko == kj and (lo is None or lj is None or lo == lj):
                raise RsdlIOError(f"the output is also given as {pj} ('{outputs[pj]}'): "
                                  "give each output its own file name", po)
            if _inside(ko, kj) or _inside(kj, ko):
                inner, outer = (po, pj) if _inside(ko, kj) else (pj, po)
                raise RsdlIOError(f"{inner} would be written inside the folder of {outer} "
                                  f"('{outputs[outer]}'): give each output its own place",
                                  po)


# --- messages ------------------------------------------------------------------------

def describe(exc: BaseException) -> str:
    """A one-line reason for an OS or GDAL error, with what to do when it is known."""
    text = str(getattr(exc, "strerror", None) or exc).strip().splitlines()[0] if str(exc) else ""
    code = getattr(exc, "errno", None)
    low = text.lower()
    if code == errno.ENOSPC or "no space left" in low or "disk full" in low or \
            "disk is full" in low:
        return "the disk is full: free some space or choose a folder on another disk"
    if code == errno.EDQUOT or "quota" in low:
        return "the disk quota is exceeded: free some space or choose another folder"
    if code in (errno.EACCES, errno.EPERM) or "permission denied" in low:
        return "permission denied: choose a folder you can write to"
    if code == errno.EROFS or "read-only file system" in low:
        return "the folder is on a read-only disk: choose another folder"
    return text or type(exc).__name__


def io_error(path: Any, exc: BaseException, param: Optional[str]) -> RsdlIOError:
    """The error of a write to `path` that failed with `exc`; a driver's own words (SQLite's
    "unable to open database file") are replaced by the reason when the folder tells it."""
    reason = describe(exc)
    if reason == (str(getattr(exc, "strerror", None) or exc).strip().splitlines() or [""])[0]:
        reason = folder_reason(os.path.dirname(os.path.abspath(str(path)))) or reason
    return RsdlIOError(f"cannot write '{path}': {reason}", param)


#: a write that failed with less than this free on its disk failed for want of space
#: (GDAL 3.10 reports a full disk as "IO error writing tag data", without ENOSPC)
FULL_DISK = 1 << 20


def folder_reason(folder: str) -> Optional[str]:
    """Why nothing can be written in `folder`, when that is why (else None)."""
    try:
        st = os.statvfs(folder)
        if st.f_flag & getattr(os, "ST_RDONLY", 1):
            return "the folder is on a read-only disk: choose another folder"
        if st.f_bavail * st.f_frsize < FULL_DISK:
            return describe(OSError(errno.ENOSPC, "No space left on device"))
    except (OSError, AttributeError):
        return None
    if not os.access(folder, os.W_OK):
        return "permission denied: choose a folder you can write to"
    return None


_local = threading.local()
_hook_lock = threading.Lock()


def _install_hook():
    """Route 'exception ignored' reports (GDAL's errors while a dataset is destroyed) to
    the gdal_checked block running in the same thread; elsewhere, as before."""
    with _hook_lock:
        if getattr(sys.unraisablehook, "_rsdl", False):
            return
        previous = sys.unraisablehook

        def hook(unraisable):
            stack = getattr(_local, "stack", None)
            if stack:
                stack[-1].append(str(unraisable.exc_value))
            else:
                previous(unraisable)
        setattr(hook, "_rsdl", True)          # noqa: B010 (marks the hook as ours)
        sys.unraisablehook = hook


@contextlib.contextmanager
def gdal_checked(path: Any, param: Optional[str]) -> Iterator[None]:
    """Run GDAL writes and closes with every error caught, including those GDAL raises
    while a dataset is flushed or destroyed (which Python otherwise prints and ignores).
    Close datasets inside the block (``ds = None``). Thread-safe: GDAL's error handlers
    are per thread, and so is what this collects."""
    from osgeo import gdal
    _install_hook()
    errors = []

    def handler(level, _no, message):
        if level >= gdal.CE_Failure:
            errors.append(message)

    if not hasattr(_local, "stack"):
        _local.stack = []
    _local.stack.append(errors)
    gdal.PushErrorHandler(handler)
    try:
        yield
    except (RuntimeError, OSError) as exc:
        if isinstance(exc, RsdlIOError):
            raise
        errors.append(exc)
    finally:
        gdal.PopErrorHandler()
        _local.stack.pop()
    if errors:
        full = [e for e in errors if "no space left" in str(e).lower()]
        raise io_error(path, (full or errors)[0], param)


# --- temporary names and leftovers ---------------------------------------------------

def temp_path(path: Any, ext: Optional[str] = None) -> str:
    """A hidden temporary name for `path` in the same folder, marked with this host and
    process so that a later run can tell a leftover of a killed run."""
    d, name = os.path.split(os.path.abspath(str(path)))
    if ext is None:
        ext = os.path.splitext(name)[1]
    return os.path.join(d, f".{name}{MARK}{_HOST}-{os.getpid()}-{uuid.uuid4().hex[:8]}.part{ext}")


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_temps(path: Any) -> List[str]:
    """Temporary files and folders of killed runs for the output `path`."""
    d, name = os.path.split(os.path.abspath(str(path)))
    try:
        entries = os.listdir(d)
    except OSError:
        return []
    found = []
    for entry in entries:
        m = _TEMP.match(entry)
        if not m or m.group("name").lstrip(".") != name.lstrip("."):   # temps of temps too
            continue
        if m.group("host") == _HOST and (int(m.group("pid")) == os.getpid()
                                         or _alive(int(m.group("pid")))):
            continue                       # a run still going on here
        full = os.path.join(d, entry)
        if m.group("host") != _HOST:
            # another machine (a shared folder): its process cannot be asked; a temp not
            # touched for a day is a leftover
            try:
                if time.time() - os.path.getmtime(full) < 86400:
                    continue
            except OSError:
                continue
        found.append(full)
    return found


def remove_stale(path: Any) -> None:
    """Remove what killed runs left for the output `path`."""
    remove_quietly(*stale_temps(path))


def fresh_temp(path: Any, param: Optional[str] = OUTPUT, ext: Optional[str] = None) -> str:
    """A temporary name for the output `path`: its folder made, and what killed runs left
    for that output removed. Every writer starts here."""
    try:
        os.makedirs(os.path.dirname(os.path.abspath(str(path))), exist_ok=True)
    except OSError as exc:
        raise io_error(path, exc, param) from exc
    remove_stale(path)
    return temp_path(path, ext)


def remove_quietly(*paths: Any) -> None:
    for p in paths:
        try:
            if p and (os.path.isfile(p) or os.path.islink(p)):
                os.remove(p)
            elif p and os.path.isdir(p):
                shutil.rmtree(p)
        except OSError:
            pass


# --- atomic files and folders -------------------------------------------------------

class AtomicFile:
    """A file written under a temporary name and renamed onto `path` on success.

        with AtomicFile(path, OUTPUT) as out:
            write(out.tmp)

    An exception in the block (or in the rename) removes the temporary file, keeps any
    previous file at `path`, and comes out as an RsdlIOError naming `param`.
    `ext`: the temporary file's extension (GDAL and OGR choose drivers by it).
    """

    def __init__(self, path: Any, param: Optional[str] = OUTPUT,
                 ext: Optional[str] = None) -> None:
        self.path = str(path)
        self.param = param
        self.tmp = fresh_temp(self.path, param, ext)
        self.done = False

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, _tb):
        if kind is None:
            self.commit()
            return False
        self.abort()
        if isinstance(exc, (OSError, RuntimeError)) and not isinstance(exc, RsdlIOError):
            raise io_error(self.path, exc, self.param) from exc
        return False

    def commit(self) -> str:
        if self.done:
            return self.path
        if os.path.isdir(self.path) and not os.path.isdir(self.tmp):
            self.abort()
            raise RsdlIOError(f"'{self.path}' is a folder; give a file name", self.param)
        try:
            os.replace(self.tmp, self.path)
        except OSError as exc:
            self.abort()
            raise io_error(self.path, exc, self.param) from exc
        self.done = True
        # GDAL's sidecar (category names, attribute table): the new file's goes with it;
        # the one of a file replaced (its statistics...) must not describe the new one
        aux = self.path + ".aux.xml"
        if os.path.isfile(self.tmp + ".aux.xml"):
            try:
                os.replace(self.tmp + ".aux.xml", aux)
            except OSError:
                remove_quietly(self.tmp + ".aux.xml", aux)
        elif os.path.exists(aux):
            remove_quietly(aux)
        return self.path

    def abort(self) -> None:
        remove_quietly(self.tmp, self.tmp + ".aux.xml")
        for ext in ("-journal", "-wal", "-shm"):
            remove_quietly(self.tmp + ext)


def write_text(path: Any, text: str, param: Optional[str] = OUTPUT) -> str:
    """A text file (CSV, HTML, JSON, QML) written atomically."""
    with AtomicFile(path, param) as out:
        with open(out.tmp, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
    return str(path)


class AtomicFolder(AtomicFile):
    """A folder (a model) written beside its destination and swapped in.

    An existing folder at `path` is replaced only when `owned(path)` says that it holds
    nothing but what the product writes (checked before any work: call ``check``);
    otherwise the run is refused and the folder left as it is.
    """

    def __init__(self, path: Any, param: Optional[str] = OUTPUT,
                 owned: Optional[Callable[[str], List[str]]] = None, what: str = "a model") -> None:
        super().__init__(path, param, ext="")
        self.owned = owned
        self.what = what
        self.check()
        try:
            os.makedirs(self.tmp)
        except OSError as exc:       # a read-only or full disk, a folder not ours
            raise io_error(self.path, exc, self.param) from exc

    def check(self) -> None:
        p = self.path
        if os.path.isfile(p):
            raise RsdlIOError(f"'{p}' is a file; {self.what} is a folder: give a folder "
                              "name", self.param)
        if os.path.isdir(p) and os.listdir(p):
            foreign = self.owned(p) if self.owned else sorted(os.listdir(p))
            if foreign:
                raise RsdlIOError(
                    f"the folder '{p}' holds files rsdl_qgis did not write "
                    f"({', '.join(foreign[:5])}{', ...' if len(foreign) > 5 else ''}); "
                    f"it is not replaced. Give a new or empty folder for {self.what}",
                    self.param)

    def commit(self) -> str:
        if self.done:
            return self.path
        old = None
        try:
            if os.path.isdir(self.path):
                self.check()           # nothing new appeared while the run went on
                old = temp_path(self.path, ext="")
                os.replace(self.path, old)
            os.replace(self.tmp, self.path)
        except (OSError, RsdlIOError) as exc:
            if old and not os.path.exists(self.path):
                os.replace(old, self.path)
                old = None
            self.abort()
            if isinstance(exc, RsdlIOError):
                raise
            raise io_error(self.path, exc, self.param) from exc
        self.done = True
        remove_quietly(old)
        return self.path

    def abort(self) -> None:
        remove_quietly(self.tmp)
