"""Write the graphical modeler model of the whole chain shipped with the plugin.

    QT_QPA_PLATFORM=offscreen PYTHONPATH=build/deps:. /usr/bin/python3 scripts/build-chain-model.py

rsdl_qgis/processing_models/land_cover_chain.model3: image + training polygons + class
field -> sample selection split by polygon -> patches (train, validation) -> a trained
network -> land-cover map -> accuracy on test polygons that no step trained on. Every step keeps its
algorithm's defaults except what the model's parameters set; the boxes are laid out left
to right. The provider lists it as rsdl:landcoverchain.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
OUT = os.path.join(ROOT, "rsdl_qgis", "processing_models", "land_cover_chain.model3")


HELP = {
    "ALG_DESC": "From training polygons to a land-cover map and its accuracy, in one run: "
                "samples are selected in the polygons and split by polygon into training "
                "and validation, patches are cut around them, a network is trained on them "
                "and applied to the whole image, and the map is assessed on test polygons "
                "that no step saw (the validation polygons chose the best epoch, so they "
                "would flatter the map). Open it in the graphical modeler to change or "
                "extend it.",
    "ALG_CREATOR": "rsdl_qgis",
    "image": "The image to classify (any number of bands); the patches come from it.",
    "polygons": "Training polygons (or points), with a class field.",
    "field": "The field of the polygons holding the class (text or integer).",
    "test_polygons": "Test polygons (or points) with the same class field, drawn apart from "
                     "the training polygons (other fields, other blocks): the accuracy is "
                     "measured on them only.",
    "valid_fraction": "Share of the polygons kept apart for validation (whole polygons, "
                      "so no validation pixel neighbours a training one).",
    "patch": "Patch side in pixels: the network's receptive field (at least 5; 8 suits "
             "30 m images, 16 to 64 finer ones).",
    "architecture": "Built-in network: fcn (fully convolutional, fast to apply), cnn, unet "
                    "or m3.",
    "epochs": "Passes over the training patches; the epoch with the best validation loss is "
              "kept.",
    "seed": "Random seed of the sample selection, the split and the training: the same seed "
            "gives the same map.",
    "train:model": "The trained network (a folder): apply it to other images with "
                   "Apply a model.",
    "train:training_report": "HTML report: inputs, settings, loss and accuracy per epoch.",
    "serve:class_map": "The land-cover map, with its classes' colours and names.",
    "accuracy:accuracy_report": "HTML report: confusion matrix, overall, user's and "
                                "producer's accuracy, class areas.",
}
COLUMN = 260                          # the diagram reads left to right, one step a column


def build():
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterEnum,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterNumber,
        QgsProcessingParameterRasterLayer,
    )
    from qgis.core import QgsProcessingModelChildParameterSource as Src
    from qgis.PyQt.QtCore import QPointF

    from rsdl_qgis.models.zoo import ARCHITECTURES
    m = QgsProcessingModelAlgorithm("Land-cover map from training polygons (network)",
                                    "Chains")
    m.setHelpContent(HELP)
    integer, double = QgsProcessingParameterNumber.Integer, QgsProcessingParameterNumber.Double
    params = [
        QgsProcessingParameterRasterLayer("image", "Image"),
        QgsProcessingParameterFeatureSource("polygons", "Training polygons",
                                            [QgsProcessing.TypeVectorPolygon,
                                             QgsProcessing.TypeVectorPoint]),
        QgsProcessingParameterField("field", "Class field", parentLayerParameterName="polygons"),
        QgsProcessingParameterFeatureSource("test_polygons", "Test polygons (never trained on)",
                                            [QgsProcessing.TypeVectorPolygon,
                                             QgsProcessing.TypeVectorPoint]),
        QgsProcessingParameterNumber("valid_fraction", "Validation fraction (whole polygons)",
                                     double, 0.3, minValue=0.05, maxValue=0.9),
        QgsProcessingParameterNumber("patch", "Patch size (receptive field, pixels)", integer,
                                     8, minValue=5),
        QgsProcessingParameterEnum("architecture", "Network architecture",
                                   options=list(ARCHITECTURES), defaultValue=1),
        QgsProcessingParameterNumber("epochs", "Epochs", integer, 20, minValue=1),
        QgsProcessingParameterNumber("seed", "Random seed", integer, 0, minValue=0)]
    for i, p in enumerate(params):
        p.setHelp(HELP[p.name()])
        comp = QgsProcessingModelParameter(p.name())
        comp.setPosition(QPointF(120, 80 + 70 * i))      # top to bottom in workflow order
        m.addModelParameter(p, comp)
    m.setParameterOrder([p.name() for p in params])    # the dialogs' order (else: by name)

    def child(cid, alg, title, column, row, sources, outputs=None):
        c = QgsProcessingModelChildAlgorithm(alg)
        c.setChildId(cid)
        c.setDescription(title)
        c.setPosition(QPointF(120 + COLUMN * column, 160 + 160 * row))
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
            for j, (key, (name, label)) in enumerate(outputs.items()):
                o = QgsProcessingModelOutput(name, label)
                o.setChildId(cid)
                o.setChildOutputName(key)
                o.setDescription(label)
                o.setPosition(QPointF(120 + COLUMN * column + 40, 160 + 160 * row + 90 + 50 * j))
                outs[name] = o
            c.setModelOutputs(outs)
        m.addChildAlgorithm(c)

    P, V, C = Src.fromModelParameter, Src.fromStaticValue, Src.fromChildOutput
    child("select", "rsdl:sampleselection", "Select samples, split by polygon", 1, 0, {
        "INPUT": P("image"), "VECTOR": P("polygons"), "FIELD": P("field"),
        "VALID_FRACTION": P("valid_fraction"), "SPLIT_BY_POLYGON": V(True), "SEED": P("seed"),
        "OUTPUT_VALID": V("TEMPORARY_OUTPUT")})
    for row, (s, key, what) in enumerate((("train", "OUTPUT", "training"),
                                          ("valid", "OUTPUT_VALID", "validation"))):
        child(f"patches_{s}", "rsdl:patchesextraction", f"Patches of the {what} samples", 2,
              row, {"VECTOR": C("select", key), "FIELD": P("field"), "SOURCE1": P("image"),
                    "SOURCE1_PATCH_SIZE": P("patch"), "OUTPUT_LABELS": V("TEMPORARY_OUTPUT")})
    child("train", "rsdl:trainmodel", "Train the network", 3, 0, {
        "ARCHITECTURE": P("architecture"), "TRAIN_SOURCE1": C("patches_train", "OUTPUT_SOURCE1"),
        "TRAIN_LABELS": C("patches_train", "OUTPUT_LABELS"),
        "VALID_SOURCE1": C("patches_valid", "OUTPUT_SOURCE1"),
        "VALID_LABELS": C("patches_valid", "OUTPUT_LABELS"), "EPOCHS": P("epochs"),
        "SEED": P("seed")},
        {"OUTPUT": ("model", "Trained model"),
         "OUTPUT_REPORT": ("training_report", "Training report")})
    child("serve", "rsdl:modelserve", "Apply the network to the image", 4, 0, {
        "MODEL": C("train", "OUTPUT"), "SOURCE1": P("image")},
        {"OUTPUT": ("class_map", "Land-cover map")})
    child("accuracy", "rsdl:accuracy", "Assess on the test polygons", 5, 0, {
        "INPUT": C("serve", "OUTPUT"), "REFERENCE": P("test_polygons"),
        "FIELD": P("field")}, {"OUTPUT_REPORT": ("accuracy_report", "Accuracy report")})
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
