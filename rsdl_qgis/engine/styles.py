"""QGIS styles written beside rasters as text (map.qml for map.tif): QGIS loads a layer's
default style from there. No qgis import: the engine writes them."""
import json
import os
from html import escape
from typing import Any, Dict, List, Sequence

from .jobs import OUTPUT
from .output import write_text

PALETTE = ["#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3",
           "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7", "#bebada"]
KNOWN = {"water": "#1f78b4", "crop": "#ffd92f", "tree": "#1b7837", "forest": "#1b7837",
         "developed": "#d73027", "urban": "#d73027", "bare": "#bf812d", "bare soil": "#bf812d",
         "grass": "#a6d96a", "grassland": "#a6d96a"}


def class_colours(names: Sequence[Any]) -> List[Any]:
    return [KNOWN.get(str(n).lower(), PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]


def class_metadata(codes: Sequence[Any], names: Sequence[str]) -> Dict[str, str]:
    """The metadata item of a class map that names its classes: RSDL_CLASSES, a JSON
    object from code to name (rsdl:accuracy reads it)."""
    return {"RSDL_CLASSES": json.dumps(dict(zip(map(str, codes), names)))}


def embed_classes(band: Any, dtype: Any, codes: Sequence[Any], names: Sequence[str],
                  colours: bool = True) -> None:
    """A class map that displays in any GIS, not only through its .qml: the colour of
    each class in the file's own colour table (8 and 16-bit maps), and the class names
    as GDAL category names (kept by GTiff in the .aux.xml beside the map)."""
    # imported here: loading the plugin (algorithms/base.py) reads only qml_path
    import numpy as np
    from osgeo import gdal
    top = max(codes)
    if top < 0 or top > 65535:
        return
    if colours and np.dtype(dtype).name in ("uint8", "uint16"):   # GTiff: band 1 only
        table = gdal.ColorTable()
        for code, colour in zip(codes, class_colours(names)):
            rgb = tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))
            table.SetColorEntry(int(code), rgb + (255,))
        band.SetRasterColorTable(table)
        band.SetRasterColorInterpretation(gdal.GCI_PaletteIndex)
    labels = [""] * (top + 1)
    for code, name in zip(codes, names):
        if code >= 0:
            labels[int(code)] = str(name)
    band.SetCategoryNames(labels)


MARK = "<!-- written by rsdl_qgis -->"


def qml_path(path: str) -> str:
    return os.path.splitext(str(path))[0] + ".qml"


def _write_qml(path, renderer):
    qml = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
{MARK}
<qgis version="3.22" styleCategories="AllStyleCategories">
  <pipe>
{renderer}
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
    if _users_own(qml_path(path)):
        return                                  # a style the user made is never replaced
    write_text(qml_path(path), qml, OUTPUT)


def write_class_style(path: str, codes: Sequence[Any], names: Sequence[str]) -> None:
    """A class map's style: paletted, one colour and the class name per code."""
    entries = "\n".join(
        f'        <paletteEntry value="{c}" color="{col}" alpha="255" '
        f'label="{escape(str(n), quote=True)}"/>'
        for c, n, col in zip(codes, names, class_colours(names)))
    head = '<rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">'
    _write_qml(path, f"""    {head}
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>""")


def write_ramp_style(path: str, lo: float = 0.0, hi: float = 1.0) -> None:
    """A probability, confidence or regression map's style: a colour ramp from lo to hi."""
    mid = (lo + hi) / 2
    _write_qml(path, f"""    <rasterrenderer type="singlebandpseudocolor" band="1" opacity="1" alphaBand="-1"
                    classificationMin="{lo}" classificationMax="{hi}">
      <rastershader>
        <colorrampshader colorRampType="INTERPOLATED" classificationMode="1" clip="0"
                         minimumValue="{lo}" maximumValue="{hi}">
          <item value="{lo}" color="#440154" alpha="255" label="{lo:g}"/>
          <item value="{mid}" color="#21918c" alpha="255" label="{mid:g}"/>
          <item value="{hi}" color="#fde725" alpha="255" label="{hi:g}"/>
        </colorrampshader>
      </rastershader>
    </rasterrenderer>""")


def style_values(path: str) -> None:
    """The style of a map of values written by the serving engine. One float band
    (a regression or a probability): a colour ramp over its values, 0..1 when they lie in
    it. Anything else keeps QGIS's default rendering, and a style that rsdl wrote for an
    earlier output at this path is removed so that it does not mislabel the new one."""
    from osgeo import gdal
    ds = gdal.Open(str(path))
    band = ds.GetRasterBand(1)
    is_float = gdal.GetDataTypeName(band.DataType).startswith("Float")
    if ds.RasterCount == 1 and is_float:
        try:
            lo, hi = band.ComputeRasterMinMax(True)     # approximate: a subsample, fast
        except (RuntimeError, TypeError):               # no valid pixel in the sample
            lo, hi = 0.0, 1.0
        if lo >= 0.0 and hi <= 1.0:
            lo, hi = 0.0, 1.0
        elif hi <= lo:
            hi = lo + 1.0
        ds = None
        write_ramp_style(path, float(lo), float(hi))
        return
    ds = None
    remove_own_style(path)


def _users_own(qml):
    """True when `qml` exists and rsdl did not write it."""
    try:
        with open(qml, encoding="utf-8", errors="replace") as fh:
            return MARK not in fh.read(200)
    except OSError:
        return False


def remove_own_style(path: str) -> None:
    """Removes the .qml beside `path` when rsdl wrote it (never a user's own style)."""
    qml = qml_path(path)
    try:
        with open(qml, encoding="utf-8") as fh:
            ours = MARK in fh.read(200)
    except OSError:
        return
    if ours:
        os.remove(qml)
