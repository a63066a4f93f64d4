"""Classifier files: everything classification needs, in a format that runs no code.

A classifier file is a zip archive:
- ``manifest.json``: format and version, the feature recipe (raw pixels, or a deep
  model with its sources, receptive fields, input and output names), class codes and
  names, classifier settings, validation metrics, and the SHA-256 of every other member;
- ``classifier.skops``: the scaler + classifier pipeline, serialised by skops, which
  rebuilds objects from an explicit list of types instead of unpickling (loading never
  runs code from the file; any type outside the list is refused);
- ``model/``: the deep model (SavedModel folder or .keras file) for deep features.
"""
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
import zlib
from typing import Any, Dict, Optional

from ..deps import require
from ..engine.declare import param_name
from ..engine.jobs import OUTPUT
from ..engine.output import AtomicFile
from ..errors import RsdlIOError
from ..models.metadata import model_folder
from .jobs import ClassifyJob

#: the parameter a classifier file is read from (engine/declare.py)
CLASSIFIER = param_name(ClassifyJob, "classifier")

FORMAT = "rsdl-classifier"
VERSION = 1

#: scikit-learn internals our classifiers hold, beyond what skops trusts by default
ALLOWED_TYPES = {
    "_loss.CyHalfMultinomialLoss", "_loss.CyHalfBinomialLoss",
    "sklearn._loss.link.Interval", "sklearn._loss.link.MultinomialLogit",
    "sklearn._loss.link.LogitLink", "sklearn._loss.loss.HalfMultinomialLoss",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.metrics._dist_metrics.EuclideanDistance64",
    "sklearn.neighbors._kd_tree.KDTree", "sklearn.neighbors._ball_tree.BallTree",
}


def _sha(data):
    return hashlib.sha256(data).hexdigest()


