"""Receptive field, expression field, scale and mode, found from the model itself.

For a model without rsdl metadata (OTBTF's, an ONNX export, any SavedModel), the numbers
OTBTF's users used to work out by hand are inferred:

- **static input shapes** (a model that takes only 16 x 16 patches): patch-based, the
  receptive field is the patch size, the expression field the output's size per patch;
- **free input sizes**: the model is run on zeros of 1 x 1 up to ``MAX_PROBE`` pixels and
  the output side is recorded for each size it accepts. The output-size law

      side(s) = floor((s - RF) / step) + 1      (quantised by q when the model pools)

  gives the step (the output spacing in input pixels) and the smallest input per output
  block. With step 1 the model is served fully convolutionally, with RF the largest input
  giving one block of q pixels and EF = q, which reproduces OTBTF's geometry; with a step
  above 1 (a strided network) it is served patch-based at full resolution, RF being the
  smallest input that gives one output, and the log says it could also run fully
  convolutionally at SCALE = step.

Tile models, whose output is an image of their input's size (a U-Net, a Deepness
segmentation model), are served with overlapping tiles: the receptive field is the tile
and the expression field its central part, ``tiles_overlap`` percent (Deepness's
metadata, else ``DEFAULT_OVERLAP``) smaller, so that no output pixel comes from a tile's
edge; their maps cover the whole image (``cover``). A model whose output is finer than
its input (super-resolution, 64 x 64 in, 128 x 128 out) is served at SCALE = input /
output.

A model with several inputs of free size is not probed (each input's field depends on
the others): the error says which numbers to give. Whatever the user gives wins; only
what was left unset is filled.
"""
import math
from typing import Any, Dict, Optional, Sequence

import numpy as np

from ..engine.choices import MAX_PATCH
from ..engine.jobs import SERVE, source_param
from ..errors import ModelError

MAX_PROBE = 160
#: the overlap of tile models' tiles (percent of the tile) when the model says none
DEFAULT_OVERLAP = 10
#: the tile of free-size tile models (a U-Net) when the model says none
DEFAULT_TILE = 512


