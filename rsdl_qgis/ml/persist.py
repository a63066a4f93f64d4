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

from ..deps import require
from ..errors import RsdlIOError

FORMAT = "rsdl-classifier"
VERSION = 1
SUFFIX = ".rsdlc"

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


def save(path, pipeline, manifest, model_path=None, param="OUTPUT_CLASSIFIER"):
    """Write a classifier file (to a temporary name, renamed when complete)."""
    sio = require("skops.io", "skops")
    path = str(path)
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)),
                       f".{os.path.basename(path)}.{os.getpid()}.part")
    files = {"classifier.skops": sio.dumps(pipeline, compression=zipfile.ZIP_DEFLATED)}
    if model_path:
        model_path = str(model_path)
        if os.path.isfile(model_path) and os.path.basename(model_path) == "saved_model.pb":
            model_path = os.path.dirname(model_path)
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
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("manifest.json", json.dumps(manifest, indent=1))
            for k, v in files.items():
                z.writestr(k, v)
        os.replace(tmp, path)
    except OSError as exc:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise RsdlIOError(f"cannot write '{path}': {exc}", param) from exc
    return path


class Loaded:
    """A loaded classifier: pipeline, manifest, and the extracted model folder/file."""

    def __init__(self, pipeline, manifest, workdir):
        self.pipeline, self.manifest, self.workdir = pipeline, manifest, workdir

    @property
    def model_path(self):
        member = self.manifest.get("model_member")
        return os.path.join(self.workdir, member) if member else None

    def close(self):
        if self.workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
            self.workdir = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def load(path, param="CLASSIFIER"):
    """Read and check a classifier file; refuse anything modified or unexpected."""
    sio = require("skops.io", "skops")
    path = str(path)
    bad = f"'{path}' is not a classifier file written by rsdl:trainclassifier"
    try:
        z = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as exc:
        raise RsdlIOError(f"{bad} ({exc})", param) from exc
    with z:
        try:
            manifest = json.loads(z.read("manifest.json"))
        except (KeyError, ValueError) as exc:
            raise RsdlIOError(f"{bad}: no readable manifest", param) from exc
        if manifest.get("format") != FORMAT:
            raise RsdlIOError(bad, param)
        if manifest.get("version", 0) > VERSION:
            raise RsdlIOError(f"'{path}' was written by a newer rsdl_qgis (format version "
                              f"{manifest.get('version')}); update the plugin", param)
        listed = manifest.get("files", {})
        members = set(z.namelist()) - {"manifest.json"}
        if members != set(listed):
            raise RsdlIOError(f"'{path}' has been tampered with: its members "
                              f"({', '.join(sorted(members ^ set(listed)))}) differ from its "
                              "manifest. Train the classifier again", param)
        data = {}
        for name in sorted(members):
            if name.startswith("/") or ".." in name.split("/"):
                raise RsdlIOError(f"'{path}' holds an unsafe member name '{name}'", param)
            data[name] = z.read(name)
            if _sha(data[name]) != listed[name]:
                raise RsdlIOError(f"'{path}' has been tampered with: '{name}' does not match "
                                  "its checksum. Train the classifier again", param)
    blob = data.pop("classifier.skops", None)
    if blob is None:
        raise RsdlIOError(f"{bad}: no classifier inside", param)
    try:
        untrusted = sio.get_untrusted_types(data=blob)
    except Exception as exc:  # skops raises various errors on corrupt data
        raise RsdlIOError(f"'{path}': the classifier inside cannot be read ({exc})", param) from exc
    unexpected = sorted(set(untrusted) - ALLOWED_TYPES)
    if unexpected:
        raise RsdlIOError(f"'{path}' refers to types a classifier does not use "
                          f"({', '.join(unexpected)}); it was not loaded, as it may have been "
                          "tampered with", param)
    try:
        pipeline = sio.loads(blob, trusted=list(untrusted))
    except Exception as exc:
        raise RsdlIOError(f"'{path}': the classifier inside cannot be loaded ({exc})", param) from exc
    workdir = None
    if data:
        workdir = tempfile.mkdtemp(prefix="rsdl-classifier-")
        for name, content in data.items():
            full = os.path.join(workdir, *name.split("/"))
            os.makedirs(os.path.dirname(full), exist_ok=True)
            with open(full, "wb") as fh:
                fh.write(content)
    return Loaded(pipeline, manifest, workdir)
