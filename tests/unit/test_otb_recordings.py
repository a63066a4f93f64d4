"""OTB's recorded outputs (tests/data/otb-recorded), which stand in for OTB where Debian
packages none: every recording is whole, every file belongs to one, and a live run checks
each call against its recording (tests/otb.py)."""
import json
import lzma
import os

from tests import otb


def manifests():
    for name in sorted(os.listdir(otb.RECORDINGS)):
        if name.endswith(".json"):
            with open(os.path.join(otb.RECORDINGS, name), encoding="utf-8") as f:
                yield name[:-5], json.load(f)


def test_every_recording_is_whole_and_matches_its_digest(tmp_path):
    seen = set()
    count = 0
    for key, m in manifests():
        count += 1
        assert m["app"] and m["call"].startswith(m["app"]) and m["outputs"], key
        for o in m["outputs"]:
            seen.add(o["file"])
            ext = os.path.splitext(o["file"][:-3])[1]      # KEY-N.ext.xz
            out = tmp_path / f"{key}{ext}"
            with lzma.open(os.path.join(otb.RECORDINGS, o["file"])) as src:
                out.write_bytes(src.read())
            assert otb.digest(out) == o["digest"], o["file"]
    assert count >= 20
    files = {n for n in os.listdir(otb.RECORDINGS) if not n.endswith(".json")}
    assert files == seen, "files no recording names: " + ", ".join(sorted(files - seen))


def test_a_replay_answers_only_the_recorded_call(tmp_path, monkeypatch):
    """An input with other content, or another argument, has no recording: the replay
    fails instead of answering with another call's outputs."""
    import pytest

    from tests.conftest import LANDSAT
    monkeypatch.setenv("RSDL_OTB", "replay")
    poly = tmp_path / "nothing.txt"
    poly.write_text("not recorded")
    with pytest.raises(pytest.fail.Exception, match="never recorded"):
        otb.otbcli("PolygonClassStatistics", "-in", LANDSAT, "-vec", poly, "-field", "code",
                   "-out", tmp_path / "x.xml")
    assert not (tmp_path / "x.xml").exists()


def test_mode_follows_what_is_installed(monkeypatch):
    import shutil
    monkeypatch.delenv("RSDL_OTB", raising=False)
    want = "live" if shutil.which("otbcli_PolygonClassStatistics") else "replay"
    assert otb.mode() == want
    monkeypatch.setenv("RSDL_OTB", "sometimes")
    import pytest
    with pytest.raises(ValueError):
        otb.mode()
