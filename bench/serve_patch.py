"""Patch-based serving benchmark: an M3-like model (a CNN on 24 x 24 patches of a 10 m
image, plus the 180-band 20 m pixel time series of the same place), engine / model-only.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/serve_patch.py [--quick]

Data made here: a 4-band 10 m image (the Landsat scene's crop, resampled) and a 180-band
20 m time series of the same place (int16, the bands shifted and scaled copies of the
image's), 1.5 Mpx at 10 m (0.25 Mpx with --quick): two inputs of different resolutions.
Model: Keras, random weights, inputs `patch` (24, 24, 4) and `series` (1, 1, 180), a
class-probability output.
Model-only = the model on the very patches the engine feeds it, cut beforehand and held
in memory, in batches of the same size; engine = rsdl's whole run (reading both
sources, cutting the patches, the model, the GeoTIFF written). Three rounds of both, as
this machine's speed drifts by 10 % from minute to minute: the ratio printed is the best
engine run over the best model-only run (and each round's ratio).
Prints figures and ratios; asserts nothing.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
LANDSAT = os.path.join(ROOT, "sample-data", "landsat", "scene.tif")


def make_data(tmp, side):
    """A 4-band 10 m image and a 180-band series on its grid, `side` x `side` pixels."""
    from osgeo import gdal
    src = gdal.Open(LANDSAT)
    rgb = src.ReadAsArray(0, 0, side // 3 + 1, side // 3 + 1).astype(np.float32)
    rgb = np.repeat(np.repeat(rgb, 3, axis=1), 3, axis=2)[:, :side, :side]   # 30 m -> 10 m
    nir = rgb.mean(axis=0, keepdims=True) * 1.3
    img = np.concatenate([rgb, nir]).astype(np.int16)
    gt = list(src.GetGeoTransform())
    gt[1], gt[5] = 10.0, -10.0
    paths = {}
    drv = gdal.GetDriverByName("GTiff")
    coarse = img[:, ::2, ::2]                       # the series is at 20 m
    for name, array in (("image", img), ("series", None)):
        path = os.path.join(tmp, f"{name}.tif")
        bands, n = (4, side) if array is not None else (180, coarse.shape[1])
        ds = drv.Create(path, n, n, bands, gdal.GDT_Int16,
                        ["TILED=YES", "COMPRESS=ZSTD", "PREDICTOR=2", "INTERLEAVE=PIXEL"])
        ds.SetGeoTransform(gt if array is not None else
                           [gt[0], 20.0, 0.0, gt[3], 0.0, -20.0])
        ds.SetProjection(src.GetProjection())
        if array is not None:
            ds.WriteRaster(0, 0, side, side, array.tobytes(), band_list=[1, 2, 3, 4])
        else:
            rng = np.random.default_rng(0)
            for b in range(180):
                k = b % 4
                band = coarse[k] * (0.5 + 0.5 * np.sin(b / 180 * 6.28)) + \
                    rng.normal(0, 5, coarse[k].shape)
                ds.GetRasterBand(b + 1).WriteArray(band.astype(np.int16))
        ds = None
        paths[name] = path
    return paths


def m3_model(path):
    from rsdl_qgis.deps import require_tensorflow
    tf = require_tensorflow()
    tf.random.set_seed(0)
    patch = tf.keras.Input((24, 24, 4), name="patch")
    series = tf.keras.Input((1, 1, 180), name="series")
    y = tf.keras.layers.Rescaling(1 / 1000)(patch)
    y = tf.keras.layers.Conv2D(16, 3, activation="relu")(y)
    y = tf.keras.layers.MaxPooling2D()(y)
    y = tf.keras.layers.Conv2D(32, 3, activation="relu")(y)
    y = tf.keras.layers.MaxPooling2D()(y)
    y = tf.keras.layers.Conv2D(32, 3, activation="relu")(y)
    y = tf.keras.layers.GlobalAveragePooling2D()(y)
    s = tf.keras.layers.Reshape((180, 1))(tf.keras.layers.Rescaling(1 / 1000)(series))
    s = tf.keras.layers.Conv1D(16, 5, strides=2, activation="relu")(s)
    s = tf.keras.layers.GlobalAveragePooling1D()(s)
    z = tf.keras.layers.Concatenate()([y, s])
    z = tf.keras.layers.Dense(32, activation="relu")(z)
    out = tf.keras.layers.Dense(6, activation="softmax", name="probs")(z)
    tf.keras.Model([patch, series], out).save(path)
    return path


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--batch", type=int, default=256)
    a = ap.parse_args()
    from rsdl_qgis.api import ServeJob, ServeSource
    from rsdl_qgis.engine.serve import Progress, RunOptions, ServePlan, serve
    from rsdl_qgis.engine.windows import subdivide
    from rsdl_qgis.models import load_model
    side = 500 if a.quick else 1225
    with tempfile.TemporaryDirectory(prefix="rsdl-bench-") as tmp:
        data = make_data(tmp, side)
        model_path = m3_model(os.path.join(tmp, "m3.keras"))
        model = load_model(model_path)
        job = ServeJob(model_path, [ServeSource(data["image"], 24, "patch"),
                                    ServeSource(data["series"], 1, "series")],
                       os.path.join(tmp, "out.tif"), ["probs"], batch_size=a.batch)
        # model-only: the engine's own patches, cut beforehand (a sample of tiles)
        plan = ServePlan(job, model, Progress())
        tiles = subdivide(plan.geom.width, plan.geom.height, plan.tile)[:4]
        batches = [f for t in tiles for f in plan.prepare(t)[1]]
        plan.close()
        # warm-up on every batch size: a new shape makes TensorFlow trace the model again
        for size in sorted({len(f["patch"]) for f in batches}):
            model.run(next(f for f in batches if len(f["patch"]) == size), ["probs"])

        def model_only():
            t = time.perf_counter()
            n = 0
            for _ in range(3):
                for f in batches:
                    model.run(f, ["probs"])
                    n += len(f["patch"])
            return n / (time.perf_counter() - t)

        print(f"M3-like model, patch-based, batch {a.batch}, {side} x {side} at 10 m "
              f"(series at 20 m); model-only on {3 * sum(len(f['patch']) for f in batches)} "
              "patches in memory, then the engine, in each of 3 rounds:")
        ratios, models, engines = [], [], []
        for r in range(3):
            model_rate = model_only()
            t = time.perf_counter()
            res = serve(job, model, None, RunOptions(resume=False))
            secs = time.perf_counter() - t
            px = res["WIDTH"] * res["HEIGHT"]
            ratios.append(px / secs / model_rate)
            models.append(model_rate)
            engines.append(px / secs)
            print(f"  round {r + 1}: model only {model_rate / 1e3:6.1f} kpx/s, engine "
                  f"{px / secs / 1e3:6.1f} kpx/s ({res['WIDTH']} x {res['HEIGHT']}, "
                  f"{res['TILES']} tiles, {secs:.1f} s): {ratios[-1]:.3f}")
        print(f"PATCH-BASED RATIO engine / model-only = {max(engines) / max(models):.3f} "
              f"(best of 3 each; per round {min(ratios):.3f} to {max(ratios):.3f}, median "
              f"{sorted(ratios)[1]:.3f})")


if __name__ == "__main__":
    main()
