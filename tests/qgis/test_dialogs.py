"""The dialogs as a person sees them (tests/dialogs.py, in a QGIS with widgets): image
inputs never start on a class map, sample selection enables only the chosen strategy's
numbers, the help speaks in the dialog's labels, and a cancel reads as a cancel."""
import json
import os
import subprocess
import sys

import numpy as np
from osgeo import gdal

from tests.conftest import LANDSAT, ROOT


def test_dialogs(tmp_path):
    class_map = str(tmp_path / "classes.tif")
    ds = gdal.GetDriverByName("GTiff").Create(class_map, 20, 20, 1, gdal.GDT_Byte)
    ds.GetRasterBand(1).WriteArray(np.arange(400).reshape(20, 20) % 3 + 1)
    ds = None
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
    r = subprocess.run([sys.executable, "-m", "tests.dialogs", LANDSAT, class_map], cwd=ROOT,
                       capture_output=True, text=True, timeout=300, env=env)
    line = [x for x in r.stdout.splitlines() if x.startswith("RESULT ")]
    assert line, r.stdout[-2000:] + r.stderr[-3000:]
    out = json.loads(line[0][len("RESULT "):])
    # image inputs move off the class map QGIS preselects; class-map inputs keep it
    assert out["rsdl:classify INPUT"] == "scene"
    assert out["rsdl:modelserve SOURCE1"] == "scene"
    assert out["rsdl:accuracy INPUT"] == "classes"
    assert out["rsdl:samplingdesign INPUT"] == "classes"
    assert out["enabled"] == {"all": [], "constant": ["SAMPLES"], "smallest": [],
                              "percent": ["PERCENT"], "total": ["SAMPLES"],
                              "byclass": ["CLASS_COUNTS"]}
    # the help names what the dialog shows; the qgis_process example keeps the ids
    help_text = out["help"]
    assert "<b>Strategy</b>" in help_text and "<b>STRATEGY</b>" not in help_text
    assert "<b>Samples of each class</b>" in help_text
    assert "STRATEGY=constant" in help_text
    assert out["line_running"] == "Execution failed after 2.10 seconds"
    assert out["line_cancelled"].startswith("Cancelled after 2.10 seconds")
    assert out["template_cancelled"] == out["line_cancelled"]
