"""ONNX models, run by ONNX Runtime through the same engine as TensorFlow models.

- Inputs and outputs are addressed by name, like the TF adapters (a wrong name lists the
  model's names).
- Layout: ONNX models exported from PyTorch take NCHW (batch, bands, rows, cols), those
  from TensorFlow NHWC. The layout of each 4-D input is found from its shape (which
  dimension is a fixed band count, which are free or equal spatial sizes), else from the
  producer (tf2onnx: NHWC) or the rsdl metadata; the engine always sees NHWC, and 4-D
  outputs of an NCHW model are turned back.
- Metadata: rsdl metadata stored in ``metadata_props`` (key ``rsdl_metadata``, written by
  rsdl's ONNX export), else Deepness's model contract (docs/formats.md):

  - input scaling: pixels / 255, then ``(x - standardization_mean) / standardization_std``
    when the model gives them;
  - ``model_type``: Segmentor (class maps), Regressor (values x ``reg_output_scaling``),
    Superresolution (values on a finer grid); Detector and Recognition are refused with
    a message;
  - ``class_names``: one dictionary (one output) or a list of one per output. Each
    segmentation output gets a class output (``class``; ``class_2``... for the next
    ones): a one-channel (sigmoid) output is 1 (the class) where its value reaches
    ``seg_thresh`` (0.5 by default), else 0 (background); a softmax output's values
    under ``seg_thresh`` are set to 0, then the class is the index of the largest;
  - ``resolution`` (cm per pixel), ``tile_size`` and ``tiles_overlap`` (percent) are kept
    for the serving settings (api.py).
- Before the model is loaded, its graph is checked (models/safety.py): no operator from a
  custom domain, no external data outside the model's folder.
"""
import ast
import json
from typing import Any, Sequence, Tuple

import numpy as np

from ..engine.jobs import MODEL
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


def layout_of(shape: Sequence[Any], producer: str = "") -> Tuple[str, str]:
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

    def __init__(self, path: str, param: str = MODEL, trusted: bool = False) -> None:
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
        meta = self.metadata or {}
        deep = meta.get("deepness")
        # class outputs: {name: (real output, codes, names, binary)}
        self.class_outputs = {}
        if deep is not None:
            kind = deep.get("model_type", "")
            if kind in ("detection", "recognition"):
                raise ModelError(_UNSUPPORTED[kind], param)
            heads = deep.get("heads") or []
            if kind in ("", "segmentation") and heads:
                for i, (out, head) in enumerate(zip(self._real, heads)):
                    channels = _channels(self.outputs[out][0], self.nchw)
                    name = CLASS if i == 0 else f"{CLASS}_{i + 1}"
                    self.class_outputs[name] = (out,) + _head_classes(head, channels)
                    self.outputs[name] = (None, "int32")
                first = next(iter(self.class_outputs.values()))
                meta["classes"] = {"codes": first[1], "names": first[2]}
                meta["heads"] = {n: {"codes": c[1], "names": c[2]}
                                 for n, c in self.class_outputs.items()}
                meta["default_outputs"] = list(self.class_outputs)
            else:
                meta.pop("classes", None)
                meta["default_outputs"] = list(self._real)
        elif meta.get("classes") and CLASS not in self.outputs and self._real:
            codes = list(meta["classes"]["codes"])
            self.class_outputs[CLASS] = (self._real[0], codes, list(meta["classes"]["names"]),
                                         False)
            self.outputs[CLASS] = (None, "int32")
        norm = meta.get("standardization")
        self.norm = None
        if norm:
            self.norm = (np.asarray(norm["mean"], np.float32), np.asarray(norm["std"], np.float32),
                         float(norm.get("scale", 1.0)))
        self.seg_thresh = float((deep or {}).get("seg_thresh", 0.5))
        self.value_scale = float((deep or {}).get("reg_output_scaling", 1.0))

    def describe(self) -> str:
        text = super().describe()
        if self.layouts:
            text += "; layouts: " + ", ".join(f"{n} {lay} ({self.how[n]})"
                                              for n, lay in self.layouts.items())
        return text

    def _run(self, feeds, output_names):
        fd = {}
        for name, value in feeds.items():
            a = np.asarray(value)
            if self.norm is not None and a.ndim == 4:
                mean, std, scale = self.norm
                a = (a.astype(np.float32) * np.float32(scale) - mean) / std
            if self.layouts.get(name) == "NCHW":
                a = np.transpose(a, (0, 3, 1, 2))
            fd[name] = np.ascontiguousarray(a, dtype=self.inputs[name][1])
        fetch = list(dict.fromkeys(self.class_outputs[n][0] if n in self.class_outputs else n
                                   for n in output_names))
        try:
            res = dict(zip(fetch, self.session.run(fetch, fd)))
        except Exception as exc:
            raise self.failed(feeds, exc, self.param) from exc
        out = []
        for n in output_names:
            if n in self.class_outputs:
                real, codes, _, binary = self.class_outputs[n]
                out.append(self._classes(self._nhwc(res[real]), codes, binary))
                continue
            a = self._nhwc(res[n])
            if self.value_scale != 1.0 and a.dtype.kind == "f":
                a = a * np.float32(self.value_scale)
            out.append(a)
        return out

    def _nhwc(self, a):
        """An output in the engine's layout: channels last (an NCHW model's 4-D outputs
        turned back); a 3-D (batch, rows, cols) output is kept: one channel."""
        a = np.asarray(a)
        if self.nchw and a.ndim == 4:
            a = np.transpose(a, (0, 2, 3, 1))
        return a

    def _classes(self, a, codes, binary):
        """Class codes from scores (batch, rows, cols[, channels]), as Deepness makes
        them: values under seg_thresh set to 0; one channel: 1 where the value remains,
        else 0; several: the index of the largest."""
        if self.metadata and self.metadata.get("deepness") is not None:
            if a.ndim == 3:
                a = a[..., None]
            a = np.where(a < self.seg_thresh, 0, a)
            if binary or a.shape[-1] == 1:
                return (a[..., 0] != 0).astype(np.int32)
        elif a.ndim == 3:
            a = a[..., None]
        return np.asarray(codes)[np.argmax(a, axis=-1)].astype(np.int32)


