"""Export a model to ONNX, with its rsdl metadata, for ONNX Runtime, Deepness or any tool.

A model folder written by rsdl:trainmodel is rebuilt from its Keras model and metadata
into the same serving function as its SavedModel (training.serving_function), frozen and
converted by tf2onnx; the rsdl metadata goes into the ONNX file's ``metadata_props``
(key ``rsdl_metadata``, with the layout NHWC), and the class names also under Deepness's
key ``class_names``, so the ONNX file is served with no number to type, here or there.
"""
import json
import os
from typing import Any, Dict, Optional

from ..deps import require, require_tensorflow
from ..engine.jobs import MODEL, OUTPUT
from ..engine.model import ProgressLike
from ..engine.output import AtomicFile
from ..errors import ModelError

OPSET = 17


def export_onnx(model_dir: str, output: str, trusted: bool = False,
                progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Convert the model folder `model_dir` (written by rsdl:trainmodel) to the ONNX file
    `output`."""
    from .metadata import model_folder, read_metadata
    from .training import KERAS_FILE, core_of, load_keras, serving_function
    path = model_folder(model_dir)
    meta = read_metadata(path)
    kfile = os.path.join(path, KERAS_FILE)
    if not meta or not os.path.isfile(kfile):
        raise ModelError(f"'{model_dir}' is not a model folder written by Train a model (it "
                         "has no rsdl_metadata.json and model.keras); other models are served "
                         "as they are", MODEL)
    tf = require_tensorflow()
    tf2onnx = require("tf2onnx", "tf2onnx")
    import keras
    core = core_of(load_keras(kfile, keras, trusted), meta)
    names = [i["name"] for i in meta["inputs"]]
    serve, sig = serving_function(core, meta["serving"], names,
                                  [i["bands"] for i in meta["inputs"]],
                                  meta["classes"]["codes"], tf)
    signature = [sig[n] for n in names]
    wrapper = tf.function(lambda *xs: serve(dict(zip(names, xs))), input_signature=signature)
    try:
        # freeze: the weights, the class table and the normalisation become constants
        from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
        concrete = wrapper.get_concrete_function()
        keys = sorted(concrete.structured_outputs)       # the order of the flat outputs
        frozen = convert_variables_to_constants_v2(concrete)
        proto, _ = tf2onnx.convert.from_graph_def(
            frozen.graph.as_graph_def(), input_names=[t.name for t in frozen.inputs],
            output_names=[t.name for t in frozen.outputs], opset=OPSET)
        _rename(proto, {t.name: n for t, n in zip(frozen.inputs, names)})
        _rename(proto, {t.name: k for t, k in zip(frozen.outputs, keys)})
    except Exception as exc:
        raise ModelError(f"the model could not be converted to ONNX: "
                         f"{str(exc).splitlines()[0][:300]}", MODEL) from exc
    meta = dict(meta, layout="NHWC")
    meta.pop("history", None)
    proto.metadata_props.add(key="rsdl_metadata", value=json.dumps(meta))
    classes = meta["classes"]
    proto.metadata_props.add(key="class_names", value=json.dumps(
        {str(c): n for c, n in zip(classes["codes"], classes["names"])}))
    proto.producer_name = "rsdl_qgis (tf2onnx)"
    with AtomicFile(output, OUTPUT) as out:
        with open(out.tmp, "wb") as fh:
            fh.write(proto.SerializeToString())
    if progress is not None:
        progress.info(f"Exported to ONNX (opset {OPSET}): inputs {', '.join(names)}; outputs "
                      f"{', '.join(o.name for o in proto.graph.output)}; with its rsdl metadata")
        progress.set(1.0)
    return {OUTPUT: str(output)}


def _rename(proto, names):
    """Give graph inputs and outputs their names (tensor names like 'x1:0' become 'x1')."""
    g = proto.graph
    for value in list(g.input) + list(g.output):
        if value.name in names:
            value.name = names[value.name]
    for node in g.node:
        for i, n in enumerate(node.input):
            if n in names:
                node.input[i] = names[n]
        for i, n in enumerate(node.output):
            if n in names:
                node.output[i] = names[n]
