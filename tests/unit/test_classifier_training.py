"""Classical training that shows progress, can be cancelled, and has bounds: the parts of
a warm-started ensemble are the very trees of one fit (oracle: scikit-learn's own fit)."""
import numpy as np
import pytest

from rsdl_qgis.engine.progress import Progress
from rsdl_qgis.errors import CancelledError, ParameterError
from rsdl_qgis.ml import classifiers
from rsdl_qgis.ml.fitting import build, fit


class Log(Progress):
    def __init__(self, cancel_after=None):
        self.fractions, self.cancel_after = [], cancel_after

    def set(self, fraction):
        self.fractions.append(fraction)

    def cancelled(self):
        return self.cancel_after is not None and len(self.fractions) >= self.cancel_after


def samples(n=3000, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    return x, (x[:, 0] + x[:, 1] ** 2 > 0.5).astype(int) + (x[:, 2] > 1)


@pytest.mark.parametrize("name,settings", [("rf", {"trees": 57}), ("gbt", {"iterations": 43})])
def test_an_ensemble_in_parts_is_one_fit_and_shows_progress(name, settings):
    x, y = samples()
    one, _ = build(name, settings, seed=3)
    one.fit(x, y)
    parts, _ = build(name, settings, seed=3)
    log = Log()
    fit(parts, name, x, y, log)
    assert np.array_equal(one.predict_proba(x), parts.predict_proba(x))
    assert len(log.fractions) >= 10 and log.fractions == sorted(log.fractions)
    assert log.fractions[-1] == 1.0


def test_a_cancel_stops_between_parts():
    x, y = samples()
    pipe, _ = build("rf", {"trees": 200}, seed=1)
    log = Log(cancel_after=2)
    with pytest.raises(CancelledError):
        fit(pipe, "rf", x, y, log)
    assert len(log.fractions) == 2


@pytest.mark.parametrize("settings,param", [({"trees": 1e9}, "RF_TREES"),
                                             ({"c": 1e300}, "SVM_C"),
                                             ({"iterations": 1e9}, "GBT_ITERATIONS"),
                                             ({"k": 10 ** 6}, "KNN_K")])
def test_settings_beyond_their_bound_name_the_parameter(settings, param):
    name = {"RF_TREES": "rf", "SVM_C": "svm", "GBT_ITERATIONS": "gbt", "KNN_K": "knn"}[param]
    with pytest.raises(ParameterError) as e:
        build(name, settings)
    assert e.value.param == param and "out of range" in str(e.value)


def test_an_svm_on_too_many_samples_is_refused_before_training(monkeypatch):
    monkeypatch.setattr(classifiers, "SVM_MAX_SAMPLES", 500)
    x, y = samples(600)
    pipe, _ = build("svm")
    with pytest.raises(ParameterError) as e:
        fit(pipe, "svm", x, y, Log())
    assert e.value.param == "SAMPLES" and "600 training samples" in str(e.value)
