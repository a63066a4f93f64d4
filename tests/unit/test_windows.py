from hypothesis import given
from hypothesis import strategies as st

from rsdl_qgis.engine.windows import Window, crop, intersection, pad, subdivide

coord = st.integers(-50, 50)
size = st.integers(0, 60)
windows = st.builds(Window, coord, coord, size, size)


@given(windows, windows)
def test_intersection_is_inside_both(a, b):
    c = intersection(a, b)
    if c.empty:
        return
    for w in (a, b):
        assert w.col_off <= c.col_off and c.col_end <= w.col_end
        assert w.row_off <= c.row_off and c.row_end <= w.row_end
    assert c == intersection(b, a)


@given(windows, st.integers(1, 80), st.integers(1, 80))
def test_crop_stays_in_image(w, width, height):
    c = crop(w, width, height)
    if not c.empty:
        assert 0 <= c.col_off and c.col_end <= width and 0 <= c.row_off and c.row_end <= height


@given(windows, st.integers(0, 10))
def test_pad_grows_each_side(w, m):
    p = pad(w, m)
    assert (p.col_off, p.row_off, p.width, p.height) == (
        w.col_off - m, w.row_off - m, w.width + 2 * m, w.height + 2 * m)


@given(st.integers(1, 90), st.integers(1, 90), st.integers(1, 40), st.integers(1, 40))
def test_subdivide_covers_once(width, height, tw, th):
    seen = [[0] * width for _ in range(height)]
    for t in subdivide(width, height, tw, th):
        assert t.width <= tw and t.height <= th and not t.empty
        for r in range(t.row_off, t.row_end):
            for c in range(t.col_off, t.col_end):
                seen[r][c] += 1
    assert all(v == 1 for row in seen for v in row)
