"""Train a classifier on pixel or deep features, classify images, assess accuracy."""
import os
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from osgeo import gdal

from ..engine.declare import declaration, names, numbered, param_name
from ..engine.jobs import ServeJob, ServeSource
from ..engine.metrics import area_adjusted, confusion, scores
from ..engine.model import ProgressLike
from ..engine.output import AtomicFile, gdal_checked, remove_quietly, temp_path
from ..engine.progress import Part, Progress
from ..engine.raster import (
    GDAL_TYPES,
    choose_bands,
    compression,
    grid_of,
    open_raster,
    require_same_grid,
    smallest_int_type,
)
from ..engine.report import area_html, assessed_html, html_report, write_matrix_csv
from ..engine.sampling import spans_of
from ..engine.selection import training_samples
from ..engine.serve import RunOptions, serve
from ..engine.styles import class_metadata, embed_classes, write_class_style, write_ramp_style
from ..engine.vectors import ClassCodes, lookup_path, read_features
from ..errors import CancelledError, GridError, ModelError, ParameterError, RsdlError
from . import persist
from .classifiers import CLASSIFIERS, SETTINGS
from .design import (
    DESIGN_FIELDS,
    STRATUM,
    STRATUM_PIXELS,
    area_unit,
    map_class_pixels,
    map_names,
    stratified_estimates,
)
from .features import FeatureModel, FeatureRecipe, feature_model, features_at, probe_bands, serve_job
from .fitting import build, fit
from .jobs import AccuracyJob, ClassifyJob, DeepFeatures, TrainClassifierJob  # noqa: F401

gdal.UseExceptions()

#: the parameters errors name (engine/declare.py)
TC, CL, AC, DF = (names(TrainClassifierJob), names(ClassifyJob), names(AccuracyJob),
                  names(DeepFeatures))
SOURCES, SOURCE = param_name(ServeJob, "sources"), names(ServeSource)
REFERENCE_RASTER = declaration(AccuracyJob, "reference").option("raster")
NEIGHBOURHOOD_PARAM = TC.neighbourhood


MAX_WINDOW = 63                # the largest neighbourhood window, pixels


def parse_windows(text: Optional[str], param: str = NEIGHBOURHOOD_PARAM) -> List[int]:
    """'3,7,15' or '3 7 15' as [3, 7, 15]; '' as [] (pixel values alone)."""
    parts = [p for p in str(text or "").replace(",", " ").split() if p]
    try:
        return check_windows([int(p) for p in parts], param)
    except ValueError:
        raise ParameterError(f"{param}: '{text}' is not a list of window sizes; write odd "
                             "sizes in pixels like 3,7,15, or leave it empty", param) from None


def check_windows(windows: Sequence[int], param: str = NEIGHBOURHOOD_PARAM) -> List[int]:
    """Window sizes for neighbourhood statistics: odd, 3 to MAX_WINDOW, distinct, sorted."""
    out = sorted({int(w) for w in windows})
    bad = [w for w in out if w < 3 or w > MAX_WINDOW or w % 2 == 0]
    if bad or len(out) > 8:
        raise ParameterError(f"{param} takes up to 8 odd window sizes from 3 to {MAX_WINDOW} "
                             f"pixels, like 3,7,15 (got {', '.join(map(str, windows))}); "
                             "leave it empty for pixel values alone", param)
    return out


