"""Print the demo's accuracies and write demo-output/summary.html: the scene in true colour
with the reference polygons, each map beside it with its legend, figures and confusion
matrix, so that a person judges the maps by eye in one page. Everything comes from the
run's outputs.

    /usr/bin/python3 scripts/demo-summary.py OUT DATA
"""
import csv
import html
import json
import os
import sys

import numpy as np
from osgeo import gdal, ogr

gdal.UseExceptions()
ogr.UseExceptions()
OUT, DATA = sys.argv[1], sys.argv[2]
MAPS = (("network", "Network alone (rsdl:trainmodel, then rsdl:modelserve)"),
        ("deep_rf", "Random forest on the network's outputs (deep features)"),
        ("pixel_rf", "Random forest on the raw pixels"))
e = html.escape


def results(name):
    with open(os.path.join(OUT, f"{name}.json")) as fh:
        return json.load(fh)["results"]


def write_png(rgb, name):
    h, w, _ = rgb.shape
    mem = gdal.GetDriverByName("MEM").Create("", w, h, 3, gdal.GDT_Byte)
    for b in range(3):
        mem.GetRasterBand(b + 1).WriteArray(rgb[:, :, b])
    gdal.GetDriverByName("PNG").CreateCopy(os.path.join(OUT, name), mem)
    aux = os.path.join(OUT, name + ".aux.xml")
    if os.path.exists(aux):
        os.remove(aux)


def outline(vector, grid_ds):
    """Pixels on the boundary of the vector's polygons, on the scene's grid."""
    mem = gdal.GetDriverByName("MEM").Create("", grid_ds.RasterXSize, grid_ds.RasterYSize, 1,
                                             gdal.GDT_Byte)
    mem.SetGeoTransform(grid_ds.GetGeoTransform())
    mem.SetProjection(grid_ds.GetProjection())
    src = ogr.Open(vector)
    gdal.RasterizeLayer(mem, [1], src.GetLayer(0), burn_values=[1])
    inside = mem.ReadAsArray().astype(bool)
    core = inside.copy()
    core[1:, :] &= inside[:-1, :]
    core[:-1, :] &= inside[1:, :]
    core[:, 1:] &= inside[:, :-1]
    core[:, :-1] &= inside[:, 1:]
    return inside & ~core


def scene_png():
    ds = gdal.Open(os.path.join(DATA, "scene.tif"))
    a = ds.ReadAsArray().astype(np.float64)
    rgb = np.zeros(a.shape[1:] + (3,), np.uint8)
    for b in range(3):
        lo, hi = np.percentile(a[b][a[b] > 0], [1, 99])
        rgb[:, :, b] = np.clip((a[b] - lo) / (hi - lo) * 255, 0, 255)
    write_png(rgb, "scene.png")
    for part, colour in (("training", (255, 255, 255)), ("test", (255, 230, 0))):
        rgb[outline(os.path.join(DATA, f"{part}.gpkg"), ds)] = colour
    write_png(rgb, "scene_reference.png")


def map_png(key):
    """The class map in its own colours (its colour table), and its legend."""
    ds = gdal.Open(os.path.join(OUT, f"{key}_classes.tif"))
    band = ds.GetRasterBand(1)
    codes = band.ReadAsArray()
    table, names = band.GetColorTable(), band.GetCategoryNames() or []
    lut = np.zeros((256, 3), np.uint8)
    legend = []
    for c in range(min(256, table.GetCount())):
        lut[c] = table.GetColorEntry(c)[:3]
        if c < len(names) and names[c]:
            legend.append((names[c], "#%02x%02x%02x" % tuple(lut[c])))
    nodata = band.GetNoDataValue()
    rgb = lut[codes.clip(0, 255)]
    if nodata is not None:
        rgb[codes == nodata] = (255, 255, 255)
    write_png(rgb, f"{key}.png")
    return legend


def shore_urban(key):
    """Of the land pixels that touch water (8 neighbours) in the map, the share mapped
    urban: the 'urban rim' along shores, an error the test polygons cannot see."""
    ds = gdal.Open(os.path.join(OUT, f"{key}_classes.tif"))
    band = ds.GetRasterBand(1)
    codes = band.ReadAsArray()
    code = {n: int(c) for c, n in json.loads(ds.GetMetadataItem("RSDL_CLASSES") or "{}").items()}
    if "water" not in code or "urban" not in code:
        return None
    water = codes == code["water"]
    near = np.zeros_like(water)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            near |= np.roll(np.roll(water, dy, 0), dx, 1)
    nodata = band.GetNoDataValue()
    shore = near & ~water & (codes != nodata if nodata is not None else True)
    return float((codes[shore] == code["urban"]).mean()) if shore.any() else None


def matrix_html(key):
    with open(os.path.join(OUT, f"{key}_matrix.csv"), newline="") as fh:
        rows = list(csv.reader(fh))
    head = "".join(f"<th>{e(c)}</th>" for c in rows[0][1:])
    body = []
    for i, row in enumerate(rows[1:]):
        cells = "".join(f"<td class='{'d' if i == j else ''}'>{e(v)}</td>"
                        for j, v in enumerate(row[1:]))
        body.append(f"<tr><th>{e(row[0])}</th>{cells}</tr>")
    return (f"<table class='m'><tr><th>reference \\ map</th>{head}</tr>{''.join(body)}</table>")


steps = [line.split("\t") for line in open(os.path.join(OUT, "steps.tsv")) if line.strip()]
total = sum(int(ms) for _, ms in steps) / 1000
sel = results("2-sample-selection")
train = results("4-train-network")
print(f"samples from training.gpkg: {sel['TRAIN']} training, {sel['VALID']} validation "
      "(split by polygon)")
