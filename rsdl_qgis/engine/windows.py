"""Pixel windows: a tiny immutable type and module-level functions.

A window is a rectangle of pixels in some grid: column and row offsets and a size.
Offsets may be negative or run past the image (a window that asks for padding);
``crop`` brings one back inside an image.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple


@dataclass(frozen=True)
class Window:
    col_off: int
    row_off: int
    width: int
    height: int

    def __post_init__(self):
        if self.width < 0 or self.height < 0:
            raise ValueError(f"negative window size {self.width}x{self.height}")

    @property
    def col_end(self) -> int:
        return self.col_off + self.width

    @property
    def row_end(self) -> int:
        return self.row_off + self.height

    @property
    def empty(self) -> bool:
        return self.width == 0 or self.height == 0

    @property
    def size(self) -> int:
        return self.width * self.height

    def slices(self) -> Tuple[slice, slice]:
        """(row slice, column slice) for indexing a (rows, cols, ...) array."""
        return (slice(self.row_off, self.row_end), slice(self.col_off, self.col_end))

    def relative_to(self, outer: "Window") -> "Window":
        """This window in the coordinates of ``outer`` (whose origin becomes 0, 0)."""
        return Window(self.col_off - outer.col_off, self.row_off - outer.row_off,
                      self.width, self.height)


def intersection(a: Window, b: Window) -> Window:
    """The overlap of two windows; an empty window at a's origin when they do not meet."""
    c0, r0 = max(a.col_off, b.col_off), max(a.row_off, b.row_off)
    c1, r1 = min(a.col_end, b.col_end), min(a.row_end, b.row_end)
    if c1 <= c0 or r1 <= r0:
        return Window(a.col_off, a.row_off, 0, 0)
    return Window(c0, r0, c1 - c0, r1 - r0)


def crop(window: Window, width: int, height: int) -> Window:
    """The part of ``window`` inside an image of ``width`` x ``height`` pixels."""
    return intersection(window, Window(0, 0, width, height))


def pad(window: Window, left: int, top: Optional[int] = None, right: Optional[int] = None,
        bottom: Optional[int] = None) -> Window:
    """Grow a window by margins (one value pads all four sides)."""
    top = left if top is None else top
    right = left if right is None else right
    bottom = top if bottom is None else bottom
    return Window(window.col_off - left, window.row_off - top,
                  window.width + left + right, window.height + top + bottom)


def subdivide(width: int, height: int, tile_width: int,
              tile_height: Optional[int] = None) -> List[Window]:
    """Tiles covering a ``width`` x ``height`` image in row-major order.

    Tiles have the given size except on the last column and row, which keep the rest.
    """
    tile_height = tile_width if tile_height is None else tile_height
    if tile_width <= 0 or tile_height <= 0:
        raise ValueError(f"tile size must be positive, got {tile_width}x{tile_height}")
    tiles = []
    for r in range(0, height, tile_height):
        for c in range(0, width, tile_width):
            tiles.append(Window(c, r, min(tile_width, width - c), min(tile_height, height - r)))
    return tiles
