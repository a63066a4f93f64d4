"""Chunked runs: resume after a kill, a cancel or a worker lost, and a Dask cluster as the
executor. The oracle is an uninterrupted run in this process: every other way of
computing the same job must give the very same bytes."""
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rsdl_qgis.api import (
    ClassifyJob,
    ServeJob,
    ServeSource,
    TrainClassifierJob,
    classify,
    serve_model,
    train_classifier,
)
from rsdl_qgis.engine.chunks import MANIFEST, state_dir
from rsdl_qgis.engine.progress import Progress
from rsdl_qgis.engine.serve import RunOptions, serve
from rsdl_qgis.errors import CancelledError, ParameterError
from tests.conftest import OTBTF, ROOT
from tests.polygons import rotated_polygons, spectral_classes
from tests.slowmodel import build

# OTBTF's SavedModels and Keras: TensorFlow (conftest skips these without it)
pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings("ignore")]
PXS = os.path.join(OTBTF, "pxs_subset.tif")
MODEL3 = os.path.join(OTBTF, "models", "model3")


class Log(Progress):
    """Collects log lines; cancels once the run is `cancel_at` done; calls `at` once
    the run passes `at_fraction`."""

    def __init__(self, cancel_at=None, at=None, at_fraction=0.0):
        self.lines, self.cancel_at, self.at, self.at_fraction = [], cancel_at, at, at_fraction
        self.fraction = 0.0

    def info(self, message):
        self.lines.append(message)

    def set(self, fraction):
        self.fraction = fraction
        if self.at and fraction > self.at_fraction:
            at, self.at = self.at, None
            at()

    def cancelled(self):
        return self.cancel_at is not None and self.fraction >= self.cancel_at

    def text(self):
        return "\n".join(self.lines)


def fcn_job(out):
    """OTBTF's model3, fully convolutional on its Spot-7 subset: 113 x 113 pixels in
    16 chunks of 32 x 32 (tiles of 16)."""
    return ServeJob(MODEL3, [ServeSource(PXS, 16, "x")], str(out), ["prediction"],
                    fully_conv=True, tile_size=16, chunk_size=32)


def reference(job, tmp_path):
    """The bytes of the job's output from an uninterrupted run in this process, written
    at the job's own output path (its path is in the file's metadata) and moved away."""
    serve_model(job, resume=False)
    ref = tmp_path / "reference.tif"
    shutil.move(job.output, ref)
    return ref.read_bytes()


def serve_slow(job, progress=None, scheduler="", delay=0.05, resume=True):
    """Serve through the engine with the slow model, locally or on `scheduler`."""
    run = RunOptions(resume=resume, scheduler=scheduler, model_path=job.model,
                     recipe={"builder": build,
                             "args": {"path": job.model, "delay": delay}})
    return serve(job, build(job.model, delay), progress, run)


def test_resume_off_and_on_give_the_same_bytes_and_leave_no_state(tmp_path):
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    log = Log()
    res = serve_model(job, log)                   # resume on (the default)
    assert res["CHUNKS"] == 16 and res["REUSED_CHUNKS"] == 0
    assert (tmp_path / "out.tif").read_bytes() == ref
    assert not os.path.exists(state_dir(job.output))
    assert "16 chunk(s) of up to 32 x 32" in log.text()


def test_cluster_fully_convolutional_same_bytes(tmp_path, dask_cluster):
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    log = Log()
    res = serve_model(job, log, scheduler=dask_cluster)
    assert res["CHUNKS"] == 16
    assert (tmp_path / "out.tif").read_bytes() == ref
    assert "2 worker(s), 2 thread(s)" in log.text()
    assert not os.path.exists(state_dir(job.output))


