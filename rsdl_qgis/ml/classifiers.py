"""The classical classifiers (scikit-learn) and their settings: one table each. Building
and training one: fitting.py."""
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

from ..errors import ParameterError


@dataclass(frozen=True)
class Setting:
    """A classifier setting: its dialog parameter, default and the range a classifier can
    be trained with in a time a user waits for (1e9 trees would train for ever)."""
    key: str
    param: str
    label: str
    default: float
    lowest: float
    highest: float
    integer: bool = True


#: every classifier setting, in the dialog's order; 0 means "no limit" or "automatic"
SETTINGS: Dict[str, Setting] = {s.key: s for s in (
    Setting("trees", "RF_TREES", "Random forest: trees", 100, 1, 5000),
    Setting("max_depth", "MAX_DEPTH", "Maximum tree depth (0 = no limit)", 0, 0, 1000),
    Setting("min_samples_leaf", "MIN_SAMPLES_LEAF", "Minimum samples per leaf", 1, 1, 100000),
    Setting("c", "SVM_C", "SVM: C", 1.0, 1e-6, 1e6, integer=False),
    Setting("gamma", "SVM_GAMMA", "SVM: gamma (0 = automatic)", 0.0, 0.0, 1e6, integer=False),
    Setting("iterations", "GBT_ITERATIONS", "Gradient boosting: iterations", 100, 1, 10000),
    Setting("learning_rate", "GBT_LEARNING_RATE", "Gradient boosting: learning rate", 0.1,
            1e-6, 1.0, integer=False),
    Setting("k", "KNN_K", "k-nearest neighbours: k", 5, 1, 1000),
)}


@dataclass(frozen=True)
class Classifier:
    """A classical classifier: `make(settings, seed, threads)` gives the scikit-learn
    estimator; `grows` is the attribute a warm start grows (a forest's trees, boosting's
    iterations), so that its training shows progress and can be cancelled."""
    key: str
    label: str
    settings: Tuple[str, ...]
    make: Callable[[Dict[str, float], int, int], Any]
    grows: Optional[str] = None


def _rf(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.ensemble import RandomForestClassifier
    return RandomForestClassifier(n_estimators=int(s["trees"]),
                                  max_depth=int(s["max_depth"]) or None,
                                  min_samples_leaf=int(s["min_samples_leaf"]),
                                  n_jobs=threads, random_state=seed)


def _svm(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.svm import SVC
    return SVC(C=float(s["c"]), gamma=float(s["gamma"]) or "scale", probability=True,
               random_state=seed)


def _gbt(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier
    return HistGradientBoostingClassifier(max_iter=int(s["iterations"]),
                                          learning_rate=float(s["learning_rate"]),
                                          max_depth=int(s["max_depth"]) or None,
                                          random_state=seed)


def _knn(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.neighbors import KNeighborsClassifier
    return KNeighborsClassifier(n_neighbors=int(s["k"]), n_jobs=threads)


def _dt(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.tree import DecisionTreeClassifier
    return DecisionTreeClassifier(max_depth=int(s["max_depth"]) or None,
                                  min_samples_leaf=int(s["min_samples_leaf"]),
                                  random_state=seed)


def _bayes(s: Dict[str, float], seed: int, threads: int) -> Any:
    from sklearn.naive_bayes import GaussianNB
    return GaussianNB()


#: the classifiers, by the name scripts and classifier files use; a new one is one entry
#: (and its settings in SETTINGS). The dialog lists them in this order, and scripts that
#: gave the old index of one (CLASSIFIER=0) still get the classifier that index had.
CLASSIFIERS: Dict[str, Classifier] = {c.key: c for c in (
    Classifier("rf", "Random forest", ("trees", "max_depth", "min_samples_leaf"), _rf,
               grows="n_estimators"),
    Classifier("svm", "Support vector machine (RBF kernel)", ("c", "gamma"), _svm),
    Classifier("gbt", "Gradient boosting (histogram trees)",
               ("iterations", "learning_rate", "max_depth"), _gbt, grows="max_iter"),
    Classifier("knn", "k-nearest neighbours", ("k",), _knn),
    Classifier("dt", "Decision tree", ("max_depth", "min_samples_leaf"), _dt),
    Classifier("bayes", "Normal Bayes (Gaussian naive Bayes)", (), _bayes),
)}
#: the order of CLASSIFIERS when the dialog stored the index of a classifier: an index
#: in a script or a model of before is read with it, whatever entries come after
INDEX_ORDER = ("rf", "svm", "gbt", "knn", "dt", "bayes")

#: training samples above which an SVM is refused: its training time grows with their
#: square (about 20 minutes at this size on one core) and it cannot show progress
SVM_MAX_SAMPLES = 50000


def check_settings(settings: Dict[str, Any]) -> None:
    """Every setting within its range, else an error naming its parameter."""
    for key, value in settings.items():
        if key not in SETTINGS or value is None:
            continue
        s = SETTINGS[key]
        v = float(value)
        if not s.lowest <= v <= s.highest:
            raise ParameterError(f"{value:g} is out of range: {s.param} takes {s.lowest:g} "
                                 f"to {s.highest:g}", s.param)
