"""The parameter types rsdl adds to QGIS's: a raster input that GDAL checks (RasterInput),
a choice stored by name (Choice), a model path (model_parameter). The binder (binder.py)
and the algorithms build their dialogs with them."""
import os

from qgis.core import (
    QgsProcessingParameterDefinition,
    QgsProcessingParameterEnum,
    QgsProcessingParameterFile,
    QgsProcessingParameterRasterLayer,
    QgsProperty,
)

from ..models.formats import file_filter


def raster_file(value, context):
    """The file of a raster parameter given as a path, which rsdl reads with GDAL without
    loading it as a QGIS layer; None when the value is a layer of the project or of the
    run (QGIS resolves those), or not a path to an existing file."""
    if isinstance(value, QgsProperty) or not isinstance(value, str) or not value:
        return None
    if "|" in value or not os.path.isfile(value):
        return None
    from qgis.core import QgsProcessingUtils
    if QgsProcessingUtils.mapLayerFromString(value, context, False) is not None:
        return None                                    # already loaded: QGIS's layer
    return value


class RasterInput(QgsProcessingParameterRasterLayer):
    """A raster input whose value, when a path to a file, is checked with GDAL instead of
    being loaded as a QGIS layer. qgis_process checks every value before the run, and
    loading a raster as a layer computes a histogram for its renderer, which GDAL
    writes into the user's files on closing it: a .aux.xml beside a GeoTIFF, the whole
    VRT serialised again (its comments lost). rsdl reads its inputs and writes nothing
    to or beside them."""

    def __init__(self, name, description="", defaultValue=None, optional=False):  # noqa: N803
        super().__init__(name, description, defaultValue, optional)

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802 (QGIS's name)
        if context is not None and raster_file(value, context) is not None:
            return True                 # the file is read by GDAL in checkParameterValues
        return super().checkValueIsAcceptable(value, context)

    def clone(self):
        copy = RasterInput(self.name(), self.description(), self.defaultValue(),
                           bool(self.flags() & QgsProcessingParameterDefinition.FlagOptional))
        copy.setFlags(self.flags())
        copy.setHelp(self.help())
        copy.setMetadata(self.metadata())
        return copy


class Choice(QgsProcessingParameterEnum):
    """A choice stored by name: `choices` maps each name (what scripts, models and the
    engine use: CLASSIFIER=rf) to the label the dialog shows. A value is a name, a label,
    or, as the dialog stored it before, the index of a choice in `legacy` (CLASSIFIER=0),
    so a choice inserted into the list changes no existing script. `value` reads it."""

    def __init__(self, name, description, choices, default, optional=False, legacy=None):
        self.choices = dict(choices)
        self.legacy = tuple(legacy if legacy is not None else self.choices)
        super().__init__(name, description, list(self.choices.values()), False,
                         self.choices[default] if default is not None else None, optional,
                         True)

    def key(self, value):
        """The name of a choice given as a name, a label or an old index; None if none."""
        if isinstance(value, QgsProperty):
            value = value.staticValue()
        if isinstance(value, str):
            value = value.strip()
            if value in self.choices:
                return value
            names = {label: key for key, label in self.choices.items()}
            if value in names:
                return names[value]
            if not value.lstrip("-").isdigit():
                return None
        if isinstance(value, (int, float, str)) and not isinstance(value, bool):
            try:
                i = int(value)
            except ValueError:
                return None
            if i == float(value) and 0 <= i < len(self.legacy):
                return self.legacy[i]
        return None

    def checkValueIsAcceptable(self, value, context=None):  # noqa: N802 (QGIS's name)
        if isinstance(value, QgsProperty) and \
                value.propertyType() != QgsProperty.StaticProperty:
            return True                  # an expression: evaluated when the run reads it
        if value in (None, "") or (isinstance(value, QgsProperty) and
                                   value.staticValue() in (None, "")):
            return bool(self.flags() & QgsProcessingParameterDefinition.FlagOptional) \
                or self.defaultValue() is not None
        return self.key(value) is not None

    def value(self, parameters, context=None):
        """The name chosen in `parameters` (the default when unset; None for an unset
        optional choice)."""
        value = parameters.get(self.name())
        if value in (None, ""):
            value = self.defaultValue()
        return None if value in (None, "") else self.key(value)

    def clone(self):
        copy = Choice(self.name(), self.description(), self.choices,
                      self.key(self.defaultValue()),
                      bool(self.flags() & QgsProcessingParameterDefinition.FlagOptional),
                      self.legacy)
        copy.setFlags(self.flags())
        copy.setHelp(self.help())
        copy.setMetadata(self.metadata())
        return copy


def model_parameter(name, description, optional=False, trainable=False):
    """A model path of a format of models/formats.py (`trainable`: those rsdl:trainmodel
    trains further): a SavedModel folder (or its saved_model.pb), a .keras or an .onnx
    file. Its dialog widget (algorithms/widgets.py) picks a folder or a file: QGIS's own
    file widget cannot select a folder."""
    param = QgsProcessingParameterFile(
        name, description, optional=optional, fileFilter=file_filter(trainable))
    param.setMetadata({"widget_wrapper": {
        "class": "rsdl_qgis.algorithms.widgets.ModelPathWrapper"}})
    return param