def test_cluster_patch_based_two_sources_same_bytes(tmp_path, dask_cluster):
    """OTBTF's model2: 8 x 8 patches of the 6 m image and 32 x 32 of the 1.5 m one."""
    job = ServeJob(os.path.join(OTBTF, "models", "model2"),
                   [ServeSource(os.path.join(OTBTF, "xs_subset.tif"), 8, "x1"),
                    ServeSource(os.path.join(OTBTF, "pan_subset.tif"), 32, "x2")],
                   str(tmp_path / "out.tif"), ["prediction"], tile_size=4, chunk_size=8,
                   batch_size=7)
    ref = reference(job, tmp_path)
    res = serve_model(job, Log(), scheduler=dask_cluster)
    assert res["CHUNKS"] == 9 and (res["WIDTH"], res["HEIGHT"]) == (24, 24)
    assert (tmp_path / "out.tif").read_bytes() == ref


@pytest.fixture(scope="module")
def classifier(tmp_path_factory):
    d = tmp_path_factory.mktemp("cluster-classifier")
    polys = spectral_classes(PXS, rotated_polygons(PXS, d / "p.gpkg", 30, seed=3,
                                                   size_px=(3, 8), with_holes=False), classes=3)
    train_classifier(TrainClassifierJob(PXS, polys, "code", str(d / "rf.rsdlc"), "rf",
                                        {"trees": 20}, samples=100, valid_fraction=0.0))
    return str(d / "rf.rsdlc")


def test_cluster_classify_same_bytes(tmp_path, dask_cluster, classifier):
    job = ClassifyJob(PXS, classifier, str(tmp_path / "map.tif"),
                      confidence=str(tmp_path / "conf.tif"), tile_size=32, chunk_size=64)
    classify(job, resume=False)
    ref = {n: (tmp_path / n).read_bytes() for n in ("map.tif", "conf.tif")}
    for n in ref:
        os.remove(tmp_path / n)
    res = classify(job, Log(), scheduler=dask_cluster)
    assert res["CHUNKS"] == 4
    for n, data in ref.items():
        assert (tmp_path / n).read_bytes() == data, n
    assert len(np.unique(np.frombuffer(ref["map.tif"], np.uint8))) > 3


def test_cancel_on_cluster_then_resume_here(tmp_path, dask_cluster):
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    with pytest.raises(CancelledError):
        serve_slow(job, Log(cancel_at=0.3), scheduler=dask_cluster)
    assert not os.path.exists(job.output)
    with open(os.path.join(state_dir(job.output), MANIFEST)) as fh:
        kept = json.load(fh)["done"]
    assert 4 <= len(kept) < 16
    # a kept chunk cut short (a full disk, a bad copy) is computed again
    damaged = os.path.join(state_dir(job.output), f"c{kept[0]:06d}.npy")
    with open(damaged, "r+b") as fh:
        fh.truncate(100)
    res = serve_model(job, Log())
    assert res["REUSED_CHUNKS"] == len(kept) - 1
    assert (tmp_path / "out.tif").read_bytes() == ref


def job_on_a_copy(tmp_path):
    """fcn_job on a copy of the Spot-7 subset, which the test may change: (copy, job)."""
    src = tmp_path / "pxs.tif"
    shutil.copy(PXS, src)
    job = fcn_job(tmp_path / "out.tif")
    job.sources = [ServeSource(str(src), 16, "x")]
    return src, job


def test_changed_job_starts_over_and_says_why(tmp_path):
    src, job = job_on_a_copy(tmp_path)
    with pytest.raises(CancelledError):
        serve_slow(job, Log(cancel_at=0.2))
    assert os.path.isdir(state_dir(job.output))
    os.utime(src, (time.time() + 5, time.time() + 5))
    log = Log()
    res = serve_model(job, log)
    assert res["REUSED_CHUNKS"] == 0
    assert "SOURCE1 was modified: starting over" in log.text()
    # a changed parameter too
    with pytest.raises(CancelledError):
        serve_slow(job, Log(cancel_at=0.2))
    log = Log()
    job.output_nodata = -1.0
    assert serve_model(job, log)["REUSED_CHUNKS"] == 0
    assert "parameters changed (output_nodata): starting over" in log.text()


