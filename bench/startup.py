"""Start-up benchmark: what the plugin adds to QGIS start-up and to a run before its
first pixel.

    make install QGIS_CUSTOM_CONFIG_PATH=/tmp/rsdl-startup   # a profile with the plugin
    PYTHONPATH=build/deps:. /usr/bin/python3 bench/startup.py /tmp/rsdl-startup

1. `qgis_process.bin list` with the plugin enabled and with it disabled (the same
   profile), best of 5 each: the plugin's share of start-up.
2. The import of the plugin's provider in a QGIS that is already up (what loading the
   plugin costs in QGIS desktop), best of 5 fresh processes.
3. rsdl:modelserve on a 128 x 128 image through qgis_process, TensorFlow model and the
   same model in ONNX, with the time of the run's first log line of pixels (the engine's
   "Output: ..." line comes once the runtime is imported, the model loaded and scanned,
   the job resolved and the plan made), best of 3.
Prints figures and ratios; asserts nothing.
"""
import argparse
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OTBTF = os.path.join(ROOT, "tests", "data", "otbtf")


def env_for(profile, enabled=True):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(QGIS_CUSTOM_CONFIG_PATH=profile, QT_QPA_PLATFORM="offscreen")
    if not enabled:
        env["QGIS_PLUGINPATH"] = os.path.join(profile, "no-plugins")
    return env


def set_enabled(profile, enabled):
    ini = os.path.join(profile, "profiles", "default", "QGIS", "QGIS3.ini")
    code = ("import sys; from PyQt5.QtCore import QSettings; "
            "s = QSettings(sys.argv[1], QSettings.IniFormat); "
            "s.setValue('PythonPlugins/rsdl_qgis', sys.argv[2] == '1'); s.sync()")
    subprocess.run(["/usr/bin/python3", "-c", code, ini, "1" if enabled else "0"], check=True)


def best(cmd, env, n=5):
    times = []
    for _ in range(n):
        t = time.perf_counter()
        r = subprocess.run(cmd, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - t)
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
    return min(times), r.stdout


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("profile", help="a QGIS_CUSTOM_CONFIG_PATH with the plugin installed")
    a = ap.parse_args()
    profile = os.path.abspath(a.profile)
    qp = os.environ.get("QGIS_PROCESS", "qgis_process.bin")
    try:
        set_enabled(profile, False)
        off, out = best([qp, "list"], env_for(profile))
        assert "rsdl:" not in out
        set_enabled(profile, True)
        on, out = best([qp, "list"], env_for(profile))
        assert "rsdl:modelserve" in out
    finally:
        set_enabled(profile, True)
    print("qgis_process.bin list (best of 5):")
    print(f"  without the plugin: {off:.2f} s")
    print(f"  with the plugin:    {on:.2f} s")
    print(f"STARTUP plugin share of `list` = {on - off:.2f} s ({(on - off) / on:.1%})")

    plugins = os.path.join(profile, "profiles", "default", "python", "plugins")
    from rsdl_qgis.deps import shared_deps_dir
    deps = shared_deps_dir(profile)
    code = ("import time, sys; from qgis.core import QgsApplication; "
            "app = QgsApplication([], False); app.initQgis(); "
            f"sys.path[:0] = [{deps!r}, {plugins!r}]; "
            "t = time.perf_counter(); import rsdl_qgis.provider as p; p.RsdlProvider().loadAlgorithms(); "
            "print(time.perf_counter() - t)")
    times = []
    for _ in range(5):
        r = subprocess.run(["/usr/bin/python3", "-c", code], env=env_for(profile),
                           capture_output=True, text=True)
        if r.returncode:
            raise RuntimeError(r.stderr[-2000:])
        times.append(float(r.stdout.strip().splitlines()[-1]))
    print(f"STARTUP provider import and algorithms, in a running QGIS = {min(times):.3f} s")

    import tempfile
    sys.path.insert(0, ROOT)
    from bench.serve import tf1_to_onnx
    with tempfile.TemporaryDirectory() as tmp:
        onnx = tf1_to_onnx(f"{OTBTF}/models/model3", ["x"], ["prediction"],
                           os.path.join(tmp, "model3.onnx"))
        for label, model in (("TensorFlow (OTBTF model3)", f"{OTBTF}/models/model3"),
                             ("ONNX (the same model)", onnx)):
            cmd = [qp, "run", "rsdl:modelserve", "--", f"MODEL={model}",
                   f"SOURCE1={OTBTF}/pxs_subset.tif", "SOURCE1_RFIELD=16",
                   "SOURCE1_NAME=x", "OUTPUT_NAMES=prediction", "FULLY_CONV=true",
                   f"OUTPUT={tmp}/m.tif"]
            firsts = []
            for _ in range(3):
                t = time.perf_counter()
                proc = subprocess.Popen(cmd, env=env_for(profile), stdout=subprocess.PIPE,
                                        stderr=subprocess.STDOUT, text=True)
                first = None
                for line in proc.stdout:
                    if first is None and line.startswith("Output:"):
                        first = time.perf_counter() - t
                proc.wait()
                firsts.append(first)
            print(f"  modelserve through qgis_process, {label}: first pixels after "
                  f"{min(firsts):.2f} s (best of 3; `list` alone: {on:.2f} s)")
            print(f"STARTUP {label} before the first pixel, beyond `list` = "
                  f"{min(firsts) - on:.2f} s")


if __name__ == "__main__":
    sys.exit(main())
