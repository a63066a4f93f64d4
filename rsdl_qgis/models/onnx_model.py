"""ONNX models, run by ONNX Runtime through the same engine as TensorFlow models.

- Inputs and outputs are addressed by name, like the TF adapters (a wrong name lists the
  model's names).
- Layout: ONNX models exported from PyTorch take NCHW (batch, bands, rows, cols), those
  from TensorFlow NHWC. The layout of each 4-D input is found from its shape (which
  dimension is a fixed band count, which are free or equal spatial sizes), else from the
  producer (tf2onnx: NHWC) or the rsdl metadata; the engine always sees NHWC, and 4-D
  outputs of an NCHW model are turned back.
- Metadata: rsdl metadata stored in ``metadata_props`` (key ``rsdl_metadata``, written by
  rsdl's ONNX export) and Deepness metadata (``class_names``, ``model_type``,
  ``resolution``, ``tile_size``, ``standardization_mean``/``_std``) are read. A model
  with class names and no ``class`` output gets one: the index of the largest value of
  its first output, as the class code.
- Before the model is loaded, its graph is checked (models/safety.py): no operator from a
  custom domain, no external data outside the model's folder.
"""
import json

import numpy as np

from ..errors import ModelError
from . import safety
from .adapters import ModelAdapter, reason

ORT_TYPES = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16",
             "tensor(uint8)": "uint8", "tensor(int8)": "int8", "tensor(uint16)": "uint16",
             "tensor(int16)": "int16", "tensor(int32)": "int32", "tensor(int64)": "int64",
             "tensor(bool)": "bool"}
CLASS = "class"


def _dim(d):
    return d if isinstance(d, int) and d > 0 else None


def layout_of(shape, producer=""):
    """'NCHW' or 'NHWC' for a 4-D input shape (None = free), with how it was found."""
    _, a, b, c = shape
    if a is not None and b is None and c is None:
        return "NCHW", f"fixed band count {a} in second place"
    if c is not None and a is None and b is None:
        return "NHWC", f"fixed band count {c} in last place"
    if None not in (a, b, c):
        if b == c and a != b:
            return "NCHW", f"square {b} x {c} patches after {a} bands"
        if a == b and c != a:
            return "NHWC", f"square {a} x {b} patches before {c} bands"
    if "tf2onnx" in producer:
        return "NHWC", "exported from TensorFlow (tf2onnx)"
    return "NCHW", "not decidable from the shape: PyTorch's NCHW assumed"


