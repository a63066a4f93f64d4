"""The dependency set follows the host: versions per Python and host numpy from one table,
a dry run that names what has no wheel, QGIS's own interpreter on every platform's layout,
one folder per Python shared by the profiles, and nothing that shadows the host's numpy."""
import json
import os
import subprocess
import sys
from types import SimpleNamespace

import pytest

from rsdl_qgis import deps
from rsdl_qgis.errors import DependencyError


def names(plan):
    return [r.split("==")[0].split("[")[0] for r in plan.requirements]


# the hosts of docs/hosts.md: (Python, host numpy)
DEBIAN12 = ((3, 11), "1.24.2")
DEBIAN13 = ((3, 13), "2.2.4")
FORKY = ((3, 14), "2.4.6")


def test_debian12_gets_a_private_numpy_its_host_is_too_old():
    p = deps.plan("full", python=DEBIAN12[0], host_numpy=DEBIAN12[1], gpu=False)
    assert p.private_numpy and p.requirements[0] == f"numpy=={deps.PINS['numpy']}"
    assert "tensorflow-cpu==2.21.0" in p.requirements and p.kind == "full"
    assert any("older than 1.26" in n for n in p.notes)


def test_debian13_resolves_against_the_host_numpy_and_keeps_none():
    p = deps.plan("full", python=DEBIAN13[0], host_numpy=DEBIAN13[1], gpu=False)
    assert not p.private_numpy and p.requirements[0] == "numpy==2.2.4"
    assert "tensorflow-cpu==2.21.0" in p.requirements and "tf2onnx==1.17.0" in p.requirements


def test_python314_has_no_tensorflow_and_says_what_to_do():
    p = deps.plan("full", python=FORKY[0], host_numpy=FORKY[1], gpu=False)
    assert p.kind == "apply" and p.asked == "full"
    assert "tensorflow" not in " ".join(p.requirements) and "tf2onnx" not in names(p)
    assert "onnxruntime==1.31.1" in p.requirements
    note = p.notes[0]
    assert "no build for Python 3.14" in note and "ONNX" in note and "\n" not in note


def test_apply_kind_is_onnx_runtime_without_tensorflow():
    p = deps.plan("apply", python=DEBIAN13[0], host_numpy=DEBIAN13[1], gpu=False)
    assert p.kind == "apply"
    assert set(names(p)) == {"numpy", *deps.KIND_PACKAGES["apply"]}
    assert "tensorflow" not in " ".join(p.requirements)


def test_gpu_hosts_get_the_gpu_builds():
    p = deps.plan("full", python=DEBIAN13[0], host_numpy=DEBIAN13[1], gpu=True)
    assert "tensorflow[and-cuda]==2.21.0" in p.requirements
    assert "onnxruntime-gpu==1.31.1" in p.requirements


def test_every_pin_is_exact_and_every_kind_only_names_pins():
    assert all(v[0].isdigit() and "*" not in v for v in deps.PINS.values())
    for kind, pkgs in deps.KIND_PACKAGES.items():
        assert set(pkgs) <= set(deps.PINS), kind
        assert kind in deps.KINDS


def test_no_other_file_pins_runtime_versions():
    """The versions are chosen in deps.py only: no requirements file beside it."""
    from tests.conftest import ROOT
    assert not os.path.exists(os.path.join(ROOT, "requirements.txt"))
    for name in ("Makefile", "README.md", os.path.join("rsdl_qgis", "plugin.py")):
        text = open(os.path.join(ROOT, name)).read()
        assert deps.PINS["tensorflow"] not in text and deps.PINS["onnxruntime"] not in text, name


def fake_pip(returncode, out):
    def run(cmd, **kw):
        assert "--only-binary=:all:" in cmd and "--dry-run" in cmd and "--target" in cmd
        return SimpleNamespace(returncode=returncode, stdout=out, stderr="")
    return run


def test_dry_run_names_the_missing_wheel_in_one_line():
    p = deps.plan("full", python=DEBIAN13[0], host_numpy=DEBIAN13[1], gpu=False)
    msg = deps.check(p, "python3", run=fake_pip(
        1, "ERROR: Could not find a version that satisfies the requirement tensorflow-cpu==2.21.0"
           "\nERROR: No matching distribution found for tensorflow-cpu==2.21.0\n"))
    assert msg.startswith("No wheel of tensorflow-cpu==2.21.0 for Python 3.13")
    assert "nothing was installed" in msg and "no compiler" in msg and "\n" not in msg
    assert deps.check(p, "python3", run=fake_pip(0, "")) is None


