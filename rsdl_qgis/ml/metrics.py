"""Accuracy metrics from a confusion matrix (rows = reference, columns = predicted)."""
import numpy as np


def confusion(reference, predicted, labels=None):
    """Confusion matrix over `labels` (default: every label seen in either)."""
    reference = np.asarray(reference).ravel()
    predicted = np.asarray(predicted).ravel()
    if labels is None:
        labels = np.union1d(reference, predicted)
    labels = np.asarray(labels)
    index = {v: i for i, v in enumerate(labels.tolist())}
    ri = np.array([index.get(v, -1) for v in reference.tolist()], dtype=np.int64)
    pi = np.array([index.get(v, -1) for v in predicted.tolist()], dtype=np.int64)
    ok = (ri >= 0) & (pi >= 0)
    k = len(labels)
    m = np.bincount(ri[ok] * k + pi[ok], minlength=k * k).reshape(k, k)
    return m, labels


def scores(matrix):
    """OA, kappa and per-class precision, recall, F1 (0 where undefined)."""
    m = np.asarray(matrix, dtype=np.float64)
    total = m.sum()
    diag = np.diag(m)
    rows, cols = m.sum(axis=1), m.sum(axis=0)
    oa = diag.sum() / total if total else 0.0
    pe = (rows * cols).sum() / total ** 2 if total else 0.0
    kappa = (oa - pe) / (1 - pe) if pe < 1 else (1.0 if oa == 1 else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(cols > 0, diag / cols, 0.0)
        recall = np.where(rows > 0, diag / rows, 0.0)
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    present = rows > 0
    return {"OA": float(oa), "KAPPA": float(kappa), "PRECISION": precision.tolist(),
            "RECALL": recall.tolist(), "F1": f1.tolist(),
            "F1_MEAN": float(f1[present].mean()) if present.any() else 0.0,
            "SAMPLES": int(total)}
