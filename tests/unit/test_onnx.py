"""ONNX models through the serving engine, against independent oracles.

The ONNX models are made by the tests: written operator by operator with onnx.helper in
NCHW, as PyTorch exports them, with weights drawn by numpy; or converted from Keras models
with tf2onnx (NHWC). Each map is compared (within 1e-5) with the same network computed in
numpy, and, where TensorFlow is installed, with TensorFlow's map of the same weights. The
tests without the tensorflow mark run on every host, QGIS 3.44 (Python 3.14, no
TensorFlow build yet) included.
"""
import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper

from rsdl_qgis import api
from rsdl_qgis.errors import ModelError
from tests.conftest import LANDSAT, OTBTF, read_raster

pytestmark = pytest.mark.filterwarnings("ignore")
IR = 10          # what ONNX Runtime 1.31 reads (onnx 1.23 writes 14 by default)


def fcn_weights(bands=3, seed=0):
    """The weights of a small fully convolutional net (RF 5), HWIO like Keras: input
    scaled by 1/10000, conv 3x3 (6) relu, conv 3x3 (4) softmax."""
    rng = np.random.default_rng(seed)
    return {"w1": rng.normal(0, 0.5, (3, 3, bands, 6)).astype(np.float32),
            "b1": rng.normal(0, 0.1, 6).astype(np.float32),
            "w2": rng.normal(0, 0.5, (3, 3, 6, 4)).astype(np.float32),
            "b2": rng.normal(0, 0.1, 4).astype(np.float32)}


def numpy_fcn(image, w):
    """The oracle: the same network in numpy on a (rows, cols, bands) array (valid
    convolutions: 4 rows and columns fewer)."""
    from numpy.lib.stride_tricks import sliding_window_view

    def conv(x, k, b):
        win = sliding_window_view(x, (3, 3), axis=(0, 1))          # (h, w, c, 3, 3)
        return np.einsum("hwcij,ijco->hwo", win, k, dtype=np.float64) + b

    x = image.astype(np.float64) * np.float32(1 / 10000)
    y = np.maximum(conv(x, w["w1"], w["b1"]), 0)
    z = conv(y, w["w2"], w["b2"])
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def keras_fcn(path, weights, bands=3):
    """The same net in Keras (TensorFlow), saved as .keras."""
    from rsdl_qgis.deps import require_tensorflow
    tf = require_tensorflow()
    import keras
    x = keras.Input((None, None, bands), name="x")
    y = keras.layers.Rescaling(1 / 10000)(x)
    y = keras.layers.Conv2D(6, 3, activation="relu", name="c1")(y)
    y = keras.layers.Conv2D(4, 3, activation="softmax", name="c2")(y)
    model = keras.Model(x, y)
    model.get_layer("c1").set_weights([weights["w1"], weights["b1"]])
    model.get_layer("c2").set_weights([weights["w2"], weights["b2"]])
    model.save(str(path))
    return model, tf


def to_onnx_with_tf2onnx(model, tf, path, bands=3):
    import tf2onnx
    spec = [tf.TensorSpec((None, None, None, bands), tf.float32, name="x")]
    fn = tf.function(lambda t: {"probs": model(t)}, input_signature=spec)
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=spec, opset=17)
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    return str(path)


