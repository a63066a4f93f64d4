"""A model is code: what a model file may run is checked before it is loaded.

A TensorFlow graph can hold operations with effects outside the computation: writing or
reading files (WriteFile, ReadFile, MatchingFiles, summary writers), calling back into
Python (PyFunc, EagerPyFunc), printing to a file, talking to the network (Send/Recv,
collectives, RPC), reading datasets. A model that serves a map needs none of them.

Before a SavedModel is loaded, this module reads ``saved_model.pb`` as data (protocol
buffers; nothing is executed) and walks what loading and serving will run:

- TF2 SavedModels: the functions reachable from the serving signature's outputs and
  from the init op, following every function call (``StatefulPartitionedCall``,
  ``While``/``If`` bodies...) into the function library; every node of a called function
  counts, since stateful nodes run whether or not they feed an output;
- TF1 SavedModels (OTBTF's): the nodes the restore op and init ops depend on at load,
  and, before the first run, the nodes the requested output tensors depend on
  (:func:`check_tf1_fetches`);
- Keras ``.keras`` files: the layer configuration (no ``Lambda`` layer, no class from
  outside Keras); Keras then loads in safe mode.

Any operation with an outside effect is refused with its name and node, unless the user
marks the model as trusted. Models written by rsdl and OTBTF's models pass.
"""
import json
import os
import zipfile
from typing import Any, Collection, Sequence

from ..engine.jobs import MODEL, SERVE
from ..errors import ModelError

#: operations refused by name
DENIED = {
    "WriteFile", "ReadFile", "MatchingFiles", "PyFunc", "PyFuncStateless", "EagerPyFunc",
    "PrintV2", "Print", "ImmutableConst", "DecodeProtoV2", "EncodeProto",
    "LoadAndRemapMatrix", "GenerateVocabRemapping", "Save", "SaveV2", "SaveSlices",
    "MergeV2Checkpoints", "Restore", "RestoreV2", "RestoreSlice", "_Send", "_Recv",
    "_HostSend", "_HostRecv", "Send", "Recv", "InitializeTableFromTextFile",
    "InitializeTableFromTextFileV2", "InitializeTableFromDataset", "IteratorFromStringHandle",
}
#: families of operations refused by a part of their name (readers, writers, summaries,
#: datasets, debug hooks, RPC, collectives, checkpoints)
DENIED_PARTS = ("File", "Reader", "Writer", "Summary", "Dataset", "Debug", "Rpc", "Collective",
                "PyFunc", "Checkpoint", "Socket", "TPUEmbedding", "Iterator")
#: what a TF1 restore op legitimately runs: the model's own variables from its folder
RESTORE_OPS = {"RestoreV2", "Restore", "RestoreSlice"}

TRUST_HINT = ("It was refused: a model can hold code. If you know where it comes from "
              f"and trust it, tick 'Trust this model' ({SERVE.trust_model}=true) in the advanced "
              "parameters.")


def denied(op: str, allow: Collection[str] = ()) -> bool:
    if op in allow:
        return False
    return op in DENIED or any(part in op for part in DENIED_PARTS)


def _refuse(path, op, node, param):
    raise ModelError(f"the model '{path}' holds a '{op}' operation (node '{node}'), which "
                     f"acts outside the computation (files, network, Python code). "
                     f"{TRUST_HINT}", param)


def _read_saved_model(path, param):
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    try:
        with open(os.path.join(path, "saved_model.pb"), "rb") as fh:
            proto.ParseFromString(fh.read())
    except Exception as exc:
        raise ModelError(f"'{path}/saved_model.pb' is not a SavedModel: {exc}", param) from exc
    if not proto.meta_graphs:
        raise ModelError(f"'{path}/saved_model.pb' holds no graph", param)
    return proto


def _meta_graph(proto, tags=("serve",)):
    for mg in proto.meta_graphs:
        if set(tags) <= set(mg.meta_info_def.tags):
            return mg
    return proto.meta_graphs[0]


class _Graph:
    """A GraphDef and its function library, as plain data."""

    def __init__(self, graph_def):
        self.nodes = {n.name: n for n in graph_def.node}
        self.functions = {f.signature.name: f for f in graph_def.library.function}

    @staticmethod
    def _called(node):
        """Names of the functions a node calls (any attribute holding a function)."""
        for attr in node.attr.values():
            if attr.HasField("func") and attr.func.name:
                yield attr.func.name
            if attr.HasField("list"):
                for f in attr.list.func:
                    yield f.name
        if node.op not in ("", None):
            yield node.op              # a function may be called as an op by its name

    def reachable(self, roots):
        """(op, node name) of every node the root tensors/ops depend on, and of every node
        in the functions they call, transitively."""
        seen: set = set()
        todo: list = []
        found: list = []
        funcs: set = set()
        for r in roots:
            name = r.split(":")[0].lstrip("^")
            if name in self.nodes:
                todo.append(name)
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            node = self.nodes[name]
            found.append((node.op, name))
            for inp in node.input:
                src = inp.lstrip("^").split(":")[0]
                if src in self.nodes and src not in seen:
                    todo.append(src)
            self._functions(node, funcs, found)
        return found

    def _functions(self, node, funcs, found):
        stack = [f for f in self._called(node) if f in self.functions and f not in funcs]
        while stack:
            fname = stack.pop()
            if fname in funcs:
                continue
            funcs.add(fname)
            for n in self.functions[fname].node_def:
                found.append((n.op, f"{fname}/{n.name}"))
                stack.extend(f for f in self._called(n) if f in self.functions and f not in funcs)


