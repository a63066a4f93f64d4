"""Samplers: which pixels of a grid are training samples. They know positions, not pixels.

A polygon owns the pixels whose centre lies inside it (even-odd rule, so holes and
multi-polygons work); a point owns the pixel that contains it. Polygons are turned into
horizontal runs of pixels ("spans") by a vectorised scan-line over all polygons at once,
so class statistics never enumerate pixels and selection only materialises the chosen
ones. Like OTB, a pixel inside two polygons counts once for each.

Strategies and their counts follow OTB's SampleSelection (constant, smallest, percent,
total, byclass, all); the periodic and random samplers pick exactly the required count.
"""
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np

from ..errors import GridError, ParameterError, check_choice
from .choices import STRATEGIES
from .declare import names
from .jobs import SelectionJob

#: the parameters errors name (declare.py)
N = names(SelectionJob)


@dataclass
class Spans:
    """Runs of candidate pixels: feature index, row, first column, end column (exclusive)."""
    feature: np.ndarray
    row: np.ndarray
    c0: np.ndarray
    c1: np.ndarray

    @property
    def lengths(self) -> np.ndarray:
        return self.c1 - self.c0

    def take(self, keep: Any) -> "Spans":
        return Spans(self.feature[keep], self.row[keep], self.c0[keep], self.c1[keep])

    @staticmethod
    def concat(parts: Sequence["Spans"]) -> "Spans":
        if not parts:
            e = np.zeros(0, dtype=np.int64)
            return Spans(e, e, e, e)
        return Spans(*[np.concatenate([getattr(p, k) for p in parts])
                       for k in ("feature", "row", "c0", "c1")])


def polygon_spans(feats: Any, width: int, height: int, step: int = 1,
                  chunk_rings: int = 20000) -> Spans:
    """Spans of pixel centres inside each polygon, clipped to a width x height grid.

    With `step` > 1, only pixels whose row and column are multiples of `step` are
    candidates (a sampling lattice: samples are at least `step` pixels apart).
    """
    parts = []
    n_rings = len(feats.ring_feature)
    r0 = 0
    while r0 < n_rings:
        r1 = min(n_rings, r0 + chunk_rings)
        # a chunk ends on a feature boundary, so a feature's rings are paired together
        while r1 < n_rings and feats.ring_feature[r1] == feats.ring_feature[r1 - 1]:
            r1 += 1
        parts.append(_spans_of_rings(feats, r0, r1, width, height, step))
        r0 = r1
    return Spans.concat(parts)