def to_onnx_nchw(w, path, metadata=None, static=None, bands=3):
    """The net written with onnx.helper in NCHW, as PyTorch would export it."""
    inits = [numpy_helper.from_array(np.float32(1 / 10000), "scale"),
             numpy_helper.from_array(w["w1"].transpose(3, 2, 0, 1).copy(), "w1"),
             numpy_helper.from_array(w["b1"], "b1"),
             numpy_helper.from_array(w["w2"].transpose(3, 2, 0, 1).copy(), "w2"),
             numpy_helper.from_array(w["b2"], "b2")]
    nodes = [helper.make_node("Mul", ["input", "scale"], ["s"]),
             helper.make_node("Conv", ["s", "w1", "b1"], ["c1"]),
             helper.make_node("Relu", ["c1"], ["r1"]),
             helper.make_node("Conv", ["r1", "w2", "b2"], ["c2"]),
             helper.make_node("Softmax", ["c2"], ["probs"], axis=1)]
    side = static or "h"
    graph = helper.make_graph(
        nodes, "fcn", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                     ["n", bands, side, static or "w"])],
        [helper.make_tensor_value_info("probs", TensorProto.FLOAT, None)], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="pytorch", ir_version=IR)
    for k, v in (metadata or {}).items():
        proto.metadata_props.add(key=k, value=v)
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    return str(path)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A Landsat crop, the weights, and the oracle's map on the crop's grid (2 px in)."""
    from osgeo import gdal
    d = tmp_path_factory.mktemp("onnx")
    crop = str(d / "crop.tif")
    gdal.Translate(crop, LANDSAT, srcWin=[300, 100, 200, 180])
    pixels, gt, _ = read_raster(crop)
    w = fcn_weights()
    shifted = (gt[0] + 2 * gt[1], gt[1], gt[2], gt[3] + 2 * gt[5], gt[4], gt[5])
    return {"dir": d, "image": crop, "weights": w, "oracle": numpy_fcn(pixels, w),
            "oracle_gt": shifted}


@pytest.fixture(scope="module")
def keras_scene(scene):
    """The same weights as a Keras model (TensorFlow)."""
    model, tf = keras_fcn(scene["dir"] / "fcn.keras", scene["weights"])
    return dict(scene, keras=str(scene["dir"] / "fcn.keras"), model=model, tf=tf)


def serve(model, image, out, **kw):
    job = api.ServeJob(model, [api.ServeSource(image, kw.pop("rfield", None), kw.pop("name", ""))],
                       str(out), kw.pop("outputs", []), efield=kw.pop("efield", None),
                       fully_conv=kw.pop("fully_conv", None), **kw)
    res = api.serve_model(job)
    got, gt, _ = read_raster(out)
    return got, gt, res


@pytest.mark.tensorflow
def test_the_numpy_oracle_is_tensorflows_map(keras_scene, tmp_path):
    ref, gref, _ = serve(keras_scene["keras"], keras_scene["image"], tmp_path / "tf.tif",
                         rfield=5, fully_conv=True)
    assert gref == keras_scene["oracle_gt"]
    np.testing.assert_allclose(ref, keras_scene["oracle"], atol=1e-5)


@pytest.mark.tensorflow
def test_tf2onnx_export_serves_like_tensorflow_with_no_numbers(keras_scene, tmp_path):
    onnx_path = to_onnx_with_tf2onnx(keras_scene["model"], keras_scene["tf"],
                                     tmp_path / "nhwc.onnx")
    got, g, _ = serve(onnx_path, keras_scene["image"], tmp_path / "onnx.tif")  # fields inferred
    assert got.shape == keras_scene["oracle"].shape == (176, 196, 4)
    assert g == keras_scene["oracle_gt"]
    np.testing.assert_allclose(got, keras_scene["oracle"], atol=1e-5)


def test_nchw_onnx_serves_like_the_oracle(scene, tmp_path):
    onnx_path = to_onnx_nchw(scene["weights"], tmp_path / "nchw.onnx")
    from rsdl_qgis.models import load_model
    m = load_model(onnx_path)
    assert m.layouts == {"input": "NCHW"} and m.inputs["input"][0] == (None, None, None, 3)
    got, g, _ = serve(onnx_path, scene["image"], tmp_path / "onnx.tif", tile_size=64)
    assert got.shape == scene["oracle"].shape == (176, 196, 4) and g == scene["oracle_gt"]
    np.testing.assert_allclose(got, scene["oracle"], atol=1e-5)


def test_static_nchw_patches_are_served_patch_based(scene, tmp_path):
    """An ONNX model that takes 5 x 5 patches only: patch-based, RF from its shape."""
    onnx_path = to_onnx_nchw(scene["weights"], tmp_path / "static.onnx", static=5)
    got, g, res = serve(onnx_path, scene["image"], tmp_path / "onnx.tif", batch_size=64)
    assert got.shape == scene["oracle"].shape and g == scene["oracle_gt"]
    np.testing.assert_allclose(got, scene["oracle"], atol=1e-5)


@pytest.mark.tensorflow
def test_two_inputs_of_different_resolutions(tmp_path):
    """OTBTF's model2 layout (8 x 8 patches at 6 m, 32 x 32 at 1.5 m), in ONNX and in Keras."""
    import keras
    keras.utils.set_random_seed(3)
    x1, x2 = keras.Input((8, 8, 4), name="x1"), keras.Input((32, 32, 1), name="x2")
    a = keras.layers.Conv2D(3, 8, name="a")(x1)
    b = keras.layers.Conv2D(3, 32, name="b")(x2)
    keras_model = keras.Model([x1, x2], keras.layers.Add()([a, b]))
    keras_path = str(tmp_path / "two.keras")
    keras_model.save(keras_path)
    wa, ba = keras_model.get_layer("a").get_weights()
    wb, bb = keras_model.get_layer("b").get_weights()
    inits = [numpy_helper.from_array(wa.transpose(3, 2, 0, 1).copy(), "wa"),
             numpy_helper.from_array(ba, "ba"),
             numpy_helper.from_array(wb.transpose(3, 2, 0, 1).copy(), "wb"),
             numpy_helper.from_array(bb, "bb")]
    nodes = [helper.make_node("Conv", ["x1", "wa", "ba"], ["ca"]),
             helper.make_node("Conv", ["x2", "wb", "bb"], ["cb"]),
             helper.make_node("Add", ["ca", "cb"], ["y"])]
    graph = helper.make_graph(nodes, "two", [
        helper.make_tensor_value_info("x1", TensorProto.FLOAT, ["n", 4, 8, 8]),
        helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["n", 1, 32, 32])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], inits)
    onnx_path = str(tmp_path / "two.onnx")
    with open(onnx_path, "wb") as fh:
        fh.write(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                   ir_version=IR).SerializeToString())
    outs = {}
    for kind, path, rfs in (("tf", keras_path, (8, 32)), ("onnx", onnx_path, (None, None))):
        job = api.ServeJob(path, [api.ServeSource(f"{OTBTF}/xs_subset.tif", rfs[0], "x1"),
                                  api.ServeSource(f"{OTBTF}/pan_subset.tif", rfs[1], "x2")],
                           str(tmp_path / f"{kind}.tif"), [], efield=None, fully_conv=None)
        api.serve_model(job)
        outs[kind] = read_raster(tmp_path / f"{kind}.tif")
    assert outs["onnx"][0].shape == outs["tf"][0].shape and outs["onnx"][1] == outs["tf"][1]
    np.testing.assert_allclose(outs["onnx"][0], outs["tf"][0], atol=1e-4, rtol=1e-5)