def _init_roots(mg):
    roots = []
    for key in ("saved_model_main_op", "legacy_init_op", "table_initializer"):
        if key in mg.collection_def:
            roots.extend(mg.collection_def[key].node_list.value)
    init = mg.signature_def.get("__saved_model_init_op")
    if init is not None:
        roots.extend(t.name for t in init.outputs.values())
    return roots


def check_saved_model(path: str, param: str = MODEL, trusted: bool = False,
                      signature: str = "serving_default") -> Any:
    """Scan a SavedModel folder before it is loaded; returns the parsed meta graph.

    Checks what loading runs (restore and init ops) and, for models with signatures,
    what serving `signature` runs. TF1 models without signatures are checked again at
    their first run, once the output tensors are known (check_tf1_fetches).
    """
    proto = _read_saved_model(path, param)
    mg = _meta_graph(proto)
    if trusted:
        return mg
    graph = _Graph(mg.graph_def)
    for op, node in graph.reachable(_init_roots(mg)):
        if denied(op):
            _refuse(path, op, node, param)
    restore = mg.saver_def.restore_op_name
    if restore:
        for op, node in graph.reachable([restore]):
            if denied(op, RESTORE_OPS):
                _refuse(path, op, node, param)
    sigs = {k: v for k, v in mg.signature_def.items() if not k.startswith("__")}
    if sigs:
        key = signature if signature in sigs else sorted(sigs)[0]
        roots = [t.name for t in sigs[key].outputs.values()]
        for op, node in graph.reachable(roots):
            if denied(op):
                _refuse(path, op, node, param)
    return mg


def check_tf1_fetches(path: str, graph_def: Any, fetches: Sequence[str],
                      param: str = MODEL) -> None:
    """Before a TF1 graph runs: nothing the fetched tensors depend on acts outside."""
    for op, node in _Graph(graph_def).reachable(fetches):
        if denied(op):
            _refuse(path, op, node, param)


def check_keras_file(path: str, param: str = MODEL, trusted: bool = False) -> None:
    """A .keras file's configuration: only Keras's own layers, no Lambda (Python code)."""
    if trusted:
        return
    try:
        with zipfile.ZipFile(path) as z:
            info = z.getinfo("config.json")
            if info.file_size > 64 << 20:
                raise ModelError(f"'{path}' has a configuration of {info.file_size} bytes: "
                                 "not a Keras model", param)
            config = json.loads(z.read("config.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelError(f"'{path}' is not a Keras model file ({exc})", param) from exc
    stack = [config]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            cls, module = item.get("class_name"), item.get("module")
            if cls == "Lambda" or cls == "TFOpLambda":
                raise ModelError(f"the Keras model '{path}' holds a Lambda layer "
                                 f"('{item.get('config', {}).get('name', '?')}'), which runs "
                                 f"Python code. {TRUST_HINT}", param)
            if isinstance(module, str) and module and module.split(".")[0] not in ("keras",):
                raise ModelError(f"the Keras model '{path}' refers to '{module}.{cls}', a class "
                                 f"from outside Keras. {TRUST_HINT}", param)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


#: operator domains ONNX Runtime implements itself; any other needs a custom library
ONNX_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft"}


def _onnx_graphs(proto):
    """The main graph, every subgraph (If/Loop/Scan bodies) and local functions."""
    todo = [proto.graph]
    while todo:
        g = todo.pop()
        yield g.name or "main graph", g.node, list(g.initializer)
        for node in g.node:
            for attr in node.attribute:
                if attr.HasField("g"):
                    todo.append(attr.g)
                todo.extend(attr.graphs)
    for f in proto.functions:
        yield f"function {f.name}", f.node, []


def check_onnx(proto: Any, path: str, param: str = MODEL) -> None:
    """Refuse custom operators (code from a library outside ONNX Runtime) and external data
    outside the model's folder, before ONNX Runtime opens the model."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(str(path))))
    for where, nodes, initializers in _onnx_graphs(proto):
        for node in nodes:
            if node.domain not in ONNX_DOMAINS and not any(
                    f.name == node.op_type and f.domain == node.domain for f in proto.functions):
                raise ModelError(f"the ONNX model '{path}' uses the custom operator "
                                 f"'{node.op_type}' of domain '{node.domain}' ({where}), which "
                                 f"needs code from outside ONNX Runtime. {TRUST_HINT}", param)
        for tensor in initializers:
            if tensor.data_location != 1:          # EXTERNAL
                continue
            location = {e.key: e.value for e in tensor.external_data}.get("location", "")
            target = os.path.realpath(os.path.join(folder, location))
            if os.path.isabs(location) or not target.startswith(folder + os.sep):
                raise ModelError(f"the ONNX model '{path}' reads the weights '{tensor.name}' "
                                 f"from '{location}', outside its folder: keep external data "
                                 "beside the model", param)
