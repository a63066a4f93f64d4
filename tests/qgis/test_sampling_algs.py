"""The sampling algorithms through processing.run, as the toolbox and modeler call them."""
import pytest

from tests.conftest import LANDSAT, read_raster
from tests.polygons import rotated_polygons


def test_chain_statistics_selection_patches(qgis_app, tmp_path):
    import processing
    polys = rotated_polygons(LANDSAT, tmp_path / "polys.gpkg", 150, seed=2)
    stats = processing.run("rsdl:classstatistics", {
        "INPUT": LANDSAT, "VECTOR": polys, "FIELD": "name", "OUTPUT": str(tmp_path / "s.csv")})
    assert stats["CLASSES"] == 4 and stats["TOTAL_PIXELS"] > 1000
    assert (tmp_path / "s.csv").read_text().startswith("class,pixels,polygons")
    sel = processing.run("rsdl:sampleselection", {
        "INPUT": LANDSAT, "VECTOR": polys, "FIELD": "name", "STRATEGY": 1, "SAMPLES": 50,
        "SAMPLER": 1, "SEED": 3, "VALID_FRACTION": 0.3, "SPLIT_BY_POLYGON": True,
        "OUTPUT": str(tmp_path / "train.gpkg"), "OUTPUT_VALID": str(tmp_path / "valid.gpkg")})
    assert sel["SAMPLES"] == 200 and sel["TRAIN"] + sel["VALID"] == 200
    pe = processing.run("rsdl:patchesextraction", {
        "VECTOR": sel["OUTPUT"], "FIELD": "name", "SOURCE1": LANDSAT, "SOURCE1_PATCH_SIZE": 8,
        "SOURCE1_NODATA": 0, "OUTPUT_SOURCE1": str(tmp_path / "p.tif"),
        "OUTPUT_LABELS": str(tmp_path / "l.tif")})
    patches, _, _ = read_raster(pe["OUTPUT_SOURCE1"])
    labels, _, _ = read_raster(pe["OUTPUT_LABELS"])
    assert patches.shape[0] == 8 * pe["KEPT"] and labels.shape[0] == pe["KEPT"]
    assert set(labels.ravel()) <= {1, 2, 3, 4}


def test_selected_features_only(qgis_app, tmp_path):
    """A layer with a selection: only the selected polygons are used."""
    import processing
    from qgis.core import QgsProcessingFeatureSourceDefinition, QgsVectorLayer
    polys = rotated_polygons(LANDSAT, tmp_path / "polys.gpkg", 60, seed=4)
    layer = QgsVectorLayer(polys, "polys", "ogr")
    layer.selectByExpression('"code" = 2')
    from qgis.core import QgsProject
    QgsProject.instance().addMapLayer(layer)
    try:
        res = processing.run("rsdl:classstatistics", {
            "INPUT": LANDSAT, "FIELD": "code", "OUTPUT": str(tmp_path / "s.csv"),
            "VECTOR": QgsProcessingFeatureSourceDefinition(layer.id(), selectedFeaturesOnly=True)})
    finally:
        QgsProject.instance().removeMapLayer(layer.id())
    assert res["CLASSES"] == 1
    assert (tmp_path / "s.csv").read_text().splitlines()[1].startswith("2,")


def test_missing_field_is_a_processing_exception(qgis_app, tmp_path):
    import processing
    from qgis.core import QgsProcessingException
    polys = rotated_polygons(LANDSAT, tmp_path / "polys.gpkg", 20)
    out = tmp_path / "o.gpkg"
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:sampleselection", {
            "INPUT": LANDSAT, "VECTOR": polys, "FIELD": "", "OUTPUT": str(out)})
    assert "FIELD" in str(e.value)
    with pytest.raises(QgsProcessingException) as e:
        processing.run("rsdl:sampleselection", {
            "INPUT": LANDSAT, "VECTOR": polys, "FIELD": "block", "STRATEGY": 5,
            "CLASS_COUNTS": "1:3", "OUTPUT": str(out)})
    assert "CLASS_COUNTS" in str(e.value)
    assert not out.exists()


def test_the_defaults_split_by_polygon_without_an_output_for_validation(qgis_app, tmp_path):
    """Only inputs and OUTPUT, as a script or qgis_process gives them: the default 30 %
    validation set is written anyway (to a temporary file, said in the log), whole
    polygons to one set or the other, and the next step reads it."""
    import os

    import processing
    from osgeo import ogr
    from qgis.core import QgsProcessingFeedback

    from tests.conftest import ROOT
    data = os.path.join(ROOT, "sample-data", "landsat")

    class Log(QgsProcessingFeedback):
        text = ""

        def pushInfo(self, info):  # noqa: N802
            self.text += info + "\n"
    log = Log()
    sel = processing.run("rsdl:sampleselection", {
        "INPUT": f"{data}/scene.tif", "VECTOR": f"{data}/training.gpkg", "FIELD": "name",
        "OUTPUT": str(tmp_path / "train.gpkg")}, feedback=log)
    assert sel["OUTPUT_VALID"] and "OUTPUT_VALID was not given" in log.text

    def polygons(path):
        ds = ogr.Open(path)
        return {f["originfid"] for f in ds.GetLayer(0)}
    train, valid = polygons(sel["OUTPUT"]), polygons(sel["OUTPUT_VALID"])
    assert train and valid and not train & valid
    assert sel["VALID"] / (sel["TRAIN"] + sel["VALID"]) == pytest.approx(0.3, abs=0.1)
