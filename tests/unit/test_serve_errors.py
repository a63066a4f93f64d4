"""Bad input: a clear error naming the parameter, and no output left behind."""
import os

import pytest

from rsdl_qgis.api import ServeJob, ServeSource, serve_model
from rsdl_qgis.errors import GridError, ModelError, RsdlError, RsdlIOError


def run(tmp_path, otbtf, model=None, sources=None, outputs=("prediction",), **kw):
    out = tmp_path / "out.tif"
    job = ServeJob(model if model is not None else f"{otbtf}/models/model1",
                   sources or [ServeSource(f"{otbtf}/pxs_subset.tif", 16, "x")],
                   str(out), list(outputs), **kw)
    with pytest.raises(RsdlError) as e:
        serve_model(job)
    assert not out.exists() and not [p for p in os.listdir(tmp_path) if "part" in p]
    return e.value


def test_missing_model(tmp_path, otbtf):
    e = run(tmp_path, otbtf, model=str(tmp_path / "nope"))
    assert isinstance(e, ModelError) and e.param == "MODEL" and "does not exist" in str(e)


def test_folder_that_is_not_a_model(tmp_path, otbtf):
    e = run(tmp_path, otbtf, model=otbtf)
    assert e.param == "MODEL" and "saved_model.pb" in str(e)


def test_file_that_is_not_a_model(tmp_path, otbtf):
    e = run(tmp_path, otbtf, model=f"{otbtf}/pxs_subset.tif")
    assert e.param == "MODEL" and ".keras" in str(e)


@pytest.mark.tensorflow
def test_unknown_input_lists_inputs(tmp_path, otbtf):
    e = run(tmp_path, otbtf, sources=[ServeSource(f"{otbtf}/pxs_subset.tif", 16, "input_1")])
    assert e.param == "SOURCE1_NAME" and "x, y" in str(e)


@pytest.mark.tensorflow
def test_ambiguous_empty_input_name(tmp_path, otbtf):
    e = run(tmp_path, otbtf, sources=[ServeSource(f"{otbtf}/pxs_subset.tif", 16, "")])
    assert e.param == "SOURCE1_NAME" and "say which one" in str(e)


@pytest.mark.tensorflow
def test_unknown_output_lists_outputs(tmp_path, otbtf):
    e = run(tmp_path, otbtf, outputs=["predictions"])
    assert e.param == "OUTPUT_NAMES" and "prediction" in str(e)


@pytest.mark.tensorflow
def test_rf_larger_than_image(tmp_path, otbtf):
    e = run(tmp_path, otbtf, sources=[ServeSource(f"{otbtf}/pxs_subset.tif", 200, "x")])
    assert isinstance(e, GridError) and e.param == "SOURCE1_RFIELD" and "128 x 128" in str(e)


@pytest.mark.tensorflow
def test_unreadable_raster(tmp_path, otbtf):
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"not a tiff")
    e = run(tmp_path, otbtf, sources=[ServeSource(str(bad), 16, "x")])
    assert isinstance(e, RsdlIOError) and e.param == "SOURCE1"


@pytest.mark.tensorflow
def test_sources_that_do_not_overlap(tmp_path, otbtf):
    e = run(tmp_path, otbtf, model=f"{otbtf}/models/model2", sources=[
        ServeSource(f"{otbtf}/xs_subset.tif", 8, "x1"),
        ServeSource(f"{otbtf}/pxs_subset2.tif", 32, "x2")])
    assert isinstance(e, GridError) and e.param == "SOURCE2" and "do not overlap" in str(e)


@pytest.mark.tensorflow
def test_ef_that_the_model_does_not_have(tmp_path, otbtf):
    e = run(tmp_path, otbtf, model=f"{otbtf}/models/model3", fully_conv=True, efield=8)
    assert e.param == "OUTPUT_NAMES" and "EFIELD" in str(e)


def test_the_disk_check_refuses_only_what_cannot_fit(tmp_path):
    """Kept chunks (RESUME) are the pixels uncompressed and must fit; without RESUME a
    compressed map may still fit: a warning, with the figures."""
    from types import SimpleNamespace

    import numpy as np

    from rsdl_qgis.engine.serve import RunOptions, check_space
    from rsdl_qgis.errors import RsdlIOError
    plan = SimpleNamespace(job=SimpleNamespace(output=str(tmp_path / "map.tif")),
                           geom=SimpleNamespace(width=30000, height=30000), bands=[1],
                           out_dtype=np.dtype("uint8"))
    lines = []
    log = SimpleNamespace(info=lines.append)
    with pytest.raises(RsdlIOError) as e:
        check_space(plan, RunOptions(resume=True), log, lambda _f: 500e6)
    assert e.value.param == "OUTPUT" and "900.0 MB" in str(e.value)
    assert "500.0 MB free" in str(e.value)
    check_space(plan, RunOptions(resume=False), log, lambda _f: 500e6)
    assert lines[-1].startswith("Warning: the output may not fit")
    lines.clear()
    check_space(plan, RunOptions(resume=True), log, lambda _f: 5e9)
    assert len(lines) == 1 and "900.0 MB of pixels" in lines[0] and "5.0 GB free" in lines[0]
    assert os.listdir(tmp_path) == []