def test_resume_off_discards_an_earlier_state(tmp_path):
    job = fcn_job(tmp_path / "out.tif")
    with pytest.raises(CancelledError):
        serve_slow(job, Log(cancel_at=0.2))
    assert os.path.isdir(state_dir(job.output))
    assert serve_model(job, Log(), resume=False)["REUSED_CHUNKS"] == 0
    assert sorted(os.listdir(tmp_path)) == ["out.qml", "out.tif"]


def test_a_worker_killed_mid_run_changes_nothing(tmp_path, dask_cluster):
    from distributed import Client
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    with Client(dask_cluster, set_as_default=False) as client:
        pids = client.run(os.getpid)
    victim = sorted(pids.values())[0]
    killed = threading.Event()

    def kill():
        os.kill(victim, signal.SIGKILL)
        killed.set()

    log = Log(at=kill, at_fraction=0.1)
    res = serve_slow(job, log, scheduler=dask_cluster, delay=0.1, resume=False)
    assert killed.is_set() and res["CHUNKS"] == 16
    assert (tmp_path / "out.tif").read_bytes() == ref
    assert "Lost the Dask worker tcp://127.0.0.1:" in log.text()     # said, not silent
    with Client(dask_cluster, set_as_default=False) as client:     # the nanny restarted it
        client.wait_for_workers(2, timeout=60)
        assert victim not in client.run(os.getpid).values()


def cancelled_state(job):
    """Cancel a run of `job` a third of the way: its state stays beside the output."""
    with pytest.raises(CancelledError):
        serve_slow(job, Log(cancel_at=0.3))
    path = os.path.join(state_dir(job.output), MANIFEST)
    with open(path) as fh:
        return path, json.load(fh)


def test_a_kept_chunk_whose_pixels_were_changed_is_computed_again(tmp_path):
    """Header and size kept, pixels overwritten: the chunk's checksum in the manifest
    tells, and the map is the uninterrupted run's."""
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    _, m = cancelled_state(job)
    kept = m["done"]
    assert len(kept) >= 3 and set(m["sums"]) == {str(i) for i in kept}
    chunk = os.path.join(state_dir(job.output), f"c{kept[1]:06d}.npy")
    size = os.path.getsize(chunk)
    with open(chunk, "r+b") as fh:
        fh.seek(size - 400)
        fh.write(b"\0" * 400)
    assert os.path.getsize(chunk) == size
    log = Log()
    res = serve_model(job, log)
    assert res["REUSED_CHUNKS"] == len(kept) - 1
    assert "1 kept chunk(s) were damaged or changed since they were written" in log.text()
    assert (tmp_path / "out.tif").read_bytes() == ref


def test_a_source_rewritten_with_its_size_and_time_restored_starts_over(tmp_path):
    src, job = job_on_a_copy(tmp_path)
    cancelled_state(job)
    st = os.stat(src)
    data = bytearray(src.read_bytes())
    data[-2000:-1000] = bytes(1000)                 # pixels of the last rows, in place
    src.write_bytes(bytes(data))
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(src).st_size == st.st_size and os.stat(src).st_mtime_ns == st.st_mtime_ns
    log = Log()
    assert serve_model(job, log)["REUSED_CHUNKS"] == 0
    assert "SOURCE1 was modified: starting over" in log.text()


def test_content_digest_samples_a_large_file(tmp_path, monkeypatch):
    """Above the whole-hash size, a change in a sampled block is seen and the read is
    bounded; the docs say what is not seen."""
    from rsdl_qgis.engine import chunks
    monkeypatch.setattr(chunks, "WHOLE_HASH", 1 << 20)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(8 << 20))
    d0 = chunks.content_digest(big)
    with open(big, "r+b") as fh:                   # the first block
        fh.write(b"x")
    assert chunks.content_digest(big) != d0
    with open(big, "r+b") as fh:                   # the last byte
        fh.seek((8 << 20) - 1)
        fh.write(b"y")
    d1 = chunks.content_digest(big)
    assert d1 != d0
    assert chunks.content_digest(big) == d1


