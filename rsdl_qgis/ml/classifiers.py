"""Classical classifiers (scikit-learn), their settings, and training."""
from ..deps import require
from ..errors import CancelledError, ParameterError, check_choice

#: name -> (description, settings with defaults)
CLASSIFIERS = {
    "rf": ("Random forest", {"trees": 100, "max_depth": 0, "min_samples_leaf": 1}),
    "svm": ("Support vector machine (RBF kernel)", {"c": 1.0, "gamma": 0.0}),
    "gbt": ("Gradient boosting (histogram trees)", {"iterations": 100, "learning_rate": 0.1,
                                                     "max_depth": 0}),
    "knn": ("k-nearest neighbours", {"k": 5}),
    "dt": ("Decision tree", {"max_depth": 0, "min_samples_leaf": 1}),
    "bayes": ("Normal Bayes (Gaussian naive Bayes)", {}),
}


#: setting -> (parameter, lowest, highest): what a classifier can be trained with in a
#: time a user waits for (1e9 trees would train for ever); docs/classification.md
BOUNDS = {
    "trees": ("RF_TREES", 1, 5000),
    "max_depth": ("MAX_DEPTH", 0, 1000),
    "min_samples_leaf": ("MIN_SAMPLES_LEAF", 1, 100000),
    "c": ("SVM_C", 1e-6, 1e6),
    "gamma": ("SVM_GAMMA", 0.0, 1e6),
    "iterations": ("GBT_ITERATIONS", 1, 10000),
    "learning_rate": ("GBT_LEARNING_RATE", 1e-6, 1.0),
    "k": ("KNN_K", 1, 1000),
}
#: training samples above which an SVM is refused: its training time grows with their
#: square (about 20 minutes at this size on one core) and it cannot show progress
SVM_MAX_SAMPLES = 50000


def check_settings(settings):
    """Every setting within its BOUNDS, else an error naming its parameter."""
    for key, value in settings.items():
        if key not in BOUNDS or value is None:
            continue
        param, lo, hi = BOUNDS[key]
        v = float(value)
        if not lo <= v <= hi:
            raise ParameterError(f"{value:g} is out of range: {param} takes {lo:g} to {hi:g}",
                                 param)


def build(name, settings=None, seed=0, threads=-1):
    """A scaler + classifier pipeline. Settings of 0 mean "no limit" / "automatic"."""
    check_choice(name, list(CLASSIFIERS), "CLASSIFIER", "classifier")
    s = dict(CLASSIFIERS[name][1])
    s.update({k: v for k, v in (settings or {}).items() if k in s and v is not None})
    check_settings(s)
    require("sklearn", "scikit-learn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    if name == "rf":
        from sklearn.ensemble import RandomForestClassifier
        clf = RandomForestClassifier(n_estimators=int(s["trees"]),
                                     max_depth=int(s["max_depth"]) or None,
                                     min_samples_leaf=int(s["min_samples_leaf"]),
                                     n_jobs=threads, random_state=seed)
    elif name == "svm":
        from sklearn.svm import SVC
        clf = SVC(C=float(s["c"]), gamma=float(s["gamma"]) or "scale", probability=True,
                  random_state=seed)
    elif name == "gbt":
        from sklearn.ensemble import HistGradientBoostingClassifier
        clf = HistGradientBoostingClassifier(max_iter=int(s["iterations"]),
                                             learning_rate=float(s["learning_rate"]),
                                             max_depth=int(s["max_depth"]) or None,
                                             random_state=seed)
    elif name == "knn":
        from sklearn.neighbors import KNeighborsClassifier
        clf = KNeighborsClassifier(n_neighbors=int(s["k"]), n_jobs=threads)
    elif name == "dt":
        from sklearn.tree import DecisionTreeClassifier
        clf = DecisionTreeClassifier(max_depth=int(s["max_depth"]) or None,
                                     min_samples_leaf=int(s["min_samples_leaf"]),
                                     random_state=seed)
    else:
        from sklearn.naive_bayes import GaussianNB
        clf = GaussianNB()
    return make_pipeline(StandardScaler(), clf), s


def fit(pipeline, name, x, y, progress, steps=20):
    """Train the pipeline, in `steps` parts for the ensembles (a forest's trees, boosting's
    iterations: scikit-learn's warm start gives the very trees of one fit), so that a long
    training shows progress and can be cancelled between parts. An SVM on more than
    SVM_MAX_SAMPLES samples is refused (its time grows with their square)."""
    if name == "svm" and len(y) > SVM_MAX_SAMPLES:
        raise ParameterError(
            f"an SVM on {len(y)} training samples would train for hours without progress "
            f"(its time grows with their square): lower SAMPLES (at most {SVM_MAX_SAMPLES} "
            "in all), or choose rf or gbt", "SAMPLES")
    if name not in ("rf", "gbt"):
        pipeline.fit(x, y)
        progress.set(1.0)
        return pipeline
    scaler, clf = pipeline.steps[0][1], pipeline.steps[-1][1]
    xs = scaler.fit_transform(x)
    attr = "n_estimators" if name == "rf" else "max_iter"
    total = int(getattr(clf, attr))
    step = max(1, -(-total // steps))
    done = 0
    clf.set_params(warm_start=True)
    try:
        while done < total:
            done = min(total, done + step)
            clf.set_params(**{attr: done})
            clf.fit(xs, y)
            progress.set(done / total)
            if progress.cancelled():
                raise CancelledError()
            if name == "gbt" and clf.n_iter_ < done:      # boosting's own early stop
                break
    finally:
        clf.set_params(warm_start=False, **{attr: total})
    progress.set(1.0)
    return pipeline