class OnnxModel(ModelAdapter):
    kind = "ONNX model"

    def __init__(self, path, param="MODEL", trusted=False):
        super().__init__(path)
        from ..deps import require
        onnx = require("onnx", "onnx")
        ort = require("onnxruntime", "onnxruntime")
        try:
            proto = onnx.load(path, load_external_data=False)
        except Exception as exc:
            raise ModelError(f"'{path}' is not an ONNX model ({reason(exc)})", param) from exc
        if not trusted:
            safety.check_onnx(proto, path, param)
        props = {p.key: p.value for p in proto.metadata_props}
        self.metadata = _metadata(props)
        options = ort.SessionOptions()
        options.log_severity_level = 3
        providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider")
                     if p in ort.get_available_providers()]
        try:
            self.session = ort.InferenceSession(path, options, providers=providers)
        except Exception as exc:
            text = reason(exc)
            if "IR version" in text:
                text = (f"it was written with ONNX IR version {proto.ir_version}, newer than "
                        f"this ONNX Runtime ({ort.__version__}) reads: export it again with an "
                        "older ONNX version")
            raise ModelError(f"ONNX Runtime cannot load '{path}': {text}", param) from exc
        self.param = param
        self.layouts, self.how = {}, {}
        forced = (self.metadata or {}).get("layout")
        for i in self.session.get_inputs():
            shape = tuple(_dim(d) for d in i.shape) if i.shape is not None else None
            dtype = ORT_TYPES.get(i.type, "float32")
            if shape is not None and len(shape) == 4:
                lay, how = (forced, "from the model's metadata") if forced else \
                    layout_of(shape, proto.producer_name)
                self.layouts[i.name], self.how[i.name] = lay, how
                if lay == "NCHW":
                    shape = (shape[0], shape[2], shape[3], shape[1])
            self.inputs[i.name] = (shape, dtype)
        self.nchw = any(v == "NCHW" for v in self.layouts.values())
        for o in self.session.get_outputs():
            shape = tuple(_dim(d) for d in o.shape) if o.shape is not None else None
            if shape is not None and len(shape) == 4 and self.nchw:
                shape = (shape[0], shape[2], shape[3], shape[1])
            self.outputs[o.name] = (shape, ORT_TYPES.get(o.type, "float32"))
        self._real = [o.name for o in self.session.get_outputs()]
        classes = (self.metadata or {}).get("classes")
        if classes and CLASS not in self.outputs and self._real:
            self.outputs[CLASS] = (None, "int32")
        norm = (self.metadata or {}).get("standardization")
        self.norm = None
        if norm:
            self.norm = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32),
                         float(norm.get("scale", 1.0)))

    def describe(self):
        text = super().describe()
        if self.layouts:
            text += "; layouts: " + ", ".join(f"{n} {lay} ({self.how[n]})"
                                              for n, lay in self.layouts.items())
        return text

    def run(self, feeds, output_names):
        fd = {}
        for name, value in feeds.items():
            a = np.asarray(value)
            if self.norm is not None and a.ndim == 4:
                mean, std, scale = self.norm
                a = (a.astype(np.float32) * scale - mean) / std
            if self.layouts.get(name) == "NCHW":
                a = np.transpose(a, (0, 3, 1, 2))
            fd[name] = np.ascontiguousarray(a, dtype=self.inputs[name][1])
        wanted = [n for n in output_names if n != CLASS or CLASS in self._real]
        fetch = list(dict.fromkeys(wanted + ([self._real[0]] if len(wanted) < len(output_names)
                                             else [])))
        try:
            res = dict(zip(fetch, self.session.run(fetch, fd)))
        except Exception as exc:
            raise self.failed(feeds, exc, self.param) from exc
        out = []
        for n in output_names:
            if n == CLASS and CLASS not in self._real:
                a = res[self._real[0]]
                axis = 1 if (self.nchw and a.ndim == 4) else -1
                codes = np.asarray(self.metadata["classes"]["codes"])
                out.append(codes[np.argmax(a, axis=axis)].astype(np.int32))
                continue
            a = res[n]
            if self.nchw and a.ndim == 4:
                a = np.transpose(a, (0, 2, 3, 1))
            out.append(a)
        return out


def _metadata(props):
    """rsdl metadata from metadata_props, or what Deepness-style keys say (None: none)."""
    if "rsdl_metadata" in props:
        try:
            return json.loads(props["rsdl_metadata"])
        except ValueError:
            return None
    meta = {}
    names = props.get("class_names")
    if names:
        try:
            parsed = json.loads(names)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict):
            items = sorted((int(k), str(v)) for k, v in parsed.items())
        elif isinstance(parsed, list):
            items = list(enumerate(map(str, parsed)))
        else:
            items = []
        if items:
            meta["classes"] = {"codes": [k for k, _ in items], "names": [v for _, v in items]}
            meta["default_outputs"] = [CLASS]
    if "standardization_mean" in props and "standardization_std" in props:
        try:
            meta["standardization"] = {"mean": json.loads(props["standardization_mean"]),
                                       "std": json.loads(props["standardization_std"]),
                                       "scale": 1 / 255.0}
        except ValueError:
            pass
    deepness = {k: props[k] for k in ("model_type", "resolution", "tile_size", "tiles_overlap")
                if k in props}
    if deepness:
        meta["deepness"] = deepness
    return meta or None
