"""Distributed-training benchmark: one process against two workers of a Dask cluster
(DISTRIBUTION workers, TensorFlow's MultiWorkerMirroredStrategy) on the same patches.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/train_workers.py [--quick]

Patches: 16 x 16 x 3 around samples of the Landsat scene (about 16 000; --quick: 4 000),
the built-in cnn, batch 64, 5 epochs, no validation set. Throughput is patches per second
over epochs 2..N (epoch 1 holds graph tracing and, on the workers, the processes' start),
from the times the log's epoch lines arrive. The two workers are a LocalCluster of two
single-thread worker processes on this machine: on one machine they share its cores, so
the figure is the cost of the synchronisation (an all-reduce of the gradients every
step), not a speed-up; on two machines each worker has its own. Prints figures and
ratios; asserts nothing.
"""
import argparse
import logging
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.train import Stamps, landsat_patches, rate  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    from distributed import LocalCluster

    from rsdl_qgis.api import TrainModelJob, TrainSource, train_model
    tmp = tempfile.mkdtemp(prefix="rsdl-bench-workers-")
    try:
        px, lab, n = landsat_patches(tmp, args.quick)
        epochs, batch = 5, 64
        figures = {}
        cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                               dashboard_address=None, host="127.0.0.1",
                               silence_logs=logging.ERROR)
        try:
            for name, kw in (("one process", {}),
                             ("two workers", {"distribution": "workers",
                                              "scheduler": cluster.scheduler_address})):
                stamps = Stamps()
                train_model(TrainModelJob([TrainSource(px)], lab, os.path.join(tmp, name),
                                          architecture="cnn", epochs=epochs, batch_size=batch,
                                          **kw), stamps)
                figures[name] = rate(stamps.times, n)
        finally:
            cluster.close()
        print(f"{n} patches 16 x 16 x 3, built-in cnn, batch {batch}, {epochs} epochs, "
              f"{os.cpu_count()} cores")
        for name, r in figures.items():
            print(f"{name}: {r:.0f} patches/s; ratio {r / figures['one process']:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
