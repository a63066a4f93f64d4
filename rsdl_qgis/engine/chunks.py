"""Chunked runs: independent pieces of the output, a resume state, and their assembly.

A serving run (and so a classification) cuts its output grid into *chunks*: blocks of
whole tiles that can be computed in any order, by this process or by the workers of a
Dask cluster (engine/cluster.py). Whatever computed them, the chunks are written into
the one output GeoTIFF in their own order, one write per chunk, so the file's bytes do
not depend on who computed what, or when.

With resume on, every finished chunk is also kept in a state folder beside the output
(``.NAME.rsdl-resume/``): a .npy file per chunk and ``manifest.json``, which records
the job, a fingerprint of its inputs (paths, sizes, modification times, the model's
checksum, every parameter) and which chunks are done. A run of the same job after a
crash, a kill or a cancel takes the done chunks from there; a job whose fingerprint
changed starts over and says why. The folder is removed when the output is complete.

No qgis import here.
"""
import hashlib
import io
import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Set

import numpy as np

from ..errors import RsdlIOError
from .jobs import OUTPUT
from .output import _alive, describe, io_error, real, remove_quietly
from .windows import Window, subdivide

STATE_MARK = ".rsdl-resume"
MANIFEST = "manifest.json"
FORMAT = "rsdl-resume"
VERSION = 1
#: largest automatic chunk side, in output pixels
MAX_CHUNK = 2048
_CHUNK_FILE = re.compile(r"^c\d{6}\.npy(\.tmp)?$|^manifest\.json(\.tmp)?$")


@dataclass(frozen=True)
class Chunk:
    """Chunk ``index``: its window on the output grid and the tiles it is computed in."""
    index: int
    window: Window
    tiles: tuple

    def to_dict(self) -> Dict[str, Any]:
        w = self.window
        return {"index": self.index, "window": [w.col_off, w.row_off, w.width, w.height],
                "tiles": [[t.col_off, t.row_off, t.width, t.height] for t in self.tiles]}

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> "Chunk":
        return cls(d["index"], Window(*d["window"]), tuple(Window(*t) for t in d["tiles"]))


