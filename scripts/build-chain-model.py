"""Write the graphical modeler model of the whole chain shipped with the plugin.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=build/deps:. /usr/bin/python3 scripts/build-chain-model.py

rsdl_qgis/processing_models/land_cover_chain.model3: image + training polygons + class
field -> sample selection split by polygon -> patches (train, validation) -> a trained
fully convolutional network -> class map -> accuracy on the validation polygons. Open it
in the modeler to change or extend it; the provider lists it as rsdl:landcoverchain.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "rsdl_qgis", "processing_models", "land_cover_chain.model3")


def build():
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.core import QgsProcessingModelChildParameterSource as Src
    m = QgsProcessingModelAlgorithm("landcoverchain", "Chains")
    m.setHelpContent({"ALG_DESC": "From training polygons to a class map and its accuracy: "
                      "sample selection split by polygon, patch extraction, a fully "
                      "convolutional network trained and served, accuracy on the "
                      "validation polygons."})
    params = [QgsProcessingParameterRasterLayer("image", "Image"),
              QgsProcessingParameterFeatureSource("polygons", "Training polygons",
                                                  [QgsProcessing.TypeVectorPolygon]),
              QgsProcessingParameterField("field", "Class field", parentLayerParameterName="polygons"),
              QgsProcessingParameterNumber("patch", "Patch size (receptive field)",
                                           QgsProcessingParameterNumber.Integer, 8, minValue=5),
              QgsProcessingParameterNumber("epochs", "Epochs", QgsProcessingParameterNumber.Integer,
                                           20, minValue=1)]
    for p in params:
        m.addModelParameter(p, QgsProcessingModelParameter(p.name()))

    def child(cid, alg, sources, outputs=None):
        c = QgsProcessingModelChildAlgorithm(alg)
        c.setChildId(cid)
        c.setDescription(cid)
        for k, v in sources.items():
            c.addParameterSources(k, [v])
        # the modeler wants every mandatory parameter set: use the algorithm's defaults
        from qgis.core import QgsApplication, QgsProcessingDestinationParameter
        for d in QgsApplication.processingRegistry().algorithmById(alg).parameterDefinitions():
            if d.name() in sources or isinstance(d, QgsProcessingDestinationParameter):
                continue
            if d.defaultValue() is not None:
                c.addParameterSources(d.name(), [Src.fromStaticValue(d.defaultValue())])
        if outputs:
            outs = {}
            for key, name in outputs.items():
                o = QgsProcessingModelOutput(name)
                o.setChildId(cid)
                o.setChildOutputName(key)
                outs[name] = o
            c.setModelOutputs(outs)
        m.addChildAlgorithm(c)

    P, V, C = Src.fromModelParameter, Src.fromStaticValue, Src.fromChildOutput
    child("select", "rsdl:sampleselection", {
        "INPUT": P("image"), "VECTOR": P("polygons"), "FIELD": P("field"), "STRATEGY": V(0),
        "VALID_FRACTION": V(0.3), "SPLIT_BY_POLYGON": V(True), "SEED": V(1),
        "OUTPUT_VALID": V("TEMPORARY_OUTPUT")})
    for s, key in (("train", "OUTPUT"), ("valid", "OUTPUT_VALID")):
        child(f"patches_{s}", "rsdl:patchesextraction", {
            "VECTOR": C("select", key), "FIELD": P("field"), "SOURCE1": P("image"),
            "SOURCE1_PATCH_SIZE": P("patch"), "OUTPUT_LABELS": V("TEMPORARY_OUTPUT")})
    child("train", "rsdl:trainmodel", {
        "ARCHITECTURE": V(1), "TRAIN_SOURCE1": C("patches_train", "OUTPUT_SOURCE1"),
        "TRAIN_LABELS": C("patches_train", "OUTPUT_LABELS"),
        "VALID_SOURCE1": C("patches_valid", "OUTPUT_SOURCE1"),
        "VALID_LABELS": C("patches_valid", "OUTPUT_LABELS"), "EPOCHS": P("epochs"),
        "BATCH_SIZE": V(32), "SEED": V(1)}, {"OUTPUT": "model", "OUTPUT_REPORT": "training_report"})
    child("serve", "rsdl:modelserve", {
        "MODEL": C("train", "OUTPUT"), "SOURCE1": P("image"), "OUTPUT_TYPE": V(1),
        "FULLY_CONV": V(True)},
        {"OUTPUT": "class_map"})
    child("accuracy", "rsdl:accuracy", {
        "INPUT": C("serve", "OUTPUT"), "REFERENCE": C("select", "OUTPUT_VALID"),
        "FIELD": P("field")}, {"OUTPUT_REPORT": "accuracy_report"})
    return m


def main():
    from qgis.core import QgsApplication
    QgsApplication.setPrefixPath("/usr", True)
    app = QgsApplication([], False)
    app.initQgis()
    sys.path.append("/usr/share/qgis/python/plugins")
    from processing.core.Processing import Processing
    Processing.initialize()
    from rsdl_qgis.provider import RsdlProvider
    provider = RsdlProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    m = build()
    m.updateDestinationParameters()
    ok, errors = m.validate()
    if not ok:
        raise SystemExit("model is not valid: " + "; ".join(errors))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    m.toFile(OUT)
    print("written", OUT)
    os._exit(0)


if __name__ == "__main__":
    main()