HOSTILE_MANIFESTS = {
    "not-json": "{not json",
    "empty": "",
    "done-of-strings": lambda m: dict(m, done=["x"] + m["done"]),
    "done-of-floats": lambda m: dict(m, done=[1.5]),
    "done-a-string": lambda m: dict(m, done="all"),
    "done-of-booleans": lambda m: dict(m, done=[True]),
    "fingerprint-a-list": lambda m: dict(m, fingerprint=[]),
    "sources-of-strings": lambda m: dict(m, fingerprint=dict(m["fingerprint"], sources=["a"])),
    "chunks-a-string": lambda m: dict(m, chunks="16"),
    "pid-negative": lambda m: dict(m, pid=-1),
    "sums-of-numbers": lambda m: dict(m, sums={"0": 1}),
    "deep": "[" * 100000 + "]" * 100000,
    "a-list": "[1, 2, 3]",
}


def test_a_damaged_manifest_is_discarded_and_the_map_is_a_clean_runs(tmp_path):
    """End to end, one case; every other damage is checked on the state alone below."""
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    path, m = cancelled_state(job)
    with open(path, "w") as fh:
        json.dump(HOSTILE_MANIFESTS["done-of-strings"](m), fh)
    log = Log()
    res = serve_model(job, log)
    assert res["REUSED_CHUNKS"] == 0
    assert f"its state ('{path}') is damaged: starting over" in log.text()
    assert (tmp_path / "out.tif").read_bytes() == ref
    assert not os.path.exists(state_dir(job.output))


@pytest.mark.parametrize("kind", sorted(HOSTILE_MANIFESTS))
def test_a_damaged_or_hostile_manifest_is_discarded_in_one_line(tmp_path, kind):
    """The state of a run that kept 3 of 4 chunks, its manifest damaged or edited: the
    next run reuses none, says so in one line naming the manifest, and deletes only the
    files of the state."""
    from rsdl_qgis.engine.chunks import ChunkStore, layout
    chunks = layout(64, 64, 16, 32)
    out = str(tmp_path / "out.tif")
    fp = {"sources": [], "model": "", "job": {"a": 1}}
    store = ChunkStore(out, fp, chunks, 2)
    store.open()
    for c in chunks[:3]:
        store.save(c.index, np.ones((c.window.height, c.window.width, 2), np.float32))
    store.stopped()
    path = os.path.join(state_dir(out), MANIFEST)
    with open(path) as fh:
        m = json.load(fh)
    bad = HOSTILE_MANIFESTS[kind]
    with open(path, "w") as fh:
        fh.write(bad if isinstance(bad, str) else json.dumps(bad(m)))
    lines = []
    again = ChunkStore(out, fp, chunks, 2, info=lines.append)
    assert again.open() == set()
    assert lines == [f"An earlier run of this output was not finished, but its state "
                     f"('{path}') is damaged: starting over"]
    assert sorted(os.listdir(state_dir(out))) == [MANIFEST]     # its own, new
    again.stopped()
    assert not os.path.exists(state_dir(out))


