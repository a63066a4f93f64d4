"""Grids of north-up rasters and the serving geometry (OTBTF's conventions).

All sources are aligned by physical coordinates; source 1 is the reference. Positions
are computed per axis in units of reference pixels, relative to the reference origin,
so that large projected coordinates do not eat the floating-point precision.

Output information (OTBTF's TensorflowMultisourceModelFilter):
- each source's extent is its image shrunk by its receptive field RF: the first valid
  centre is pixel ``RF // 2`` and there are ``N - RF + 1`` of them;
- the output extent is the intersection of those extents; its first pixel centre is the
  centre of the first valid reference pixel, moved back by ``EF // 2`` output pixels;
- the output size is ``floor(extent / output spacing) + EF - 1``, cut down to a multiple
  of EF; the output spacing is the reference spacing times SCALE.
- a finer output (SCALE < 1, super-resolution: a patch of RF input pixels gives EF output
  pixels with RF = EF x SCALE) is placed so that each block covers its patch exactly.

Full coverage (:func:`cover_geometry`, PAD): the output grid is SOURCE1's own grid (times
SCALE), from its top-left corner to its bottom-right one, whatever the fields; the sources
are read beyond their edges (mirrored) and the last, partial blocks are cut to the grid.

Region propagation: the output is computed in blocks of EF x EF pixels. The input patch
of a block, in each source, is centred (index ``RF // 2`` of the patch) on the source
pixel that contains the centre of the block's pixel ``EF // 2``. In fully-convolutional
mode a tile's input region is the union of its blocks' patches.
"""
import math
from dataclasses import dataclass
from typing import Any, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import GridError, ParameterError
from .declare import names as _names
from .declare import numbered
from .jobs import ServeJob, ServeSource
from .windows import Window

#: the parameters errors name (declare.py)
_JOB, _SOURCE = _names(ServeJob), _names(ServeSource)

EPS = 1e-6


@dataclass(frozen=True)
class Grid:
    """A north-up raster grid: size, geotransform and CRS (WKT)."""
    width: int
    height: int
    geotransform: tuple
    crs_wkt: str = ""

    @property
    def x0(self) -> float:
        return self.geotransform[0]

    @property
    def y0(self) -> float:
        return self.geotransform[3]

    @property
    def sx(self) -> float:
        return self.geotransform[1]

    @property
    def sy(self) -> float:
        """Row spacing, positive (rows go south)."""
        return -self.geotransform[5]

    def check_north_up(self, param: Optional[str] = None) -> None:
        gt = self.geotransform
        if gt[2] != 0 or gt[4] != 0:
            raise GridError(f"rotated geotransform {tuple(gt)} is not supported: warp the "
                            "image to a north-up grid first (gdalwarp)", param)
        if gt[1] <= 0 or gt[5] >= 0:
            raise GridError(f"geotransform {tuple(gt)} is not north-up (x spacing must be "
                            "positive and y spacing negative)", param)


def map_to_pixel(geotransform: Sequence[float], xy: Any) -> np.ndarray:
    """Map coordinates (N, 2) -> fractional pixel coordinates (N, 2) (col, row) of a grid.
    The one place where map coordinates become pixels: north-up grids divide by the
    spacing (as GDAL and OTB do), rotated ones invert the geotransform."""
    g0, g1, g2, g3, g4, g5 = geotransform
    xy = np.asarray(xy, dtype=np.float64).reshape(-1, 2)
    dx, dy = xy[:, 0] - g0, xy[:, 1] - g3
    if g2 == 0 and g4 == 0:
        return np.column_stack([dx / g1, dy / g5])
    det = g1 * g5 - g2 * g4
    return np.column_stack([(g5 * dx - g2 * dy) / det, (-g4 * dx + g1 * dy) / det])


def pixel_index(geotransform: Sequence[float], xy: Any) -> Tuple[np.ndarray, np.ndarray]:
    """(col, row) int64 arrays of the pixels containing map points xy (N, 2)."""
    cr = np.floor(map_to_pixel(geotransform, xy)).astype(np.int64)
    return cr[:, 0], cr[:, 1]


