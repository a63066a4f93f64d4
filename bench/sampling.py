"""Sampling benchmark: rsdl against OTB 8.1, and patch extraction against raw GDAL reads.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/sampling.py [--quick]

1. Statistics + selection: an 8 x 8 mosaic of the Landsat scene (64 Mpx) with 40 000
   rotated polygons. OTB = otbcli_PolygonClassStatistics then otbcli_SampleSelection
   (strategy smallest, random sampler); rsdl = the same two steps, each in a fresh Python
   process. Wall times include start-up on both sides.
2. Patch extraction: 16 x 16 patches of the mosaic around selected points; rsdl's whole
   extraction (nodata checks, patches images and labels written) against a loop of plain
   GDAL reads of the same windows in the same order, in patches per second.
3. Memory: peak RSS of patch extraction at N and 8 N points.
Prints figures and ratios; asserts nothing (tests never time things).
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.serve import LANDSAT, mosaic_vrt  # noqa: E402

PY = "/usr/bin/python3"


def run(cmd, env=None):
    t = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise SystemExit(f"{cmd[0]} failed:\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return time.perf_counter() - t, res.stdout


def child(code, *args):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [os.path.join(ROOT, "build", "deps"), ROOT, os.environ.get("PYTHONPATH", "")]))
    return run([PY, "-c", code, *map(str, args)], env)


STATS = """
import sys
from rsdl_qgis.api import class_statistics
class_statistics(sys.argv[1], sys.argv[2], 'code', sys.argv[3])
"""
SELECT = """
import sys
from rsdl_qgis.api import SelectionJob, sample_selection
sample_selection(SelectionJob(sys.argv[1], sys.argv[3], vector=sys.argv[2], field='code',
                              strategy=sys.argv[4], samples=int(sys.argv[5]), sampler='random',
                              valid_fraction=0))
"""
PATCHES = """
import json, resource, sys, time
from rsdl_qgis.api import PatchesJob, PatchSource, extract_patches
t = time.perf_counter()
r = extract_patches(PatchesJob(sys.argv[1], [PatchSource(sys.argv[2], 16, sys.argv[3], nodata=0)],
                               field='code', output_labels=sys.argv[4]))
print(json.dumps({"s": time.perf_counter() - t, "kept": r["KEPT"],
                  "rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""
RAW = """
import json, sys, time
import numpy as np
from osgeo import gdal, ogr
ds = gdal.Open(sys.argv[2])
gt = ds.GetGeoTransform()
v = ogr.Open(sys.argv[1])
xy = np.array([(f.GetGeometryRef().GetX(), f.GetGeometryRef().GetY()) for f in v.GetLayer(0)])
col = np.floor((xy[:, 0] - gt[0]) / gt[1]).astype(int) - 8
row = np.floor((xy[:, 1] - gt[3]) / gt[5]).astype(int) - 8
ok = (col >= 0) & (row >= 0) & (col + 16 <= ds.RasterXSize) & (row + 16 <= ds.RasterYSize)
t = time.perf_counter()
n = 0
for c, r in zip(col[ok].tolist(), row[ok].tolist()):
    ds.ReadAsArray(c, r, 16, 16)
    n += 1
print(json.dumps({"s": time.perf_counter() - t, "n": n}))
"""


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="a 4 x 4 mosaic and 5 000 polygons")
    args = ap.parse_args()
    from tests.polygons import rotated_polygons
    tmp = tempfile.mkdtemp(prefix="rsdl-bench-sampling-")
    try:
        n = 4 if args.quick else 8
        count = 5000 if args.quick else 40000
        img = os.path.join(tmp, "mosaic.vrt")
        mosaic_vrt(LANDSAT, img, n, n)
        from osgeo import gdal
        ds = gdal.Open(img)
        mpx = ds.RasterXSize * ds.RasterYSize / 1e6
        polys = rotated_polygons(img, os.path.join(tmp, "polys.gpkg"), count, seed=1)
        print(f"image {ds.RasterXSize} x {ds.RasterYSize} ({mpx:.1f} Mpx), {count} polygons")
        ds = None

        xml = os.path.join(tmp, "otb.xml")
        t_otb_stats, _ = run(["otbcli_PolygonClassStatistics", "-in", img, "-vec", polys,
                              "-field", "code", "-out", xml])
        t_otb_sel, _ = run(["otbcli_SampleSelection", "-in", img, "-vec", polys, "-field", "code",
                            "-instats", xml, "-strategy", "smallest", "-sampler", "random",
                            "-out", os.path.join(tmp, "otb.sqlite")])
        t_stats, _ = child(STATS, img, polys, os.path.join(tmp, "stats.csv"))
        t_sel, _ = child(SELECT, img, polys, os.path.join(tmp, "sel.gpkg"), "smallest", 0)
        print(f"class statistics: OTB {t_otb_stats:.2f} s, rsdl {t_stats:.2f} s, "
              f"ratio rsdl/OTB {t_stats / t_otb_stats:.2f}")
        print(f"sample selection (smallest, random): OTB {t_otb_sel:.2f} s, rsdl {t_sel:.2f} s, "
              f"ratio {t_sel / t_otb_sel:.2f}")
        both = (t_stats + t_sel) / (t_otb_stats + t_otb_sel)
        print(f"statistics + selection: ratio rsdl/OTB {both:.2f} (goal <= 1.5)")

        small = os.path.join(tmp, "points_small.gpkg")
        big = os.path.join(tmp, "points_big.gpkg")
        per_class = 1250 if args.quick else 5000
        child(SELECT, img, polys, small, "constant", per_class // 8)
        child(SELECT, img, polys, big, "constant", per_class)
        _, out = child(PATCHES, big, img, os.path.join(tmp, "p.tif"), os.path.join(tmp, "l.tif"))
        mine = json.loads(out.strip().splitlines()[-1])
        _, out = child(RAW, big, img)
        raw = json.loads(out.strip().splitlines()[-1])
        rate, raw_rate = mine["kept"] / mine["s"], raw["n"] / raw["s"]
        print(f"patches 16 x 16 x 3: rsdl {rate:.0f} patches/s ({mine['kept']} kept), raw GDAL "
              f"reads {raw_rate:.0f} windows/s; ratio {rate / raw_rate:.2f} (goal >= 0.8)")
        _, out = child(PATCHES, small, img, os.path.join(tmp, "ps.tif"), os.path.join(tmp, "ls.tif"))
        few = json.loads(out.strip().splitlines()[-1])
        print(f"peak RSS: {few['kept']} patches {few['rss']:.0f} MB, {mine['kept']} patches "
              f"{mine['rss']:.0f} MB; ratio {mine['rss'] / few['rss']:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