def test_a_lock_whose_pid_now_belongs_to_another_program_is_taken_over(tmp_path):
    """A run killed with its state marked running; its pid reused by another program
    (here: a live `sleep`, whose start time is not the run's) does not block the output.
    The same pid with its own start time is a run going on: refused, naming OUTPUT."""
    from rsdl_qgis.engine.chunks import process_start
    from rsdl_qgis.errors import RsdlIOError
    job = fcn_job(tmp_path / "out.tif")
    ref = reference(job, tmp_path)
    path, m = cancelled_state(job)
    other = subprocess.Popen(["sleep", "60"])
    try:
        live = dict(m, running=True, pid=other.pid, started=process_start(other.pid))
        with open(path, "w") as fh:
            json.dump(live, fh)
        with pytest.raises(RsdlIOError) as e:
            serve_model(job, Log())
        assert e.value.param == "OUTPUT" and f"process {other.pid}" in str(e.value)
        reused = dict(live, started="another boot:12345")
        with open(path, "w") as fh:
            json.dump(reused, fh)
        log = Log()
        res = serve_model(job, log)
        assert res["REUSED_CHUNKS"] == len(m["done"])
        assert (tmp_path / "out.tif").read_bytes() == ref
    finally:
        other.kill()
        other.wait()


def test_a_cluster_whose_last_worker_dies_fails_in_bounded_time(tmp_path, monkeypatch):
    """One `dask worker --no-nanny`, killed mid-run, as a lost machine: Dask would keep
    the chunks waiting for ever. The run fails once the cluster has had no worker for
    NO_WORKER_TIMEOUT seconds, in one line naming SCHEDULER, and writes no output."""
    import distributed

    from rsdl_qgis.engine import cluster
    monkeypatch.setattr(cluster, "NO_WORKER_TIMEOUT", 3.0)
    monkeypatch.setattr(cluster, "WORKER_CHECK", 0.5)
    deps = os.path.dirname(os.path.dirname(distributed.__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([deps, ROOT]))
    local = distributed.LocalCluster(n_workers=0, processes=True, dashboard_address=None,
                                     host="127.0.0.1")
    worker = subprocess.Popen(
        [sys.executable, "-m", "distributed.cli.dask_worker", local.scheduler_address,
         "--nthreads", "1", "--no-nanny", "--no-dashboard"], env=env, cwd=str(tmp_path),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        job = fcn_job(tmp_path / "out.tif")
        start = time.monotonic()
        with pytest.raises(ParameterError) as e:
            serve_slow(job, Log(at=worker.kill, at_fraction=0.1),
                       scheduler=local.scheduler_address, delay=0.1)
        assert time.monotonic() - start < 60
        assert e.value.param == "SCHEDULER" and "has had no worker for 3 s" in str(e.value)
        assert "\n" not in str(e.value)
        assert not os.path.exists(job.output)
    finally:
        worker.kill()
        worker.wait()
        local.close()


# --- the same bytes, whoever computed what ------------------------------------------------

def mosaic_job(tmp_path):
    """model3 on a 3 x 3 mosaic of the Spot-7 subset: 369 x 369 output pixels, 2 x 2
    blocks of 256 in the GeoTIFF (the last ones partial), cut into 16 chunks of 96 x 96
    (4 per row, the last row and column partial) whose edges are not the blocks'."""
    from osgeo import gdal

    from tests.conftest import write_raster
    ds = gdal.Open(PXS)
    pixels = np.tile(ds.ReadAsArray().transpose(1, 2, 0), (3, 3, 1))
    src = tmp_path / "mosaic.tif"
    write_raster(src, pixels, gt=ds.GetGeoTransform(), wkt=ds.GetProjection())
    return ServeJob(MODEL3, [ServeSource(str(src), 16, "x")], str(tmp_path / "out.tif"),
                    ["prediction"], fully_conv=True, tile_size=32, chunk_size=96)


def sha256(path):
    import hashlib
    with open(path, "rb") as fh:
        return hashlib.sha256(fh.read()).hexdigest()


def kill_mid_run(job, at_least=4):
    """Run `job` (slowly) in another process and kill it with SIGKILL once `at_least`
    chunks are kept; returns how many were."""
    script = ("import json, sys\n"
              "from rsdl_qgis.engine.serve import ServeJob\n"
              "from tests.unit.test_cluster import serve_slow\n"
              "serve_slow(ServeJob.from_dict(json.loads(sys.argv[1])), delay=0.15)\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + os.environ.get("PYTHONPATH", "").split(os.pathsep)))
    proc = subprocess.Popen([sys.executable, "-c", script, json.dumps(job.to_dict())],
                            env=env, cwd=ROOT)
    manifest = os.path.join(state_dir(job.output), MANIFEST)
    deadline = time.monotonic() + 120
    done: list = []
    while time.monotonic() < deadline and proc.poll() is None and len(done) < at_least:
        try:
            with open(manifest) as fh:
                done = json.load(fh)["done"]
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return len(done)


def test_the_same_bytes_whoever_computed_what(tmp_path, dask_cluster, monkeypatch):
    """The output's SHA-256 is the same in-process, on a cluster, resumed after a kill -9,
    with a 1 MB GDAL block cache, and with the chunks computed last to first."""
    from osgeo import gdal

    from rsdl_qgis.engine import serve as serve_module
    job = mosaic_job(tmp_path)
    out = tmp_path / "out.tif"
    runs = {}

    def keep(name):
        runs[name] = sha256(out)
        os.remove(out)

    serve_model(job, resume=False)
    keep("in-process, resume off")
    res = serve_model(job, Log(), scheduler=dask_cluster)
    assert res["CHUNKS"] == 16 and (res["WIDTH"], res["HEIGHT"]) == (369, 369)
    keep("Dask cluster, 2 workers")
    kept = kill_mid_run(job)
    assert not out.exists()
    log = Log()
    res = serve_model(job, log)
    assert res["REUSED_CHUNKS"] >= kept >= 4
    assert "chunk(s) reused from an earlier run" in log.text()
    # what the killed run left besides the state (its temporary output) is gone too
    assert sorted(os.listdir(tmp_path)) == ["mosaic.tif", "out.qml", "out.tif"]
    keep(f"killed (-9) after {kept} chunks, resumed")
    old = gdal.GetCacheMax()
    gdal.SetCacheMax(1 << 20)
    try:
        serve_model(job, resume=False)
    finally:
        gdal.SetCacheMax(old)
    keep("GDAL cache of 1 MB")
    local = serve_module.run_local
    monkeypatch.setattr(serve_module, "run_local",
                        lambda plan, todo, assembler, progress:
                        local(plan, todo[::-1], assembler, progress))
    serve_model(job, resume=False)
    keep("chunks computed last to first")
    print("\n".join(f"{h}  {name}" for name, h in runs.items()))
    assert len(set(runs.values())) == 1, runs


# --- honest progress ------------------------------------------------------------------------

def test_the_first_estimate_uses_a_chunks_real_cost(monkeypatch):
    """A cluster of 4 threads, 40 chunks of 1 s each; the first wave comes after 30 s
    (the workers load the model). The first estimate is made once a chunk's own cost is
    known, and says 9 s (36 chunks / 4 threads), not the 20 min that the first wave's wall
    time gave before (the same 20 to 30 times too long as on the issue's cluster)."""
    from rsdl_qgis.engine import chunks as chunks_module
    from rsdl_qgis.engine.chunks import Assembler, layout
    clock = [0.0]
    monkeypatch.setattr(chunks_module.time, "monotonic", lambda: clock[0])

    class Sink:
        def write(self, window, array):
            pass

    lines = []
    grid = layout(320, 256, 32, 32)                    # 10 x 8 = 80 chunks
    grid = grid[:40]
    asm = Assembler(grid, Sink(), np.uint8, info=lines.append)
    asm.threads = 4
    for i in range(40):
        wave = i // 4
        clock[0] = 30.0 + wave
        first = wave == 0                              # each worker's first chunk
        asm.add(i, np.zeros((32, 32, 1), np.uint8), None if first else 1.0)
        if i == 4:
            assert lines == ["12 % done; about 9 s left (0.00 Mpx/s)"], lines
    assert not any("min" in ln for ln in lines)