def test_a_wrong_name_lists_the_models_names(scene, tmp_path):
    onnx_path = to_onnx_nchw(scene["weights"], tmp_path / "m.onnx")
    with pytest.raises(ModelError) as e:
        serve(onnx_path, scene["image"], tmp_path / "o.tif", name="image", rfield=5,
              fully_conv=True)
    assert e.value.param == "SOURCE1_NAME" and "input" in str(e.value)
    with pytest.raises(ModelError) as e:
        serve(onnx_path, scene["image"], tmp_path / "o.tif", rfield=5, fully_conv=True,
              outputs=["logits"])
    assert e.value.param == "OUTPUT_NAMES" and "probs" in str(e.value)
    assert not (tmp_path / "o.tif").exists()


def test_deepness_class_names_reach_the_class_map(scene, tmp_path):
    names = {"0": "water", "1": "forest", "2": "field", "3": "town"}
    onnx_path = to_onnx_nchw(scene["weights"], tmp_path / "deepness.onnx", metadata={
        "model_type": "segmentor", "class_names": json.dumps(names), "resolution": "3000"})
    got, _, _ = serve(onnx_path, scene["image"], tmp_path / "classes.tif", outputs=["class"])
    probs, _, _ = serve(onnx_path, scene["image"], tmp_path / "probs.tif", outputs=["probs"])
    # Deepness's classes: scores under its threshold (0.5 by default) set to 0, then the
    # largest (tests/unit/test_deepness.py checks the rest of its contract)
    np.testing.assert_array_equal(got[..., 0], np.where(probs < 0.5, 0, probs).argmax(axis=-1))
    assert got.shape[:2] == (180, 200)             # a Deepness model maps the whole image
    from osgeo import gdal
    ds = gdal.Open(str(tmp_path / "classes.tif"))
    assert json.loads(ds.GetMetadataItem("RSDL_CLASSES")) == names
    qml = (tmp_path / "classes.qml").read_text()
    assert all(f'label="{n}"' in qml for n in names.values())


