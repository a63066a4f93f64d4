"""The plugin ZIP as the QGIS plugin repository checks it (scripts/check-plugin-zip.py):
what the checker refuses, and that `make zip`'s ZIP passes it (make lint checks that too)."""
import importlib.util
import os
import zipfile

from tests.conftest import ROOT

spec = importlib.util.spec_from_file_location(
    "check_plugin_zip", os.path.join(ROOT, "scripts", "check-plugin-zip.py"))
checker = importlib.util.module_from_spec(spec)
spec.loader.exec_module(checker)

GOOD_META = """[general]
name=X
qgisMinimumVersion=3.22
qgisMaximumVersion=4.99
supportsQt6=True
description=d
version=1.0
author=a
email=a@example.org
about=b
tracker=https://example.org/t
repository=https://example.org/r
icon=icons/x.svg
"""


def make(tmp_path, files, name="p.zip"):
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as z:
        for n, data in files.items():
            z.writestr(n, data)
    return str(path)


def good():
    return {"plug/__init__.py": "", "plug/metadata.txt": GOOD_META, "plug/LICENSE": "GPL",
            "plug/icons/x.svg": "<svg/>"}


def test_a_clean_plugin_passes(tmp_path):
    assert checker.problems(make(tmp_path, good())) == []


def test_what_the_repository_refuses(tmp_path):
    files = good()
    files.pop("plug/LICENSE")
    files["plug/__pycache__/a.cpython-311.pyc"] = b"\0"
    files["plug/lib/_native.so"] = b"\0"
    files["plug/metadata.txt"] = GOOD_META.replace("author=a", "author=a/b").replace(
        "tracker=https://example.org/t", "tracker=http://bugs").replace("supportsQt6=True\n", "")
    found = "\n".join(checker.problems(make(tmp_path, files)))
    for want in ("LICENSE is missing", "a __pycache__ folder", "compiled or native code",
                 "_native.so", "author may not contain a slash", "tracker='http://bugs'",
                 "supportsQt6"):
        assert want in found, (want, found)


def test_two_top_folders_and_missing_metadata(tmp_path):
    found = checker.problems(make(tmp_path, {"a/__init__.py": "", "b/x.py": ""}))
    assert any("one plugin folder" in p for p in found)
    meta = GOOD_META.replace("email=a@example.org\n", "").replace("qgisMaximumVersion=4.99\n", "")
    files = good()
    files["plug/metadata.txt"] = meta
    found = checker.problems(make(tmp_path, files))
    assert "metadata.txt: 'email' is missing or empty" in found
    assert any("qgisMaximumVersion" in p for p in found)


def test_the_shipped_metadata_passes():
    files = {}
    for d, _, names in os.walk(os.path.join(ROOT, "rsdl_qgis")):
        if "__pycache__" in d:
            continue
        for n in names:
            rel = os.path.relpath(os.path.join(d, n), os.path.join(ROOT, "rsdl_qgis"))
            files[f"rsdl_qgis/{rel}"] = open(os.path.join(d, n), "rb").read()
    for extra in ("metadata.txt", "LICENSE", "icons/rsdl.svg"):
        files[f"rsdl_qgis/{extra}"] = open(os.path.join(ROOT, extra), "rb").read()
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        from pathlib import Path
        assert checker.problems(make(Path(tmp), files)) == []