def _recipe(job, progress):
    """The feature recipe and its inner model."""
    ds = open_raster(job.image, TC.image, "image")
    chosen, _ = choose_bands(ds, job.bands, numbered(SOURCES, 0, SOURCE.bands), TC.image)
    if job.deep is None:
        nodata = ds.GetRasterBand(chosen[0]).GetNoDataValue()
        count = len(chosen)              # an alpha band is a mask, not a feature
        windows = check_windows(job.neighbourhood)
        recipe = FeatureRecipe("raw", count, [max(windows, default=1)], ["x"], [nodata], ["x"],
                               [count], True, [job.bands], windows)
        inner = feature_model(recipe)
        progress.info(f"Features: {inner.describe()} ({recipe.raw_bands} per pixel)")
        return recipe, inner, [job.image]
    d = job.deep
    if d.efield != 1 or d.scale != 1:
        raise GridError(f"deep features are computed per pixel of {numbered(SOURCES, 0)}: use "
                        f"{DF.efield} 1 and {DF.scale} 1 (a model with a larger expression "
                        "field or output spacing cannot give one feature vector per pixel)",
                        DF.efield if d.efield != 1 else DF.scale)
    paths = [job.image] + list(d.sources)
    n = len(paths)
    pad = lambda seq, v: (list(seq) + [v] * n)[:n]  # noqa: E731
    recipe = FeatureRecipe("deep", len(chosen), pad(d.rfields, None), pad(d.names, ""),
                           pad(d.nodata, None), list(d.output_names), [], d.fully_conv,
                           [job.bands] + pad(d.bands, None)[1:])
    inner = feature_model(recipe, d.model, job.trust_model, paths=paths)
    progress.info(f"Deep features from {inner.describe()}: receptive field(s) "
                  f"{recipe.rfields}, input(s) {', '.join(recipe.names)}, "
                  f"{'fully-convolutional' if recipe.fully_conv else 'patch-based'}, "
                  f"output(s) {', '.join(recipe.output_names)}")
    return recipe, inner, paths


