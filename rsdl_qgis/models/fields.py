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

A model with several inputs of free size is not probed (each input's field depends on
the others): the error says which numbers to give. Whatever the user gives wins; only
what was left unset is filled.
"""
import math

import numpy as np

from ..errors import ModelError

MAX_PROBE = 160


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


def infer(model, names, output, bands):
    """What the model says of its geometry: a dict shaped like rsdl metadata
    (``inputs`` with ``rfield``, ``efield``, ``scale``, ``fully_conv``) and ``how``, one
    sentence for the log. `names`: the model input of each source; `output`: the output
    probed; `bands`: the band count of each source."""
    shapes = [model.inputs.get(n, (None, None))[0] for n in names]
    patches = [_static_patch(s) for s in shapes]
    if all(p is not None for p in patches):
        feeds = {n: np.zeros((1, p, p, b), np.dtype(model.input_dtype(n)))
                 for n, p, b in zip(names, patches, bands)}
        side = _side(model.run(feeds, [output])[0]) or 1
        return {"inputs": [{"name": n, "rfield": p} for n, p in zip(names, patches)],
                "efield": side, "scale": 1.0, "fully_conv": False,
                "how": f"from its fixed input shape{'s' if len(names) > 1 else ''} "
                       f"({', '.join(f'{p} x {p}' for p in patches)}): patch-based, "
                       f"{side} x {side} output pixel(s) per patch"}
    if len(names) > 1:
        raise ModelError(
            f"the model has {len(names)} inputs ({', '.join(names)}) of free size: their "
            "receptive fields cannot be inferred (each depends on the others). Give "
            + ", ".join(f"SOURCE{i + 1}_RFIELD" for i in range(len(names)))
            + " (and EFIELD, SCALE and FULLY_CONV when they are not the defaults)",
            "SOURCE1_RFIELD")
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
    return _fit(sizes, name)


def _fit(sizes, name):
    """The output-size law from {input side: output side}."""
    if not sizes:
        raise ModelError(f"the model gave no output for inputs of 1 to {MAX_PROBE} pixels: "
                         "give SOURCE1_RFIELD, EFIELD and FULLY_CONV", "SOURCE1_RFIELD")
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
                   f"it can also run fully convolutionally at SCALE {k} (faster, a map "
                   f"{k} times coarser)"}
