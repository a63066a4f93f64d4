"""Accuracy metrics from a confusion matrix (rows = reference, columns = predicted)."""
from typing import Any, Dict, List, Sequence, Tuple

import numpy as np


def confusion(reference: Any, predicted: Any,
              labels: Any = None) -> Tuple[np.ndarray, List[Any]]:
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


def scores(matrix: Any) -> Dict[str, Any]:
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


def area_adjusted(matrix: Any, map_pixels: Sequence[float], z: float = 1.96) -> Dict[str, Any]:
    """Area-adjusted accuracy and class areas (Olofsson et al. 2014, Remote Sensing of
    Environment 148: 42-57, equations 2 to 10), the map's classes as strata.

    `matrix`: sample counts, rows = reference, columns = map (as `confusion` returns);
    `map_pixels`: pixels of each class in the whole map, in the same class order. Returns
    proportions of the map's area (multiply by the map's area for areas) with the half
    width of their `z` confidence interval (1.96: 95 %); user's, producer's and overall
    accuracy likewise. Estimates that need a stratum with fewer than two samples are NaN.
    """
    n = np.asarray(matrix, dtype=np.float64).T          # rows = map class i (strata)
    big_n = np.asarray(map_pixels, dtype=np.float64)
    ni = n.sum(axis=1)
    w = big_n / big_n.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(ni[:, None] > 0, n / ni[:, None], 0.0)          # n_ij / n_i.
        dof = np.where(ni > 1, ni - 1, np.nan)
        p = w[:, None] * q                                            # p_ij (eq. 4)
        area = p.sum(axis=0)                                          # p_.j (eq. 9)
        # a stratum adds variance only where it holds samples of the class
        spread = np.where(q > 0, q * (1 - q) / dof[:, None], 0.0)
        area_se = np.sqrt((w[:, None] ** 2 * spread).sum(axis=0))    # eq. 10
        user = np.diag(q).copy()                                      # eq. 2
        user_se = np.sqrt(user * (1 - user) / dof)                    # eq. 6
        oa = float(np.trace(p))                                       # eq. 1
        oa_se = float(np.sqrt((w ** 2 * user * (1 - user) / dof).sum()))  # eq. 5
        ref_total = (big_n[:, None] * q).sum(axis=0)                  # N_.j estimated
        producer = np.where(area > 0, np.diag(p) / area, np.nan)     # eq. 3
        # eq. 7: the class's own stratum, then the other strata (i != j) of its column
        own = big_n ** 2 * (1 - producer) ** 2 * user * (1 - user) / dof
        others = (big_n[:, None] ** 2 * spread).sum(axis=0) - big_n ** 2 * np.diag(spread)
        prod_var = np.where(ref_total > 0, (own + producer ** 2 * others) / ref_total ** 2,
                            np.nan)
    return {"area": area, "area_ci": z * area_se, "user": user, "user_ci": z * user_se,
            "producer": producer, "producer_ci": z * np.sqrt(prod_var),
            "oa": oa, "oa_ci": z * oa_se, "map_share": w}
