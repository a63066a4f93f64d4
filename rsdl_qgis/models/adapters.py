"""Model adapters: one interface over the kinds of TensorFlow models users bring.

- TF1 SavedModels (OTBTF's): no signatures; inputs and outputs are addressed by tensor
  name (``x`` or ``x:0``), loaded with ``tf.compat.v1.saved_model.loader.load``.
- TF2 SavedModels (``model.export()``, ``tf.saved_model.save``): addressed by the keys of
  their serving signature.
- Keras ``.keras`` files, loaded in safe mode (no arbitrary code).

Every adapter has ``inputs`` and ``outputs`` (name -> (shape, dtype)),
``resolve_input(name, param)`` / ``resolve_output(...)`` (an empty name picks the only
one; an unknown one fails with the names the model has), ``input_dtype(name)`` and
``run(feeds, output_names) -> list of numpy arrays``. TensorFlow is imported lazily.
"""

from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..engine.choices import MAX_BATCH
from ..engine.jobs import SERVE, source_param
from ..engine.model import TensorInfo
from ..errors import ModelError
from . import safety

#: the parameters errors name (engine/declare.py)
FIRST_NAME = source_param(0, "name")
TF1_SKIP_SINK_TYPES = {"NoOp", "Assign", "AssignVariableOp", "SaveV2", "RestoreV2", "Const",
                       "VarHandleOp", "VariableV2", "MergeV2Checkpoints",
                       "StringJoin", "ShardedFilename", "Placeholder", "PlaceholderWithDefault"}


def _training_op(op):
    """Ops of the training machinery (optimizer slots, gradients, savers, shape helpers)."""
    name = op.name
    return (name.split("/")[0].split("_")[0] in ("gradients", "save", "optimizer") or "optimizer" in name
            or name.endswith(("/read", "/Shape")) or "assert" in name or op.type.startswith("Apply")
            or "strided_slice" in name)


def reason(exc: BaseException) -> str:
    """The informative line of a TensorFlow error (its first line is often only 'Graph
    execution error:', followed by stack entries)."""
    skip = ("Graph execution error", "Detected at node", "Stack trace", "File ", "[[", "<",
            "Traceback", "Error in user-defined function", "Node:")
    lines = [ln.strip() for ln in str(exc).splitlines()]
    if lines and lines[0].startswith("[ONNXRuntimeError]"):
        # ONNX Runtime says what is wrong over several lines ("Got invalid dimensions for
        # input: x for the following indices / index: 1 Got: 4 Expected: 3 / Please fix
        # either the inputs or the model."): keep them all, in one line
        text = " ".join(ln for ln in lines if ln)
        text = text.split("] : ", 1)[-1] if "] : " in text else text
        return text[:500]
    useful = [ln for ln in lines if ln and not ln.startswith(skip) and not ln.endswith(":")]
    text = (useful or lines or [type(exc).__name__])[0]
    return text[:300]


def _dtype_name(dt):
    return np.dtype(dt.as_numpy_dtype).name if hasattr(dt, "as_numpy_dtype") else np.dtype(dt).name


