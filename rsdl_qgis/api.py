"""The plain Python API behind the algorithms: one function per workflow step.

Each function takes plain values (paths, numbers, names, a progress object) and returns
a dict of results; algorithms only translate parameters to these calls.
"""
from dataclasses import replace
from typing import Any, Dict, Optional

from .engine.choices import NEIGHBOURHOOD  # noqa: F401
from .engine.jobs import (  # noqa: F401 (the jobs: engine/jobs.py, models/jobs.py, ml/jobs.py)
    SERVE,
    PatchesJob,
    PatchSource,
    SelectionJob,
    ServeJob,
    ServeSource,
    source_param,
)
from .engine.model import LoadedModel, ProgressLike
from .engine.patches import extract_patches  # noqa: F401
from .engine.progress import Progress  # noqa: F401
from .engine.selection import class_statistics, sample_selection  # noqa: F401
from .engine.serve import RunOptions, runs_fully_conv, serve  # noqa: F401
from .errors import ModelError
from .ml.design import sampling_design  # noqa: F401
from .ml.jobs import (  # noqa: F401
    AccuracyJob,
    ClassifyJob,
    DeepFeatures,
    DesignJob,
    TrainClassifierJob,
)
from .ml.pipeline import accuracy, classify, parse_windows, train_classifier  # noqa: F401
from .models.jobs import TrainModelJob, TrainSource  # noqa: F401


