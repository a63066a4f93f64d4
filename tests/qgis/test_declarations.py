"""One declaration per parameter: the dialogs are built from the jobs' declarations
(engine/declare.py, algorithms/binder.py), so the Python API and the dialogs share every
default; a choice is stored by name and an old index still reads as it did."""
import dataclasses
import re

import pytest

from rsdl_qgis.engine import declare
from rsdl_qgis.engine.jobs import PatchesJob, SelectionJob, ServeJob
from rsdl_qgis.ml.jobs import AccuracyJob, ClassifyJob, DeepFeatures, DesignJob, TrainClassifierJob
from rsdl_qgis.models.jobs import TrainModelJob

#: each algorithm and the jobs it runs
JOBS = {"sampleselection": SelectionJob, "patchesextraction": PatchesJob,
        "trainmodel": TrainModelJob, "modelserve": ServeJob,
        "trainclassifier": TrainClassifierJob, "trainclassifier deep": DeepFeatures,
        "classify": ClassifyJob, "accuracy": AccuracyJob, "samplingdesign": DesignJob}


def algorithm(name):
    from rsdl_qgis.algorithms import ALGORITHMS
    alg = next(a for a in ALGORITHMS if a.NAME == name)()
    alg.initAlgorithm()
    return alg


def dialog_default(alg, name):
    d = alg.parameterDefinition(name)
    value = d.defaultValue()
    return d.key(value) if hasattr(d, "key") and value is not None else value


@pytest.mark.parametrize("name", sorted(JOBS))
def test_each_job_has_its_algorithms_defaults(qgis_app, name):
    job, alg = JOBS[name], algorithm(name.split()[0])
    fields = list(declare.declared(job))
    assert len(fields) >= 4
    api_defaults = declare.defaults(job)
    for field, spec in fields:
        if spec.option("numbered"):                 # SOURCE1..: one parameter per source
            d = alg.parameterDefinition(declare.numbered(spec.name, 0))
            assert d is not None and d.description().startswith(
                spec.label.format(i=1)), (name, field)
            continue
        d = alg.parameterDefinition(spec.name)
        assert d is not None, f"{name} has no parameter {spec.name} for {field}"
        # the one declaration: the dialog shows the label, range and default it declares
        assert d.description() == spec.label
        if spec.kind in ("int", "float"):
            assert (d.minimum(), d.maximum()) == (spec.minimum if spec.minimum is not None
                                                  else d.minimum(),
                                                  spec.maximum if spec.maximum is not None
                                                  else d.maximum())
        if field in api_defaults and not spec.kind.endswith("_out"):
            shown = dialog_default(alg, spec.name)
            if spec.kind in ("names", "bands", "windows"):    # typed as text
                shown = [int(w) for w in shown.split(",")] if spec.kind == "windows" else \
                    [] if shown == "" and spec.kind == "names" else shown or None
            assert shown == api_defaults[field], (name, field)
        elif field not in api_defaults:              # no default: the dialog requires it,
            assert not spec.optional or spec.option("raster"), field   # or its alternative
    # the drifts of before: the API trained a cnn 10 epochs, kept no validation set and
    # cut 1-pixel label patches, where the dialogs gave fcn, 20, 0.3 and 16
    assert api_defaults.get("architecture", "fcn") == "fcn"
    assert api_defaults.get("epochs", 20) == 20
    assert api_defaults.get("valid_fraction", 0.3) == 0.3
    assert api_defaults.get("label_patch_size", 16) == 16
    # and served a float32 map, patch by patch, with an expression field of 1 whatever the
    # model's metadata said; the dialog: automatic, from the model
    if name == "modelserve":
        assert (api_defaults["output_type"], api_defaults["efield"],
                api_defaults["fully_conv"]) == ("automatic", None, None)


def test_a_run_reads_its_values_into_the_job(qgis_app, tmp_path):
    """The binder reads each declared parameter by its kind: numbers, choices (by name,
    label or the index of before), booleans, paths; an empty optional one is None."""
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    from tests.conftest import LANDSAT
    alg = algorithm("trainmodel")
    context, feedback = QgsProcessingContext(), QgsProcessingFeedback()
    params = {"TRAIN_LABELS": LANDSAT, "OUTPUT": str(tmp_path / "m"), "EPOCHS": 7,
              "ARCHITECTURE": 0, "SCHEDULE": "constant", "LEARNING_RATE": 0.01,
              "AUGMENT": False, "LABEL_NODATA": None, "DISTRIBUTION": "every GPU of this machine"}
    job = alg.job(TrainModelJob, params, context, feedback, train_sources=[])
    assert (job.epochs, job.architecture, job.schedule, job.learning_rate, job.augment) == \
        (7, "cnn", "constant", 0.01, False)
    assert job.distribution == "gpus" and job.label_nodata is None and job.model is None
    assert job.train_labels == LANDSAT and job.output_model == str(tmp_path / "m")
    # what was not given is the declared default, the Python API's
    assert (job.batch_size, job.patience, job.seed, job.output_report) == (64, 8, 0, None)
    expected = dataclasses.replace(TrainModelJob([], LANDSAT, str(tmp_path / "m")), epochs=7,
                                   architecture="cnn", schedule="constant", learning_rate=0.01,
                                   augment=False, distribution="gpus")
    assert job == expected