class ModelAdapter:
    """The engine's Model interface (engine/model.py) for models from files, plus name
    resolution, a description, and the rsdl metadata when the model carries it."""
    kind = "model"

    def __init__(self, path: str) -> None:
        self.path = path
        self.inputs: Dict[str, TensorInfo] = {}
        self.outputs: Dict[str, TensorInfo] = {}
        self.metadata: Optional[Dict[str, Any]] = None
        self.extra_outputs = False  # TF1 graphs can return any tensor, not only the sinks

    def _has_tensor(self, name: str) -> bool:
        """Whether the graph holds a tensor of that name (TF1 graphs)."""
        return False

    def _tensor_info(self, name: str) -> TensorInfo:
        raise NotImplementedError

    def _resolve(self, name, table, what, param):
        if not name:
            if len(table) == 1:
                return next(iter(table))
            raise ModelError(f"the model has {len(table)} {what}s ({', '.join(sorted(table))}): "
                             f"say which one", param)
        if name in table:
            return name
        base = name[:-2] if name.endswith(":0") else name
        if base in table:
            return base
        if what == "output" and self.extra_outputs and self._has_tensor(base):
            self.outputs[base] = self._tensor_info(base)
            return base
        raise ModelError(f"the model has no {what} named '{name}'; its {what}s are: "
                         f"{', '.join(sorted(table)) or '(none)'}", param)

    def resolve_input(self, name: str, param: str = FIRST_NAME) -> str:
        return self._resolve(name, self.inputs, "input", param)

    def resolve_output(self, name: str, param: str = SERVE.output_names) -> str:
        return self._resolve(name, self.outputs, "output", param)

    def input_dtype(self, name: str) -> str:
        dt = self.inputs[name][1]
        return "float32" if dt in ("string", "object", "bool") else dt

    def fixed_batch(self) -> Optional[int]:
        """The batch size the model's inputs are fixed to (ONNX exports often take
        exactly 1), else None (any batch)."""
        sizes = {s[0] for s, _ in self.inputs.values() if s and s[0] is not None}
        batch = sizes.pop() if len(sizes) == 1 else None
        if batch is not None and not 1 <= batch <= MAX_BATCH:
            raise ModelError(f"the model declares a fixed batch of {batch} patches (at most "
                             f"{MAX_BATCH} are fed at once): the model file is damaged "
                             "or not made for images", SERVE.model)
        return batch

    def run(self, feeds: Dict[str, np.ndarray],
            output_names: Sequence[str]) -> List[np.ndarray]:
        """The outputs for `feeds` (batch first); a model whose batch size is fixed is fed
        batches of exactly that size (the last one filled up with copies of its last
        item, whose outputs are dropped)."""
        b = self.fixed_batch()
        n = len(next(iter(feeds.values()))) if feeds else 0
        if b is None or n == b:
            return self._run(feeds, output_names)
        parts: list = []
        for k in range(0, n, b):
            chunk = {name: np.asarray(v)[k:k + b] for name, v in feeds.items()}
            m = len(next(iter(chunk.values())))
            if m < b:
                chunk = {name: np.concatenate([v, np.repeat(v[-1:], b - m, axis=0)])
                         for name, v in chunk.items()}
            parts.append([np.asarray(r)[:m] for r in self._run(chunk, output_names)])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(output_names))]

    def _run(self, feeds, output_names):
        raise NotImplementedError

    @staticmethod
    def failed(feeds: Dict[str, np.ndarray], exc: BaseException,
               param: str = SERVE.model) -> ModelError:
        """The error of a run that failed: the shapes fed and TensorFlow's or ONNX Runtime's
        informative line."""
        shapes = {k: v.shape for k, v in feeds.items()}
        return ModelError(f"the model failed on inputs {shapes}: {reason(exc)}", param)

    def describe(self) -> str:
        def fmt(t):
            return ", ".join(f"{n} {list(s) if s is not None else '?'} {d}"
                             for n, (s, d) in sorted(t.items()))
        return f"{self.kind} '{self.path}'; inputs: {fmt(self.inputs)}; outputs: {fmt(self.outputs)}"