print(f"network: best epoch {train['BEST_EPOCH']}, validation OA {100 * train['OA']:.1f} %")
print("accuracy on the test polygons (test.gpkg, blocks no step trained on):")
scene_png()
cards = []
figures = {"seconds": round(total, 1), "steps": {n: int(ms) / 1000 for n, ms in steps},
           "maps": {}}
for key, label in MAPS:
    r = results(f"10-accuracy-{key}")
    a = results(f"11-assessment-{key}")
    rim = shore_urban(key)
    figures["maps"][key] = {
        "test_polygons": {"OA": r["OA"], "KAPPA": r["KAPPA"], "pixels": r["SAMPLES"]},
        "probability_sample": {"OA": a["OA_AREA_ADJUSTED"], "OA_CI": a["OA_CI"],
                               "points": a["SAMPLES"]},
        "shore_pixels_mapped_urban": rim}
    print(f"  {label:56s} OA {100 * r['OA']:5.1f} %  kappa {r['KAPPA']:.3f}  "
          f"({r['SAMPLES']} px of test polygons)")
    print(f"  {'':56s} estimated OA {100 * a['OA_AREA_ADJUSTED']:5.1f} +/- "
          f"{100 * a['OA_CI']:.1f} %  ({a['SAMPLES']} sample points, 95 %)"
          + (f"; shore pixels mapped urban {100 * rim:.0f} %" if rim is not None else ""))
    legend = map_png(key)
    classes = [c.strip() for c in r["CLASSES"].split(",")]
    per_class = "".join(
        f"<tr><th>{e(c)}</th><td>{100 * r.get(f'PRECISION_{c}', 0):.0f}</td>"
        f"<td>{100 * r.get(f'RECALL_{c}', 0):.0f}</td></tr>" for c in classes)
    swatches = "".join(f"<span class='sw' style='background:{col}'></span>{e(n)} "
                       for n, col in legend)
    cards.append(f"""<div class="card"><h3>{e(label)}</h3>
<a href="{key}.png"><img src="{key}.png" alt="{e(label)}"></a>
<p class="legend">{swatches}</p>
<p><b>Estimated OA {100 * a['OA_AREA_ADJUSTED']:.1f} &plusmn; {100 * a['OA_CI']:.1f} %</b>
(95 %) on the probability sample of {a['SAMPLES']} photo-interpreted points
(<a href="{key}_assessment.html">report</a>: class areas, user's and producer's accuracy
with intervals). On the test polygons: OA {100 * r['OA']:.1f} %, kappa {r['KAPPA']:.3f},
{r['SAMPLES']} pixels inside homogeneous fields (<a href="{key}_accuracy.html">report</a>;
no interval: not a probability sample).{
f" Land pixels touching water mapped urban: {100 * rim:.0f} %." if rim is not None else ""}</p>
<table class='m'><tr><th>class</th><th>user's %</th><th>producer's %</th></tr>{per_class}</table>
{matrix_html(key)}</div>""")
print(f"total {total:.1f} s; outputs, figures.json and summary.html in {OUT}/")
with open(os.path.join(OUT, "figures.json"), "w", encoding="utf-8") as fh:
    json.dump(figures, fh, indent=1)
page = f"""<!DOCTYPE html><html><head><meta charset="utf-8"><title>rsdl_qgis demo</title>
<style>body{{font-family:sans-serif;margin:1.5em;color:#222}}
.row{{display:flex;flex-wrap:wrap;gap:1.2em}}.card{{width:460px}}
.card img{{width:460px;height:auto;image-rendering:pixelated;border:1px solid #999}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #bbb;padding:.2em .4em;
text-align:right;font-size:.85em}}td.d{{background:#d8eed8;font-weight:bold}}
.sw{{display:inline-block;width:1em;height:1em;margin:0 .3em 0 .8em;border:1px solid #555;
vertical-align:middle}}</style></head><body>
<h1>rsdl_qgis demo: Landsat 8, six land-cover classes</h1>
<p>Scene: {e(DATA)}/scene.tif (Landsat 8, 2020-05-18, 30 m, 1000 x 1000 pixels). Reference:
photo-interpreted polygons, training (white outlines, {e(DATA)}/training.gpkg) and test
(yellow, test.gpkg) in separate blocks of a 4 x 4 chessboard. {sel['TRAIN']} training and
{sel['VALID']} validation samples came from the training polygons. Each map is assessed on
a stratified random sample of 300 points photo-interpreted for this purpose
(assessment.gpkg: unbiased estimates of the map's accuracy with 95 % intervals), and on
the test polygons, which no step saw but which lie inside homogeneous fields, stands and
water, so they miss the errors at boundaries. Total run time {total:.0f} s.</p>
<div class="row">
<div class="card"><h3>Scene (true colour) and reference polygons</h3>
<a href="scene_reference.png"><img src="scene_reference.png" alt="scene"></a>
<p>Without outlines: <a href="scene.png">scene.png</a>. Training curves:
<a href="training_report.html">training_report.html</a>.</p></div>
{''.join(cards)}</div>
<h2>Steps</h2><table><tr><th>step</th><th>seconds</th></tr>
{''.join(f"<tr><td>{e(n)}</td><td>{int(ms) / 1000:.1f}</td></tr>" for n, ms in steps)}
</table></body></html>"""
with open(os.path.join(OUT, "summary.html"), "w", encoding="utf-8") as fh:
    fh.write(page)
