"""Uplift metrics on a randomized campaign: the Qini curve, its normalised area and uplift at k.

Definitions follow scikit-uplift (`sklift.metrics`, Radcliffe 2007 "Using control groups to target on
predicted lift"), so figures compare with the literature:

- Qini curve: customers sorted by predicted uplift, highest first; at each distinct score (ties move
  together) the point (n, Y_t(n) - Y_c(n) * N_t(n) / N_c(n)): treated buyers so far minus control buyers
  scaled to the treated count; it starts at (0, 0).
- Qini AUC (`qini_auc_score`): (area under the curve - area under the straight line to its end point)
  divided by the same for the perfect ordering (treated buyers first, control buyers last:
  scikit-uplift's `negative_effect=True`). 1 is perfect, 0 random, negative worse than random.
- uplift@k (`uplift_at_k`, strategy `overall`): among the top ceil(k n) customers by score, the
  conversion of the treated minus that of the control.
"""

from __future__ import annotations

import math

import numpy as np


def _arrays(y: object, uplift: object, treatment: object) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome and treatment as 0/1 floats and the scores, checked for equal lengths."""
    y_, u_, t_ = (np.asarray(v, dtype=float) for v in (y, uplift, treatment))
    if not (y_.shape == u_.shape == t_.shape) or y_.ndim != 1:
        raise ValueError("y, uplift and treatment must be 1-d arrays of one length")
    if not (np.isin(t_, (0.0, 1.0)).all() and np.isin(y_, (0.0, 1.0)).all()):
        raise ValueError("y and treatment must be 0/1")
    return y_, u_, t_


def qini_curve(y: object, uplift: object, treatment: object) -> tuple[np.ndarray, np.ndarray]:
    """Points (customers targeted, incremental buyers) of the Qini curve, starting at (0, 0)."""
    y_, u_, t_ = _arrays(y, uplift, treatment)
    order = np.argsort(u_, kind="mergesort")[::-1]
    y_, u_, t_ = y_[order], u_[order], t_[order]
    ends = np.r_[np.flatnonzero(np.diff(u_)), u_.size - 1]  # last position of each run of equal scores
    n_t = np.cumsum(t_)[ends]
    n_all = ends + 1.0
    n_c = n_all - n_t
    y_t = np.cumsum(y_ * t_)[ends]
    y_c = np.cumsum(y_ * (1 - t_))[ends]
    values = y_t - y_c * np.divide(n_t, n_c, out=np.zeros_like(n_t), where=n_c > 0)
    return np.r_[0.0, n_all], np.r_[0.0, values]


def qini_auc_score(y: object, uplift: object, treatment: object) -> float:
    """Area between the Qini curve and the random line, over the perfect ordering's (1 perfect, 0 random)."""
    y_, u_, t_ = _arrays(y, uplift, treatment)
    x, q = qini_curve(y_, u_, t_)
    x_best, q_best = qini_curve(y_, y_ * t_ - y_ * (1 - t_), t_)
    baseline = 0.5 * x_best[-1] * q_best[-1]
    perfect = float(np.trapezoid(q_best, x_best)) - baseline
    if perfect == 0:
        return float("nan")
    return (float(np.trapezoid(q, x)) - baseline) / perfect


def uplift_at_k(y: object, uplift: object, treatment: object, k: float = 0.3) -> float:
    """Treated minus control conversion among the top ceil(k n) customers by predicted uplift."""
    y_, u_, t_ = _arrays(y, uplift, treatment)
    if not 0 < k <= 1:
        raise ValueError(f"k must lie in (0, 1], got {k}")
    top = np.argsort(u_, kind="mergesort")[::-1][: math.ceil(k * u_.size)]
    treated, control = t_[top] == 1, t_[top] == 0
    if not treated.any() or not control.any():
        return float("nan")
    return float(y_[top][treated].mean() - y_[top][control].mean())
