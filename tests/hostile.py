"""Hostile and broken files, built by the tests: what a careless or malicious source sends.

Nothing here is shipped: each builder writes a file that a loader must refuse.
"""
import hashlib
import json
import os
import zipfile


def tf2_model_writing_a_file(path, target):
    """A TF2 SavedModel whose serving function writes `target` (tf.io.write_file)."""
    from rsdl_qgis.deps import require_tensorflow
    tf = require_tensorflow()

    class Evil(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.float32, name="x")])
        def serve(self, x):
            tf.io.write_file(str(target), "written by a model")
            return {"y": x[..., :1] * 2.0}

    evil = Evil()
    tf.saved_model.save(evil, str(path), signatures={"serving_default": evil.serve})
    return str(path)


def tf1_model_writing_a_file(path, target, input="x", output="prediction"):
    """A TF1 SavedModel (no signature, like OTBTF's) whose output depends on a WriteFile
    op through a control dependency."""
    from rsdl_qgis.deps import require_tensorflow
    tf = require_tensorflow()
    g = tf.Graph()
    with g.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [None, None, None, 3], name=input)
        w = tf.compat.v1.io.write_file(str(target), "written by a model")
        scale = tf.compat.v1.Variable(2.0, name="scale")
        with tf.control_dependencies([w]):
            tf.identity(x[..., :1] * scale, name=output)
        with tf.compat.v1.Session(graph=g) as s:
            s.run(tf.compat.v1.global_variables_initializer())
            b = tf.compat.v1.saved_model.Builder(str(path))
            b.add_meta_graph_and_variables(s, ["serve"])
            b.save()
    return str(path)


def keras_with_lambda(path):
    """A .keras file with a Lambda layer (Python code in the file)."""
    import keras
    x = keras.Input((None, None, 3), name="x")
    y = keras.layers.Lambda(lambda t: t * 2.0)(x)
    keras.Model(x, y).save(str(path))
    return str(path)


def forge_classifier(src, dst, replace=None, add=None, drop=()):
    """A copy of the classifier file `src` with members replaced, added or dropped and
    the manifest's checksums recomputed, as anyone can."""
    replace, add = dict(replace or {}), dict(add or {})
    with zipfile.ZipFile(src) as z:
        manifest = json.loads(z.read("manifest.json"))
        members = {n: z.read(n) for n in z.namelist() if n != "manifest.json"}
    for n in drop:
        members.pop(n, None)
    members.update(replace)
    members.update(add)
    manifest["files"] = {n: hashlib.sha256(v).hexdigest() for n, v in members.items()}
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("manifest.json", json.dumps(manifest))
        for n, v in members.items():
            out.writestr(n, v)
    return str(dst)


def classifier_with_model(src, dst, model_folder):
    """A deep-feature classifier file whose embedded model is replaced by `model_folder`."""
    with zipfile.ZipFile(src) as z:
        old = [n for n in z.namelist() if n.startswith("model/")]
    new = {}
    for root, _, names in os.walk(model_folder):
        for n in names:
            full = os.path.join(root, n)
            rel = os.path.relpath(full, model_folder).replace(os.sep, "/")
            with open(full, "rb") as fh:
                new[f"model/{rel}"] = fh.read()
    return forge_classifier(src, dst, replace=new, drop=old)


def zip_bomb_classifier(src, dst, gib=1):
    """A classifier file with an extra member of `gib` GiB of zeros (a few MB on disk);
    its checksum is listed, so only its size can give it away."""
    with zipfile.ZipFile(src) as z:
        manifest = json.loads(z.read("manifest.json"))
        members = {n: z.read(n) for n in z.namelist() if n != "manifest.json"}
    chunk = bytes(16 << 20)
    digest = hashlib.sha256()
    for _ in range((gib << 30) // len(chunk)):
        digest.update(chunk)
    manifest["files"] = {n: hashlib.sha256(v).hexdigest() for n, v in members.items()}
    manifest["files"]["model/variables/variables.data-00000-of-00001"] = digest.hexdigest()
    with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as out:
        out.writestr("manifest.json", json.dumps(manifest))
        for n, v in members.items():
            out.writestr(n, v)
        with out.open("model/variables/variables.data-00000-of-00001", "w",
                      force_zip64=True) as fh:
            for _ in range((gib << 30) // len(chunk)):
                fh.write(chunk)
    return str(dst)
