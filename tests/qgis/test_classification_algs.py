"""Classification algorithms through processing.run."""
import os

import pytest

from tests.conftest import LANDSAT, read_raster
from tests.polygons import classes_on_crop


@pytest.fixture(scope="module")
def crop(tmp_path_factory):
    d = tmp_path_factory.mktemp("clsalg")
    return classes_on_crop(LANDSAT, d, [500, 200, 300, 300], 120, seed=5)


def test_train_classify_accuracy(qgis_app, crop, tmp_path):
    import processing
    image, polys = crop
    tr = processing.run("rsdl:trainclassifier", {
        "INPUT": image, "VECTOR": polys, "FIELD": "name", "SAMPLES": 200, "CLASSIFIER": 0,
        "RF_TREES": 30, "VALID_FRACTION": 0.3, "OUTPUT": str(tmp_path / "rf.rsdlc"),
        "OUTPUT_REPORT": str(tmp_path / "rf.html")})
    assert 0 < tr["OA"] <= 1 and "KAPPA" in tr and "F1_MEAN" in tr
    cl = processing.run("rsdl:classify", {
        "INPUT": image, "CLASSIFIER": tr["OUTPUT"], "OUTPUT": str(tmp_path / "map.tif"),
        "OUTPUT_CONFIDENCE": str(tmp_path / "conf.tif")})
    cmap, _, _ = read_raster(cl["OUTPUT"])
    assert cmap.shape == (300, 300, 1)
    from qgis.core import QgsRasterLayer
    layer = QgsRasterLayer(cl["OUTPUT"], "map", "gdal")
    assert layer.renderer().type() == "paletted"          # the style loads with the layer
    labels = {c.label for c in layer.renderer().classes()}
    assert labels == {"crop", "developed", "tree", "water"}
    conf = QgsRasterLayer(cl["OUTPUT_CONFIDENCE"], "conf", "gdal")
    assert conf.renderer().type() == "singlebandpseudocolor"
    acc = processing.run("rsdl:accuracy", {
        "INPUT": cl["OUTPUT"], "REFERENCE": polys, "FIELD": "name",
        "OUTPUT_MATRIX": str(tmp_path / "m.csv"), "OUTPUT_REPORT": str(tmp_path / "a.html")})
    assert 0.5 < acc["OA"] <= 1 and "F1_water" in acc
    assert (tmp_path / "m.csv").read_text().startswith("reference \\ predicted,")
    # a raster reference: the map against itself is perfect
    same = processing.run("rsdl:accuracy", {"INPUT": cl["OUTPUT"], "REFERENCE_RASTER": cl["OUTPUT"]})
    assert same["OA"] == 1.0 and same["KAPPA"] == 1.0


@pytest.mark.parametrize("given", ["neither", "both"])
def test_accuracy_wants_exactly_one_reference(qgis_app, crop, tmp_path, given):
    import processing
    from qgis.core import QgsProcessingException
    image, polys = crop
    params = {"INPUT": image, "OUTPUT_MATRIX": str(tmp_path / "m.csv")}
    if given == "both":
        params.update(REFERENCE=polys, FIELD="name", REFERENCE_RASTER=image)
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:accuracy", params)
    assert "REFERENCE_RASTER" in str(e.value) and "give one reference" in str(e.value)
    assert not (tmp_path / "m.csv").exists()


def test_tampered_classifier_is_a_processing_exception(qgis_app, crop, tmp_path):
    import processing
    from qgis.core import QgsProcessingException
    bad = tmp_path / "bad.rsdlc"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:classify", {"INPUT": crop[0], "CLASSIFIER": str(bad),
                                         "OUTPUT": str(tmp_path / "m.tif")})
    assert "CLASSIFIER" in str(e.value) and "not a classifier file" in str(e.value)
    assert not (tmp_path / "m.tif").exists()


def test_results_load_into_the_project_with_their_styles(qgis_app, crop, tmp_path):
    """As from the toolbox: Processing loads result layers without their default style,
    so the algorithm hands QGIS the .qml written beside each output."""
    import processing
    from qgis.core import QgsProject
    image, polys = crop
    tr = processing.run("rsdl:trainclassifier", {
        "INPUT": image, "VECTOR": polys, "FIELD": "name", "SAMPLES": 100, "CLASSIFIER": 0,
        "RF_TREES": 10, "VALID_FRACTION": 0, "OUTPUT": str(tmp_path / "rf.rsdlc")})
    QgsProject.instance().removeAllMapLayers()
    processing.runAndLoadResults("rsdl:classify", {
        "INPUT": image, "CLASSIFIER": tr["OUTPUT"], "OUTPUT": str(tmp_path / "map.tif"),
        "OUTPUT_CONFIDENCE": str(tmp_path / "conf.tif")})
    layers = {os.path.basename(lyr.source()): lyr
              for lyr in QgsProject.instance().mapLayers().values()}
    assert set(layers) == {"map.tif", "conf.tif"}
    renderer = layers["map.tif"].renderer()
    assert renderer.type() == "paletted"
    assert {c.label for c in renderer.classes()} == {"crop", "developed", "tree", "water"}
    assert layers["conf.tif"].renderer().type() == "singlebandpseudocolor"
    QgsProject.instance().removeAllMapLayers()
