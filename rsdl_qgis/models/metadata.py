"""What a model trained by rsdl:trainmodel says about itself (rsdl_metadata.json), applied
to settings the user left unset. Shared by serving and by deep-feature classification."""
import json
import os
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

from ..engine.jobs import SERVE, source_param
from ..errors import ModelError

#: the file of a model folder that holds what rsdl:trainmodel wrote about the model
METADATA = "rsdl_metadata.json"


def read_metadata(path: Any) -> Optional[Dict[str, Any]]:
    """rsdl metadata of a model folder (None when it has none)."""
    if path and os.path.isdir(str(path)):
        p = os.path.join(str(path), METADATA)
        if os.path.exists(p):
            with open(p, encoding="utf-8") as fh:
                return json.load(fh)
    return None


def model_folder(path: Any) -> str:
    """The model a MODEL parameter names: a SavedModel's folder when its saved_model.pb is
    given (the file picker can only pick files), else the path as it is."""
    path = str(path)
    if os.path.isfile(path) and os.path.basename(path) == "saved_model.pb":
        return os.path.dirname(path)
    return path


def model_settings(model: Any, names: Sequence[str], output_names: Sequence[str],
                   rfields: Sequence[Optional[int]], paths: Sequence[str],
                   log: Optional[Callable[[str], None]] = None, efield: Optional[int] = None,
                   band_lists: Optional[Sequence[Any]] = None) -> Tuple[Any, List[str]]:
    """The metadata that fills what the user left unset: the model's own (rsdl metadata,
    ONNX metadata_props), else, when a receptive field is missing, what models/fields.py
    infers from the model. Returns (metadata or None, resolved input names)."""
    meta = getattr(model, "metadata", None)
    if meta and meta.get("inputs"):
        return meta, list(names)
    if all(r is not None for r in rfields):
        return meta, list(names)
    from ..engine.raster import open_raster
    from .fields import infer
    names = [model.resolve_input(n, source_param(i, "name")) for i, n in enumerate(names)]
    wanted = [n.strip() for n in output_names if n.strip()] or [
        n for n in (meta or {}).get("default_outputs", [])] or [""]
    output = model.resolve_output(wanted[0], SERVE.output_names)
    from ..engine.raster import alpha_band
    from ..engine.serve import band_mismatch
    bands = []
    for i, (p, n) in enumerate(zip(paths, names)):
        chosen = (band_lists or [None] * len(paths))[i]
        ds = open_raster(p, source_param(i))
        alpha = alpha_band(ds)
        listed = list(chosen) if chosen else [b for b in range(1, ds.RasterCount + 1)
                                               if b != alpha]
        ds = None
        shape = model.inputs.get(n, (None, None))[0]
        if shape and len(shape) == 4 and shape[-1] is not None and shape[-1] != len(listed):
            raise band_mismatch(i, n, shape[-1], listed, bool(chosen), alpha)
        bands.append(len(listed))
    inferred = infer(model, names, output, bands, (meta or {}).get("deepness"))
    if efield is not None and inferred["fully_conv"] and efield != inferred["efield"]:
        # an expression field the user gives: the same context (RF - EF) around it
        for i in inferred["inputs"]:
            i["rfield"] += efield - inferred["efield"]
        inferred["how"] += f"; with {SERVE.efield} {efield} as given, receptive field " + \
            ", ".join(str(i["rfield"]) for i in inferred["inputs"])
    if log:
        log(f"Fields inferred from the model {inferred['how']} (values you give win)")
    return dict(meta or {}, **inferred), names


def source_settings(meta: Optional[Dict[str, Any]], rfields: Sequence[Optional[int]],
                    names: Sequence[str]) -> Tuple[List[Any], List[str]]:
    """Receptive fields (None) and input names ('') left unset, from the metadata's
    inputs: by input name, else by position. Returns new (rfields, names) lists."""
    inputs = (meta or {}).get("inputs", [])
    rfields, names = list(rfields), list(names)
    for i, (rfield, name) in enumerate(zip(rfields, names)):
        if rfield is not None:
            continue
        known = [m for m in inputs if m["name"] == name] or (inputs[i:i + 1] if not name else [])
        if not known:
            raise ModelError("the model carries no receptive field for this source (it was "
                             "not trained by rsdl:trainmodel): give it",
                             source_param(i, "rfield"))
        rfields[i] = int(known[0]["rfield"])
        names[i] = name or known[0]["name"]
    return rfields, names


def fully_conv(meta: Optional[Dict[str, Any]], given: Optional[bool]) -> bool:
    """The mode: as given, else the metadata's, else patch-based."""
    return bool((meta or {}).get("fully_conv", False)) if given is None else bool(given)


def feature_outputs(meta: Optional[Dict[str, Any]]) -> List[str]:
    """Outputs that make features: every output but the class codes (probabilities for
    the built-in architectures)."""
    return [o for o in (meta or {}).get("outputs", []) if o != "class"]
