"""The one binder between jobs and dialogs: QGIS parameters built from a job's
declarations (engine/declare.py) and a run's values read back into a job. Algorithms list
the fields they show, in the dialog's order. (Below this layer, an error names a parameter
through its field too: engine.declare.names(Job).field.)"""
import dataclasses

from qgis.core import (
    QgsProcessing,
    QgsProcessingParameterBoolean,
    QgsProcessingParameterDefinition,
    QgsProcessingParameterFeatureSource,
    QgsProcessingParameterField,
    QgsProcessingParameterFile,
    QgsProcessingParameterFileDestination,
    QgsProcessingParameterFolderDestination,
    QgsProcessingParameterNumber,
    QgsProcessingParameterRasterDestination,
    QgsProcessingParameterString,
    QgsProcessingParameterVectorDestination,
)

from ..engine.declare import declaration, declared, setting_of
from .parameters import Choice, RasterInput, model_parameter

GEOMETRIES = {"point": QgsProcessing.TypeVectorPoint,
              "polygon": QgsProcessing.TypeVectorPolygon,
              "line": QgsProcessing.TypeVectorLine}


def definition(spec, tr=lambda text: text):
    """The QGIS parameter a declaration (engine.declare.Param) describes."""
    name, label, opt, kind = spec.name, tr(spec.label), spec.optional, spec.kind
    default = spec.option("suggested", spec.default)   # a value the API requires, proposed
    if kind in ("int", "float"):
        param = QgsProcessingParameterNumber(
            name, label, QgsProcessingParameterNumber.Integer if kind == "int"
            else QgsProcessingParameterNumber.Double, defaultValue=default, optional=opt)
        if spec.minimum is not None:
            param.setMinimum(spec.minimum)
        if spec.maximum is not None:
            param.setMaximum(spec.maximum)
    elif kind == "bool":
        param = QgsProcessingParameterBoolean(name, label, defaultValue=spec.default,
                                              optional=opt)
    elif kind in ("str", "bands", "names", "windows"):      # the last three: typed as text
        text = {"str": spec.default, "windows": ",".join(map(str, spec.default or []))}
        param = QgsProcessingParameterString(name, label, defaultValue=text.get(kind, ""),
                                             optional=opt or kind != "str")
    elif kind == "choice":
        param = Choice(name, label, {k: tr(v) for k, v in spec.choices}, spec.default, opt,
                       spec.option("legacy"))
    elif kind == "raster":
        param = RasterInput(name, label, optional=opt)
    elif kind == "file":
        param = QgsProcessingParameterFile(name, label, fileFilter=spec.option("filter", ""),
                                           optional=opt)
    elif kind == "model":
        param = model_parameter(name, label, optional=opt,
                                trainable=spec.option("trainable", False))
    elif kind == "vector":
        param = QgsProcessingParameterFeatureSource(
            name, label, [GEOMETRIES[g] for g in spec.option("geometries", ("point",))],
            optional=opt)
    elif kind == "field":
        param = QgsProcessingParameterField(name, label,
                                            parentLayerParameterName=spec.option("parent"),
                                            optional=opt)
    elif kind == "raster_out":
        param = QgsProcessingParameterRasterDestination(
            name, label, optional=opt, createByDefault=spec.option("create", True))
    elif kind == "vector_out":
        param = QgsProcessingParameterVectorDestination(
            name, label, GEOMETRIES[spec.option("geometry", "point")], optional=opt,
            createByDefault=spec.option("create", True))
    elif kind == "file_out":
        param = QgsProcessingParameterFileDestination(
            name, label, spec.option("filter", ""), optional=opt,
            createByDefault=spec.option("create", True))
    else:                                               # folder_out
        param = QgsProcessingParameterFolderDestination(name, label, optional=opt)
    if spec.help:
        param.setHelp(tr(spec.help))
    if spec.option("widget"):                         # a widget of widgets.py
        param.setMetadata({"widget_wrapper": {"class": spec.option("widget")}})
    if spec.advanced:
        param.setFlags(param.flags() | QgsProcessingParameterDefinition.FlagAdvanced)
    return param


def add(alg, job, *fields):
    """Adds the parameters of a job's `fields` to the algorithm, in that order."""
    for name in fields:
        alg.addParameter(definition(declaration(job, name), alg.tr))


def value(alg, spec, parameters, context, feedback=None):
    """What a declared parameter holds in a run, as the job takes it (None when an
    optional one is empty)."""
    key, kind, empty = spec.name, spec.kind, parameters.get(spec.name) in (None, "")
    if kind == "int":
        return None if spec.optional and empty else alg.parameterAsInt(parameters, key, context)
    if kind == "float":
        return None if spec.optional and empty else alg.parameterAsDouble(parameters, key,
                                                                          context)
    if kind == "bool":
        return None if spec.optional and empty and spec.default is None else \
            alg.parameterAsBool(parameters, key, context)
    if kind == "str":
        text = alg.parameterAsString(parameters, key, context).strip()
        return None if spec.default is None and not text else text
    if kind == "choice":
        return alg.choice(parameters, key, context)
    if kind == "bands":
        return alg.bands(parameters, key, context)
    if kind == "names":
        return alg.parameterAsString(parameters, key, context).split(",")
    if kind == "windows":
        from ..ml.pipeline import parse_windows
        return parse_windows(alg.parameterAsString(parameters, key, context), key)
    if kind == "raster":
        return alg.raster_path(parameters, key, context)
    if kind == "vector":
        return alg.vector_path(parameters, key, context, feedback)
    if kind == "field":
        return alg.parameterAsString(parameters, key, context) or None
    if kind in ("model", "file"):
        return alg.parameterAsFile(parameters, key, context) or None
    if kind in ("raster_out", "vector_out"):
        path = alg.parameterAsOutputLayer(parameters, key, context)
    else:
        path = alg.parameterAsFileOutput(parameters, key, context)
    return path or (None if spec.optional else path)


def values(alg, job, parameters, context, feedback=None, source=None, skip=()):
    """{field: value} of each field `job` declares that the algorithm has a parameter for,
    read by its kind (but the fields in `skip`: a destination is resolved once); with
    `source` (SOURCE2), the settings of that numbered source (SOURCE2_RFIELD -> rfield).
    The numbered sources themselves are the caller's."""
    names = {p.name() for p in alg.parameterDefinitions()}
    out = {}
    for field_name, spec in declared(job):
        if field_name in skip:
            continue
        if source is not None:
            spec = numbered(spec, source, "")
        if spec.name in names and not spec.option("numbered"):
            out[field_name] = value(alg, spec, parameters, context, feedback)
    return out


def read(alg, job, parameters, context, feedback=None, **given):
    """A job of class `job` from a run's parameters (values()); `given` fields as they
    are (the numbered sources...); the rest keep the job's defaults."""
    return job(**values(alg, job, parameters, context, feedback, skip=given), **given)


def numbered(spec, key, what, optional=None):
    """The declaration of a numbered source's setting (engine/jobs.py: RFIELD...) as the
    parameter of source `key` (SOURCE2 -> SOURCE2_RFIELD, "Source 2: receptive field")."""
    return dataclasses.replace(spec, name=setting_of(key, spec), label=f"{what}: {spec.label}",
                               optional=spec.optional if optional is None else optional)
