"""Churn by a regularised logistic regression on monotone transforms of RFM and rhythm features.

A menu entry of `training.menu` beside LightGBM: on a small or short log a linear model of
log-transformed counts, amounts and gaps can rank churners as well as trees and generalise across
as-of dates better. Its reason codes are exact: a customer's log-odds is the intercept plus one term
per feature (coefficient x standardised transformed value), so the terms pushing the risk up most
are the reasons, with nothing approximated. Saved as JSON (no pickle), like the rest of the scorer.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression

from core import defaults
from core.errors import ModelError, NotFittedError
from features.behaviour import WINDOWS_DAYS
from features.pipeline import PURCHASE_EFFECT
from models.churn import PROBABILITY_FLOOR
from models.churn_reasons import top_reasons

META_FILE = "model.json"
FORMAT = "patron.LogisticChurnModel/1"
LOGISTIC_FEATURES = (
    "frequency",
    "recency",
    "T",
    "order_count",
    "gross_spend",
    "net_spend",
    "days_since_last",
    "tenure_days",
    "overdue_ratio",
    "overdue_longest_ratio",
    *(f"orders_{w}d" for w in WINDOWS_DAYS),
    *(f"spend_{w}d" for w in WINDOWS_DAYS),
)
LOGISTIC_DIRECTIONS = {name: -PURCHASE_EFFECT[name] for name in LOGISTIC_FEATURES}
"""The RFM, rhythm and recent-activity features the logistic model reads, with the sign its coefficient
must have (0: free): the opposite of what a purchase on the as-of day does to the feature
(`features.pipeline.PURCHASE_EFFECT`: more orders and spend, fewer days since the last one, a smaller
overdue ratio; T and tenure not at all), so a purchase can never raise the risk.
Left out: spend trend and the waits (one-way too, not measured here), and what a purchase moves either
way: the gap statistics, order values and the BTYD outputs (BG/NBD's P(alive) falls at the first repeat
purchase). Measured with them on the
inner holdouts (Online Retail 0.7577, CDNOW 0.8069) a new purchase raised some customers' risk
(tests/models/test_model_behaviour.py)."""
C = 0.1
"""Inverse L2 strength on standardised inputs (scikit-learn's C): fixed, the menu compares models, not C's."""
MAX_REFITS = 10


def signed_log1p(values: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): monotone, tames the long tails of counts, amounts and gaps, keeps signs."""
    return np.sign(values) * np.log1p(np.abs(values))


class LogisticChurnModel(BaseEstimator):
    """L2-regularised logistic regression of churn on standardised `signed_log1p` features.

    Parameters
    ----------
    seed : int
        Kept for the menu's common interface (the lbfgs fit is deterministic).
    C : float
        Inverse regularisation strength.
    monotone_constraints : dict[str, int] | None
        Feature -> -1 / +1: the coefficient must have that sign (the transform is increasing, so the
        risk then moves in that direction); features not named keep `LOGISTIC_DIRECTIONS`'. A feature whose fitted coefficient breaks its constraint is
        dropped and the model refitted (at most `MAX_REFITS` times).

    Attributes
    ----------
    feature_names_ : list[str]
    mean_, scale_ : np.ndarray
        Standardisation of the transformed features.
    coef_ : np.ndarray
    intercept_ : float
    """

    def __init__(self, seed: int = defaults.SEED, C: float = C, monotone_constraints: dict[str, int] | None = None) -> None:
        self.seed = seed
        self.C = C
        self.monotone_constraints = monotone_constraints

    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> LogisticChurnModel:
        """Fit on the features of `LOGISTIC_DIRECTIONS` that X holds and churn labels y (0/1)."""
        names = [c for c in LOGISTIC_DIRECTIONS if c in X.columns]
        if not names:
            raise ModelError(f"LogisticChurnModel needs some of {list(LOGISTIC_DIRECTIONS)} among its inputs")
        labels = np.asarray(y, dtype=float).ravel()
        if labels.shape[0] != len(X) or np.unique(labels).size != 2:
            raise ModelError("LogisticChurnModel needs one 0/1 label per row, with both classes present")
        z_all = signed_log1p(X[names].to_numpy(dtype=float))
        z_all = np.where(np.isfinite(z_all), z_all, 0.0)
        signs = {n: int((self.monotone_constraints or {}).get(n, LOGISTIC_DIRECTIONS[n])) for n in names}
        for _ in range(MAX_REFITS):
            mean, scale = z_all.mean(axis=0), z_all.std(axis=0)
            scale = np.where(scale > 0, scale, 1.0)
            fitted = LogisticRegression(C=self.C, max_iter=1000).fit((z_all - mean) / scale, labels)
            coef = fitted.coef_[0]
            wrong = [i for i, n in enumerate(names) if signs[n] * coef[i] < 0]
            if not wrong:
                break
            keep = [i for i in range(len(names)) if i not in wrong]
            names, z_all = [names[i] for i in keep], z_all[:, keep]
        else:
            raise ModelError("LogisticChurnModel: the monotone constraints could not be met")
        self.feature_names_ = names
        self.mean_, self.scale_ = mean, scale
        self.coef_ = coef.astype(float)
        self.intercept_ = float(fitted.intercept_[0])
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "coef_"):
            raise NotFittedError("this LogisticChurnModel is not fitted yet: call fit(X, y) or LogisticChurnModel.load(directory)")

    def _terms(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's term of the log-odds, as (rows, features); a matrix's columns are `feature_names_`."""
        self._check_fitted()
        if isinstance(X, np.ndarray):
            if X.ndim != 2 or X.shape[1] != len(self.feature_names_):
                raise ModelError(f"LogisticChurnModel: a matrix of shape {X.shape} for {len(self.feature_names_)} features")
            raw = X.astype(float, copy=False)
        else:
            missing = [c for c in self.feature_names_ if c not in X.columns]
            if missing:
                raise ModelError(f"LogisticChurnModel: features missing from the input: {missing}")
            raw = X[self.feature_names_].to_numpy(dtype=float)
        z = signed_log1p(raw)
        z = np.where(np.isfinite(z), z, self.mean_)  # a missing value contributes nothing
        return (z - self.mean_) / self.scale_ * self.coef_

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """P(churn) per row, 1-d, in [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
        terms = self._terms(X)  # checks the model is fitted before its intercept is read
        prob = expit(self.intercept_ + terms.sum(axis=1))
        return np.clip(prob, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's exact term of the log-odds (coefficient x standardised value), as (features, rows)."""
        return np.ascontiguousarray(self._terms(X).T)

    def reasons(self, X: pd.DataFrame | np.ndarray, top: int = 3) -> pd.DataFrame:
        """Names of the `top` features pushing each customer's risk up most (columns `churn_reason_1..top`)."""
        if top < 1:
            raise ModelError(f"top must be >= 1, got {top}")
        index = X.index if isinstance(X, pd.DataFrame) else None
        return pd.DataFrame(top_reasons(self.contributions(X), self.feature_names_, top), index=index)

    @property
    def feature_importances_(self) -> pd.Series:
        """|coefficient| per feature (inputs are standardised, so comparable), largest first."""
        self._check_fitted()
        return pd.Series(np.abs(self.coef_), index=self.feature_names_, name="abs_coef").sort_values(ascending=False)

    def prepare_reasons(self) -> bool:
        """Check the model can give reasons (always exact, nothing to build)."""
        self._check_fitted()
        return True

    def save(self, directory: str | Path) -> None:
        """Write the model as JSON."""
        self._check_fitted()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        state = {
            "format": FORMAT,
            "hyperparameters": {"seed": int(self.seed), "C": float(self.C), "monotone_constraints": self.monotone_constraints},
            "feature_names_": self.feature_names_,
            "mean_": self.mean_.tolist(),
            "scale_": self.scale_.tolist(),
            "coef_": self.coef_.tolist(),
            "intercept_": self.intercept_,
        }
        (path / META_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> LogisticChurnModel:
        """Read a model written by `save`."""
        state = json.loads((Path(directory) / META_FILE).read_text())
        if state.get("format") != FORMAT:
            raise ModelError(f"{directory} holds {state.get('format')!r}, not a LogisticChurnModel")
        model = cls(**state["hyperparameters"])
        model.feature_names_ = list(state["feature_names_"])
        model.mean_ = np.asarray(state["mean_"], dtype=float)
        model.scale_ = np.asarray(state["scale_"], dtype=float)
        model.coef_ = np.asarray(state["coef_"], dtype=float)
        model.intercept_ = float(state["intercept_"])
        return model