def test_custom_operators_and_outside_weights_are_refused(scene, tmp_path):
    graph = helper.make_graph([helper.make_node("Evil", ["x"], ["y"], domain="com.attacker")],
                              "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                  ["n", 3, "h", "w"])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17),
                                                    helper.make_opsetid("com.attacker", 1)],
                              ir_version=IR)
    path = tmp_path / "custom.onnx"
    path.write_bytes(proto.SerializeToString())
    with pytest.raises(ModelError) as e:
        serve(str(path), scene["image"], tmp_path / "o.tif", rfield=1, fully_conv=True)
    assert "custom operator 'Evil'" in str(e.value) and "TRUST_MODEL" in str(e.value)
    w = helper.make_tensor("w", TensorProto.FLOAT, [1], [0.0])
    w.data_location = TensorProto.EXTERNAL
    w.ClearField("float_data")
    w.external_data.add(key="location", value="../../etc/passwd")
    graph = helper.make_graph([helper.make_node("Mul", ["x", "w"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                             ["n", "h", "w", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    path = tmp_path / "outside.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                                       ir_version=IR).SerializeToString())
    with pytest.raises(ModelError) as e:
        serve(str(path), scene["image"], tmp_path / "o.tif", rfield=1, fully_conv=True)
    assert "outside its folder" in str(e.value)
    assert not (tmp_path / "o.tif").exists()


def test_deep_features_from_an_onnx_model(scene, tmp_path):
    from tests.polygons import rotated_polygons, spectral_classes
    polys = spectral_classes(scene["image"], rotated_polygons(scene["image"], tmp_path / "p.gpkg",
                                                              40, seed=2))
    onnx_path = to_onnx_nchw(scene["weights"], tmp_path / "f.onnx")
    res = api.train_classifier(api.TrainClassifierJob(
        scene["image"], polys, "code", str(tmp_path / "c.rsdlc"), "rf", {"trees": 10},
        samples=50, valid_fraction=0, deep=api.DeepFeatures(onnx_path, rfields=[5],
                                                            fully_conv=True)))
    assert res["FEATURES"] == 4
    out = api.classify(api.ClassifyJob(scene["image"], str(tmp_path / "c.rsdlc"),
                                       str(tmp_path / "map.tif")))
    got, _, _ = read_raster(out["OUTPUT"])
    assert got.shape == (176, 196, 1)


@pytest.mark.tensorflow
def test_export_of_a_trained_model_serves_like_the_savedmodel(tmp_path):
    from rsdl_qgis.models.onnx_model import OnnxModel
    from tests.unit.test_training import small_training_set
    data = small_training_set(tmp_path)
    model = str(tmp_path / "model")
    api.train_model(api.TrainModelJob([api.TrainSource(data["patches"], "x1")], data["labels"],
                                      model, architecture="fcn", epochs=1, batch_size=16))
    onnx_path = str(tmp_path / "model.onnx")
    api.export_onnx(model, onnx_path)
    assert OnnxModel(onnx_path).metadata["classes"]["names"] == data["names"]
    maps = {}
    for output in ("probabilities", "class"):
        ref, gref, _ = serve(model, data["image"], tmp_path / f"sm_{output}.tif",
                             outputs=[output])
        got, g, _ = serve(onnx_path, data["image"], tmp_path / f"onnx_{output}.tif",
                          outputs=[output])
        assert g == gref
        maps[output] = got, ref
    got, ref = maps["probabilities"]
    np.testing.assert_allclose(got, ref, atol=1e-5)
    # the same classes, but where two classes tie within the runtimes' rounding (one
    # pixel in 23 409 once: an argmax of float32 sums in another order)
    top2 = np.sort(ref, axis=-1)[..., -2:]
    tie = (top2[..., 1] - top2[..., 0]) < 1e-4
    differ = (maps["class"][0] != maps["class"][1])[..., 0]
    assert not (differ & ~tie).any() and differ.sum() <= 3
    assert "crop" in (tmp_path / "onnx_class.qml").read_text()


@pytest.mark.tensorflow
def test_otbtf_model3_in_onnx_gives_tensorflows_map(tmp_path):
    """OTBTF's own model, converted to ONNX: the same class map from both runtimes."""
    from bench.serve import tf1_to_onnx
    onnx_path = tf1_to_onnx(f"{OTBTF}/models/model3", ["x"], ["prediction"],
                            str(tmp_path / "model3.onnx"))
    maps = {}
    for kind, path in (("tf", f"{OTBTF}/models/model3"), ("onnx", onnx_path)):
        maps[kind] = serve(path, f"{OTBTF}/pxs_subset.tif", tmp_path / f"{kind}.tif",
                           name="x", outputs=["prediction"])
    assert maps["onnx"][0].shape == maps["tf"][0].shape == (113, 113, 1)
    assert maps["onnx"][1] == maps["tf"][1]
    np.testing.assert_array_equal(maps["onnx"][0], maps["tf"][0])
