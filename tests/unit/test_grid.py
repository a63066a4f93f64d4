"""Output geometry against the conventions of DESIGN.md (OTBTF's)."""
import pytest

from rsdl_qgis.engine.grid import Grid, SourceGeometry, output_geometry, plan_tile
from rsdl_qgis.engine.windows import Window
from rsdl_qgis.errors import GridError


def geom_for(width, height, rf, ef=1, scale=1.0, spacing=1.5):
    ref = Grid(width, height, (0.0, spacing, 0.0, 0.0, 0.0, -spacing))
    return output_geometry([SourceGeometry.of(ref, ref, rf)], ef, scale), ref


def test_patch_based_128_rf16_gives_113_shifted_8():
    g, ref = geom_for(128, 128, 16)
    assert (g.width, g.height) == (113, 113)
    gt = g.geotransform(ref)
    assert gt[0] == pytest.approx(8 * 1.5) and gt[3] == pytest.approx(-8 * 1.5)
    assert gt[1] == 1.5 and gt[5] == -1.5


def test_fully_conv_131x129_rf64_ef32_gives_96_shifted_16():
    g, ref = geom_for(131, 129, 64, 32)
    assert (g.width, g.height) == (96, 96)
    gt = g.geotransform(ref)
    assert gt[0] == pytest.approx(16 * 1.5) and gt[3] == pytest.approx(-16 * 1.5)


def test_scale_multiplies_spacing():
    g, ref = geom_for(128, 128, 16, 1, 4.0)
    assert g.geotransform(ref)[1] == pytest.approx(6.0)
    assert g.width == (128 - 16 + 1) // 4


def test_patches_of_first_block_start_at_image_origin():
    g, ref = geom_for(131, 129, 64, 32)
    src = SourceGeometry.of(ref, ref, 64)
    plan = plan_tile(g, [src], Window(0, 0, 64, 32))[0]
    assert plan.window == Window(0, 0, 96, 64)
    assert list(plan.col_starts) == [0, 32] and list(plan.row_starts) == [0]


def test_second_source_finer_resolution_is_centred_on_same_point():
    xs = Grid(32, 32, (0.0, 6.0, 0.0, 0.0, 0.0, -6.0))
    pan = Grid(128, 128, (0.0, 1.5, 0.0, 0.0, 0.0, -1.5))
    srcs = [SourceGeometry.of(xs, xs, 8), SourceGeometry.of(pan, xs, 32)]
    g = output_geometry(srcs)
    # XS centres 4..28 (25 pixels) but PAN's valid centres end at XS column 28.25:
    # the intersection holds 24 output pixels, as in OTBTF
    assert (g.width, g.height) == (24, 24)
    p_xs, p_pan = plan_tile(g, srcs, Window(0, 0, 3, 1))
    # output pixel j: XS centre pixel 4 + j (start j); PAN centre pixel 18 + 4 j (start 2 + 4 j)
    assert list(p_xs.window.col_off + p_xs.col_starts) == [0, 1, 2]
    assert list(p_pan.window.col_off + p_pan.col_starts) == [2, 6, 10]


def test_rf_larger_than_image_names_the_parameter():
    with pytest.raises(GridError) as e:
        geom_for(10, 10, 16)
    assert e.value.param == "SOURCE1_RFIELD" and "10 x 10" in str(e.value)


def test_sources_that_do_not_overlap():
    a = Grid(50, 50, (0.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    b = Grid(50, 50, (1000.0, 1.0, 0.0, 0.0, 0.0, -1.0))
    with pytest.raises(GridError) as e:
        output_geometry([SourceGeometry.of(a, a, 5), SourceGeometry.of(b, a, 5)])
    assert e.value.param == "SOURCE2" and "do not overlap" in str(e.value)