def chunk_side(tile: int, bands: int, itemsize: int, memory_mb: int,
               chunk_size: int = 0) -> int:
    """The side of the chunks, a whole number of tiles: `chunk_size` pixels rounded down
    to tiles when given, else as many tiles as keep one chunk's output within a
    sixteenth of the memory budget (up to three are held: one filling, one waiting for
    the writer, one being written), up to MAX_CHUNK pixels."""
    if chunk_size:
        return tile * max(1, chunk_size // tile)
    budget = memory_mb * 2 ** 20 / 16
    per_tile = tile * tile * max(1, bands) * itemsize
    k = int(math.sqrt(budget / per_tile)) if per_tile else 1
    return tile * max(1, min(k, MAX_CHUNK // tile))


def layout(width: int, height: int, tile: int, side: int) -> List["Chunk"]:
    """The chunks of a ``width`` x ``height`` output, row by row; each lists its tiles,
    which are the tiles of the whole output that fall in it (side is a multiple of tile)."""
    chunks = []
    for i, w in enumerate(subdivide(width, height, side)):
        tiles = tuple(Window(w.col_off + t.col_off, w.row_off + t.row_off, t.width, t.height)
                      for t in subdivide(w.width, w.height, tile))
        chunks.append(Chunk(i, w, tiles))
    return chunks


# --- fingerprint ---------------------------------------------------------------------

#: files up to this size are hashed whole in a fingerprint; larger ones are sampled
WHOLE_HASH = 64 << 20
#: larger files: the first block, the last block and this many blocks evenly between
SAMPLED_BLOCKS = 62
SAMPLE_BLOCK = 64 << 10


def file_digest(path: str) -> str:
    """SHA-256 of a whole file."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(path: str) -> str:
    """SHA-256 of a file's content: all of it up to WHOLE_HASH bytes, else of its first
    and last 64 KiB and SAMPLED_BLOCKS blocks of 64 KiB evenly between (4 MiB read
    whatever the size: a 50 GB scene costs a few milliseconds). A change that keeps the
    size and the modification time and touches no sampled block goes unseen in a large
    file; anything else is seen."""
    size = os.path.getsize(path)
    if size <= WHOLE_HASH:
        return file_digest(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        last = size - SAMPLE_BLOCK
        for k in range(SAMPLED_BLOCKS + 2):
            fh.seek(last * k // (SAMPLED_BLOCKS + 1))
            h.update(fh.read(SAMPLE_BLOCK))
    return h.hexdigest()


def file_stamp(path: str, files: Any = ()) -> Dict[str, Any]:
    """What identifies an input file's content: path, size, modification time and a
    digest of its content (content_digest), and of the other files GDAL reads for it
    (`files`: the rasters a VRT points to, a .aux.xml, a .ovr)."""
    stamp: dict = {"path": str(path)}
    try:
        st = os.stat(path)
        stamp.update(path=real(path), size=st.st_size, mtime_ns=st.st_mtime_ns,
                     content=content_digest(path))
    except OSError:
        return stamp            # not a file (a GDAL connection string): its name only
    others = {}
    for f in files:
        if os.path.isfile(f) and real(f) != stamp["path"]:
            try:
                st = os.stat(f)
                others[real(f)] = [st.st_size, st.st_mtime_ns, content_digest(f)]
            except OSError:
                pass
    if others:
        stamp["files"] = others
    return stamp


def model_digest(path: str) -> str:
    """SHA-256 of a model's files: a folder (a SavedModel; its saved_model.pb given
    stands for it) or one file (.keras, .onnx, a classifier file)."""
    path = str(path)
    if os.path.isfile(path) and os.path.basename(path) == "saved_model.pb":
        path = os.path.dirname(path)
    files = []
    if os.path.isdir(path):
        for root, dirs, names in os.walk(path):
            dirs.sort()
            files += [os.path.join(root, n) for n in sorted(names)]
    elif os.path.isfile(path):
        files = [path]
    h = hashlib.sha256()
    for f in files:
        h.update(os.path.relpath(f, path).encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def fingerprint(job_dict: Dict[str, Any], params: Sequence[str], model_path: str,
                files_of: Optional[Callable[[str], Any]] = None) -> Dict[str, Any]:
    """The fingerprint of a job: its inputs' stamps, its model's checksum and every
    parameter (the job without its output path, which the state's place already says).
    `params` names the parameter of each source, for saying what changed; `files_of`
    gives the other files GDAL reads for a source."""
    job = {k: v for k, v in job_dict.items() if k != "output"}
    files_of = files_of or (lambda _p: ())
    return {"sources": [dict(file_stamp(s["path"], files_of(s["path"])), param=p)
                        for s, p in zip(job_dict["sources"], params)],
            "model": model_digest(model_path) if model_path else "",
            "job": job}


def differences(old: Dict[str, Any], new: Dict[str, Any]) -> List[str]:
    """Why two fingerprints differ, in words (empty when they are the same)."""
    why = []
    olds, news = old.get("sources", []), new.get("sources", [])
    if len(olds) != len(news):
        why.append("the number of sources changed")
    else:
        for o, n in zip(olds, news):
            if o.get("path") != n.get("path"):
                why.append(f"{n['param']} is another file")
            elif o != n:
                why.append(f"{n['param']} was modified")
    if old.get("model") != new.get("model"):
        why.append("the model changed")
    oj, nj = old.get("job", {}), new.get("job", {})
    changed = sorted(k for k in set(oj) | set(nj)
                     if k not in ("sources", "model") and oj.get(k) != nj.get(k))
    if oj.get("sources") != nj.get("sources") and not why:
        changed.insert(0, "sources")
    if changed:
        why.append(f"parameters changed ({', '.join(changed)})")
    return why


# --- the resume state ----------------------------------------------------------------

#: a manifest larger than this is not one this class wrote (a million chunks take 80 MB)
MAX_MANIFEST = 256 << 20


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def valid_manifest(m: Any) -> bool:
    """Whether `m` has the shape of a manifest this class writes: every field read is
    of its type, so that an edited or damaged file is discarded, not a traceback."""
    if not isinstance(m, dict) or m.get("format") != FORMAT:
        return False
    fp, done, sums = m.get("fingerprint"), m.get("done"), m.get("sums", {})
    return (_is_int(m.get("chunks")) and _is_int(m.get("pid")) and m["pid"] > 0
            and isinstance(m.get("host"), str) and isinstance(m.get("running"), bool)
            and isinstance(done, list) and all(_is_int(i) for i in done)
            and isinstance(sums, dict) and all(isinstance(v, str) for v in sums.values())
            and isinstance(fp, dict) and isinstance(fp.get("job"), dict)
            and isinstance(fp.get("model"), str) and isinstance(fp.get("sources"), list)
            and all(isinstance(x, dict) for x in fp["sources"]))


def process_start(pid: int) -> Optional[str]:
    """When process `pid` started, as the system counts it (Linux: clock ticks since boot,
    with the boot's id; elsewhere psutil's creation time when psutil is there), or None
    when it cannot be told. With the pid it names one process: a pid is reused by
    another program once its process ended."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            fields = fh.read().rsplit(")", 1)[1].split()
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as fh:
            boot = fh.read().strip()
        return f"{boot}:{fields[19]}"
    except (OSError, IndexError):
        pass
    try:
        import psutil
        return f"psutil:{psutil.Process(pid).create_time():.3f}"
    except Exception:     # no psutil, or no such process  # noqa: BLE001
        return None


def _running(pid, started):
    """Whether the run that wrote a manifest (its pid and start) is still going on: its
    pid is alive and, when both are known, started when that run did."""
    if not _alive(pid):
        return False
    now = process_start(pid)
    return started is None or now is None or now == started


def state_dir(output: str) -> str:
    d, name = os.path.split(os.path.abspath(str(output)))
    return os.path.join(d, f".{name}{STATE_MARK}")


class ChunkStore:
    """The resume state of one output: finished chunks and the manifest.

    ``open`` returns the chunks already done by an earlier run of the same job (and
    starts over, saying why, when the job changed); ``save`` keeps a finished chunk;
    ``load`` gives one back; ``clear`` deletes the state once the output is written.
    Only files this class writes are ever deleted from the folder.
    """

    def __init__(self, output: str, fp: Dict[str, Any], chunks: Sequence["Chunk"], bands: int,
                 param: Optional[str] = OUTPUT,
                 info: Optional[Callable[[str], None]] = None) -> None:
        self.output = str(output)
        self.bands = bands
        self.dir = state_dir(output)
        self.fp = fp
        self.count = len(chunks)
        self.windows = {c.index: c.window for c in chunks}
        self.param = param
        self.info = info or (lambda _m: None)
        self.done: List[int] = []
        self.sums: Dict[str, str] = {}
        self.started = process_start(os.getpid())

    def _path(self, index):
        return os.path.join(self.dir, f"c{index:06d}.npy")

    def _intact(self, index, digest):
        """Whether kept chunk `index` is the file this job wrote: its SHA-256 is the one
        the manifest recorded when it was saved, and it reads back with its window's size
        and this job's bands. A chunk cut short by a full disk, or whose pixels were
        changed since, is computed again."""
        w = self.windows[index]
        path = self._path(index)
        try:
            if not isinstance(digest, str) or file_digest(path) != digest:
                return False
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError):
            return False
        return data.shape == (w.height, w.width, self.bands)

    def _read_manifest(self):
        """The manifest of an earlier run, or None when it is missing, unreadable or not
        what this class writes (a damaged or edited file is never trusted)."""
        path = os.path.join(self.dir, MANIFEST)
        try:
            if os.path.getsize(path) > MAX_MANIFEST:
                return None
            with open(path, encoding="utf-8") as fh:
                m = json.load(fh)
        except (OSError, ValueError, RecursionError):
            return None
        return m if valid_manifest(m) else None

    def open(self) -> Set[int]:
        """The set of chunk indices an earlier run of this job finished."""
        done = set()
        if os.path.isdir(self.dir):
            m = self._read_manifest()
            if m and m["running"] and m["host"] == socket.gethostname() and \
                    m["pid"] != os.getpid() and _running(m["pid"], m.get("started")):
                raise RsdlIOError(
                    f"another run (process {m['pid']}) is computing this output now: wait "
                    "for it to end, or choose another output file", self.param)
            why = ([f"its state ('{os.path.join(self.dir, MANIFEST)}') is damaged"]
                   if m is None else
                   ["it was cut into other chunks"] if m["chunks"] != self.count else
                   differences(m["fingerprint"], self.fp))
            if why:
                self.info(f"An earlier run of this output was not finished, but {'; '.join(why)}:"
                          " starting over")
                self.clear()
            else:
                sums = m.get("sums", {})
                done = {i for i in m["done"]
                        if 0 <= i < self.count and self._intact(i, sums.get(str(i)))}
                if len(done) < len(set(m["done"])):
                    self.info(f"{len(set(m['done'])) - len(done)} kept chunk(s) were damaged "
                              "or changed since they were written: computing them again")
                self.sums = {str(i): sums[str(i)] for i in done}
        self.done = sorted(done)
        try:
            os.makedirs(self.dir, exist_ok=True)
            self._write_manifest(running=True)
        except OSError as exc:
            self.stopped()
            raise io_error(self.output, exc, self.param) from exc
        except RsdlIOError:
            self.stopped()
            raise
        return done

    def _write_manifest(self, running):
        m = {"format": FORMAT, "version": VERSION, "output": os.path.abspath(self.output),
             "host": socket.gethostname(), "pid": os.getpid(),
             "started": self.started, "running": running,
             "updated": time.strftime("%Y-%m-%dT%H:%M:%S"), "chunks": self.count,
             "bands": self.bands,
             "fingerprint": self.fp, "done": self.done, "sums": self.sums}
        path = os.path.join(self.dir, MANIFEST)
        try:
            with open(path + ".tmp", "w", encoding="utf-8") as fh:
                json.dump(m, fh)
            os.replace(path + ".tmp", path)
        except OSError as exc:
            remove_quietly(path + ".tmp")
            raise io_error(self.output, exc, self.param) from exc

    def save(self, index: int, array: np.ndarray) -> None:
        """Keep finished chunk `index` (rows, cols, bands), then mark it done.

        Kept as a plain .npy file, written by numpy, not GDAL: its pixels would
        otherwise go through GDAL's one block cache, evicting the blocks the reader
        needs, and make the reader compress them (measured: 6 times the read CPU)."""
        path = self._path(index)
        tmp = path + ".tmp"
        array = np.ascontiguousarray(array)
        try:
            # written by Python's file, not ndarray.tofile: a full disk is then ENOSPC
            # ("the disk is full"), not numpy's "n requested and m written"
            fmt, header = np.lib.format, io.BytesIO()
            fmt.write_array_header_1_0(header, fmt.header_data_from_array_1_0(array))
            pixels = array.data.cast("B")
            with open(tmp, "wb") as fh:
                fh.write(header.getvalue())
                fh.write(pixels)
            digest = hashlib.sha256(header.getvalue())
            digest.update(pixels)
            os.replace(tmp, path)
        except OSError as exc:
            remove_quietly(tmp)
            # the user's output is what cannot be written; the chunk is a detail
            raise io_error(self.output, exc, self.param) from exc
        self.sums[str(index)] = digest.hexdigest()
        self.done = sorted(set(self.done) | {index})
        self._write_manifest(running=True)

    def load(self, index: int, dtype: Any) -> np.ndarray:
        path = self._path(index)
        try:
            data = np.load(path, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise RsdlIOError(f"cannot read the kept chunk '{path}' ({describe(exc)}): "
                              f"delete the folder '{self.dir}' and run again",
                              self.param) from exc
        return np.asarray(data, dtype=dtype)

    def stopped(self) -> None:
        """The run ends unfinished: the state stays for the next run, which resumes (or
        goes, when no chunk was finished)."""
        if not self.done:
            self.clear()
            return
        try:
            self._write_manifest(running=False)
        except RsdlIOError:
            pass
        if self.done:
            self.info(f"{len(self.done)} of {self.count} chunk(s) are kept in "
                      f"'{self.dir}': run the same job again to resume from them")

    def clear(self) -> None:
        """Delete what this class wrote in the state folder (and the folder if empty)."""
        clear_state(self.output)


def clear_state(output: str) -> None:
    """Delete the resume state of `output`: only the files a ChunkStore writes."""
    d = state_dir(output)
    if not os.path.isdir(d):
        return
    for name in os.listdir(d):
        if _CHUNK_FILE.match(name):
            remove_quietly(os.path.join(d, name))
    try:
        os.rmdir(d)
    except OSError:
        pass


# --- ordered assembly ----------------------------------------------------------------

class Assembler:
    """Writes chunks into the output in their order, whoever finished them first.

    ``add`` takes a computed chunk (in any order); chunks an earlier run kept are read
    back from the store when their turn comes. A chunk that arrives before its turn
    waits in memory (the executors bound how far ahead they run).
    """

    def __init__(self, chunks: Sequence["Chunk"], writer: Any, dtype: Any,
                 store: Optional[ChunkStore] = None, reused: Collection[int] = (),
                 info: Optional[Callable[[str], None]] = None) -> None:
        self.chunks = chunks
        self.writer, self.dtype, self.store = writer, dtype, store
        self.reused = set(reused)
        self.pending: Dict[int, np.ndarray] = {}
        self.next = 0
        self.info = info or (lambda _m: None)
        self.total = sum(c.window.size for c in chunks)
        self.todo = sum(c.window.size for c in chunks if c.index not in self.reused)
        self.computed = 0
        self.threads = 1             # chunks computed at the same time (a cluster's threads)
        self.costs = [0, 0.0]        # pixels and seconds of the chunks whose cost is known
        self.first: Optional[float] = None      # when the first computed chunk came
        self.since_first = 0         # pixels computed after it
        self.after = 0               # chunks computed after it
        self.told: Optional[float] = None
        self.flush()

    def add(self, index: int, array: np.ndarray, seconds: Optional[float] = None) -> None:
        """Computed chunk `index`; `seconds`: what computing it took, or None when that
        is not its real cost (the first chunk of a worker holds the model's first call)."""
        if self.store is not None:
            self.store.save(index, array)
        self.pending[index] = array
        size = self.chunks[index].window.size
        self.computed += size
        self._estimate(size, seconds)
        self.flush()

    def flush(self) -> None:
        while self.next < len(self.chunks):
            i = self.next
            if i in self.pending:
                array = self.pending.pop(i)
            elif i in self.reused and self.store is not None:
                array = self.store.load(i, self.dtype)
            else:
                return
            self.writer.write(self.chunks[i].window, array)
            self.next += 1

    @property
    def complete(self) -> bool:
        return self.next == len(self.chunks)

    def fraction(self, partial: float = 0) -> float:
        """Progress: reused and computed pixels (plus `partial` of a chunk under way)."""
        done = self.total - self.todo + self.computed + partial
        return done / self.total if self.total else 1.0

    def rate(self, now: float) -> Optional[float]:
        """Pixels per second: the wall-clock rate since the first computed chunk came,
        once twice as many chunks as run at the same time came after it; before, the
        chunks' own cost times the threads. Never from the first chunk's wall time: it
        holds the model's loading, the workers' start and TensorFlow's first call, which
        made the first estimate 20 to 30 times too long on a cluster."""
        if self.first is not None and self.after >= 2 * self.threads and now > self.first:
            return self.since_first / (now - self.first)
        px, secs = self.costs
        return self.threads * px / secs if secs > 0 else None

    def _estimate(self, size, seconds):
        """Time left, in the log once a chunk's real cost is known, then every 30 s or so."""
        now = time.monotonic()
        if seconds is not None:
            self.costs[0] += size
            self.costs[1] += seconds
        if self.first is None:
            self.first, self.after = now, 0
        else:
            self.since_first += size
            self.after += 1
        if self.computed >= self.todo or (self.told is not None and now - self.told < 30):
            return
        rate = self.rate(now)
        if not rate:
            return
        self.told = now
        left = (self.todo - self.computed) / rate
        self.info(f"{100 * self.fraction():.0f} % done; about {format_seconds(left)} left "
                  f"({rate / 1e6:.2f} Mpx/s)")


def format_seconds(s: float) -> str:
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"