def _spans_of_rings(feats, r0, r1, width, height, step):
    rf = feats.ring_feature
    p0, p1 = feats.ring_start[r0], feats.ring_start[r1]
    pts = feats.points[p0:p1]
    ring_of_point = np.repeat(np.arange(r0, r1), np.diff(feats.ring_start[r0:r1 + 1]))
    same = ring_of_point[:-1] == ring_of_point[1:]
    x0, y0 = pts[:-1, 0][same], pts[:-1, 1][same]
    x1, y1 = pts[1:, 0][same], pts[1:, 1][same]
    feat = rf[ring_of_point[:-1][same]]
    # rows whose centre (r + 0.5) is in [min(y0, y1), max(y0, y1)): half-open, so a
    # vertex on a scan line is counted once and horizontal edges never
    ylo, yhi = np.minimum(y0, y1), np.maximum(y0, y1)
    first = np.maximum(np.ceil(ylo - 0.5), 0).astype(np.int64)
    last = np.minimum(np.ceil(yhi - 0.5), height).astype(np.int64)  # exclusive
    if step > 1:
        first = -(-first // step) * step
    n = np.maximum(0, -(-(last - first) // step))
    keep = n > 0
    if not keep.any():
        e = np.zeros(0, dtype=np.int64)
        return Spans(e, e, e, e)
    x0, y0, x1, y1, feat, first, n = (a[keep] for a in (x0, y0, x1, y1, feat, first, n))
    total = int(n.sum())
    edge = np.repeat(np.arange(len(n)), n)
    starts = np.cumsum(n) - n
    row = first[edge] + (np.arange(total) - starts[edge]) * step
    yc = row + 0.5
    xc = x0[edge] + (yc - y0[edge]) * (x1[edge] - x0[edge]) / (y1[edge] - y0[edge])
    fe = feat[edge]
    order = np.lexsort((xc, row, fe))
    fe, row, xc = fe[order], row[order], xc[order]
    # even-odd pairs: crossings of one (feature, row) come in pairs for closed rings
    a, b = slice(0, None, 2), slice(1, None, 2)
    if len(fe) % 2 or not (np.array_equal(fe[a], fe[b]) and np.array_equal(row[a], row[b])):
        raise GridError("a polygon has an unclosed or invalid ring; repair it first "
                        "(Vector geometry > Fix geometries)", N.vector)
    c0 = np.ceil(xc[a] - 0.5).astype(np.int64)
    c1 = np.ceil(xc[b] - 0.5).astype(np.int64)
    c0, c1 = np.clip(c0, 0, width), np.clip(c1, 0, width)
    if step > 1:
        c0 = -(-c0 // step) * step
        c1 = np.maximum(c0, -(-c1 // step) * step)
    ok = c1 > c0
    return Spans(fe[a][ok], row[a][ok], c0[ok], c1[ok])


def point_spans(feats: Any, width: int, height: int, step: int = 1) -> Spans:
    """The pixel containing each point, as one-pixel spans (outside points dropped)."""
    col = np.floor(feats.point_xy[:, 0]).astype(np.int64) if len(feats.point_xy) else np.zeros(0, np.int64)
    row = np.floor(feats.point_xy[:, 1]).astype(np.int64) if len(feats.point_xy) else np.zeros(0, np.int64)
    ok = (col >= 0) & (col < width) & (row >= 0) & (row < height)
    if step > 1:
        ok &= (col % step == 0) & (row % step == 0)
    return Spans(feats.point_feature[ok], row[ok], col[ok], col[ok] + 1)


def spans_of(feats: Any, width: int, height: int, step: int = 1) -> Spans:
    parts = []
    if feats.has_polygons:
        parts.append(polygon_spans(feats, width, height, step))
    if len(feats.point_feature):
        parts.append(point_spans(feats, width, height, step))
    return Spans.concat(parts)


def span_counts(spans: Spans, step: int = 1) -> np.ndarray:
    """Candidate pixels in each span (on the lattice when step > 1)."""
    return -(-(spans.c1 - spans.c0) // step) if step > 1 else spans.c1 - spans.c0


class MaskCounter:
    """Applies a mask raster to spans: counts of non-zero pixels, and the k-th one.

    Reads the mask in strips of rows, so memory is bounded by the strip, not the image.
    """

    def __init__(self, read_rows: Callable[[int, int], np.ndarray], width: int, height: int,
                 strip: int = 256) -> None:
        self.read_rows = read_rows  # (row0, nrows) -> bool array (nrows, width)
        self.width, self.height, self.strip = width, height, strip

    def _strips(self, spans):
        strip_of = spans.row // self.strip
        order = np.argsort(strip_of, kind="stable")
        bounds = np.searchsorted(strip_of[order], np.arange(0, self.height // self.strip + 2))
        for s in range(len(bounds) - 1):
            idx = order[bounds[s]:bounds[s + 1]]
            if len(idx):
                r0 = s * self.strip
                n = min(self.strip, self.height - r0)
                padded = np.zeros((n, self.width + 1), dtype=np.int64)
                padded[:, 1:] = self.read_rows(r0, n)
                # non-decreasing over the whole strip: cs[base + c] - cs[base + c0]
                # counts the mask's pixels in columns [c0, c) of a row
                yield idx, r0, np.cumsum(padded.ravel())

    def counts(self, spans: Spans, step: int = 1) -> np.ndarray:
        out = np.zeros(len(spans.row), dtype=np.int64)
        for idx, r0, cs in self._strips(spans):
            base = (spans.row[idx] - r0) * (self.width + 1)
            if step == 1:
                out[idx] = cs[base + spans.c1[idx]] - cs[base + spans.c0[idx]]
            else:  # lattice: count pixel by pixel (spans are short on a lattice)
                for j, i in enumerate(idx):
                    cols = np.arange(spans.c0[i], spans.c1[i], step)
                    out[i] = int(np.count_nonzero(np.diff(cs[base[j] + np.stack([cols, cols + 1])], axis=0)))
        return out

    def nth(self, spans: Spans, span_idx: Any, k: Any, step: int = 1) -> Any:
        """Column of the k-th (0-based) unmasked candidate pixel of spans[span_idx]."""
        cols = np.zeros(len(span_idx), dtype=np.int64)
        sub = spans.take(span_idx)
        for idx, r0, cs in self._strips(sub):
            base = (sub.row[idx] - r0) * (self.width + 1)
            if step == 1:
                target = cs[base + sub.c0[idx]] + k[idx] + 1
                flat = np.searchsorted(cs, target, side="left")
                cols[idx] = flat - base - 1
            else:
                for j, i in enumerate(idx):
                    cc = np.arange(sub.c0[i], sub.c1[i], step)
                    on = cc[np.diff(cs[base[j] + np.stack([cc, cc + 1])], axis=0)[0] > 0]
                    cols[i] = on[k[i]]
        return cols


def required_counts(totals: Dict[int, int], strategy: str, samples: Optional[int] = None,
                    percent: Optional[float] = None,
                    by_class: Optional[Dict[int, int]] = None,
                    param: str = N.strategy) -> Dict[int, int]:
    """Samples to select per class, as OTB's SamplingRateCalculator computes them.

    `totals`: {class code: available pixels}. Never more than available.
    """
    codes = sorted(totals)
    tot = np.array([totals[c] for c in codes], dtype=np.int64)
    if strategy == "all":
        req = tot.copy()
    elif strategy == "constant":
        if not samples or samples < 1:
            raise ParameterError(f"the constant strategy needs {N.samples} >= 1", N.samples)
        req = np.full(len(codes), int(samples))
    elif strategy == "smallest":
        req = np.full(len(codes), int(tot.min()))
    elif strategy == "percent":
        if percent is None or not 0 < percent <= 100:
            raise ParameterError(f"the percent strategy needs {N.percent} in ]0, 100]",
                                 N.percent)
        req = np.floor(tot * (percent / 100.0) + 0.5).astype(np.int64)
    elif strategy == "total":
        if not samples or samples < 1:
            raise ParameterError(f"the total strategy needs {N.samples} >= 1", N.samples)
        req = np.floor(tot * (float(samples) / tot.sum()) + 0.5).astype(np.int64)
    elif strategy == "byclass":
        if not by_class:
            raise ParameterError(f"the byclass strategy needs {N.class_counts}, e.g. "
                                 "'1:500,2:300'", N.class_counts)
        missing = [c for c in codes if c not in by_class]
        unknown = [c for c in by_class if c not in totals]
        if unknown:
            raise ParameterError(f"classes {unknown} have no pixel; classes present: {codes}",
                                 N.class_counts)
        if missing:
            raise ParameterError(f"no count given for classes {missing}", N.class_counts)
        req = np.array([int(by_class[c]) for c in codes])
    else:
        check_choice(strategy, STRATEGIES, param, "strategy")
    return dict(zip(codes, np.minimum(req, tot).tolist()))


def parse_class_counts(text: Optional[str],
                       codes_of_name: Optional[Callable[[str], int]] = None) -> Dict[int, int]:
    """'1:500, 2:300' (or 'water:500') -> {code: count}."""
    out = {}
    for item in str(text or "").replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        name, sep, count = item.rpartition(":")
        if not sep:
            raise ParameterError(f"'{item}' is not class:count", N.class_counts)
        name = name.strip()
        try:
            code = codes_of_name(name) if codes_of_name else int(name)
            out[code] = int(count)
        except (KeyError, ValueError):
            raise ParameterError(f"'{item}' is not class:count with a known class",
                                 N.class_counts) from None
    return out


def choose(total: int, needed: int, sampler: str, rng: Any) -> np.ndarray:
    """Sorted indices of `needed` of `total` candidates (periodic: evenly spread)."""
    if needed >= total:
        return np.arange(total, dtype=np.int64)
    if needed <= 0:
        return np.zeros(0, dtype=np.int64)
    if sampler == "periodic":
        # candidate k is taken when floor((k + 1) * rate) passes an integer
        k = np.arange(needed, dtype=np.int64)
        return np.floor((k + 0.5) * (total / needed)).astype(np.int64)
    return np.sort(rng.choice(total, size=needed, replace=False))


def select(spans: Spans, span_class: np.ndarray, counts: np.ndarray, required: Dict[int, int],
           sampler: str, seed: int, mask: Any = None, step: int = 1) -> Any:
    """Pick the required samples of each class among the spans' candidates.

    Candidates are ordered by span (feature order, then row) and column. Returns arrays
    (span index, row, col) of the selected pixels, ordered like the candidates.
    """
    rng = np.random.default_rng(seed)
    out_span, out_k = [], []
    for code in sorted(required):
        idx = np.nonzero(span_class == code)[0]
        c = counts[idx]
        offsets = np.concatenate([[0], np.cumsum(c)])
        chosen = choose(int(offsets[-1]), int(required[code]), sampler, rng)
        where = np.searchsorted(offsets, chosen, side="right") - 1
        out_span.append(idx[where])
        out_k.append(chosen - offsets[where])
    if not out_span:
        e = np.zeros(0, dtype=np.int64)
        return e, e, e
    span_idx = np.concatenate(out_span)
    k = np.concatenate(out_k)
    order = np.lexsort((k, span_idx))
    span_idx, k = span_idx[order], k[order]
    if mask is not None:
        cols = mask.nth(spans, span_idx, k, step)
    else:
        cols = spans.c0[span_idx] + k * step
    return span_idx, spans.row[span_idx], cols


def split_sets(sample_class: np.ndarray, sample_group: np.ndarray, valid_fraction: float,
               test_fraction: float, by_group: bool, seed: int,
               notes: Optional[List[str]] = None,
               name_of: Callable[[Any], Any] = str) -> np.ndarray:
    """Assign each sample to 0 (train), 1 (validation) or 2 (test), per class.

    With `by_group`, whole groups (polygons) go to one set: per class, groups are
    shuffled and given to validation, then test, until each set holds its fraction of
    the class's samples; without, samples are shuffled individually. A class never loses
    its training samples: a class of one polygon stays whole in training, and of several
    at least one polygon does. What a small class gets is said in `notes` (a list, names
    by `name_of(code)`): kept whole, or without validation samples.
    """
    n = len(sample_class)
    out = np.zeros(n, dtype=np.int8)
    if valid_fraction + test_fraction <= 0:
        return out
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ParameterError(f"{N.valid_fraction} and {N.test_fraction} must be >= 0 and sum "
                             "to less than 1", N.valid_fraction)
    notes = notes if notes is not None else []
    rng = np.random.default_rng(seed + 1)
    for code in np.unique(sample_class):
        idx = np.nonzero(sample_class == code)[0]
        targets = np.array([valid_fraction, valid_fraction + test_fraction]) * len(idx)
        if by_group:
            groups, inverse, sizes = np.unique(sample_group[idx], return_inverse=True,
                                               return_counts=True)
            perm = rng.permutation(len(groups))
            cum = np.cumsum(sizes[perm])
            # a group goes to the set whose target its cumulative centre falls under
            centre = cum - sizes[perm] / 2.0
            which = np.where(centre < targets[0], 1, np.where(centre < targets[1], 2, 0))
            if len(groups) == 1:
                which[:] = 0
                notes.append(f"class {name_of(code)} has one polygon only: kept whole for "
                             "training, so it has no validation sample; draw more polygons "
                             "of it for an independent check")
            elif not (which == 0).any():
                which[-1] = 0            # the last one drawn stays for training
                notes.append(f"class {name_of(code)} has {len(groups)} polygons: one kept "
                             "for training")
            if valid_fraction > 0 and len(groups) > 1 and not (which == 1).any():
                notes.append(f"class {name_of(code)} has no validation sample: its "
                             f"{len(groups)} polygons are too few or too unequal to split at "
                             f"{valid_fraction:g}")
            group_set = np.zeros(len(groups), dtype=np.int8)
            group_set[perm] = which
            out[idx] = group_set[inverse]
        else:
            perm = rng.permutation(len(idx))
            nv, nt = (int(v) for v in np.round(targets))
            nt = min(nt, len(idx) - 1)   # at least one sample stays for training
            nv = min(nv, nt)
            out[idx[perm[:nv]]] = 1
            out[idx[perm[nv:nt]]] = 2
    return out
