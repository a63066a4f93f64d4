"""Fields found from the model: OTBTF's models served with no number typed give the maps
of the numbers OTBTF's documentation types."""
import numpy as np
import pytest

from rsdl_qgis import api
from rsdl_qgis.engine.model import Model
from rsdl_qgis.errors import ModelError
from rsdl_qgis.models import load_model
from tests.conftest import OTBTF, read_raster
from tests.log import Log

# OTBTF's SavedModels and Keras: TensorFlow (conftest skips these without it)
pytestmark = pytest.mark.tensorflow

TYPED = [("model1", "pxs_subset.tif", "prediction", 16, 1, False),
         ("model3", "pxs_subset.tif", "prediction", 16, 1, True),
         ("model4", "pxs_subset2.tif", "prediction_fcn", 64, 32, True)]


@pytest.mark.parametrize("model,image,output,rf,ef,fc", TYPED, ids=[t[0] for t in TYPED])
def test_inferred_fields_give_the_typed_map(tmp_path, model, image, output, rf, ef, fc):
    log = Log()
    inferred = api.serve_model(api.ServeJob(
        f"{OTBTF}/models/{model}", [api.ServeSource(f"{OTBTF}/{image}", None, "x")],
        str(tmp_path / "inferred.tif"), [output], efield=None, fully_conv=None), log)
    typed = api.serve_model(api.ServeJob(
        f"{OTBTF}/models/{model}", [api.ServeSource(f"{OTBTF}/{image}", rf, "x")],
        str(tmp_path / "typed.tif"), [output], efield=ef, fully_conv=fc))
    a, ga, _ = read_raster(tmp_path / "inferred.tif")
    b, gb, _ = read_raster(tmp_path / "typed.tif")
    assert (inferred["WIDTH"], inferred["HEIGHT"]) == (typed["WIDTH"], typed["HEIGHT"])
    assert ga == gb
    np.testing.assert_array_equal(a, b)
    said = " ".join(log.lines)
    assert "inferred from the model by running it" in said and "values you give win" in said


def test_model1_is_found_strided_and_the_log_offers_a_coarser_fully_conv_run(tmp_path):
    log = Log()
    api.serve_model(api.ServeJob(f"{OTBTF}/models/model1",
                                 [api.ServeSource(f"{OTBTF}/pxs_subset.tif", None, "x")],
                                 str(tmp_path / "m.tif"), ["prediction"], efield=None,
                                 fully_conv=None), log)
    said = " ".join(log.lines)
    assert "one output every 4 input pixels" in said and "SCALE 4" in said


def test_a_value_the_user_gives_wins(tmp_path):
    """EFIELD given (32, as OTBTF documents model4) with the receptive field inferred:
    the same context around it (RF 64), and OTBTF's documented map."""
    res = api.serve_model(api.ServeJob(f"{OTBTF}/models/model4",
                                       [api.ServeSource(f"{OTBTF}/pxs_subset2.tif", None, "x")],
                                       str(tmp_path / "m.tif"), ["prediction_fcn"], efield=32,
                                       fully_conv=None))
    typed = api.serve_model(api.ServeJob(
        f"{OTBTF}/models/model4", [api.ServeSource(f"{OTBTF}/pxs_subset2.tif", 64, "x")],
        str(tmp_path / "t.tif"), ["prediction_fcn"], efield=32, fully_conv=True))
    assert (res["WIDTH"], res["HEIGHT"]) == (typed["WIDTH"], typed["HEIGHT"]) == (96, 96)
    np.testing.assert_array_equal(read_raster(tmp_path / "m.tif")[0],
                                  read_raster(tmp_path / "t.tif")[0])


def test_two_free_inputs_say_what_to_give(tmp_path):
    with pytest.raises(ModelError) as e:
        api.serve_model(api.ServeJob(f"{OTBTF}/models/model2", [
            api.ServeSource(f"{OTBTF}/xs_subset.tif", None, "x1"),
            api.ServeSource(f"{OTBTF}/pan_subset.tif", None, "x2")], str(tmp_path / "m.tif"),
            ["prediction"], efield=None, fully_conv=None))
    assert e.value.param == "SOURCE1_RFIELD"
    assert "SOURCE1_RFIELD, SOURCE2_RFIELD" in str(e.value) and "x1, x2" in str(e.value)
    assert not (tmp_path / "m.tif").exists()


def test_every_adapter_implements_the_engines_model_interface(tmp_path):
    """Every format of models/formats.py loads as a LoadedModel (what api.py uses: names,
    description, metadata) that is an engine Model; TF1 (OTBTF's), TF2 (a SavedModel with a
    signature), Keras and ONNX each run a batch through that interface."""
    from rsdl_qgis.engine.model import LoadedModel, ProgressLike
    from rsdl_qgis.engine.progress import Part, Progress
    from rsdl_qgis.models import formats
    from tests.unit.test_onnx import fcn_weights, keras_fcn, to_onnx_nchw
    keras_model, _ = keras_fcn(tmp_path / "k.keras", fcn_weights())
    keras_model.export(str(tmp_path / "tf2"), verbose=False)       # a TF2 SavedModel
    paths = {"TF1Model": f"{OTBTF}/models/model3", "TF2Model": str(tmp_path / "tf2"),
             "KerasModel": str(tmp_path / "k.keras"),
             "OnnxModel": to_onnx_nchw(fcn_weights(), tmp_path / "m.onnx")}
    kinds = set()
    for kind, p in paths.items():
        m = load_model(p)
        assert type(m).__name__ == kind and formats.format_of(p) is not None
        assert isinstance(m, Model) and isinstance(m, LoadedModel), p
        kinds.add(formats.format_of(p).key)
        # one input and output: no name to give (OTBTF's graphs also hold the labels y)
        name = m.resolve_input("x" if kind == "TF1Model" else "")
        out = m.resolve_output("prediction" if kind == "TF1Model" else "")
        assert p in m.describe() and name in m.describe()
        bands = m.inputs[name][0][-1]
        size = 16 if kind == "TF1Model" else 5
        x = np.zeros((2, size, size, bands), m.input_dtype(name))
        (y,) = m.run({name: x}, [out])
        assert len(y) == 2
        with pytest.raises(ModelError) as e:
            m.resolve_input("no such input", "SOURCE1_NAME")
        assert e.value.param == "SOURCE1_NAME" and name in str(e.value)
    assert kinds == {f.key for f in formats.FORMATS}            # every format of the table
    from rsdl_qgis.ml.features import FeatureModel, IdentityModel
    identity = IdentityModel(3)
    assert isinstance(identity, Model)
    assert isinstance(FeatureModel(identity, ["x"], [3]), Model)
    assert isinstance(Progress(), ProgressLike) and isinstance(Part(Progress(), 0, 1),
                                                               ProgressLike)