def train_model(job: TrainModelJob,
                progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Train a built-in or given network on patches images; export it for serving."""
    from .models.training import train_model as _train
    return _train(job, progress)


def serve_model(job: ServeJob, progress: Optional[ProgressLike] = None, resume: bool = True,
                scheduler: str = "") -> Dict[str, Any]:
    """Load the job's model, complete the job from the model, and run the serving engine:
    resumable (chunks kept beside the output, `resume`), in this process or on the Dask
    cluster whose scheduler's address is `scheduler`. The job given is left as it is."""
    from .models import load_model
    progress = progress or Progress()
    model = load_model(job.model, trusted=job.trust_model)
    progress.info(f"Model: {model.describe()}")
    job = resolve_job(job, model, progress)
    deepness_notes(job, model, progress)
    if runs_fully_conv(job, model):
        progress.info("This model gives the same values in fully-convolutional mode (to "
                      f"1e-5, checked on a probe in the middle of the image): set {SERVE.fully_conv} "
                      "to true (in the dialog, Mode: fully convolutional) for a much faster "
                      "run")
    meta = getattr(model, "metadata", None) or {}
    heads = meta.get("heads") or ({"class": meta["classes"]} if meta.get("classes") else {})
    named = bool(job.output_names) and all(n in heads for n in job.output_names)
    if named:
        # class maps (a model trained by rsdl, an ONNX model naming its classes): the
        # engine writes their classes into the map (metadata, colour table, category
        # names); a paletted style goes beside it
        per_band = [heads[n] for n in job.output_names]
        codes, names = list(per_band[0]["codes"]), list(per_band[0]["names"])
        classes = {"codes": codes, "names": names}
        if len(per_band) > 1:
            classes["bands"] = [{"codes": list(h["codes"]), "names": list(h["names"])}
                                for h in per_band]
        job = replace(job, classes=classes)
    if job.output_type == "automatic":
        from .ml.pipeline import class_nodata
        every = sorted({c for n in job.output_names if n in heads for c in heads[n]["codes"]})
        nodata, dtype = class_nodata(every) if named else (None, "float32")
        job = replace(job, output_type=str(dtype),
                      output_nodata=nodata if job.output_nodata is None else job.output_nodata)
        progress.info(f"Output type: {job.output_type}"
                      + (f", nodata {job.output_nodata}" if named else ""))
    import os
    run = RunOptions(resume=resume, scheduler=scheduler, model_path=job.model,
                     recipe={"builder": worker_model,
                             "args": {"path": os.path.abspath(job.model),
                                      "trusted": job.trust_model}})
    res = serve(job, model, progress, run)
    from .engine.styles import style_values, write_class_style
    if named:
        write_class_style(job.output, codes, names)
    else:
        style_values(job.output)
    return res


def worker_model(path: str, trusted: bool = False) -> LoadedModel:
    """The model a Dask worker loads (once) for serving chunks (engine/cluster.py)."""
    from .models import load_model
    return load_model(path, trusted=trusted)


def resolve_job(job: ServeJob, model: LoadedModel,
                progress: Optional[ProgressLike] = None) -> ServeJob:
    """A new job with everything the user left unset filled from the model (its metadata,
    else what models/fields.py infers) and the input and output names resolved."""
    from .models.metadata import model_settings
    settings, names = model_settings(model, [s.name for s in job.sources], job.output_names,
                                     [s.rfield for s in job.sources],
                                     [s.path for s in job.sources],
                                     progress.info if progress else None, job.efield,
                                     [s.bands for s in job.sources])
    job = replace(job, sources=[replace(s, name=n) for s, n in zip(job.sources, names)])
    job = apply_metadata(job, settings, progress)
    sources = [replace(s, name=model.resolve_input(s.name, source_param(i, "name")))
               for i, s in enumerate(job.sources)]
    outputs = [n.strip() for n in job.output_names if n.strip()] or [""]
    job = replace(job, sources=sources,
                  output_names=[model.resolve_output(n, SERVE.output_names) for n in outputs])
    if len(set(s.name for s in job.sources)) != len(job.sources):
        raise ModelError("two sources feed the same model input: give each source its own "
                         "input name", source_param(1, "name"))
    return job


def apply_metadata(job: ServeJob, meta: Optional[Dict[str, Any]],
                   progress: Optional[ProgressLike] = None) -> ServeJob:
    """A new job with what the user left unset (receptive fields, input names, expression
    field, mode, outputs) taken from the model's metadata `meta`."""
    from .models.metadata import fully_conv, source_settings
    rfields, names = source_settings(meta, [s.rfield for s in job.sources],
                                     [s.name for s in job.sources])
    meta = meta or {}
    tile_model = bool(meta.get("cover")) or meta.get("deepness") is not None
    job = replace(
        job, sources=[replace(s, rfield=r, name=n)
                      for s, r, n in zip(job.sources, rfields, names)],
        efield=int(meta.get("efield", 1)) if job.efield is None else job.efield,
        scale=float(meta.get("scale", 1.0)) if job.scale is None else job.scale,
        # a tile model's map covers the image (as Deepness's do); else OTBTF's extent
        pad=tile_model if job.pad is None else job.pad,
        tile_size=job.tile_size or int(meta.get("tile_size") or 0),
        fully_conv=fully_conv(meta, job.fully_conv),
        output_names=list(meta.get("default_outputs", [])) if meta and not [
            n for n in job.output_names if n.strip()] else list(job.output_names))
    if meta and meta.get("inputs") and progress:
        source = "the model (inferred)" if meta.get("how") else "the model's metadata"
        progress.info(f"From {source}: receptive field(s) "
                      f"{[s.rfield for s in job.sources]}, expression field {job.efield}, "
                      + (f"{SERVE.scale} {job.scale:g}, " if job.scale != 1 else "")
                      + f"{'fully-convolutional' if job.fully_conv else 'patch-based'}, "
                      f"outputs {', '.join(job.output_names)}"
                      + (f"; the map covers the whole image ({SERVE.pad})" if job.pad else ""))
    return job


def deepness_notes(job: ServeJob, model: LoadedModel,
                   progress: Optional[ProgressLike]) -> None:
    """What a model made to Deepness's contract says, in the log: its type, input
    scaling, tile and overlap, and whether SOURCE1's resolution is the model's."""
    deep = (getattr(model, "metadata", None) or {}).get("deepness")
    if deep is None or progress is None:
        return
    norm = (model.metadata or {}).get("standardization") or {}
    kind = deep.get("model_type", "segmentation (from its class names)"
                    if deep.get("heads") else "not given")
    progress.info(
        f"Deepness model: type {kind}; inputs scaled as Deepness does (pixels / 255"
        + (f", then (x - {norm.get('mean')}) / {norm.get('std')}"
           if norm.get("mean") not in (None, 0.0) or norm.get("std") not in (None, 1.0) else "")
        + ")"
        + (f"; tile {int(deep['tile_size'])} px" if deep.get("tile_size") else "")
        + (f", overlap {deep['tiles_overlap']:g} %" if deep.get("tiles_overlap") is not None
           else "")
        + (f"; class threshold {deep['seg_thresh']:g}" if deep.get("seg_thresh") is not None
           else ""))
    res = deep.get("resolution")
    if not res:
        return
    from osgeo import osr

    from .engine.raster import open_raster
    first = source_param(0)
    ds = open_raster(job.sources[0].path, first)
    spacing = abs(ds.GetGeoTransform()[1])
    srs = osr.SpatialReference()
    wkt = ds.GetProjectionRef()
    ds = None
    if not wkt or srs.ImportFromWkt(wkt) != 0 or not srs.IsProjected():
        progress.info(f"The model was made for {res:g} cm per pixel; {first}'s CRS is not "
                      "projected, so its resolution cannot be compared: check it")
        return
    cm = spacing * srs.GetLinearUnits() * 100
    ratio = cm / res
    if abs(ratio - 1) > 0.05:
        progress.info(
            f"Warning: the model was made for {res:g} cm per pixel and {first} has "
            f"{cm:.3g} cm per pixel ({ratio:.2f} x {'coarser' if ratio > 1 else 'finer'}); "
            "objects will look smaller or larger to the model than it learnt. Resample "
            f"{first} to {res:g} cm (Raster > Projections > Warp, resolution "
            f"{res / 100:g} m) for the results the model was made for")
    else:
        progress.info(f"{first}'s resolution ({cm:.3g} cm per pixel) is the model's "
                      f"({res:g} cm)")


def export_onnx(model: str, output: str, trusted: bool = False,
                progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Export a model folder to an ONNX file carrying its rsdl metadata."""
    from .models.export import export_onnx as _export
    return _export(model, output, trusted, progress or Progress())
