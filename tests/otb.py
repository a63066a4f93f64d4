"""Running OTB 8.1's command-line applications as the reference for sampling."""
import os
import re
import shutil
import subprocess

import pytest
from osgeo import ogr


def otbcli(app, *args):
    exe = shutil.which(f"otbcli_{app}")
    if exe is None:
        pytest.fail(f"otbcli_{app} is missing: install the Debian package otb-bin "
                    "(make test-system does)")
    env = dict(os.environ, OTB_LOGGER_LEVEL="WARNING")
    res = subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=env)
    if res.returncode:
        raise AssertionError(f"otbcli_{app} failed:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}")
    return res


def read_stats_xml(path):
    """OTB's PolygonClassStatistics XML -> ({class: pixels}, {fid: pixels})."""
    text = open(path).read()
    per_class, per_vector = text.split('name="samplesPerVector"')
    pat = re.compile(r'key="([^"]*)" value="(\d+)"')
    return ({k: int(v) for k, v in pat.findall(per_class)},
            {int(k): int(v) for k, v in pat.findall(per_vector)})


def class_counts(vector, field):
    ds = ogr.Open(str(vector))
    lyr = ds.GetLayer(0)
    out = {}
    for f in lyr:
        out[str(f.GetField(field))] = out.get(str(f.GetField(field)), 0) + 1
    return out
