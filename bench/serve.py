"""Serving benchmark: engine throughput over model-only throughput, and peak memory.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/serve.py [--quick]

1. Throughput: OTBTF's model3 (fully convolutional, RF 16) on a 61 Mpx mosaic of its
   Spot-6/7 subset (4 Mpx with --quick). Model-only = the same model on tiles already in
   memory (no reading, no writing), at the best of several tile sizes; engine = rsdl's
   whole serving run (read, regions, model, compressed GeoTIFF written) with tiles
   chosen automatically, RESUME off and on, with the CPU of each stage (a profile).
2. Memory: a small Keras CNN over a 1 Mpx crop and a >= 60 Mpx mosaic of the Landsat
   scene, each in a fresh process; peak RSS (ru_maxrss) compared.
Prints figures and ratios; asserts nothing (tests never time things).
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LANDSAT = os.path.join(ROOT, "sample-data", "landsat", "scene.tif")
PXS = os.path.join(ROOT, "tests", "data", "otbtf", "pxs_subset.tif")
MODEL3 = os.path.join(ROOT, "tests", "data", "otbtf", "models", "model3")
sys.path.insert(0, ROOT)


def mosaic_vrt(src, dst, nx, ny):
    """A VRT that repeats ``src`` nx x ny times side by side (one big georeferenced image)."""
    from osgeo import gdal
    ds = gdal.Open(src)
    w, h, b = ds.RasterXSize, ds.RasterYSize, ds.RasterCount
    gt = ds.GetGeoTransform()
    dtype = gdal.GetDataTypeName(ds.GetRasterBand(1).DataType)
    nodata = ds.GetRasterBand(1).GetNoDataValue()
    bx, by = ds.GetRasterBand(1).GetBlockSize()
    parts = [f'<VRTDataset rasterXSize="{w * nx}" rasterYSize="{h * ny}">',
             f"<SRS>{gdal.EscapeString(ds.GetProjectionRef(), gdal.CPLES_XML)}</SRS>",
             "<GeoTransform>" + ", ".join(repr(v) for v in gt) + "</GeoTransform>"]
    for band in range(1, b + 1):
        parts.append(f'<VRTRasterBand dataType="{dtype}" band="{band}">')
        if nodata is not None:
            parts.append(f"<NoDataValue>{nodata}</NoDataValue>")
        for j in range(ny):
            for i in range(nx):
                parts.append(
                    f'<SimpleSource><SourceFilename relativeToVRT="0">{src}</SourceFilename>'
                    f"<SourceBand>{band}</SourceBand>"
                    f'<SourceProperties RasterXSize="{w}" RasterYSize="{h}" DataType="{dtype}" '
                    f'BlockXSize="{bx}" BlockYSize="{by}"/>'
                    f'<SrcRect xOff="0" yOff="0" xSize="{w}" ySize="{h}"/>'
                    f'<DstRect xOff="{i * w}" yOff="{j * h}" xSize="{w}" ySize="{h}"/></SimpleSource>')
        parts.append("</VRTRasterBand>")
    parts.append("</VRTDataset>")
    with open(dst, "w") as f:
        f.write("\n".join(parts))
    return dst


def crop_vrt(src, dst, width, height):
    from osgeo import gdal
    gdal.Translate(dst, src, format="VRT", srcWin=[0, 0, width, height])
    return dst


def small_keras_model(path, bands=3):
    """A small fully convolutional CNN (RF 5), random weights, saved as .keras."""
    from rsdl_qgis.deps import require_tensorflow
    tf = require_tensorflow()
    tf.random.set_seed(0)
    x = tf.keras.Input((None, None, bands), name="x")
    y = tf.keras.layers.Rescaling(1 / 10000)(x)
    y = tf.keras.layers.Conv2D(16, 3, activation="relu")(y)
    y = tf.keras.layers.Conv2D(16, 3, activation="relu")(y)
    y = tf.keras.layers.Conv2D(4, 1, activation="softmax", name="probs")(y)
    tf.keras.Model(x, y).save(path)
    return path


def peak_rss_mb():
    """This process's peak resident size (VmHWM). Not ru_maxrss: Linux carries that over
    exec from the parent that forked, so a child of a big bench process reads its
    parent's size."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_serve(args):
    """In a fresh process: serve one job, print peak RSS before and after as JSON."""
    from rsdl_qgis.api import ServeJob, ServeSource, serve_model
    from rsdl_qgis.models import load_model
    load_model(args["model"])             # TensorFlow and the model loaded: the baseline
    base = peak_rss_mb()
    job = ServeJob(args["model"], [ServeSource(args["input"], args["rf"], args["name"])],
                   args["output"], [args["out_name"]], fully_conv=True,
                   tile_size=args.get("tile", 0))
    t = time.perf_counter()
    res = serve_model(job)
    seconds = time.perf_counter() - t
    print(json.dumps({"baseline_mb": base, "peak_mb": peak_rss_mb(), "seconds": seconds,
                      "pixels": res["WIDTH"] * res["HEIGHT"], "tiles": res["TILES"]}))