class TF1Model(ModelAdapter):
    kind = "TF1 SavedModel"

    def __init__(self, path: str, tf: Any, tags: Sequence[str] = ("serve",),
                 graph_def: Any = None, param: str = SERVE.model) -> None:
        super().__init__(path)
        self.param = param
        self._unchecked = graph_def         # scanned per set of fetched tensors (safety.py)
        self._checked: set = set()
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        try:
            with self.graph.as_default():
                meta = tf.compat.v1.saved_model.loader.load(self.session, list(tags), path)
        except Exception as exc:
            raise ModelError(f"cannot load the TF1 SavedModel '{path}': {exc}", param) from exc
        self.extra_outputs = True
        sig = meta.signature_def.get("serving_default")
        if sig is not None and sig.inputs:
            self.inputs = {k: self._tensor_info(v.name) for k, v in sig.inputs.items()}
            self.outputs = {k: self._tensor_info(v.name) for k, v in sig.outputs.items()}
            self._names = {k: v.name for k, v in list(sig.inputs.items()) + list(sig.outputs.items())}
        else:
            self._names = {}
            ops = self.graph.get_operations()
            self.inputs = {op.name: self._tensor_info(op.name) for op in ops
                           if op.type == "Placeholder"}
            consumed = {t.name for op in ops for t in op.inputs}
            self.outputs = {}
            for op in ops:
                if (op.type in TF1_SKIP_SINK_TYPES or not op.outputs or _training_op(op)
                        or any(t.name in consumed for t in op.outputs)):
                    continue
                self.outputs[op.name] = self._tensor_info(op.name)

    def _tensor(self, name):
        full = self._names.get(name, name if ":" in name else name + ":0")
        return self.graph.get_tensor_by_name(full)

    def _has_tensor(self, name):
        try:
            self._tensor(name)
            return True
        except (KeyError, ValueError):
            return False

    def _tensor_info(self, name):
        t = self._tensor(name)
        shape = None if t.shape.rank is None else tuple(t.shape.as_list())
        return shape, _dtype_name(t.dtype)

    def _run(self, feeds, output_names):
        fd = {self._tensor(k): v for k, v in feeds.items()}
        fetches = [self._tensor(n) for n in output_names]
        key = tuple(t.name for t in fetches)
        if self._unchecked is not None and key not in self._checked:
            safety.check_tf1_fetches(self.path, self._unchecked, list(key), self.param)
            self._checked.add(key)
        try:
            return self.session.run(fetches, fd)
        except Exception as exc:
            raise self.failed(feeds, exc) from exc


class TF2Model(ModelAdapter):
    kind = "TF2 SavedModel"

    def __init__(self, path: str, tf: Any, loaded: Any) -> None:
        super().__init__(path)
        self.tf = tf
        self.obj = loaded          # holds the variables the signature reads
        sigs = loaded.signatures
        key = "serving_default" if "serving_default" in sigs else sorted(sigs)[0]
        self.fn = sigs[key]
        _, kwargs = self.fn.structured_input_signature
        self.inputs = {k: (tuple(v.shape.as_list()) if v.shape.rank is not None else None,
                           _dtype_name(v.dtype)) for k, v in kwargs.items()}
        self.outputs = {k: (tuple(v.shape.as_list()) if v.shape.rank is not None else None,
                            _dtype_name(v.dtype)) for k, v in self.fn.structured_outputs.items()}

    def _run(self, feeds, output_names):
        try:
            res = self.fn(**{k: self.tf.constant(v) for k, v in feeds.items()})
        except Exception as exc:
            raise self.failed(feeds, exc) from exc
        return [res[n].numpy() for n in output_names]


class KerasModel(ModelAdapter):
    kind = "Keras model"

    def __init__(self, path: str, tf: Any, safe_mode: bool = True,
                 param: str = SERVE.model) -> None:
        super().__init__(path)
        import keras
        try:
            self.model = keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
        except Exception as exc:
            raise ModelError(f"cannot load the Keras model '{path}' (safe mode): {exc}",
                             param) from exc
        self.tf = tf
        self.inputs = {t.name: (tuple(t.shape), np.dtype(t.dtype).name) for t in self.model.inputs}
        self.outputs = {n: (tuple(t.shape), np.dtype(t.dtype).name)
                        for n, t in zip(self.model.output_names, self.model.outputs)}
        self._fn = tf.function(lambda x: self.model(x, training=False), reduce_retracing=True)

    def _run(self, feeds, output_names):
        x = [self.tf.constant(feeds[t.name]) for t in self.model.inputs]
        try:
            res = self._fn(x if len(x) > 1 else x[0])
        except Exception as exc:
            raise self.failed(feeds, exc) from exc
        if not isinstance(res, (list, tuple)):
            res = [res]
        by_name = dict(zip(self.model.output_names, res))
        return [np.asarray(by_name[n]) for n in output_names]
