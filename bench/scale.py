"""Scale-out benchmark: the same serving job in this process and on a Dask cluster.

    PYTHONPATH=build/deps:. /usr/bin/python3 bench/scale.py [--quick]

1. Throughput: OTBTF's model3 (fully convolutional, RF 16) over a mosaic of its Spot-7
   subset (16 Mpx; 4 Mpx with --quick), run (a) in this process without resume, (b) in
   this process with resume (chunks kept beside the output), (c) on a LocalCluster of 2
   single-thread worker processes on this machine. Ratios are over (a).
2. The cost of one chunk's scheduling: the raw-pixel identity "model" over 1 Mpx cut
   into 32 x 32 chunks (about 1000), in-process and on the cluster; the difference per
   chunk is what the scheduler, the network and the client add to a chunk.
3. The client's share: how fast the client writes chunks into the output (compressed
   GeoTIFF, with and without keeping them for resume): one client's ceiling, whatever
   the number of workers.
Prints figures and ratios; asserts nothing (tests never time things).
"""
import argparse
import logging
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from bench.serve import MODEL3, PXS, mosaic_vrt  # noqa: E402


def timed(fn):
    t = time.perf_counter()
    res = fn()
    return res, time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a smaller image (a smoke run)")
    a = ap.parse_args()
    from distributed import LocalCluster

    from rsdl_qgis.api import ServeJob, ServeSource, serve_model
    from rsdl_qgis.engine import chunks
    from rsdl_qgis.engine.serve import RunOptions, serve
    from rsdl_qgis.ml.features import IdentityModel

    # the client's time in Assembler.add (keep the chunk, write it in order)
    client_seconds = [0.0]
    add = chunks.Assembler.add

    def counted_add(self, index, array, seconds=None):
        t = time.perf_counter()
        add(self, index, array, seconds)
        client_seconds[0] += time.perf_counter() - t
    chunks.Assembler.add = counted_add

    n = 16 if a.quick else 32
    with tempfile.TemporaryDirectory(prefix="rsdl-scale-") as tmp, \
            LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                         dashboard_address=None, silence_logs=logging.ERROR) as cluster:
        address = cluster.scheduler_address
        src = mosaic_vrt(PXS, os.path.join(tmp, "mosaic.vrt"), n, n)
        job = ServeJob(MODEL3, [ServeSource(src, 16, "x")], os.path.join(tmp, "out.tif"),
                       ["prediction"], fully_conv=True, tile_size=512, chunk_size=1024)
        serve_model(job, resume=False)            # warm-up: TensorFlow and the model here
        serve_model(job, scheduler=address)       # and in the workers
        print(f"Throughput (OTBTF model3, fully convolutional, {n * 128} x {n * 128} input):")
        rates = {}
        for label, kw in (("in-process", {"resume": False}), ("in-process, resume", {}),
                          ("cluster 2 x 1 thread", {"scheduler": address})):
            client_seconds[0] = 0.0
            res, secs = timed(lambda kw=kw: serve_model(job, **kw))
            px = res["WIDTH"] * res["HEIGHT"]
            rates[label] = px / secs
            print(f"  {label:22s}: {px / secs / 1e6:5.2f} Mpx/s ({res['CHUNKS']} chunks, "
                  f"{secs:.1f} s; client {client_seconds[0] / (px / 1e6) * 1000:.0f} ms/Mpx)")
        base = rates["in-process"]
        print(f"SCALE RATIO resume / in-process = {rates['in-process, resume'] / base:.3f}")
        print(f"SCALE RATIO cluster (2 workers) / in-process = "
              f"{rates['cluster 2 x 1 thread'] / base:.3f}")

        print("Scheduling cost (raw pixels, 32 x 32 chunks):")
        side = 1024
        small = mosaic_vrt(PXS, os.path.join(tmp, "small.vrt"), side // 128, side // 128)
        ident = ServeJob("raw", [ServeSource(small, 1, "x")], os.path.join(tmp, "id.tif"),
                         ["x"], fully_conv=True, tile_size=32, chunk_size=32)
        recipe = {"builder": IdentityModel, "args": {"bands": 4}}
        times = {}
        for label, run in (("in-process", RunOptions(resume=False)),
                           ("cluster", RunOptions(resume=False, scheduler=address,
                                                  recipe=recipe))):
            client_seconds[0] = 0.0
            res, secs = timed(lambda run=run: serve(ident, IdentityModel(4), None, run))
            times[label] = (secs, res["CHUNKS"])
            print(f"  {label:10s}: {secs:.2f} s for {res['CHUNKS']} chunks "
                  f"({secs / res['CHUNKS'] * 1000:.2f} ms a chunk; client "
                  f"{client_seconds[0] / res['CHUNKS'] * 1000:.2f} ms a chunk)")
        per_chunk = (times["cluster"][0] - times["in-process"][0]) / times["cluster"][1]
        print(f"SCHEDULING COST per chunk = {per_chunk * 1000:.2f} ms")

        print("Client assembly (model3's output written again, from memory):")
        from osgeo import gdal

        from rsdl_qgis.engine.raster import TiledWriter
        ds = gdal.Open(job.output)
        w, h, gt, wkt = ds.RasterXSize, ds.RasterYSize, ds.GetGeoTransform(), ds.GetProjection()
        layout = chunks.layout(w, h, 512, 2048)
        arrays = [ds.ReadAsArray(c.window.col_off, c.window.row_off, c.window.width,
                                 c.window.height)[:, :, None] for c in layout]
        ds = None
        for label, keep in (("write", False), ("write + keep for resume", True)):
            rates = []
            for _ in range(3):              # a shared machine's noise: three runs
                writer = TiledWriter(os.path.join(tmp, "again.tif"), w, h, 1, "float32", gt,
                                     wkt, -9999.0)
                store = chunks.ChunkStore(os.path.join(tmp, "again.tif"), {}, layout, 1) \
                    if keep else None
                if store:
                    store.open()
                t = time.perf_counter()
                assembler = chunks.Assembler(layout, writer, "float32", store)
                for c, array in zip(layout, arrays):
                    assembler.add(c.index, array)
                writer.commit()
                rates.append(w * h / (time.perf_counter() - t) / 1e6)
                if store:
                    store.clear()
            print(f"  {label:24s}: {min(rates):6.1f} to {max(rates):6.1f} Mpx/s "
                  "(1 float32 band, 3 runs)")


if __name__ == "__main__":
    main()
