"""Building and training a classifier of classifiers.py's table, with progress and
cancel, its errors naming the parameters of Train a classifier (ml/jobs.py)."""
from typing import Any, Dict, Optional, Tuple

from ..deps import require
from ..engine.declare import names
from ..errors import CancelledError, ParameterError, check_choice
from . import classifiers
from .classifiers import CLASSIFIERS, SETTINGS, check_settings
from .jobs import TrainClassifierJob

#: the parameters errors name (engine/declare.py)
N = names(TrainClassifierJob)


def build(name: str, settings: Optional[Dict[str, Any]] = None, seed: int = 0,
          threads: int = -1) -> Tuple[Any, Dict[str, float]]:
    """A scaler + classifier pipeline, and the settings it was made with. Settings of 0
    mean "no limit" / "automatic"."""
    check_choice(name, list(CLASSIFIERS), N.classifier, "classifier")
    entry = CLASSIFIERS[name]
    s = {k: SETTINGS[k].default for k in entry.settings}
    s.update({k: v for k, v in (settings or {}).items() if k in s and v is not None})
    check_settings(s)
    require("sklearn", "scikit-learn")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    return make_pipeline(StandardScaler(), entry.make(s, seed, threads)), s


def fit(pipeline: Any, name: str, x: Any, y: Any, progress: Any, steps: int = 20) -> Any:
    """Train the pipeline, in `steps` parts for the ensembles (a forest's trees, boosting's
    iterations: scikit-learn's warm start gives the very trees of one fit), so that a long
    training shows progress and can be cancelled between parts. An SVM on more than
    SVM_MAX_SAMPLES samples is refused (its time grows with their square)."""
    if name == "svm" and len(y) > classifiers.SVM_MAX_SAMPLES:
        raise ParameterError(
            f"an SVM on {len(y)} training samples would train for hours without progress "
            f"(its time grows with their square): lower {N.samples} (at most "
            f"{classifiers.SVM_MAX_SAMPLES} in all), or choose rf or gbt", N.samples)
    attr = CLASSIFIERS[name].grows
    if attr is None:
        pipeline.fit(x, y)
        progress.set(1.0)
        return pipeline
    scaler, clf = pipeline.steps[0][1], pipeline.steps[-1][1]
    xs = scaler.fit_transform(x)
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
            if getattr(clf, "n_iter_", done) < done:       # boosting's own early stop
                break
    finally:
        clf.set_params(warm_start=False, **{attr: total})
    progress.set(1.0)
    return pipeline
