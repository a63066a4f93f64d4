"""The plain Python API behind the algorithms: one function per workflow step.

Each function takes plain values (paths, numbers, names, a progress object) and returns
a dict of results; algorithms only translate parameters to these calls.
"""
from dataclasses import replace

from .engine.patches import PatchesJob, PatchSource, extract_patches  # noqa: F401
from .engine.progress import Progress  # noqa: F401
from .engine.selection import SelectionJob, class_statistics, sample_selection  # noqa: F401
from .engine.serve import RunOptions, ServeJob, ServeSource, runs_fully_conv, serve  # noqa: F401
from .errors import ModelError
from .ml.pipeline import (  # noqa: F401
    AccuracyJob,
    ClassifyJob,
    DeepFeatures,
    TrainClassifierJob,
    accuracy,
    classify,
    train_classifier,
)
from .models.training import TrainModelJob, TrainSource  # noqa: F401


def train_model(job, progress=None):
    """Train a built-in or given network on patches images; export it for serving."""
    from .models.training import train_model as _train
    return _train(job, progress)


def serve_model(job, progress=None, resume=True, scheduler=""):
    """Load the job's model, complete the job from the model, and run the serving engine:
    resumable (chunks kept beside the output, `resume`), in this process or on the Dask
    cluster whose scheduler's address is `scheduler`. The job given is left as it is."""
    from .models import load_model
    progress = progress or Progress()
    model = load_model(job.model, trusted=job.trust_model)
    progress.info(f"Model: {model.describe()}")
    job = resolve_job(job, model, progress)
    if runs_fully_conv(job, model):
        progress.info("This model gives the same values in fully-convolutional mode (to "
                      "1e-5, checked on a probe in the middle of the image): set FULLY_CONV "
                      "to true (in the dialog, Mode: fully convolutional) for a much faster "
                      "run")
    meta = getattr(model, "metadata", None)
    named = bool(meta and job.output_names == ["class"] and meta.get("classes"))
    if named:
        # a class map of a model trained by rsdl: the engine writes its classes into the
        # map (metadata, colour table, category names); a paletted style goes beside it
        codes, names = list(meta["classes"]["codes"]), list(meta["classes"]["names"])
        job = replace(job, classes={"codes": codes, "names": names})
    if job.output_type == "automatic":
        from .ml.pipeline import class_nodata
        nodata, dtype = class_nodata(codes) if named else (None, "float32")
        job = replace(job, output_type=str(dtype),
                      output_nodata=nodata if job.output_nodata is None else job.output_nodata)
        progress.info(f"Output type: {job.output_type}"
                      + (f", nodata {job.output_nodata}" if named else ""))
    import os
    run = RunOptions(resume=resume, scheduler=scheduler, model_path=job.model,
                     recipe={"builder": "rsdl_qgis.api:worker_model",
                             "args": {"path": os.path.abspath(job.model),
                                      "trusted": job.trust_model}})
    res = serve(job, model, progress, run)
    from .engine.styles import style_values, write_class_style
    if named:
        write_class_style(job.output, codes, names)
    else:
        style_values(job.output)
    return res


def worker_model(path, trusted=False):
    """The model a Dask worker loads (once) for serving chunks (engine/cluster.py)."""
    from .models import load_model
    return load_model(path, trusted=trusted)


def resolve_job(job, model, progress=None):
    """A new job with everything the user left unset filled from the model (its metadata,
    else what models/fields.py infers) and the input and output names resolved."""
    from .models.metadata import model_settings
    settings, names = model_settings(model, [s.name for s in job.sources], job.output_names,
                                     [s.rfield for s in job.sources],
                                     [s.path for s in job.sources],
                                     progress.info if progress else None, job.efield)
    job = replace(job, sources=[replace(s, name=n) for s, n in zip(job.sources, names)])
    job = apply_metadata(job, settings, progress)
    sources = [replace(s, name=model.resolve_input(s.name, f"SOURCE{i + 1}_NAME"))
               for i, s in enumerate(job.sources)]
    outputs = [n.strip() for n in job.output_names if n.strip()] or [""]
    job = replace(job, sources=sources,
                  output_names=[model.resolve_output(n, "OUTPUT_NAMES") for n in outputs])
    if len(set(s.name for s in job.sources)) != len(job.sources):
        raise ModelError("two sources feed the same model input: give each source its own "
                         "input name", "SOURCE2_NAME")
    return job


def apply_metadata(job, meta, progress=None):
    """A new job with what the user left unset (receptive fields, input names, expression
    field, mode, outputs) taken from the model's metadata `meta`."""
    from .models.metadata import fully_conv, source_settings
    rfields, names = source_settings(meta, [s.rfield for s in job.sources],
                                     [s.name for s in job.sources])
    job = replace(
        job, sources=[replace(s, rfield=r, name=n)
                      for s, r, n in zip(job.sources, rfields, names)],
        efield=int((meta or {}).get("efield", 1)) if job.efield is None else job.efield,
        fully_conv=fully_conv(meta, job.fully_conv),
        output_names=list(meta.get("default_outputs", [])) if meta and not [
            n for n in job.output_names if n.strip()] else list(job.output_names))
    if meta and meta.get("inputs") and progress:
        source = "the model (inferred)" if meta.get("how") else "the model's metadata"
        progress.info(f"From {source}: receptive field(s) "
                      f"{[s.rfield for s in job.sources]}, expression field {job.efield}, "
                      f"{'fully-convolutional' if job.fully_conv else 'patch-based'}, "
                      f"outputs {', '.join(job.output_names)}")
    return job


def export_onnx(model, output, trusted=False, progress=None):
    """Export a model folder to an ONNX file carrying its rsdl metadata."""
    from .models.export import export_onnx as _export
    return _export(model, output, trusted, progress or Progress())