def test_the_dry_run_really_resolves_with_wheels_only(tmp_path):
    """pip itself, with the flags check() gives it, refuses a source-only requirement
    without building it (a local sdist, no network needed)."""
    sdist = tmp_path / "needs_compiler-1.0.tar.gz"
    import tarfile
    src = tmp_path / "needs_compiler-1.0"
    src.mkdir()
    (src / "setup.py").write_text("raise SystemExit('a build was attempted')\n")
    with tarfile.open(sdist, "w:gz") as t:
        t.add(src, arcname=src.name)
    p = deps.Plan("apply", "apply", (3, 11), None, False, [str(sdist)], [])
    msg = deps.check(p, sys.executable)
    assert msg is not None and "a build was attempted" not in msg


# QGIS's own interpreter, by platform layout (sys.executable inside QGIS, sys.exec_prefix)
LAYOUTS = [
    # OSGeo4W (network installer)
    ("win32", r"C:\OSGeo4W\bin\qgis-ltr-bin.exe", r"C:\OSGeo4W\apps\Python312", (3, 12),
     [r"C:\OSGeo4W\apps\Python312\python.exe"], r"C:\OSGeo4W\apps\Python312\python.exe"),
    # the standalone MSI installer
    ("win32", r"C:\Program Files\QGIS 3.40.6\bin\qgis-ltr-bin.exe",
     r"C:\PROGRA~1\QGIS34~1.6\apps\Python312", (3, 12),
     [r"C:\PROGRA~1\QGIS34~1.6\apps\Python312\python.exe"],
     r"C:\PROGRA~1\QGIS34~1.6\apps\Python312\python.exe"),
    # a QGIS started from a Python prompt on Windows: sys.executable is Python itself
    ("win32", r"C:\OSGeo4W\apps\Python312\python.exe", r"C:\OSGeo4W\apps\Python312", (3, 12),
     [], r"C:\OSGeo4W\apps\Python312\python.exe"),
    # the macOS bundle: the QGIS program, its Python beside it in Contents/MacOS/bin
    ("darwin", "/Applications/QGIS-LTR.app/Contents/MacOS/QGIS",
     "/Applications/QGIS-LTR.app/Contents/Frameworks/Python.framework/Versions/3.12", (3, 12),
     ["/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3"],
     "/Applications/QGIS-LTR.app/Contents/MacOS/bin/python3"),
    # macOS with the framework's own bin
    ("darwin", "/Applications/QGIS.app/Contents/MacOS/QGIS",
     "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.12", (3, 12),
     ["/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.12/bin/python3.12"],
     "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.12/bin/python3.12"),
    # Debian: QGIS embeds /usr/bin/python3.11, sys.executable may be the qgis program
    ("linux", "/usr/bin/qgis", "/usr", (3, 11), ["/usr/bin/python3.11", "/usr/bin/python3"],
     "/usr/bin/python3.11"),
    ("linux", "/usr/bin/python3", "/usr", (3, 13), ["/usr/bin/python3.13"], "/usr/bin/python3"),
    # conda-forge's QGIS
    ("linux", "/opt/conda/envs/qgis/bin/qgis", "/opt/conda/envs/qgis", (3, 12),
     ["/opt/conda/envs/qgis/bin/python3.12"], "/opt/conda/envs/qgis/bin/python3.12"),
]


@pytest.mark.parametrize("system,exe,prefix,version,files,want", LAYOUTS)
def test_qgis_own_interpreter_on_each_platform(system, exe, prefix, version, files, want):
    got = deps.find_python(executable=exe, exec_prefix=prefix, system=system, version=version,
                           isfile=lambda p: p in files)
    assert got == want
    assert "/usr/bin/python3" not in (got or "") or system == "linux"


def test_no_interpreter_found_is_none_not_a_guess():
    assert deps.find_python(executable=r"C:\QGIS\bin\qgis-bin.exe", exec_prefix=r"C:\QGIS\apps\x",
                            system="win32", version=(3, 12), isfile=lambda p: False) is None