def margin(tile: int, overlap: float, quantum: int = 1) -> int:
    """Pixels dropped at each side of a tile's output so that tiles overlapping by
    `overlap` percent keep only their centres (Deepness's stride and half overlap), a
    multiple of `quantum` / 2 so that the tile stays a size the model takes."""
    stride = int(tile * (1 - overlap / 100.0))
    m = max(0, (tile - stride) // 2)
    step = quantum // 2 if quantum % 2 == 0 else quantum
    return -(-m // step) * step if m else 0


def _side(arr, batch=1):
    """The output's side in pixels for one square input, or None when it cannot be told."""
    a = np.asarray(arr)
    if a.ndim >= 3 and a.shape[0] == batch and a.shape[1] == a.shape[2]:
        return int(a.shape[1])
    n = a.size // batch
    r = math.isqrt(n)
    return r if r * r == n else None


def _static_patch(shape):
    if shape is None or len(shape) != 4:
        return None
    h, w = shape[1], shape[2]
    return h if h is not None and h == w else None


def infer(model: Any, names: Sequence[str], output: str, bands: Sequence[int],
          hints: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """What the model says of its geometry: a dict shaped like rsdl metadata
    (``inputs`` with ``rfield``, ``efield``, ``scale``, ``fully_conv``, and ``cover``
    for tile models) and ``how``, one sentence for the log. `names`: the model input of
    each source; `output`: the output probed; `bands`: the band count of each source;
    `hints`: ``tile_size`` and ``tiles_overlap`` (percent) the model's metadata gives."""
    hints = hints or {}
    overlap = hints.get("tiles_overlap")
    overlap = DEFAULT_OVERLAP if overlap is None else float(overlap)
    shapes = [model.inputs.get(n, (None, None))[0] for n in names]
    patches = [_static_patch(s) for s in shapes]
    for n, p, b in zip(names, patches, bands):
        if p is not None and not 1 <= p <= MAX_PATCH:
            raise ModelError(
                f"the model declares its input '{n}' as {p} x {p} pixels: no image patch is "
                f"that size (rsdl feeds patches up to {MAX_PATCH} x {MAX_PATCH}; one of "
                f"{p} x {p} x {b} would be {p * p * b * 4 / 1e9:.3g} GB). The model file is "
                "damaged or not made for images", SERVE.model)
    if all(p is not None for p in patches):
        feeds = {n: np.zeros((1, p, p, b), np.dtype(model.input_dtype(n)))
                 for n, p, b in zip(names, patches, bands)}
        side = _side(model.run(feeds, [output])[0]) or 1
        p = patches[0]
        if len(names) == 1 and side > p and side % p == 0:
            r = side // p
            m = margin(p, overlap)
            if p - 2 * m < 1:
                m = 0
            return {"inputs": [{"name": names[0], "rfield": p}], "efield": side - 2 * m * r,
                    "scale": p / side, "fully_conv": False, "cover": True,
                    "how": f"from its fixed input shape ({p} x {p}, giving {side} x {side}): "
                           f"super-resolution, patch-based, {SERVE.scale} {p / side:g}; tiles "
                           f"overlapping by {overlap:g} %, the central "
                           f"{side - 2 * m * r} x {side - 2 * m * r} of each output kept"}
        if len(names) == 1 and side == p > 1:
            m = margin(p, overlap)
            if p - 2 * m < 1:
                m = 0
            return {"inputs": [{"name": names[0], "rfield": p}], "efield": p - 2 * m,
                    "scale": 1.0, "fully_conv": False, "cover": True,
                    "how": f"from its fixed input shape ({p} x {p}, giving {p} x {p}): "
                           f"tiles of {p} x {p} overlapping by {overlap:g} %, the central "
                           f"{p - 2 * m} x {p - 2 * m} of each kept"}
        return {"inputs": [{"name": n, "rfield": p} for n, p in zip(names, patches)],
                "efield": side, "scale": 1.0, "fully_conv": False,
                "how": f"from its fixed input shape{'s' if len(names) > 1 else ''} "
                       f"({', '.join(f'{p} x {p}' for p in patches)}): patch-based, "
                       f"{side} x {side} output pixel(s) per patch"}
    if len(names) > 1:
        raise ModelError(
            f"the model has {len(names)} inputs ({', '.join(names)}) of free size: their "
            "receptive fields cannot be inferred (each depends on the others). Give "
            + ", ".join(source_param(i, "rfield") for i in range(len(names)))
            + f" (and {SERVE.efield}, {SERVE.scale} and {SERVE.fully_conv} when they are not "
            "the defaults)", source_param(0, "rfield"))
    name, dtype = names[0], np.dtype(model.input_dtype(names[0]))
    sizes = {}
    for s in range(1, MAX_PROBE + 1):
        try:
            res = model.run({name: np.zeros((1, s, s, bands[0]), dtype)}, [output])[0]
        except Exception:  # sizes the model does not take: that is what is probed
            continue
        side = _side(res)
        if side:
            sizes[s] = side
    return _fit(sizes, name, hints.get("tile_size"), overlap)


def _fit(sizes, name, tile=None, overlap=DEFAULT_OVERLAP):
    """The output-size law from {input side: output side}."""
    if not sizes:
        raise ModelError(f"the model gave no output for inputs of 1 to {MAX_PROBE} pixels: "
                         f"give {source_param(0, 'rfield')}, {SERVE.efield} and "
                         f"{SERVE.fully_conv}", source_param(0, "rfield"))
    q = math.gcd(*sizes)                     # the input sizes it takes: multiples of q
    ratio = sizes[max(sizes)] // max(sizes)
    if len(sizes) > 1 and ratio >= 1 and all(o == s * ratio for s, o in sizes.items()):
        # a tile model: an output of the input's size (ratio 1), or finer (super-resolution)
        tile = int(tile or DEFAULT_TILE)
        m = margin(tile, overlap, q) if ratio == 1 else max(1, q)
        law = "output side = input side" if ratio == 1 else \
            f"output side = {ratio} x input side"
        return {"inputs": [{"name": name, "rfield": q + 2 * m}], "efield": q * ratio,
                "scale": 1.0 / ratio, "fully_conv": True, "cover": True,
                "tile_size": max(q, (tile - 2 * m) // q * q) * ratio,
                "how": f"by running it on 1 to {MAX_PROBE} pixel inputs ({law}"
                       + (f", sizes multiple of {q}" if q > 1 else "") + "): a tile model, "
                       f"fully convolutional on tiles of {tile} x {tile} input pixels that "
                       f"overlap by {m} pixel(s) at each side"
                       + ("" if ratio == 1 else f"; super-resolution, {SERVE.scale} "
                                                f"{1 / ratio:g}")}
    big = sorted(sizes)[-max(2, len(sizes) // 2):]     # small sizes can behave oddly
    lo, hi = big[0], big[-1]
    # where the output grows by one step (or block): the slope between those is the step
    steps = [s for prev, s in zip(big, big[1:]) if sizes[s] > sizes[prev]]
    if sizes[hi] == sizes[lo] or len(steps) < 2:     # one output size: patch-based
        rf = min(s for s in sizes if sizes[s] == sizes[hi])
        return {"inputs": [{"name": name, "rfield": rf}], "efield": sizes[hi], "scale": 1.0,
                "fully_conv": False,
                "how": f"by running it on 1 to {MAX_PROBE} pixel inputs: it takes {rf} x {rf} "
                       "patches only; patch-based"}
    step = (steps[-1] - steps[0]) / (sizes[steps[-1]] - sizes[steps[0]])
    q = math.gcd(*(sizes[s] for s in big))
    if abs(step - 1) < 1e-9:
        rf = max(s for s in sizes if sizes[s] == q)
        law = f"output side = input side - {rf - q}" + (f", in blocks of {q}" if q > 1 else "")
        return {"inputs": [{"name": name, "rfield": rf}], "efield": q, "scale": 1.0,
                "fully_conv": True,
                "how": f"by running it on 1 to {MAX_PROBE} pixel inputs ({law}): receptive "
                       f"field {rf}, expression field {q}, fully convolutional"}
    k = int(round(step))
    rf = min(s for s in sizes if sizes[s] == 1) if 1 in sizes.values() else lo
    return {"inputs": [{"name": name, "rfield": rf}], "efield": 1, "scale": 1.0,
            "fully_conv": False, "step": k,
            "how": f"by running it on 1 to {MAX_PROBE} pixel inputs (one output every {k} "
                   f"input pixels): receptive field {rf}, patch-based at full resolution; "
                   f"it can also run fully convolutionally at {SERVE.scale} {k} (faster, a map "
                   f"{k} times coarser)"}
