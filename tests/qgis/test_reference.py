"""docs/algorithms.md is generated from the algorithms' help: it must be current."""
import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_algorithm_reference_is_up_to_date(qgis_app):
    spec = importlib.util.spec_from_file_location(
        "algorithm_reference", os.path.join(ROOT, "scripts", "algorithm-reference.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    with open(os.path.join(ROOT, "docs", "algorithms.md"), encoding="utf-8") as fh:
        committed = fh.read()
    assert committed == mod.reference(), ("docs/algorithms.md is out of date: run "
                                          "scripts/algorithm-reference.py")
