"""A >= 60 Mpx run needs no more memory than a 1 Mpx run (each in a fresh process).

Both runs use the same tile size, so that the 1 Mpx run has several tiles in its pipeline
too (a prefetched tile, tiles queued for writing): memory depends on the tile size, not
on the image size.
"""
import pytest

from bench.serve import LANDSAT, crop_vrt, measure_memory, mosaic_vrt, small_keras_model

# OTBTF's SavedModels and Keras: TensorFlow (conftest skips these without it)
pytestmark = [pytest.mark.tensorflow, pytest.mark.filterwarnings("ignore")]


def test_peak_memory_does_not_grow_with_image_size(tmp_path, otbtf):
    model = small_keras_model(str(tmp_path / "cnn.keras"))
    small = crop_vrt(LANDSAT, str(tmp_path / "small.vrt"), 1000, 1000)
    big = mosaic_vrt(LANDSAT, str(tmp_path / "big.vrt"), 8, 8)      # 8000 x 8000
    m_small = measure_memory(model, small, str(tmp_path / "small.tif"), tile=256)
    m_big = measure_memory(model, big, str(tmp_path / "big.tif"), tile=256)
    assert m_small["tiles"] >= 9
    assert m_big["pixels"] >= 60e6 and m_small["pixels"] <= 1.01e6
    assert m_big["peak_mb"] <= 1.2 * m_small["peak_mb"], (m_small, m_big)
    # what serving adds on top of the loaded model is bounded by tiles, not image size
    assert m_big["peak_mb"] - m_big["baseline_mb"] < 400, m_big
