"""A model written in numpy that honours a receptive field, expression field and scale.

Output pixel j of an axis depends on input pixels [j * k, j * k + w) with
w = RF - (EF - 1) * k: a strided 'valid' convolution, like a real CNN. Weights and pixel
values are integers, so sums are exact whatever the order: streamed and whole-image
results must be equal bit for bit. Two outputs: 'sum' (2 bands) and 'peak' (1 band).
"""
import numpy as np


class StridedModel:
    def __init__(self, rfield, efield=1, stride=1, bands=1, name="x", seed=0):
        self.k = stride
        self.w = rfield - (efield - 1) * stride
        assert self.w >= 1
        rng = np.random.default_rng(seed)
        self.weights = rng.integers(-2, 3, size=(self.w, self.w, bands)).astype(np.float64)
        self.name = name
        self.calls = 0

    def input_dtype(self, name):
        return "float32"

    def apply(self, x):
        """x: (n, H, W, C) -> dict of (n, H', W', bands) arrays."""
        v = np.lib.stride_tricks.sliding_window_view(x.astype(np.float64), (self.w, self.w), axis=(1, 2))
        v = v[:, ::self.k, ::self.k]                     # (n, H', W', C, w, w)
        s = np.einsum("nyxcij,ijc->nyx", v, self.weights)
        peak = v.max(axis=(3, 4, 5))
        return {"sum": np.stack([s, s * 2 + 1], axis=-1), "peak": peak[..., None]}

    def run(self, feeds, output_names):
        self.calls += 1
        res = self.apply(feeds[self.name])
        return [res[n].reshape(-1) for n in output_names]   # flat, as OTBTF models
