"""The plain Python API behind the algorithms: one function per workflow step.

Each function takes plain values (paths, numbers, names, a progress object) and returns
a dict of results; algorithms only translate parameters to these calls.
"""
from .engine.patches import PatchesJob, PatchSource, extract_patches  # noqa: F401
from .engine.selection import SelectionJob, class_statistics, sample_selection  # noqa: F401
from .engine.serve import Progress, ServeJob, ServeSource, serve  # noqa: F401
from .ml.pipeline import (AccuracyJob, ClassifyJob, DeepFeatures, TrainClassifierJob,  # noqa: F401
                          accuracy, classify, train_classifier)
from .errors import ModelError


def serve_model(job, progress=None):
    """Load the job's model, check its input/output names, and run the serving engine."""
    from .models import load_model
    progress = progress or Progress()
    model = load_model(job.model)
    progress.info(f"Model: {model.describe()}")
    for i, src in enumerate(job.sources):
        src.name = model.resolve_input(src.name, f"SOURCE{i + 1}_NAME")
    names = [n.strip() for n in job.output_names if n.strip()] or [""]
    job.output_names = [model.resolve_output(n, "OUTPUT_NAMES") for n in names]
    if len(set(s.name for s in job.sources)) != len(job.sources):
        raise ModelError("two sources feed the same model input: give each source its own "
                         "input name", "SOURCE2_NAME")
    return serve(job, model, progress)
