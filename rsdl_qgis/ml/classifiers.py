"""Classical classifiers (scikit-learn), their settings, and training."""
from ..deps import require
from ..errors import check_choice

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


def build(name, settings=None, seed=0, threads=-1):
    """A scaler + classifier pipeline. Settings of 0 mean "no limit" / "automatic"."""
    check_choice(name, list(CLASSIFIERS), "CLASSIFIER", "classifier")
    s = dict(CLASSIFIERS[name][1])
    s.update({k: v for k, v in (settings or {}).items() if k in s and v is not None})
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