def test_install_command_uses_qgis_python_and_the_plugin_installer():
    cmd = deps.install_command("/x/deps", kind="apply")
    assert "deps.py' install --kind apply --target '/x/deps'" in cmd
    assert "apt" not in cmd and "make" not in cmd


def test_one_folder_per_python_shared_by_profiles(tmp_path, monkeypatch):
    root = tmp_path / "QGIS3"
    a = deps.shared_deps_dir(deps.settings_root_of(str(root / "profiles" / "default")))
    b = deps.shared_deps_dir(deps.settings_root_of(str(root / "profiles" / "work") + "/"))
    assert a == b == os.path.join(str(root), "rsdl_qgis", "python-deps", deps.host_tag())
    assert deps.host_tag((3, 13), "win32", "AMD64") == "py3.13-win32-amd64"
    assert deps.host_tag((3, 12), "darwin", "arm64") != deps.host_tag((3, 13), "darwin", "arm64")


def test_an_update_made_while_qgis_ran_is_swapped_in_at_the_next_start(tmp_path):
    folder = tmp_path / "py"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    nxt = tmp_path / "py.next"
    nxt.mkdir()
    (nxt / deps.MARKER).write_text(json.dumps({"kind": "apply"}))
    assert deps.activate(str(folder)) == str(folder)
    try:
        assert deps.installed(str(folder))["kind"] == "apply"
        assert not nxt.exists() and not (folder / "old.txt").exists()
        assert [p.name for p in tmp_path.iterdir()] == ["py"]
    finally:
        sys.path.remove(str(folder))
    # a half-written .next (no marker) is never promoted
    nxt.mkdir()
    assert deps.promote_next(str(folder)) is False and (folder / deps.MARKER).exists()