def test_choices_are_stored_by_name_and_old_indices_still_read(qgis_app):
    """CLASSIFIER=0 (the doc's, the shipped model's) is still the random forest; a name,
    or the label the dialog shows, reads the same; anything else is refused."""
    from rsdl_qgis.ml.classifiers import CLASSIFIERS, INDEX_ORDER
    alg = algorithm("trainclassifier")
    d = alg.parameterDefinition("CLASSIFIER")
    assert d.usesStaticStrings()
    for i, key in enumerate(INDEX_ORDER):
        assert d.key(i) == d.key(str(i)) == d.key(key) == key
        assert d.key(f"{key}: {CLASSIFIERS[key].label}") == key
        assert d.checkValueIsAcceptable(i) and d.checkValueIsAcceptable(key)
    for bad in ("forest", 6, -1, "1.5", 2.5, True):
        assert d.key(bad) is None and not d.checkValueIsAcceptable(bad), bad
    assert d.defaultValue() == f"rf: {CLASSIFIERS['rf'].label}"
    serve = algorithm("modelserve").parameterDefinition("OUTPUT_TYPE")
    assert serve.key(2) == "uint8" and serve.key("uint8") == "uint8"
    # a copy (what QGIS's modeler and batch dialogs make) reads the same
    copy = d.clone()
    assert copy.key(3) == "knn" and copy.usesStaticStrings()
    # an expression (a model's input, a batch row's) is evaluated, then read the same way
    from qgis.core import QgsProcessingContext, QgsProperty
    context = QgsProcessingContext()
    for expression, key in (("'svm'", "svm"), ("1 + 1", "gbt"), ("'dt: Decision tree'", "dt")):
        value = QgsProperty.fromExpression(expression)
        assert d.checkValueIsAcceptable(value)
        assert alg.choice({"CLASSIFIER": value}, "CLASSIFIER", context) == key
    assert alg.choice({}, "CLASSIFIER", context) == "rf"          # unset: the default


def test_numbered_sources_take_their_settings_from_one_declaration(qgis_app):
    """SOURCEn_RFIELD, _NAME, _BANDS, _NODATA and _PATCH_SIZE of every algorithm come from
    ServeSource's and PatchSource's declarations, named and labelled per source."""
    from rsdl_qgis.algorithms.base import MAX_SOURCES
    from rsdl_qgis.engine.jobs import PatchSource, ServeSource
    serve, patches = algorithm("modelserve"), algorithm("patchesextraction")
    for i in range(1, MAX_SOURCES + 1):
        for job, alg in ((ServeSource, serve), (PatchSource, patches)):
            for _, spec in declare.declared(job):
                d = alg.parameterDefinition(declare.numbered("SOURCE", i - 1, spec))
                assert d is not None, spec
                assert d.description() == (spec.label.format(i=i) if spec.option("before")
                                           else f"Source {i}: {spec.label}")
    assert patches.parameterDefinition("SOURCE1_PATCH_SIZE").defaultValue() == 8
    from qgis.core import QgsProcessingParameterDefinition as D
    assert not patches.parameterDefinition("SOURCE1_PATCH_SIZE").flags() & D.FlagOptional
    assert serve.parameterDefinition("SOURCE3_RFIELD").maximum() == 4096


def test_an_error_about_a_field_names_its_parameter():
    from rsdl_qgis.engine.declare import param_name
    assert param_name(TrainModelJob, "epochs") == "EPOCHS"
    assert param_name(SelectionJob, "valid_fraction") == "VALID_FRACTION"
    assert param_name(PatchesJob, "label_patch_size") == "LABEL_PATCH_SIZE"
    with pytest.raises(KeyError):
        param_name(TrainModelJob, "average")            # not a parameter: no dialog shows it