_UNSUPPORTED = {
    "detection": "this is an object detection model (Deepness model_type Detector): "
                 "rsdl:modelserve makes rasters (class maps, values), not boxes; serve a "
                 "segmentation or regression model, or use Deepness for detection",
    "recognition": "this is an image recognition model (Deepness model_type Recognition): "
                   "it compares whole images, it does not map pixels; rsdl:modelserve "
                   "serves segmentation, regression and super-resolution models",
}

#: Deepness's model_type values (any case), and rsdl's words
MODEL_TYPES = {"segmentor": "segmentation", "segmentation": "segmentation",
               "regressor": "regression", "regression": "regression",
               "superresolution": "superresolution", "super-resolution": "superresolution",
               "super_resolution": "superresolution", "detector": "detection",
               "detection": "detection", "recognition": "recognition"}
#: the metadata keys of Deepness's contract: one of them makes a model Deepness's
DEEPNESS_KEYS = ("model_type", "class_names", "resolution", "tile_size", "tiles_size",
                 "tiles_overlap", "seg_thresh", "seg_small_segment", "reg_output_scaling",
                 "det_conf", "det_iou_thresh", "det_type", "standardization_mean",
                 "standardization_std")


def _channels(shape, nchw):
    """The channel count of a 4-D output shape, None when free or not 4-D (3-D: 1)."""
    if shape is None:
        return None
    if len(shape) == 3:
        return 1
    return shape[-1] if len(shape) == 4 else None


def _head_classes(head, channels):
    """(codes, names, binary) of one segmentation output whose class_names are `head`
    ({index: name}) and which has `channels` channels (None: unknown)."""
    items = sorted(head.items())
    binary = channels == 1 or (channels is None and len(items) == 1)
    if binary:
        names = [n for _, n in items]
        names = names if len(names) == 2 else ["background", names[0] if names else "class"]
        return [0, 1], names, True
    count = max(channels or 0, (items[-1][0] + 1) if items else 0)
    named = dict(items)
    return list(range(count)), [named.get(i, f"class {i}") for i in range(count)], False


def _value(text):
    """A metadata value as Deepness writes it: JSON, or a Python literal (class names
    with integer keys), read without evaluating code; else the text itself."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def _names(value):
    """{index: name} from one class_names dictionary (or list), else None."""
    if isinstance(value, dict):
        try:
            return {int(k): str(v) for k, v in value.items()}
        except (TypeError, ValueError):
            return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return dict(enumerate(value))
    return None


def _metadata(props):
    """rsdl metadata from metadata_props, or what Deepness's keys say (None: none)."""
    if "rsdl_metadata" in props:
        try:
            return json.loads(props["rsdl_metadata"])
        except ValueError:
            return None
    if not any(k in props for k in DEEPNESS_KEYS + ("names",)):
        return None
    deep: dict = {}
    meta: dict = {"deepness": deep}
    for key in ("resolution", "tile_size", "tiles_overlap", "seg_thresh", "reg_output_scaling"):
        raw = props.get(key if key != "tile_size" or key in props else "tiles_size")
        if raw is None:
            continue
        value = _value(raw)
        try:
            deep[key] = float(value)
        except (TypeError, ValueError):
            raise ModelError(f"the model's metadata '{key}' is '{raw[:40]}', not a number: fix "
                             "it in the ONNX file's metadata_props", MODEL) from None
    if "model_type" in props:
        kind = str(_value(props["model_type"])).strip().lower()
        if kind not in MODEL_TYPES:
            raise ModelError(f"the model's metadata says model_type '{kind}', which is none of "
                             "Segmentor, Regressor, Superresolution, Detector, Recognition",
                             MODEL)
        deep["model_type"] = MODEL_TYPES[kind]
    raw = props.get("class_names", props.get("names"))
    if raw:
        value = _value(raw)
        heads = [_names(v) for v in value] if isinstance(value, list) and value and \
            all(isinstance(v, dict) for v in value) else [_names(value)]
        if any(h is None for h in heads):
            raise ModelError(f"the model's class_names '{raw[:60]}' are neither a dictionary "
                             "{index: name} nor a list of them (one per output)", MODEL)
        deep["heads"] = heads
    mean = props.get("standardization_mean")
    std = props.get("standardization_std")
    meta["standardization"] = {"mean": _value(mean) if mean else 0.0,
                               "std": _value(std) if std else 1.0, "scale": 1 / 255.0}
    return meta
