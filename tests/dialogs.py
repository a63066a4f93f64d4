"""Open the algorithms' dialogs in a QGIS application with widgets (offscreen) and print
what they show as JSON: run by tests/qgis/test_dialogs.py in a process of its own, since
the test session's QGIS has no widgets.

    python3 -m tests.dialogs SCENE CLASS_MAP
"""
import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main(scene, class_map):
    from qgis.core import (
        QgsApplication,
        QgsPalettedRasterRenderer,
        QgsProcessingFeedback,
        QgsProject,
        QgsRasterLayer,
    )

    from tests.qgisapp import start_qgis
    app = start_qgis(gui=True)  # noqa: F841 (kept alive for the dialogs)
    from rsdl_qgis.provider import RsdlProvider
    provider = RsdlProvider()
    QgsApplication.processingRegistry().addProvider(provider)
    out = {}
    image = QgsRasterLayer(scene, "scene")
    classes = QgsRasterLayer(class_map, "classes")
    classes.setRenderer(QgsPalettedRasterRenderer(
        classes.dataProvider(), 1, QgsPalettedRasterRenderer.classDataFromRaster(
            classes.dataProvider(), 1)))
    # the image first, the class map last and on top: where QGIS puts a map just made
    QgsProject.instance().addMapLayer(image)
    QgsProject.instance().addMapLayer(classes)

    def dialog(alg_id):
        alg = QgsApplication.processingRegistry().algorithmById(alg_id)
        return alg.createCustomParametersWidget(None)

    for alg_id, name in (("rsdl:classify", "INPUT"), ("rsdl:modelserve", "SOURCE1"),
                         ("rsdl:accuracy", "INPUT"), ("rsdl:samplingdesign", "INPUT")):
        dlg = dialog(alg_id)
        from rsdl_qgis.algorithms.dialog import chosen_layer
        layer = chosen_layer(dlg.mainWidget().wrappers[name])
        out[f"{alg_id} {name}"] = layer.name() if layer else None
    dlg = dialog("rsdl:sampleselection")
    wrappers = dlg.mainWidget().wrappers
    from qgis.core import QgsProcessingContext
    enabled = {}
    for strategy in ("all", "constant", "smallest", "percent", "total", "byclass"):
        # the value the combo box gives when a person picks the strategy
        wrappers["STRATEGY"].setParameterValue(strategy, QgsProcessingContext())
        assert wrappers["STRATEGY"].parameterValue() == strategy
        enabled[strategy] = sorted(n for n in ("SAMPLES", "PERCENT", "CLASS_COUNTS")
                                   if wrappers[n].wrappedWidget().isEnabled())
    out["enabled"] = enabled
    out["help"] = dlg.algorithm().shortHelpString()
    feedback = QgsProcessingFeedback()
    dlg.feedback = feedback
    out["line_running"] = dlg.tr("Execution failed after 2.10 seconds")
    feedback.cancel()
    out["line_cancelled"] = dlg.tr("Execution failed after 2.10 seconds")
    # QGIS 3.40 and later translate the template, then format it
    out["template_cancelled"] = dlg.tr("Execution failed after {}").format("2.10 seconds")
    print("RESULT " + json.dumps(out))
    QgsApplication.processingRegistry().removeProvider(provider)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