def test_every_number_has_its_bound(qgis_app):
    """Each number a run takes declares the largest value that can finish in the time and
    memory a user has (a huge value is refused before any work: test_trust.py); only
    nodata values take any number."""
    from rsdl_qgis.algorithms import ALGORITHMS
    for cls in ALGORITHMS:
        alg = cls()
        alg.initAlgorithm()
        for d in alg.parameterDefinitions():
            if d.type() == "number" and not d.name().endswith("NODATA"):
                assert d.maximum() < 1e300, (alg.name(), d.name())


def test_user_strings_go_through_tr(qgis_app):
    """Labels, names, groups, help and the algorithm layer's messages pass through tr()
    with the plugin's context, as QGIS's own algorithms' do: an installed translation
    shows in the dialog."""
    from qgis.PyQt.QtCore import QCoreApplication, QTranslator

    class Upper(QTranslator):
        def translate(self, context, text, disambiguation=None, n=-1):
            # upper case, but the {placeholders} a translation keeps as they are
            return re.sub(r"(\{[^}]*\})|([^{]+)", lambda m: m.group(1) or m.group(2).upper(),
                          text) if context == "rsdl" else None

    upper = Upper()
    QCoreApplication.installTranslator(upper)
    try:
        serve, train = algorithm("modelserve"), algorithm("trainmodel")
        assert serve.displayName() == "APPLY A MODEL (MODEL SERVE)"
        assert serve.group() == "SERVING"
        assert serve.parameterDefinition("BATCH_SIZE").description() == \
            "BATCH SIZE (PATCH-BASED MODE)"
        assert serve.parameterDefinition("SOURCE2_NAME").description() == \
            "SOURCE 2: MODEL INPUT NAME"
        assert serve.parameterDefinition("OUTPUT_TYPE").options()[0] == "AUTOMATIC"
        assert serve.parameterDefinition("OUTPUT_TYPE").key("AUTOMATIC") == "automatic"
        assert train.parameterDefinition("VALID_SOURCE3").description() == \
            "VALIDATION PATCHES, SOURCE 3"
        assert "APPLIES A TENSORFLOW MODEL" in serve.help_text()
    finally:
        QCoreApplication.removeTranslator(upper)
    assert algorithm("modelserve").displayName() == "Apply a model (model serve)"


def test_no_parameter_name_is_spelled_below_the_algorithm_layer(qgis_app):
    """Engine, models and classifiers name a parameter through the field that declares it
    (engine.declare.names(Job).field): a renamed parameter is one edit, in its job. Every
    string literal of those modules but docstrings is read; the declarations themselves
    and names that are also results (SAMPLES, EPOCHS: outputs too) are left out."""
    import ast
    import glob
    import os

    from rsdl_qgis.algorithms import ALGORITHMS
    from tests.conftest import ROOT

    def numbered(name):
        return re.sub(r"SOURCE\d", "SOURCE#", name)

    params, outputs = set(), set()
    for cls in ALGORITHMS:
        alg = cls()
        alg.initAlgorithm()
        params |= {numbered(d.name()) for d in alg.parameterDefinitions()}
        outputs |= {numbered(d.name()) for d in alg.outputDefinitions()}
    assert {"SOURCE#_RFIELD", "EPOCHS", "OUTPUT", "MODEL"} <= params   # the oracle's names
    # results share SAMPLES (samples drawn, sampleselection's and others') and EPOCHS
    # (epochs run, trainmodel's) with parameters: a result's key is not a parameter
    names = params - outputs - {"SAMPLES", "EPOCHS"}
    word = re.compile(r"(?<![A-Za-z0-9_])([A-Z][A-Z0-9_]*[A-Z0-9])(?![A-Za-z0-9_])")
    declarations = {"engine/declare.py", "engine/jobs.py", "models/jobs.py", "ml/jobs.py"}
    package = os.path.join(ROOT, "rsdl_qgis")
    found = []
    for path in sorted(glob.glob(os.path.join(package, "**", "*.py"), recursive=True)):
        rel = os.path.relpath(path, package).replace(os.sep, "/")
        if rel.startswith("algorithms/") or rel in declarations | {"provider.py", "plugin.py"}:
            continue
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read())
        docs = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and id(node) not in docs:
                found += [f"{rel}:{node.lineno} {m}" for m in word.findall(node.value)
                          if numbered(m) in names]
    # ml/classifiers.py's SETTINGS declares each setting's parameter: declarations too
    found = [f for f in found if not f.startswith("ml/classifiers.py")
             or not re.search(r"\b(RF_TREES|MAX_DEPTH|MIN_SAMPLES_LEAF|SVM_C|SVM_GAMMA|"
                              r"GBT_ITERATIONS|GBT_LEARNING_RATE|KNN_K)$", f)]
    assert not found, "parameter names spelled below the algorithm layer:\n" + "\n".join(found)
