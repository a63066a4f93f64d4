#!/usr/bin/env python3
"""Write tests/data/models/unet.onnx: a small U-Net made and exported by PyTorch.

What a Deepness user downloads: a PyTorch segmentation network exported with
``torch.onnx.export``, free batch, height and width (dynamic axes), then given Deepness's
metadata (model_type, class_names) with onnx, as Deepness's documentation shows. The
tests serve it with nothing typed and compare the map with ONNX Runtime applied as the
contract says (tests/unit/test_deepness.py). The weights are PyTorch's initialisation
with seed 0; the file is small (about 50 kB), so it is kept in the repository and tests
need no PyTorch.

Run it again (it needs PyTorch, e.g. ``pip install --target /tmp/torch torch onnxscript``):

    PYTHONPATH=/tmp/torch:build/deps python3 scripts/make-test-unet.py
"""
import json
import os
import sys

import onnx
import torch
from torch import nn

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data",
                   "models", "unet.onnx")
CLASSES = {0: "background", 1: "building", 2: "woodland", 3: "water"}


def block(cin, cout):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(cout, cout, 3, padding=1), nn.ReLU())


class UNet(nn.Module):
    """Two levels: 8 then 16 features, max pooling, nearest upsampling, a skip."""

    def __init__(self, bands=3, classes=len(CLASSES)):
        super().__init__()
        self.down = block(bands, 8)
        self.pool = nn.MaxPool2d(2)
        self.bottom = block(8, 16)
        self.up = nn.Upsample(scale_factor=2, mode="nearest")
        self.merge = block(24, 8)
        self.head = nn.Conv2d(8, classes, 1)

    def forward(self, x):
        d = self.down(x)
        b = self.up(self.bottom(self.pool(d)))
        return torch.softmax(self.head(self.merge(torch.cat([d, b], dim=1))), dim=1)


def main():
    torch.manual_seed(0)
    model = UNet().eval()
    x = torch.rand(1, 3, 64, 64)
    torch.onnx.export(model, (x,), OUT, input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                                    "output": {0: "batch", 2: "height", 3: "width"}},
                      opset_version=18)
    proto = onnx.load(OUT)
    proto.ir_version = min(proto.ir_version, 10)    # what ONNX Runtime 1.31 reads
    for key, value in (("model_type", "Segmentor"), ("class_names", CLASSES)):
        proto.metadata_props.add(key=key, value=json.dumps(value))
    onnx.save(proto, OUT, save_as_external_data=False)     # one file: weights inside
    if os.path.exists(OUT + ".data"):
        os.remove(OUT + ".data")
    print(f"{OUT}: {os.path.getsize(OUT)} bytes, torch {torch.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
