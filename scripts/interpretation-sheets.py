#!/usr/bin/env python3
"""Contact sheets for photo-interpreting the points of a sample, blind to any map.

    python3 scripts/interpretation-sheets.py SAMPLE.gpkg IMAGE.tif OUT_DIR [--per 12]

Each point of SAMPLE (a layer written by rsdl:samplingdesign) gets a chip of IMAGE in
true colour (bands 1-3, stretched 1 % to 99 % over the whole image), 61 x 61 pixels
around it, enlarged five times, with a yellow box around the 3 x 3 pixels whose centre
pixel is the point, and its sample_id, row and column. The map the strata came from is
never shown, so the interpreter's class is not led by it. Sheets of `--per` chips are
written as OUT_DIR/sheet_NN.png; type the class seen at each point into the layer's
'reference' field. This is how sample-data/landsat/assessment.gpkg was interpreted.
"""
import argparse
import os

import numpy as np
from osgeo import gdal, ogr
from PIL import Image, ImageDraw

RADIUS, ZOOM, COLUMNS = 30, 5, 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("sample")
    ap.add_argument("image")
    ap.add_argument("out")
    ap.add_argument("--per", type=int, default=12)
    args = ap.parse_args()
    ds = gdal.Open(args.image)
    img = ds.ReadAsArray()[:3].astype(float)
    gt = ds.GetGeoTransform()
    valid = img[0] > 0
    rgb = np.stack([np.clip((b - np.percentile(b[valid], 1)) /
                            (np.percentile(b[valid], 99) - np.percentile(b[valid], 1)), 0, 1)
                    for b in img], -1)
    rgb = (rgb * 255).astype(np.uint8)
    h, w = rgb.shape[:2]
    src = ogr.Open(args.sample)
    pts = []
    for f in src.GetLayer(0):
        g = f.GetGeometryRef()
        col, row = int((g.GetX() - gt[0]) / gt[1]), int((g.GetY() - gt[3]) / gt[5])
        pts.append((f.GetField("sample_id"), row, col))
    pts.sort()
    os.makedirs(args.out, exist_ok=True)
    side = (2 * RADIUS + 1) * ZOOM
    for s in range(0, len(pts), args.per):
        chunk = pts[s:s + args.per]
        rows = -(-len(chunk) // COLUMNS)
        sheet = Image.new("RGB", (COLUMNS * (side + 10), rows * (side + 24)), "white")
        draw = ImageDraw.Draw(sheet)
        for k, (sid, r, c) in enumerate(chunk):
            chip = np.zeros((2 * RADIUS + 1, 2 * RADIUS + 1, 3), np.uint8)
            r0, c0 = r - RADIUS, c - RADIUS
            a0, b0 = max(0, r0), max(0, c0)
            a1, b1 = min(h, r + RADIUS + 1), min(w, c + RADIUS + 1)
            chip[a0 - r0:a1 - r0, b0 - c0:b1 - c0] = rgb[a0:a1, b0:b1]
            im = Image.fromarray(chip).resize((side, side), Image.NEAREST)
            lo, hi = RADIUS * ZOOM - ZOOM, (RADIUS + 2) * ZOOM - 1
            ImageDraw.Draw(im).rectangle([lo, lo, hi, hi], outline=(255, 255, 0))
            x, y = (k % COLUMNS) * (side + 10), (k // COLUMNS) * (side + 24)
            sheet.paste(im, (x, y + 20))
            draw.text((x + 2, y + 4), f"#{sid}  (row {r}, col {c})", fill="black")
        sheet.save(os.path.join(args.out, f"sheet_{s // args.per + 1:02d}.png"))
    print(f"{len(pts)} points on {-(-len(pts) // args.per)} sheets in {args.out}")


if __name__ == "__main__":
    main()
