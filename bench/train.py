"""Training benchmark: rsdl's trainer (patches streamed from disk) against a plain Keras fit
on the same arrays in memory.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/train.py [--quick]

Patches: 16 x 16 x 3 around samples of the Landsat scene (about 16 000; --quick: 4 000).
Same network (the built-in cnn), batch size, optimiser and loss on both sides, no
validation set. Throughput is patches per second over epochs 2..N (epoch 1 includes
graph tracing), measured from epoch-end timestamps. rsdl is measured with augmentation
off (same work as the baseline) and on (its default). Prints figures and ratios.
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.serve import LANDSAT  # noqa: E402


class Stamps:
    """A Progress that records when each epoch ends."""

    def __init__(self):
        self.times = []

    def set(self, fraction):
        pass

    def cancelled(self):
        return False

    def info(self, message):
        if message.startswith("epoch ") and "before training" not in message:
            self.times.append(time.perf_counter())


def rate(times, n):
    laps = [b - a for a, b in zip(times, times[1:])]
    return n / (sum(laps) / len(laps))


def landsat_patches(tmp, quick):
    """16 x 16 x 3 patches around samples of the Landsat scene, in `tmp`: (patches image,
    labels image, how many)."""
    from rsdl_qgis.api import PatchesJob, PatchSource, SelectionJob, extract_patches, sample_selection
    from tests.polygons import rotated_polygons, spectral_classes
    polys = spectral_classes(LANDSAT, rotated_polygons(LANDSAT, os.path.join(tmp, "p.gpkg"),
                                                       2000, seed=2))
    pts = os.path.join(tmp, "s.gpkg")
    sample_selection(SelectionJob(LANDSAT, pts, vector=polys, field="code", strategy="constant",
                                  samples=1000 if quick else 4000, sampler="random", valid_fraction=0))
    px, lab = os.path.join(tmp, "p.tif"), os.path.join(tmp, "l.tif")
    res = extract_patches(PatchesJob(pts, [PatchSource(LANDSAT, 16, px, nodata=0)],
                                     field="code", output_labels=lab))
    return px, lab, res["KEPT"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from rsdl_qgis.api import TrainModelJob, TrainSource, train_model
    tmp = tempfile.mkdtemp(prefix="rsdl-bench-train-")
    try:
        px, lab, n = landsat_patches(tmp, args.quick)
        epochs, batch = 4, 64
        figures = {}
        for aug in (False, True):
            stamps = Stamps()
            train_model(TrainModelJob([TrainSource(px)], lab, os.path.join(tmp, f"m{aug}"),
                                      architecture="cnn", epochs=epochs, batch_size=batch,
                                      augment=aug, class_weights=True), stamps)
            figures[aug] = rate(stamps.times, n)

        import keras
        import numpy as np
        from osgeo import gdal

        from rsdl_qgis.models import zoo
        x = gdal.Open(px).ReadAsArray().transpose(1, 2, 0).reshape(n, 16, 16, 3).astype(np.float32)
        y = gdal.Open(lab).ReadAsArray().ravel()
        codes, idx, counts = np.unique(y, return_inverse=True, return_counts=True)
        stats = [(x.reshape(-1, 3).mean(0), x.reshape(-1, 3).var(0))]
        model, _, _ = zoo.build("cnn", keras, [("x1", 16, 3)], len(codes), stats, 0)
        model.compile(optimizer=keras.optimizers.Adam(1e-3),
                      loss="sparse_categorical_crossentropy", weighted_metrics=["accuracy"])
        w = (len(y) / (len(codes) * counts))[idx].astype(np.float32)
        times = []
        cb = keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: times.append(time.perf_counter()))
        model.fit({"x1": x}, idx, sample_weight=w, batch_size=batch, epochs=epochs, shuffle=True,
                  verbose=0, callbacks=[cb])
        base = rate(times, n)
        print(f"{n} patches 16 x 16 x 3, built-in cnn, batch {batch}, {epochs} epochs")
        print(f"plain Keras fit, arrays in memory: {base:.0f} patches/s")
        print(f"rsdl trainer, streamed from the patches image, no augmentation: "
              f"{figures[False]:.0f} patches/s; ratio {figures[False] / base:.2f} (goal >= 0.9)")
        print(f"rsdl trainer with augmentation (default): {figures[True]:.0f} patches/s; "
              f"ratio {figures[True] / base:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