def test_prune_removes_numpy_and_what_it_brought(tmp_path):
    for d in ("numpy", "numpy.libs", "numpy-2.2.4.dist-info", "numpyro", "sklearn", "bin"):
        (tmp_path / d).mkdir()
    (tmp_path / "bin" / "f2py").write_text("")
    (tmp_path / "bin" / "dask").write_text("")
    gone = deps.prune(str(tmp_path), ("numpy",))
    assert sorted(gone) == sorted(["numpy", "numpy.libs", "numpy-2.2.4.dist-info",
                                   os.path.join("bin", "f2py")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bin", "numpyro", "sklearn"]


def test_shadowed_names_host_libraries_the_folder_would_hide(tmp_path):
    host = tmp_path / "host"
    (host / "numpy-2.2.4.dist-info").mkdir(parents=True)
    (host / "numpy-2.2.4.dist-info" / "METADATA").write_text("Name: numpy\nVersion: 2.2.4\n")
    folder = tmp_path / "deps"
    (folder / "sklearn").mkdir(parents=True)
    assert deps.shadowed(str(folder), [str(host)]) == []
    (folder / "numpy").mkdir()
    assert deps.shadowed(str(folder), [str(host)]) == ["numpy"]


def test_the_installed_folder_never_shadows_the_host_numpy():
    """The folder this test run uses (build/deps) was made by deps.py for this host."""
    folder = next((p for p in sys.path if p.rstrip("/").endswith(os.path.join("build", "deps"))),
                  None)
    if folder is None or deps.installed(folder) is None:
        pytest.skip("not run from make test")
    held = deps.installed(folder)
    host_numpy = deps.host_numpy_version(exclude=[folder])
    if held["private_numpy"]:
        assert deps._version_tuple(host_numpy)[:2] < deps.NUMPY_MIN
    else:
        assert deps.shadowed(folder) == []
        import numpy
        assert not numpy.__file__.startswith(os.path.abspath(folder))
        assert numpy.__version__ == host_numpy


def test_the_cli_prints_the_requirements_the_makefile_installs():
    script = os.path.join(deps.PLUGIN_DIR, "deps.py")
    r = subprocess.run([sys.executable, script, "requirements", "--kind", "apply"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "onnxruntime" in r.stdout and "tensorflow" not in r.stdout


def test_tensorflow_missing_says_why_in_one_line(monkeypatch, tmp_path):
    def no_tf():
        raise ImportError("No module named 'tensorflow'")
    monkeypatch.setattr(deps, "_import_tensorflow", no_tf)
    folder = tmp_path / "deps"
    folder.mkdir()
    (folder / deps.MARKER).write_text(json.dumps({"kind": "apply"}))
    monkeypatch.setenv(deps.ENV_VAR, str(folder))
    monkeypatch.setattr(deps, "TENSORFLOW_PYTHONS", ((3, 0), (3, 99)))    # any Python
    with pytest.raises(DependencyError, match="applies models only") as e:
        deps.require_tensorflow()
    assert "\n" not in str(e.value)
    monkeypatch.setattr(deps, "TENSORFLOW_PYTHONS", ((3, 0), (3, 1)))
    with pytest.raises(DependencyError, match="no build for Python") as e:
        deps.require_tensorflow()
    assert "rsdl:exportonnx" in str(e.value) and "\n" not in str(e.value)


def _wheel(folder, name, version, requires=()):
    """A minimal pure-Python wheel, written by hand (no build backend, no network)."""
    import zipfile
    dist = f"{name}-{version}.dist-info"
    files = {f"{name}/__init__.py": f"__version__ = '{version}'\n",
             f"{dist}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}".format(
                 name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
             f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: hand\nRoot-Is-Purelib: true\n"
                              "Tag: py3-none-any\n"}
    files[f"{dist}/RECORD"] = "".join(f"{n},,\n" for n in files) + f"{dist}/RECORD,,\n"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as z:
        for n, text in files.items():
            z.writestr(n, text)
    return path


def test_install_resolves_against_the_host_numpy_then_leaves_it_out(tmp_path, monkeypatch):
    """The real pip, from a local index of hand-made wheels: the folder gets the packages
    and a marker but no numpy; an update while QGIS uses the folder waits as .next; a
    failed install changes nothing."""
    index = tmp_path / "index"
    index.mkdir()
    _wheel(index, "numpy", "99.0")
    _wheel(index, "rsdlfake", "1.0", ["numpy>=98"])
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(index))
    plan = deps.Plan("apply", "apply", sys.version_info[:2], "99.0", False,
                     ["numpy==99.0", "rsdlfake==1.0"], ["note"])
    monkeypatch.setattr(deps, "plan", lambda kind: plan)
    target = tmp_path / "QGIS3" / "rsdl_qgis" / "python-deps" / "py"
    lines = []
    deps.install(str(target), "apply", python=sys.executable, log=lines.append)
    held = sorted(p.name for p in target.iterdir())
    assert "rsdlfake" in held and deps.MARKER in held
    assert not any(n.startswith("numpy") for n in held), held
    assert deps.installed(str(target))["requirements"] == plan.requirements
    assert sorted(p.name for p in target.parent.iterdir()) == ["py"]      # no temp left
    # an update while the folder is in use: beside it, promoted at the next start
    deps.install(str(target), "apply", python=sys.executable, next_start=True, log=lines.append)
    assert (target.parent / "py.next" / deps.MARKER).exists()
    assert deps.promote_next(str(target)) and not (target.parent / "py.next").exists()
    # a package with no wheel: one line, nothing changed
    plan.requirements = ["rsdlfake==2.0"]
    before = sorted(p.name for p in target.iterdir())
    with pytest.raises(DependencyError) as e:
        deps.install(str(target), "apply", python=sys.executable, log=lines.append)
    assert "No wheel of rsdlfake==2.0" in str(e.value) and "\n" not in str(e.value)
    assert sorted(p.name for p in target.iterdir()) == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["py"]


def test_host_numpy_ignores_every_folder_the_installer_made(tmp_path, monkeypatch):
    """A dependency folder on sys.path (its marker says the installer made it) is not the
    host, whichever folder QGIS is configured with."""
    ours = tmp_path / "deps"
    (ours / "numpy-1.26.4.dist-info").mkdir(parents=True)
    (ours / "numpy-1.26.4.dist-info" / "METADATA").write_text("Name: numpy\nVersion: 1.26.4\n")
    host = tmp_path / "host"
    (host / "numpy-2.2.4.dist-info").mkdir(parents=True)
    (host / "numpy-2.2.4.dist-info" / "METADATA").write_text("Name: numpy\nVersion: 2.2.4\n")
    monkeypatch.setattr(sys, "path", [str(ours), str(host)])
    assert deps.host_numpy_version() == "1.26.4"          # no marker: taken as the host's
    (ours / deps.MARKER).write_text("{}")
    assert deps.host_numpy_version() == "2.2.4"
