"""The algorithms' dialog: QGIS's own, but a cancelled run reads as a cancel, and an image
input never starts on a class map.

QGIS ends every cancelled run with a red "Execution failed after ..." line (its task
reports a cancelled run as not successful), even when training kept its best model or
serving kept its finished chunks for a later run. The algorithm says what was kept and
what was not; this dialog turns QGIS's closing line into "Cancelled after ...". Used only
where QGIS's Processing dialogs exist (the desktop), never by qgis_process.

QGIS preselects the active layer in a raster combo box, and after a run that is the map
just loaded: the next dialog (classify, serve, train) would start on a class map. Image
inputs (`RsdlAlgorithm.image_inputs`) move to the first raster of the project that is not
a class map; inputs that take a class map (accuracy, sampling design) keep QGIS's choice.
"""
FAILED = "Execution failed after"


def algorithm_dialog(alg, parent=None):
    """QGIS's algorithm dialog for `alg` with the cancel line reworded, or None (QGIS then
    opens its own) where Processing's dialog class cannot be imported."""
    try:
        from processing.gui.AlgorithmDialog import AlgorithmDialog
    except ImportError:
        return None

    class RsdlAlgorithmDialog(AlgorithmDialog):
        def tr(self, string, *args):
            feedback = getattr(self, "feedback", None)
            if isinstance(string, str) and string.startswith(FAILED) and feedback is not None \
                    and feedback.isCanceled():
                return ("Cancelled after" + string[len(FAILED):]
                        + ": what was kept and what was not is said above")
            return super().tr(string, *args)

    dialog = RsdlAlgorithmDialog(alg, False, parent)
    try:
        wrappers = dialog.mainWidget().wrappers
    except AttributeError:           # another QGIS's panel: its own choice stands
        return dialog
    link_enabled(alg, wrappers)
    for name in alg.image_inputs():
        if name in wrappers and is_class_map(chosen_layer(wrappers[name])):
            other = next(iter(image_layers()), None)
            if other is not None:
                from qgis.core import QgsProcessingContext, QgsProject
                context = QgsProcessingContext()
                context.setProject(QgsProject.instance())
                wrappers[name].setParameterValue(other.id(), context)
    return dialog


def chosen_layer(wrapper):
    """The project layer a layer parameter's widget shows, or None."""
    from qgis.core import QgsMapLayer, QgsProject
    try:
        value = wrapper.parameterValue()
    except (AttributeError, RuntimeError):
        return None
    if isinstance(value, QgsMapLayer):
        return value
    return QgsProject.instance().mapLayer(value) if isinstance(value, str) else None


def link_enabled(alg, wrappers):
    """Enable a parameter's widget only while the choice it depends on
    (`alg.ENABLED_WHEN`: {name: (choice parameter, option names)}) has one of those
    options: sample selection's numbers follow its strategy."""
    rules = [(wrappers[n], wrappers[c], alg.parameterDefinition(c), set(v))
             for n, (c, v) in getattr(alg, "ENABLED_WHEN", {}).items()
             if n in wrappers and c in wrappers]

    def update(*_):
        for target, choice, param, values in rules:
            # a Choice (base.py) reads its name from the label or index the widget gives
            on = param.key(choice.parameterValue()) in values
            for widget in (target.wrappedWidget(), target.wrappedLabel()):
                if widget is not None:
                    widget.setEnabled(on)

    for choice in {id(r[1]): r[1] for r in rules}.values():
        choice.widgetValueHasChanged.connect(update)
    update()


def is_class_map(layer):
    """A raster shown with a palette (a class map: ours, or any paletted one)."""
    try:
        from qgis.core import QgsRasterLayer
        if not isinstance(layer, QgsRasterLayer):
            return False
        return layer.renderer() is not None and layer.renderer().type() == "paletted"
    except (AttributeError, RuntimeError):
        return False


def image_layers():
    """The project's raster layers that are not class maps, in layer-tree order."""
    from qgis.core import QgsProject, QgsRasterLayer
    root = QgsProject.instance().layerTreeRoot()
    for node in root.findLayers():
        layer = node.layer()
        if isinstance(layer, QgsRasterLayer) and layer.isValid() and not is_class_map(layer):
            yield layer
