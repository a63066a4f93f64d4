"""The atomic-output module on its own: leftovers of killed runs, and outputs that are
inputs."""
import os
import subprocess
import sys
import time

import pytest

from rsdl_qgis.engine import output
from rsdl_qgis.engine.output import AtomicFile, check_paths, stale_temps, temp_path
from rsdl_qgis.errors import RsdlIOError


def test_leftovers_are_told_from_runs_still_going(tmp_path):
    target = tmp_path / "map.tif"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        names = {
            "dead": f".map.tif.rsdl-{output._HOST}-{dead.pid}-0123abcd.part.tif",
            "alive": f".map.tif.rsdl-{output._HOST}-{alive.pid}-0123abcd.part.tif",
            "other_old": ".map.tif.rsdl-elsewhere-12-0123abcd.part.tif",
            "other_new": ".map.tif.rsdl-elsewhere-13-0123abcd.part.tif",
            "another_output": f".roads.tif.rsdl-{output._HOST}-{dead.pid}-0123abcd.part.tif",
            "users_own": ".map.tif.backup"}
        for n in names.values():
            (tmp_path / n).write_bytes(b"x")
        old = time.time() - 2 * 86400
        os.utime(tmp_path / names["other_old"], (old, old))
        found = {os.path.basename(p) for p in stale_temps(target)}
        assert found == {names["dead"], names["other_old"]}
        with AtomicFile(target) as out:            # the next run removes the leftovers
            open(out.tmp, "wb").write(b"map")
        left = set(os.listdir(tmp_path))
        assert names["dead"] not in left and names["other_old"] not in left
        assert {names["alive"], names["other_new"], names["another_output"],
                names["users_own"], "map.tif"} <= left
    finally:
        alive.kill()
        alive.wait()


def test_a_failed_write_keeps_the_previous_file(tmp_path):
    target = tmp_path / "stats.csv"
    target.write_text("previous")
    with pytest.raises(RsdlIOError) as e:
        with AtomicFile(target, "OUTPUT") as out:
            open(out.tmp, "w").write("half")
            raise OSError(28, "No space left on device")
    assert e.value.param == "OUTPUT" and "the disk is full" in str(e.value)
    assert target.read_text() == "previous" and os.listdir(tmp_path) == ["stats.csv"]
    assert ".rsdl-" in os.path.basename(temp_path(target))


def test_outputs_that_are_inputs(tmp_path):
    gpkg, shp, model = tmp_path / "p.gpkg", tmp_path / "p.shp", tmp_path / "model"
    model.mkdir()
    (tmp_path / "link.tif").symlink_to(tmp_path / "scene.tif")
    ok = [({"VECTOR": f"{gpkg}|layername=polygons"}, {"OUTPUT": f"{gpkg}|layername=points"}),
          ({"INPUT": str(tmp_path / "scene.tif")}, {"OUTPUT": str(tmp_path / "map.tif")})]
    for inputs, outputs in ok:
        check_paths(inputs, outputs)
    refused = [
        ({"INPUT": str(tmp_path / "scene.tif")}, {"OUTPUT": str(tmp_path / "link.tif")}, "INPUT"),
        ({"VECTOR": str(shp)}, {"OUTPUT": str(tmp_path / "p.SHP")[:-4] + ".shp"}, "VECTOR"),
        ({"VECTOR": f"{gpkg}|layername=p"}, {"OUTPUT": str(gpkg)}, "VECTOR"),
        ({"MODEL": str(model)}, {"OUTPUT": str(model / "map.tif")}, "MODEL"),
        ({}, {"OUTPUT": str(tmp_path / "a.tif"), "OUTPUT_CONFIDENCE": str(tmp_path / "a.tif")},
         "OUTPUT")]
    for inputs, outputs, named in refused:
        with pytest.raises(RsdlIOError) as e:
            check_paths(inputs, outputs)
        assert named in str(e.value), (inputs, outputs)


def test_a_folder_given_as_a_file_output(tmp_path):
    (tmp_path / "stats.csv").mkdir()
    with pytest.raises(RsdlIOError) as e:
        with AtomicFile(tmp_path / "stats.csv", "OUTPUT") as out:
            open(out.tmp, "w").write("table")
    assert str(e.value).startswith("OUTPUT: ") and str(e.value).count("OUTPUT") == 1
    assert "is a folder" in str(e.value) and os.listdir(tmp_path) == ["stats.csv"]


def test_a_table_into_a_folder_that_does_not_exist_yet(tmp_path):
    from rsdl_qgis.engine.selection import write_table
    for name in ("t.gpkg", "t.csv"):
        path = tmp_path / "new" / name
        write_table(str(path), ["class", "pixels"], [["water", 3]])
        assert path.exists()
    assert [n for n in os.listdir(tmp_path / "new") if n.startswith(".")] == []