def save(path: str, pipeline: Any, manifest: Dict[str, Any], model_path: Optional[str] = None,
         param: str = OUTPUT) -> str:
    """Write a classifier file (to a temporary name, renamed when complete)."""
    sio = require("skops.io", "skops")
    path = str(path)
    files = {"classifier.skops": sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)}
    if model_path:
        model_path = model_folder(model_path)
        if os.path.isdir(model_path):
            for root, _, names in os.walk(model_path):
                for n in sorted(names):
                    full = os.path.join(root, n)
                    rel = os.path.relpath(full, model_path).replace(os.sep, "/")
                    with open(full, "rb") as fh:
                        files[f"model/{rel}"] = fh.read()
            manifest["model_member"] = "model"
        else:
            with open(model_path, "rb") as fh:
                files[f"model/{os.path.basename(model_path)}"] = fh.read()
            manifest["model_member"] = f"model/{os.path.basename(model_path)}"
    manifest = dict(manifest, format=FORMAT, version=VERSION,
                    files={k: _sha(v) for k, v in files.items()})
    with AtomicFile(path, param) as out:
        with zipfile.ZipFile(out.tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for k, v in files.items():
                z.writestr(k, v)
    return path


class Loaded:
    """A loaded classifier: pipeline, manifest, and the extracted model folder/file."""

    def __init__(self, pipeline: Any, manifest: Dict[str, Any], workdir: Optional[str]) -> None:
        self.pipeline, self.manifest, self.workdir = pipeline, manifest, workdir

    @property
    def model_path(self) -> Optional[str]:
        member = self.manifest.get("model_member")
        return os.path.join(self.workdir, member) if member and self.workdir else None

    def close(self) -> None:
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


#: limits checked from the zip directory before any member is read (a zip bomb is
#: refused, not inflated): one member, all members, and the compression ratio of members
#: over 1 MiB (a trained classifier or model compresses far less than 50:1)
MAX_MEMBER = 4 << 30
MAX_TOTAL = 8 << 30
MAX_RATIO = 50
MAX_MANIFEST = 16 << 20
MAX_CLASSIFIER = 2 << 30


def _check_directory(z, path, param):
    """Refuse unsafe names and members too large or too compressed, from the directory."""
    total = 0
    for info in z.infolist():
        name = info.filename
        if name.startswith("/") or "\\" in name or ".." in name.split("/") or ":" in name:
            raise RsdlIOError(f"'{path}' holds an unsafe member name '{name}'; it was not "
                              "loaded", param)
        if info.file_size > MAX_MEMBER or (info.file_size > (1 << 20) and
                                           info.file_size > MAX_RATIO * max(1, info.compress_size)):
            raise RsdlIOError(f"'{path}' holds a member '{name}' that would inflate to "
                              f"{info.file_size / 2 ** 20:.0f} MiB from "
                              f"{info.compress_size / 2 ** 20:.1f} MiB: not a classifier file "
                              "written by rsdl:trainclassifier; it was not loaded", param)
        total += info.file_size
    if total > MAX_TOTAL:
        raise RsdlIOError(f"'{path}' would inflate to {total / 2 ** 30:.1f} GiB: not a "
                          "classifier file written by rsdl:trainclassifier", param)


def _read_member(z, name, limit, sink=None):
    """A member read in chunks (never beyond `limit` bytes): its SHA-256, and its bytes
    when no `sink` file is given."""
    digest = hashlib.sha256()
    parts, size = [], 0
    with z.open(name) as fh:
        while True:
            chunk = fh.read(1 << 20)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise ValueError(f"'{name}' is larger than its directory entry says")
            digest.update(chunk)
            if sink is not None:
                sink.write(chunk)
            else:
                parts.append(chunk)
    return digest.hexdigest(), (b"".join(parts) if sink is None else None)


def load(path: str, param: str = CLASSIFIER) -> "Loaded":
    """Read and check a classifier file; refuse anything modified or unexpected.

    The checksums in the manifest detect damage (a truncated copy, a bad disk), not
    tampering: anyone can recompute them. What protects against a hostile file is that
    nothing in it is executed: the classifier is rebuilt by skops from an explicit list
    of types, and the embedded model is scanned before it is loaded (models/safety.py).
    """
    sio = require("skops.io", "skops")
    path = str(path)
    bad = f"'{path}' is not a classifier file written by rsdl:trainclassifier"
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise RsdlIOError(f"{bad} ({exc})", param) from exc
    workdir = None
    try:
        with z:
            _check_directory(z, path, param)
            try:
                _, raw = _read_member(z, "manifest.json", MAX_MANIFEST)
                manifest = json.loads(raw)
            except (KeyError, ValueError, zipfile.BadZipFile) as exc:
                raise RsdlIOError(f"{bad}: no readable manifest", param) from exc
            if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
                raise RsdlIOError(bad, param)
            if not isinstance(manifest.get("version", 0), int):
                raise RsdlIOError(bad, param)
            if manifest.get("version", 0) > VERSION:
                raise RsdlIOError(f"'{path}' was written by a newer rsdl_qgis (format version "
                                  f"{manifest.get('version')}); update the plugin", param)
            listed = manifest.get("files", {})
            if not isinstance(listed, dict):
                raise RsdlIOError(bad, param)
            members = set(z.namelist()) - {"manifest.json"}
            if members != set(listed):
                raise RsdlIOError(f"'{path}' is damaged or was changed: its members "
                                  f"({', '.join(sorted(members ^ set(listed)))}) differ from "
                                  "its manifest. Train the classifier again", param)
            blob = None
            for name in sorted(members):
                try:
                    if name == "classifier.skops":
                        sha, blob = _read_member(z, name, MAX_CLASSIFIER)
                    else:
                        if workdir is None:
                            workdir = tempfile.mkdtemp(prefix="rsdl-classifier-")
                        full = os.path.join(workdir, *name.split("/"))
                        os.makedirs(os.path.dirname(full), exist_ok=True)
                        with open(full, "wb") as fh:
                            sha, _ = _read_member(z, name, MAX_MEMBER, fh)
                except (ValueError, zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                    raise RsdlIOError(f"'{path}' is damaged: member '{name}' cannot be read "
                                      f"({exc}). Train the classifier again", param) from exc
                if sha != listed[name]:
                    raise RsdlIOError(f"'{path}' is damaged or was changed: '{name}' does not "
                                      "match its checksum. Train the classifier again", param)
        if blob is None:
            raise RsdlIOError(f"{bad}: no classifier inside", param)
        try:
            untrusted = sio.get_untrusted_types(data=blob)
        except Exception as exc:  # skops raises various errors on corrupt data
            raise RsdlIOError(f"'{path}': the classifier inside cannot be read ({exc})",
                              param) from exc
        unexpected = sorted(set(untrusted) - ALLOWED_TYPES)
        if unexpected:
            raise RsdlIOError(f"'{path}' refers to types a classifier does not use "
                              f"({', '.join(unexpected)}); it was not loaded, as it may have "
                              "been tampered with", param)
        try:
            pipeline = sio.loads(blob, trusted=list(untrusted))
        except Exception as exc:
            raise RsdlIOError(f"'{path}': the classifier inside cannot be loaded ({exc})",
                              param) from exc
    except BaseException:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)
        raise
    return Loaded(pipeline, manifest, workdir)
