"""QGIS styles written beside rasters as text (map.qml for map.tif): QGIS loads a layer's
default style from there. No qgis import: the engine writes them."""
import os
from html import escape

PALETTE = ["#1f78b4", "#33a02c", "#e31a1c", "#ff7f00", "#6a3d9a", "#b15928", "#a6cee3",
           "#b2df8a", "#fb9a99", "#fdbf6f", "#cab2d6", "#ffff99", "#8dd3c7", "#bebada"]
KNOWN = {"water": "#1f78b4", "crop": "#ffd92f", "tree": "#1b7837", "forest": "#1b7837",
         "developed": "#d73027", "urban": "#d73027", "bare": "#bf812d", "grass": "#a6d96a"}


def class_colours(names):
    return [KNOWN.get(str(n).lower(), PALETTE[i % len(PALETTE)]) for i, n in enumerate(names)]


def _write_qml(path, renderer):
    qml = f"""<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>
<qgis version="3.22" styleCategories="AllStyleCategories">
  <pipe>
{renderer}
  </pipe>
  <blendMode>0</blendMode>
</qgis>
"""
    with open(os.path.splitext(str(path))[0] + ".qml", "w", encoding="utf-8") as fh:
        fh.write(qml)


def write_class_style(path, codes, names):
    """A class map's style: paletted, one colour and the class name per code."""
    entries = "\n".join(
        f'        <paletteEntry value="{c}" color="{col}" alpha="255" label="{escape(str(n), quote=True)}"/>'
        for c, n, col in zip(codes, names, class_colours(names)))
    _write_qml(path, f"""    <rasterrenderer type="paletted" band="1" opacity="1" alphaBand="-1" nodataColor="">
      <colorPalette>
{entries}
      </colorPalette>
    </rasterrenderer>""")


def write_ramp_style(path, lo=0.0, hi=1.0):
    """A probability or confidence map's style: a continuous colour ramp from lo to hi."""
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