def pixel_centre(geotransform: Sequence[float], col: Any, row: Any) -> Tuple[Any, Any]:
    """Map coordinates (x, y) of the centres of pixels (col, row)."""
    g0, g1, g2, g3, g4, g5 = geotransform
    c, r = np.asarray(col) + 0.5, np.asarray(row) + 0.5
    return g0 + c * g1 + r * g2, g3 + c * g4 + r * g5


@dataclass(frozen=True)
class SourceGeometry:
    """Where a source lies on the reference grid, in reference pixel units."""
    width: int
    height: int
    rfield: int
    dx: float      # source origin minus reference origin, in reference columns
    dy: float      # in reference rows (positive = source starts further south)
    kx: float      # source pixel width in reference columns
    ky: float      # source pixel height in reference rows

    @classmethod
    def of(cls, grid: Grid, ref: Grid, rfield: int) -> "SourceGeometry":
        return cls(grid.width, grid.height, int(rfield),
                   (grid.x0 - ref.x0) / ref.sx, (ref.y0 - grid.y0) / ref.sy,
                   grid.sx / ref.sx, grid.sy / ref.sy)

    def extent(self) -> Tuple[float, float, float, float]:
        """(col_inf, col_sup, row_inf, row_sup) of the valid centres' pixels, ref units."""
        r = self.rfield
        c0 = self.dx + (r // 2) * self.kx
        c1 = self.dx + (r // 2 + self.width - r + 1) * self.kx
        r0 = self.dy + (r // 2) * self.ky
        r1 = self.dy + (r // 2 + self.height - r + 1) * self.ky
        return c0, c1, r0, r1

    def pixel_of(self, u: Any, axis: int) -> np.ndarray:
        """Index of the source pixel containing reference position(s) u (ties go up)."""
        d, k = (self.dx, self.kx) if axis == 0 else (self.dy, self.ky)
        return np.floor((np.asarray(u, dtype=np.float64) - d) / k + EPS).astype(np.int64)


@dataclass(frozen=True)
class OutputGeometry:
    """The output grid of a serving job, in reference pixel units.

    Output pixel ``j`` along an axis has its centre at ``u0 + j * scale``.
    """
    width: int
    height: int
    u0x: float
    u0y: float
    scale: float
    efield: int

    def geotransform(self, ref: Grid) -> Tuple[float, float, float, float, float, float]:
        s = self.scale
        return (ref.x0 + (self.u0x - s / 2) * ref.sx, s * ref.sx, 0.0,
                ref.y0 - (self.u0y - s / 2) * ref.sy, 0.0, -s * ref.sy)

    def centres(self, start: int, count: int, axis: int) -> np.ndarray:
        u0 = self.u0x if axis == 0 else self.u0y
        return u0 + (start + np.arange(count)) * self.scale


def _check_fields(sources, efield, scale, names):
    """The checks every output grid needs: EF >= 1, SCALE > 0, each RF >= 1. Returns the
    parameter name of each source (SOURCE1... unless `names` gives them)."""
    names = names or [numbered(_JOB.sources, i) for i in range(len(sources))]
    if efield < 1:
        raise ParameterError(f"the expression field must be at least 1, got {efield}",
                             _JOB.efield)
    if not scale > 0:
        raise ParameterError(f"the scale factor must be positive, got {scale}", _JOB.scale)
    for s, name in zip(sources, names):
        if s.rfield < 1:
            raise ParameterError(f"the receptive field must be at least 1, got {s.rfield}",
                                 f"{name}_{_SOURCE.rfield}")
    return names


def output_geometry(sources: Sequence["SourceGeometry"], efield: int = 1, scale: float = 1.0,
                    names: Optional[List[str]] = None) -> "OutputGeometry":
    """OTBTF's output information for ``sources`` (SourceGeometry list, reference first).

    ``names`` are the parameter names of each source, for error messages.
    """
    names = _check_fields(sources, efield, scale, names)
    for s, name in zip(sources, names):
        if s.rfield > s.width or s.rfield > s.height:
            raise GridError(f"the receptive field {s.rfield} is larger than the image "
                            f"({s.width} x {s.height} pixels): use a larger image or a "
                            "smaller receptive field", f"{name}_{_SOURCE.rfield}")
    ext = [s.extent() for s in sources]
    c_inf, c_sup = max(e[0] for e in ext), min(e[1] for e in ext)
    r_inf, r_sup = max(e[2] for e in ext), min(e[3] for e in ext)
    if c_sup <= c_inf or r_sup <= r_inf:
        raise GridError("the sources do not overlap once their receptive fields are taken "
                        "into account: check that they cover the same area (and CRS)",
                        names[-1] if len(names) > 1 else names[0])
    size = []
    for span in (c_sup - c_inf, r_sup - r_inf):
        n = math.floor(span / scale + EPS) + efield - 1
        n -= n % efield
        size.append(n)
    if size[0] < efield or size[1] < efield:
        raise GridError(f"the output would be smaller than the expression field {efield}: "
                        "the images are too small for these receptive and expression "
                        "fields and scale", _JOB.efield)
    if scale < 1:
        # a finer output: block pixel EF // 2 lies in the patch's centre pixel, and the
        # block's first pixel starts where the patch does (exact when RF = EF x SCALE)
        first = scale / 2 - scale * (efield // 2)
    else:
        first = 0.5 - scale * (efield // 2)       # OTBTF's: centres on input centres
    return OutputGeometry(size[0], size[1], c_inf + first, r_inf + first, float(scale), efield)


def cover_geometry(sources: Sequence["SourceGeometry"], efield: int = 1, scale: float = 1.0,
                   names: Optional[List[str]] = None) -> "OutputGeometry":
    """The output grid that covers SOURCE1 (``sources[0]``) whole: its extent, spacing x
    SCALE, first pixel at its top-left corner. Blocks near the far edges may run past
    it: the engine computes them whole and keeps what lies on the grid."""
    _check_fields(sources, efield, scale, names)
    ref = sources[0]
    width = max(1, math.ceil(ref.width / scale - EPS))
    height = max(1, math.ceil(ref.height / scale - EPS))
    return OutputGeometry(width, height, scale / 2, scale / 2, float(scale), efield)


def aligned(tile: Window, efield: int) -> Window:
    """The window of whole EF blocks that holds `tile` (its offsets are multiples of EF):
    what is computed for a tile that ends on the grid's last, partial blocks."""
    e = efield
    return Window(tile.col_off, tile.row_off, -(-tile.width // e) * e, -(-tile.height // e) * e)


@dataclass(frozen=True)
class SourcePlan:
    """What one source contributes to one output tile.

    ``window`` is the source region to read (it may run outside the image: padding);
    ``col_starts`` / ``row_starts`` are the patch origins of each EF block, relative to
    ``window``.
    """
    window: Window
    col_starts: np.ndarray
    row_starts: np.ndarray


def plan_tile(geom: "OutputGeometry", sources: Sequence["SourceGeometry"],
              tile: Window) -> List[Any]:
    """Per source, the region and patch origins needed to compute output window ``tile``.

    ``tile`` must be aligned on the EF grid (offsets and sizes multiples of EF).
    """
    e = geom.efield
    if tile.col_off % e or tile.row_off % e or tile.width % e or tile.height % e:
        raise GridError(f"tile {tile} is not aligned on the expression field {e}")
    # centre of pixel EF // 2 of each block; blocks are EF output pixels apart
    bx = geom.u0x + (tile.col_off + e // 2 + e * np.arange(tile.width // e)) * geom.scale
    by = geom.u0y + (tile.row_off + e // 2 + e * np.arange(tile.height // e)) * geom.scale
    plans = []
    for s in sources:
        cs = s.pixel_of(bx, 0) - s.rfield // 2
        rs = s.pixel_of(by, 1) - s.rfield // 2
        c0, r0 = int(cs.min()), int(rs.min())
        win = Window(c0, r0, int(cs.max()) + s.rfield - c0, int(rs.max()) + s.rfield - r0)
        plans.append(SourcePlan(win, cs - c0, rs - r0))
    return plans


def reference_pixels(geom: "OutputGeometry", ref: "SourceGeometry",
                     tile: Window) -> Tuple[np.ndarray, np.ndarray]:
    """Reference (source 1) pixel indices containing each output pixel centre of a tile."""
    cols = ref.pixel_of(geom.centres(tile.col_off, tile.width, 0), 0)
    rows = ref.pixel_of(geom.centres(tile.row_off, tile.height, 1), 1)
    return cols, rows