def measure_memory(model, src, out, rf=5, name="x", out_name="probs", tile=0):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    args = dict(model=model, input=src, output=out, rf=rf, name=name, out_name=out_name, tile=tile)
    code = f"import sys; sys.path.insert(0, {ROOT!r}); from bench.serve import child_serve; " \
           f"child_serve({args!r})"
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    if r.returncode:
        raise RuntimeError(r.stderr[-3000:])
    return json.loads(r.stdout.strip().splitlines()[-1])


def tf1_to_onnx(model_dir, inputs, outputs, path):
    """An OTBTF (TF1) SavedModel converted to ONNX by tf2onnx (weights frozen), with the
    same input and output names: the same model for both runtimes."""
    import tensorflow as tf
    import tf2onnx
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as sess:
        tf.compat.v1.saved_model.loader.load(sess, ["serve"], model_dir)
        frozen = tf.compat.v1.graph_util.convert_variables_to_constants(
            sess, graph.as_graph_def(), outputs)
    proto, _ = tf2onnx.convert.from_graph_def(frozen, input_names=[f"{n}:0" for n in inputs],
                                              output_names=[f"{n}:0" for n in outputs],
                                              opset=17)
    from rsdl_qgis.models.export import _rename
    _rename(proto, {f"{n}:0": n for n in inputs + outputs})
    with open(path, "wb") as fh:
        fh.write(proto.SerializeToString())
    return path


class StageClock:
    """Wall and CPU seconds of the engine's stages, per thread (time.thread_time): the
    reader's preparation of tiles (and its GDAL reads), the model, assembling outputs,
    the chunk store, the writer thread. TensorFlow's own threads show in none of them:
    the model's CPU is the process's CPU minus these."""

    def __init__(self):
        self.acc = {}
        self.undo = []

    def wrap(self, cls, name, label):
        original = getattr(cls, name)

        def timed(*a, **k):
            t, c = time.perf_counter(), time.thread_time()
            try:
                return original(*a, **k)
            finally:
                w = self.acc.setdefault(label, [0.0, 0.0])
                w[0] += time.perf_counter() - t
                w[1] += time.thread_time() - c
        setattr(cls, name, timed)
        self.undo.append((cls, name, original))

    def __enter__(self):
        from rsdl_qgis.engine import chunks, raster, serve
        self.wrap(serve.ServePlan, "prepare", "reader: read and cut tiles")
        self.wrap(raster.SourceReader, "read", "  of which GDAL reads")
        self.wrap(serve.ServePlan, "compute", "model + assemble the tile")
        self.wrap(chunks.ChunkStore, "save", "keep chunks for resume")
        self.wrap(raster.TiledWriter, "_run", "writer thread (compress, write)")
        return self

    def __exit__(self, *exc):
        for cls, name, original in reversed(self.undo):
            setattr(cls, name, original)

    def report(self, seconds, cpu):
        print(f"   {'stage':34s} {'wall s':>7s} {'CPU s':>7s}")
        for label, (w, c) in self.acc.items():
            print(f"   {label:34s} {w:7.2f} {c:7.2f}")
        print(f"   {'whole run (process CPU)':34s} {seconds:7.2f} {cpu:7.2f}")