def train_classifier(job: TrainClassifierJob,
                     progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Select samples, compute their features, train and validate, save one file."""
    progress = progress or Progress()
    start = time.monotonic()
    if not 0 <= job.valid_fraction < 1:
        raise ParameterError(f"{TC.valid_fraction} must be in [0, 1)", TC.valid_fraction)
    pipeline, settings = build(job.classifier, job.settings, job.seed)
    recipe, inner, paths = _recipe(job, progress)
    recipe.output_bands = probe_bands(recipe, inner, paths)
    x, code, train, codes, split_notes = _training_features(job, recipe, inner, paths,
                                                            Part(progress, 0.0, 0.5))
    k = int(settings.get("k", 0)) if job.classifier == "knn" else 0
    if k > int(train.sum()):
        knn = SETTINGS["k"].param
        raise ParameterError(f"k-NN with {knn} {k} needs at least {k} training samples; there "
                             f"are {int(train.sum())}: lower {knn} or raise {TC.samples}", knn)
    progress.info(f"Training {CLASSIFIERS[job.classifier].label} on {int(train.sum())} samples "
                  f"x {x.shape[1]} features")
    t0 = time.monotonic()
    fit(pipeline, job.classifier, np.nan_to_num(x[train]), code[train],
        Part(progress, 0.45, 0.5))
    result = {TC.output: job.output, "TRAIN_SAMPLES": int(train.sum()),
              "VALID_SAMPLES": int((~train).sum()), "FEATURES": int(x.shape[1])}
    labels = np.array(codes.codes)
    names = [codes.name_of(c) for c in labels]
    notes = [f"Features: {recipe.kind} ({x.shape[1]})", f"Settings: {settings}",
             f"Training samples: {int(train.sum())}; fit in {time.monotonic() - t0:.1f} s",
             "Validation samples come from other polygons than training ones"] + \
        [f"Warning: {n}" for n in split_notes]
    metrics = _validate_classifier(job, pipeline, x, code, train, labels, names, notes,
                                   result, progress)
    manifest = {"recipe": recipe.to_dict(), "classes": {"codes": [int(c) for c in labels],
                                                      "names": names, "kind": codes.kind},
                "classifier": job.classifier, "settings": settings,
                "metrics": metrics, "field": job.field, "trained_on": os.path.basename(job.image)}
    persist.save(job.output, pipeline, manifest,
                 job.deep.model if job.deep is not None else None)
    progress.set(1.0)
    result["SECONDS"] = time.monotonic() - start
    return result


def _training_features(job, recipe, inner, paths, progress):
    """Samples split by polygon and their features: (features, codes, training mask,
    ClassCodes, notes on the split), samples without features (nodata, edges) dropped."""
    split_notes: list = []
    xy, code, sets, codes = training_samples(job.image, job.vector, job.field, job.samples,
                                             job.valid_fraction, job.seed, progress,
                                             split_notes)
    for note in split_notes:
        progress.info(f"Warning: {note}")
    progress.info(f"{len(xy)} samples of {len(codes.codes)} classes "
                  f"({int(np.count_nonzero(sets == 1))} for validation, split by polygon)")
    x, kept = features_at(recipe, inner, paths, xy, progress)
    dropped = len(xy) - len(kept)
    if dropped:
        progress.info(f"{dropped} samples dropped: on nodata, or too close to the image edge "
                      "for the receptive field")
    code, sets = code[kept], sets[kept]
    train = sets == 0
    present = np.unique(code[train])
    if len(present) < 2:
        raise GridError(f"the training set holds {len(present)} class(es) after the split: "
                        f"at least two are needed. Lower {TC.valid_fraction} or add polygons",
                        TC.vector)
    missing = sorted(set(codes.codes) - set(present.tolist()))
    if missing:
        progress.info(f"warning: classes {[codes.name_of(c) for c in missing]} have no training "
                      "sample left (all their polygons went to validation)")
    if progress.cancelled():
        raise CancelledError()
    return x, code, train, codes, split_notes


def _validate_classifier(job, pipeline, x, code, train, labels, names, notes, result, progress):
    """Scores on the validation samples (None without any), added to `result`, and the
    report when one is asked for."""
    if not (~train).any():
        if job.report:
            progress.info(f"No validation set ({TC.valid_fraction} 0): no report written")
        return None
    pred = pipeline.predict(np.nan_to_num(x[~train]))
    matrix, _ = confusion(code[~train], pred, labels)
    metrics = scores(matrix)
    result.update(OA=metrics["OA"], KAPPA=metrics["KAPPA"], F1_MEAN=metrics["F1_MEAN"])
    progress.info(f"Validation: OA {100 * metrics['OA']:.2f} %, kappa {metrics['KAPPA']:.4f}, "
                  f"mean F1 {metrics['F1_MEAN']:.4f} on {int((~train).sum())} samples")
    if job.report:
        html_report(job.report, f"Classifier validation: {CLASSIFIERS[job.classifier].label}",
                    matrix, names, metrics, notes, param=TC.report)
        result[TC.report] = job.report
    return metrics


def class_nodata(codes: Sequence[int]) -> Tuple[int, Any]:
    """A nodata value for a class map that is not a class code, and the smallest type."""
    lo, hi = min(codes), max(codes)
    nodata = 0 if 0 not in codes else (hi + 1 if hi + 1 <= 65535 else lo - 1)
    return nodata, smallest_int_type(np.array([lo, hi, nodata]))


def _check_recipe(recipe):
    """A classifier file comes from anywhere: its neighbourhood windows must be what
    Train a classifier writes (a huge window would take the memory of a whole image)."""
    try:
        windows = check_windows(list(recipe.context or []), CL.classifier)
    except (ParameterError, TypeError, ValueError):
        windows = None
    if windows is None or windows != list(recipe.context or []) or (
            windows and list(recipe.rfields) != [max(windows)]):
        raise ModelError(f"the classifier file's neighbourhood windows ({recipe.context}) "
                         "are not ones Train a classifier writes: the file is damaged or "
                         "was made elsewhere. Train the classifier again", CL.classifier)


def classifier_model(classifier: str, trusted: bool = False, mask: bool = False) -> FeatureModel:
    """The model classification serves: the features and the classifier of a classifier
    file, giving [class code, confidence] per pixel. Its ``loaded`` (the opened file)
    must be closed. What a Dask worker builds too (worker_classifier_model)."""
    loaded = persist.load(classifier, CL.classifier)
    try:
        m = loaded.manifest
        recipe = FeatureRecipe.from_dict(m["recipe"])
        _check_recipe(recipe)
        inner = feature_model(recipe, loaded.model_path, trusted, CL.classifier)
        nodata, _ = class_nodata(m["classes"]["codes"])
        model = FeatureModel(inner, recipe.output_names, recipe.output_bands, loaded.pipeline,
                             nodata, mask=mask)
    except BaseException:
        loaded.close()
        raise
    model.loaded, model.recipe = loaded, recipe
    return model


def worker_classifier_model(classifier: str, trusted: bool = False,
                            mask: bool = False) -> FeatureModel:
    """classifier_model for a Dask worker, which keeps it until the worker ends."""
    import atexit
    model = classifier_model(classifier, trusted, mask)
    atexit.register(model.loaded.close)
    return model


def classify(job: ClassifyJob, progress: Optional[ProgressLike] = None, resume: bool = True,
             scheduler: str = "") -> Dict[str, Any]:
    """Classify an image with a classifier file, streaming through the serving engine
    (resumable, and on a Dask cluster when `scheduler` is given)."""
    progress = progress or Progress()
    model = classifier_model(job.classifier, job.trust_model, bool(job.mask))
    try:
        m, recipe = model.loaded.manifest, model.recipe
        codes, names = m["classes"]["codes"], m["classes"]["names"]
        ds = open_raster(job.image, CL.image, "image")
        first = (recipe.band_lists or [None])[0]
        count = len(choose_bands(ds, first, CL.image, CL.image)[0])
        if count != recipe.bands:
            raise GridError(f"the classifier was trained on {recipe.bands} band(s) "
                            f"({m.get('trained_on', '?')}); {CL.image} has {count}"
                            + (" besides its alpha band" if count < ds.RasterCount else ""),
                            CL.image)
        ds = None
        nodata, dtype = class_nodata(codes)
        paths = [job.image] + list(job.sources)
        sjob = serve_job(recipe, paths, "", job.mask)
        sjob.output_names = ["class", "confidence"]
        sjob.output_type = "float32"
        sjob.output_nodata = float(nodata)
        sjob.tile_size, sjob.memory_mb = job.tile_size, job.memory_mb
        sjob.chunk_size = job.chunk_size
        sjob.pad = True if recipe.context else job.pad   # neighbourhoods cover the image
        both = temp_path(job.output)
        sjob.output = both
        progress.info(f"Classifier: {CLASSIFIERS[m['classifier']].label} on {recipe.kind} features; "
                      f"classes {', '.join(f'{c}={n}' for c, n in zip(codes, names))}")
        run = RunOptions(
            resume=resume, scheduler=scheduler, model_path=job.classifier, state_for=job.output,
            params=[CL.image] + [numbered(SOURCES, i + 1) for i in range(len(job.sources))] +
            ([CL.mask] if job.mask else []),
            recipe={"builder": worker_classifier_model,
                    "args": {"classifier": os.path.abspath(job.classifier),
                             "trusted": job.trust_model, "mask": bool(job.mask)}})
        try:
            try:
                res = serve(sjob, model, progress, run)
            except RsdlError as exc:      # the user's path, not the hidden intermediate one
                exc.message = exc.message.replace(both, job.output)
                exc.args = (exc.message,)
                raise
            meta = {**class_metadata(codes, names),
                    "RSDL_CLASSIFIER": os.path.basename(job.classifier)}
            _split(both, job.output, 1, dtype, nodata, meta, CL.output, (codes, names))
            write_class_style(job.output, codes, names)
            if job.confidence:
                _split(both, job.confidence, 2, "float32", nodata, {}, CL.confidence)
                write_ramp_style(job.confidence)
        finally:
            remove_quietly(both)
    finally:
        model.loaded.close()
    return {CL.output: job.output, CL.confidence: job.confidence,
            "WIDTH": res["WIDTH"], "HEIGHT": res["HEIGHT"], "SECONDS": res["SECONDS"],
            "CHUNKS": res["CHUNKS"], "REUSED_CHUNKS": res["REUSED_CHUNKS"]}


def _split(src, dst, band, dtype, nodata, meta, param, classes=None):
    """One band of the engine's output as its own tiled, compressed GeoTIFF; `classes`
    (codes, names) embeds a class map's colours and names."""
    opts = ["TILED=YES", f"COMPRESS={compression()}", "BIGTIFF=IF_SAFER"]
    with AtomicFile(dst, param, ext=".tif") as out:
        with gdal_checked(dst, param):
            # the file gets its own metadata only: the engine's (its job, which names the
            # hidden intermediate file), written and then replaced, would stay in its bytes
            vrt = gdal.Translate("", src, format="VRT", bandList=[band])
            vrt.SetMetadata(meta)
            vrt.GetRasterBand(1).SetMetadata({})
            vrt.GetRasterBand(1).SetDescription("class" if band == 1 else "confidence")
            if classes:
                embed_classes(vrt.GetRasterBand(1), dtype, *classes)
            ds = gdal.Translate(out.tmp, vrt, outputType=GDAL_TYPES[dtype], noData=nodata,
                                creationOptions=opts)
            vrt = None
            ds.FlushCache()
            ds = None


def _pairs_from_raster(job, grid, band):
    """(reference values, map values) of every reference pixel that is not nodata."""
    rds = open_raster(job.reference, REFERENCE_RASTER, "classes")
    require_same_grid(grid_of(rds), grid, "the reference raster", REFERENCE_RASTER)
    rnd = job.reference_nodata if job.reference_nodata is not None else \
        rds.GetRasterBand(1).GetNoDataValue()
    ref_vals, map_vals = [], []
    for r0 in range(0, grid.height, 256):
        n = min(256, grid.height - r0)
        ref = rds.GetRasterBand(1).ReadAsArray(0, r0, grid.width, n).ravel()
        mp = band.ReadAsArray(0, r0, grid.width, n).ravel()
        ok = np.ones(len(ref), bool) if rnd is None else ref != rnd
        ref_vals.append(ref[ok])
        map_vals.append(mp[ok])
    return ref_vals, map_vals


def _pairs_from_vector(job, grid, band, names_of, progress):
    """(reference codes, map values) of every pixel whose centre lies in a reference
    polygon or point; text classes are matched by name with the map's classes."""
    if not job.field:
        raise GridError("choose the class field of the reference layer", AC.field)
    feats = read_features(job.reference, job.field, grid, AC.reference, AC.field,
                          progress.info)
    spans = spans_of(feats, grid.width, grid.height)
    if not len(spans.row):
        raise GridError("the reference geometries do not overlap the class map", AC.reference)
    if feats.kind == "text":
        by_name = {v: k for k, v in names_of.items()}
        lp = lookup_path(job.reference)
        if not by_name and os.path.exists(lp):
            table = ClassCodes.read(lp)
            by_name = dict(zip(table.names, table.codes))
        unknown = sorted(set(feats.value) - set(by_name))
        if unknown:
            raise GridError(f"reference classes {unknown} are not classes of the map "
                            f"({', '.join(sorted(by_name)) or 'the map has no class names'})",
                            AC.field)
        feature_code = np.array([by_name[v] for v in feats.value], dtype=np.int64)
    else:
        feature_code = np.asarray(feats.value, dtype=np.int64)
    order = np.argsort(spans.row, kind="stable")
    rows, c0, c1 = spans.row[order], spans.c0[order], spans.c1[order]
    fcode = feature_code[spans.feature[order]]
    ref_vals, map_vals = [], []
    for r0 in range(0, grid.height, 256):
        lo, hi = np.searchsorted(rows, [r0, r0 + 256])
        if lo == hi:
            continue
        n = min(256, grid.height - r0)
        block = band.ReadAsArray(0, r0, grid.width, n)
        lengths = c1[lo:hi] - c0[lo:hi]
        rr = np.repeat(rows[lo:hi] - r0, lengths)
        starts = np.repeat(c0[lo:hi] - (np.cumsum(lengths) - lengths), lengths)
        cc = starts + np.arange(lengths.sum())
        map_vals.append(block[rr, cc])
        ref_vals.append(np.repeat(fcode[lo:hi], lengths))
        if progress.cancelled():
            raise CancelledError()
    return ref_vals, map_vals


def design_sample(reference: Optional[str]) -> bool:
    """True when `reference` is a point layer written by Sampling design for accuracy
    (its points carry their stratum, the stratum's size and its number of points)."""
    if not reference or _is_raster(reference):
        return False
    from ..engine.vectors import field_names, open_layer
    try:
        ds, lyr = open_layer(reference, AC.reference)
    except RsdlError:
        return False
    ok = all(f in field_names(lyr) for f in DESIGN_FIELDS)
    del lyr, ds
    return ok


def _design_points(job, grid, band, names_of, progress):
    """(map codes, reference codes, strata, {stratum: N_h}, notes) of the interpreted
    points of a design sample; points whose reference is empty are left out and counted."""
    from osgeo import ogr

    from ..engine.grid import pixel_index
    from ..engine.vectors import class_field, open_layer, transform_to
    if not job.field:
        raise GridError("choose the field that holds the interpreted classes (reference)",
                        AC.field)
    ds, lyr = open_layer(job.reference, AC.reference)
    idx, kind = class_field(lyr, job.field)
    ct = transform_to(lyr, grid.crs_wkt)
    by_name = {v: k for k, v in names_of.items()}
    xy, ref, strata, sizes, empty, unknown = [], [], [], {}, 0, set()
    for f in lyr:
        g = f.GetGeometryRef()
        if g is None or g.GetGeometryType() not in (ogr.wkbPoint, ogr.wkbPoint25D):
            raise GridError("a sampling design's reference holds points only", AC.reference)
        if not f.IsFieldSetAndNotNull(idx) or str(f.GetField(idx)).strip() == "":
            empty += 1
            continue
        value = f.GetField(idx)
        if kind == "text":
            text = str(value).strip()
            if text.lstrip("-").isdigit():
                code = int(text)
            elif text in by_name:
                code = by_name[text]
            else:
                unknown.add(text)
                continue
        else:
            code = int(value)
        h = int(f.GetField(STRATUM))
        sizes[h] = int(f.GetField(STRATUM_PIXELS))
        if ct is not None:
            g = g.Clone()
            g.Transform(ct)
        xy.append((g.GetX(), g.GetY()))
        ref.append(code)
        strata.append(h)
    del lyr, ds
    if unknown:
        raise GridError(f"interpreted classes {sorted(unknown)} are not classes of the map "
                        f"({', '.join(sorted(by_name)) or 'the map has no class names'}): "
                        "type a class name of the map or its code", AC.field)
    if not xy:
        raise GridError(f"none of the sample's points has a '{job.field}' value yet: "
                        "interpret them first (open the layer's attribute table, type the "
                        "class you see at each point)", AC.field)
    cols, rows = pixel_index(grid.geotransform, np.asarray(xy, np.float64))
    inside = (cols >= 0) & (rows >= 0) & (cols < grid.width) & (rows < grid.height)
    if inside.sum() * 2 < len(inside):
        raise GridError(f"{int((~inside).sum())} of the {len(inside)} sample points lie outside "
                        "the map: the sample was drawn over another area", AC.reference)
    notes = []
    if not inside.all():
        # a map that lost its edges (OTBTF's extent) does not map those points: left out,
        # like points on its nodata
        notes.append(f"{int((~inside).sum())} sample points lie outside the map (near the "
                     "image's edges, which the map does not cover) and were left out")
    cols, rows = cols[inside], rows[inside]
    ref = [v for v, k in zip(ref, inside) if k]
    strata = [h for h, k in zip(strata, inside) if k]
    mp = np.array([band.ReadAsArray(int(c), int(r), 1, 1)[0, 0] for c, r in zip(cols, rows)])
    if empty:
        notes.append(f"{empty} of the sample's points have no '{job.field}' value yet and were "
                     "left out; the estimates hold for the interpreted points only, which are "
                     "no longer a random sample if the others were skipped for a reason")
    return mp, np.asarray(ref, np.int64), np.asarray(strata, np.int64), sizes, notes


def accuracy(job: AccuracyJob, progress: Optional[ProgressLike] = None) -> Dict[str, Any]:
    """Confusion matrix of a class map against reference polygons, points or a raster;
    with a sample drawn by Sampling design, design-based estimates with intervals."""
    progress = progress or Progress()
    ds = open_raster(job.image, AC.image, "classes")
    grid = grid_of(ds)
    band = ds.GetRasterBand(1)
    map_nodata = band.GetNoDataValue()
    names_of = map_names(ds)
    design = design_sample(job.reference)
    strata, sizes, design_notes = None, {}, []
    if design:
        mp_d, ref_d, strata, sizes, design_notes = _design_points(job, grid, band, names_of,
                                                                  progress)
        ref_vals, map_vals = [ref_d], [mp_d]
    elif _is_raster(job.reference):
        ref_vals, map_vals = _pairs_from_raster(job, grid, band)
    else:
        ref_vals, map_vals = _pairs_from_vector(job, grid, band, names_of, progress)
    ref = np.concatenate(ref_vals) if ref_vals else np.zeros(0)
    mp = np.concatenate(map_vals) if map_vals else np.zeros(0)
    notes = list(design_notes)
    if map_nodata is not None:
        skip = mp == map_nodata
        if skip.any():
            notes.append(f"{int(skip.sum())} reference pixels on the map's nodata were left out")
            ref, mp = ref[~skip], mp[~skip]
            if strata is not None:
                strata = strata[~skip]
    if not len(ref):
        raise GridError("no reference pixel falls on classified pixels of the map",
                        AC.reference)
    for values, key, what in ((mp, AC.image, "class map"), (ref, REFERENCE_RASTER, "reference")):
        if values.dtype.kind != "f":
            continue
        frac = values[values != np.round(values)]
        if len(frac):
            raise GridError(f"the {what} holds values that are not whole numbers (such as "
                            f"{frac[0]:g}): class maps hold class codes. Is it a probability, "
                            "confidence or regression map?", key)
        notes.append(f"the {what} is stored as floating point; its values are whole numbers "
                     "and were taken as class codes")
    counts = map_class_pixels(band, grid, map_nodata, progress)
    ref, mp = ref.astype(np.int64), mp.astype(np.int64)
    # every class of the map is a stratum, sampled or not
    strata_codes = np.union1d(np.union1d(ref, mp), np.fromiter(counts, dtype=np.int64))
    matrix, labels = confusion(ref, mp, strata_codes)
    sc = scores(matrix)
    names = [names_of.get(int(c), str(int(c))) for c in labels]
    unit, pixel_area = area_unit(grid)
    if strata is not None:
        adj = stratified_estimates(mp, ref, strata, sizes, labels)
        # the map's own class areas are known exactly: the table shows them
        map_total = sum(counts.values())
        adj["map_share"] = np.array([counts.get(int(c), 0) / map_total for c in labels])
        headline = (f"estimated OA {100 * adj['oa']:.1f} % +/- {100 * adj['oa_ci']:.1f} "
                    f"(95 %, stratified random sample of {len(ref)} points)")
    else:
        adj = area_adjusted(matrix, [counts.get(int(c), 0) for c in labels])
        unsampled = [names[i] for i, c in enumerate(labels)
                     if not matrix[:, i].sum() and counts.get(int(c), 0)]
        if unsampled:
            notes.append(f"No reference pixel falls on the map's {', '.join(unsampled)}: the "
                         "area-adjusted estimates leave that part of the map out")
        # not a probability sample: no interval is given, since none would be honest
        headline = (f"area-adjusted OA {100 * adj['oa']:.1f} % (no interval: the reference "
                    "is not a probability sample)")
    for n in notes:
        progress.info(n)
    progress.info(f"OA {100 * sc['OA']:.2f} %, kappa {sc['KAPPA']:.4f} on {sc['SAMPLES']} "
                  f"{'points' if strata is not None else 'pixels'}; {headline}")
    if job.output_matrix:
        write_matrix_csv(job.output_matrix, matrix, names, AC.output_matrix)
    if job.output_report:
        total = sum(counts.values()) * pixel_area
        head = assessed_html(job.image, job.reference, job.field)
        html_report(job.output_report, "Accuracy assessment", matrix, names, sc,
                    notes + ([DESIGN_NOTE] if strata is not None else [SAMPLE_NOTE]),
                    param=AC.output_report, head_html=head,
                    extra_html=area_html(adj, names, total, unit,
                                         probability=strata is not None),
                    columns="the map")
    progress.set(1.0)
    res = {"OA": sc["OA"], "KAPPA": sc["KAPPA"], "F1_MEAN": sc["F1_MEAN"],
           "SAMPLES": sc["SAMPLES"], "OA_AREA_ADJUSTED": adj["oa"],
           "OA_CI": adj["oa_ci"] if strata is not None else None,
           "PROBABILITY_SAMPLE": strata is not None,
           AC.output_matrix: job.output_matrix, AC.output_report: job.output_report,
           "MATRIX": matrix.tolist(), "CLASSES": names}
    for i, n in enumerate(names):
        res[f"PRECISION_{n}"] = sc["PRECISION"][i]
        res[f"RECALL_{n}"] = sc["RECALL"][i]
        res[f"F1_{n}"] = sc["F1"][i]
    return res


SAMPLE_NOTE = ("The reference is not a probability sample (pixels of polygons drawn where the "
               "interpreter chose, clustered): the area-adjusted figures weight it by the map's "
               "class areas, but no confidence interval is given, because none would be "
               "honest. Draw a sample with Sampling design for accuracy, interpret its points, "
               "and assess the map with it for estimates with intervals.")
DESIGN_NOTE = ("The reference is a stratified random sample (Sampling design for accuracy): "
               "the estimates are design-based (Stehman 2014; Olofsson et al. 2014 when the "
               "strata are this map's classes), unbiased, with 95 % confidence intervals; "
               "the matrix above counts the sample's points.")


def _is_raster(path):
    p = str(path).split("|")[0]
    try:
        ds = gdal.OpenEx(p, gdal.OF_RASTER)
    except RuntimeError:
        return False
    return ds is not None