def throughput(tmp, quick, model_path=MODEL3, label="TensorFlow", profile=False):
    from rsdl_qgis.api import ServeJob, ServeSource
    from rsdl_qgis.engine.serve import Progress, RunOptions, ServePlan, serve
    from rsdl_qgis.engine.windows import subdivide
    from rsdl_qgis.models import load_model
    n = 16 if quick else 61          # 2048^2 = 4 Mpx, or 7808^2 = 61 Mpx of input
    src = mosaic_vrt(PXS, os.path.join(tmp, "pxs_mosaic.vrt"), n, n)
    model = load_model(model_path)
    print(f" {label}:")

    def job(tile, out="unused.tif"):
        return ServeJob(model_path, [ServeSource(src, 16, "x")], os.path.join(tmp, out),
                        ["prediction"], fully_conv=True, tile_size=tile)

    best = None
    for tile in (128, 256, 512, 1024):
        plan = ServePlan(job(tile), model, Progress())
        tiles = subdivide(plan.geom.width, plan.geom.height, plan.tile)[:48]
        feeds = [(t, plan.prepare(t)[1]) for t in tiles]       # in memory, before timing
        plan.close()
        model.run(feeds[0][1][0], ["prediction"])                # warm-up
        t0 = time.perf_counter()
        for _, fl in feeds:
            for f in fl:
                model.run(f, ["prediction"])
        secs = time.perf_counter() - t0
        px = sum(t.size for t in tiles)
        print(f"  model only, tile {tile:5d}: {px / secs / 1e6:6.2f} Mpx/s")
        if best is None or px / secs > best[1]:
            best = (tile, px / secs)
        del feeds
    tile, model_rate = best
    rates = {}
    for resume in (False, True):
        clock = StageClock()
        with clock:
            t, c = time.perf_counter(), time.process_time()
            res = serve(job(0, f"engine{int(resume)}.tif"), model, None, RunOptions(resume=resume))
            seconds, cpu = time.perf_counter() - t, time.process_time() - c
        rates[resume] = res["WIDTH"] * res["HEIGHT"] / res["SECONDS"]
        print(f"  engine, automatic tiles ({res['TILES']}), RESUME {'on ' if resume else 'off'}: "
              f"{rates[resume] / 1e6:6.2f} Mpx/s ({res['WIDTH']} x {res['HEIGHT']} output)")
        if profile:
            clock.report(seconds, cpu)
    return tile, model_rate, rates


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller images (a smoke run)")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rsdl-bench-") as tmp:
        print("Throughput (OTBTF model3, fully convolutional, RF 16):")
        tile, model_rate, rates = throughput(tmp, a.quick, profile=True)
        print(f"THROUGHPUT RATIO engine / model-only = {rates[False] / model_rate:.3f} "
              f"(RESUME off), {rates[True] / model_rate:.3f} (RESUME on); model-only best "
              f"tile {tile}")
        onnx_path = tf1_to_onnx(MODEL3, ["x"], ["prediction"], os.path.join(tmp, "model3.onnx"))
        otile, onnx_model_rate, onnx_rates = throughput(tmp, True, onnx_path,
                                                        "ONNX Runtime (the same model, 4 Mpx)")
        print(f"THROUGHPUT RATIO ONNX engine / model-only = "
              f"{onnx_rates[False] / onnx_model_rate:.3f} (RESUME off; best tile {otile})")
        print("Peak memory (small Keras CNN, fresh process per run):")
        model = small_keras_model(os.path.join(tmp, "cnn.keras"))
        small = crop_vrt(LANDSAT, os.path.join(tmp, "small.vrt"), 1000, 1000)
        n = 4 if a.quick else 8   # the scene is 1000 x 1000: 16 or 64 Mpx
        big = mosaic_vrt(LANDSAT, os.path.join(tmp, "big.vrt"), n, n)
        tile = 256       # the same tile size for both: memory follows tiles, not images
        m_small = measure_memory(model, small, os.path.join(tmp, "small.tif"), tile=tile)
        m_big = measure_memory(model, big, os.path.join(tmp, "big.tif"), tile=tile)
        for label, m in (("1 Mpx", m_small), (f"{m_big['pixels'] / 1e6:.0f} Mpx", m_big)):
            print(f"  {label:>7}: peak RSS {m['peak_mb']:7.1f} MB (after loading the model "
                  f"{m['baseline_mb']:7.1f} MB), {m['seconds']:.1f} s, {m['tiles']} tiles, "
                  f"{m['pixels'] / m['seconds'] / 1e6:.2f} Mpx/s")
        print(f"MEMORY RATIO peak {m_big['pixels'] / 1e6:.0f} Mpx / 1 Mpx = "
              f"{m_big['peak_mb'] / m_small['peak_mb']:.3f}; growth above the loaded model: "
              f"{m_small['peak_mb'] - m_small['baseline_mb']:.0f} MB vs "
              f"{m_big['peak_mb'] - m_big['baseline_mb']:.0f} MB")


if __name__ == "__main__":
    main()
