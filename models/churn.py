"""Churn model: LightGBM classifier with calibrated probabilities and per-customer reason codes."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from core import defaults
from core.errors import ModelError
from models.boosting import (
    EARLY_STOPPING_ROUNDS,
    LEARNING_RATE,
    MIN_CHILD_SAMPLES,
    N_ESTIMATORS,
    NUM_LEAVES,
    REG_LAMBDA,
    VALIDATION_FRACTION,
    BoostedModel,
    predict_threads,
)
from models.churn_reasons import ContributionTables, top_reasons

logger = logging.getLogger(__name__)

CALIBRATIONS = ("auto", "isotonic", "platt", "none")
PROBABILITY_FLOOR = 1e-6
"""Calibrated probabilities are kept in [floor, 1 - floor]: an isotonic map can reach exactly 0 or 1,
which would make any log loss computed downstream infinite for a single surprise."""
TIE_BREAK_SHARE = 1e-4
"""Isotonic regression is a step function: every customer on one step gets the same probability, and
those ties throw away ranking the booster had (measured on Online Retail: 0.024 holdout AUC with a
971-row training set, benchmarks/RESULTS.md). A 1e-4 share of the booster's own sigmoid is mixed in,
which orders each step as the booster does and moves no probability by more than 1e-4."""


class ChurnModel(BoostedModel):
    """Binary LightGBM classifier of churn (label 1 = churned), calibrated on a held-out split.

    `fit` holds out `validation_fraction` of the rows (stratified, seeded): LightGBM stops adding
    trees when the validation log loss has not improved for `early_stopping_rounds`, and the same
    rows then fit the calibration map. With `calibration="auto"` isotonic regression and Platt
    scaling are compared by cross-fitted log loss within the validation rows (fitting and scoring a
    map on the same rows would always favour the more flexible isotonic), and the better one is
    refitted on all of them. No class weighting: it would distort the probabilities.

    Parameters
    ----------
    seed, n_threads : int
        Seed of every random step and LightGBM's thread count; with `deterministic=True` and
        row-wise histograms, the same data give the same model.
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda
        LightGBM's boosting rounds (upper bound), shrinkage, leaves per tree, rows per leaf, L2.
    monotone_constraints : dict[str, int] | None
        Feature name -> -1 (score falls as it grows), 0, +1; names not in the data are ignored.
    calibration : "auto" | "isotonic" | "platt" | "none"
    validation_fraction : float
    early_stopping_rounds : int

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Trees up to the best iteration only.
    feature_names_ : list[str]
    best_iteration_ : int
    calibration_ : str
        The calibration map in use ("isotonic", "platt" or "none").
    calibration_scores_ : dict[str, float]
        Cross-fitted validation log loss of each candidate (empty unless calibration="auto").
    calibration_map_ : dict[str, list[float]]
        The map's numbers (isotonic thresholds or Platt coefficients).
    reason_tables_ : models.churn_reasons.ContributionTables | None
        The booster's tabulated TreeSHAP values (None: its trees are too large, `pred_contrib` is used).
    """

    _OBJECTIVE = "binary"
    _METRIC = "binary_logloss"
    _STRATIFY = True
    _FORMAT = "patron.ChurnModel/1"

    def __init__(
        self,
        seed: int = defaults.SEED,
        n_threads: int = defaults.N_THREADS,
        n_estimators: int = N_ESTIMATORS,
        learning_rate: float = LEARNING_RATE,
        num_leaves: int = NUM_LEAVES,
        min_child_samples: int = MIN_CHILD_SAMPLES,
        reg_lambda: float = REG_LAMBDA,
        monotone_constraints: dict[str, int] | None = None,
        calibration: str = "auto",
        validation_fraction: float = VALIDATION_FRACTION,
        early_stopping_rounds: int = EARLY_STOPPING_ROUNDS,
    ) -> None:
        self.seed = seed
        self.n_threads = n_threads
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.monotone_constraints = monotone_constraints
        self.calibration = calibration
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds

    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> ChurnModel:
        """Train on features X and churn labels y (0/1), then calibrate on the validation split.

        `groups` (one label per row, e.g. the customer id of stacked snapshots) keeps each group on one
        side of the validation split.
        """
        if self.calibration not in CALIBRATIONS:
            raise ModelError(
                f"unknown calibration {self.calibration!r}: use one of {', '.join(CALIBRATIONS)}"
            )
        matrix = self._matrix(X)
        labels = _binary_labels(y, len(matrix))
        _, valid = self._train(
            matrix, labels, [str(c) for c in X.columns], None if groups is None else np.asarray(groups)
        )
        raw_valid = np.asarray(self.booster_.predict(matrix[valid], raw_score=True))
        self.calibration_, self.calibration_map_, self.calibration_scores_ = _choose_calibration(
            self.calibration, raw_valid, labels[valid], self.seed
        )
        self.reason_tables_ = ContributionTables.build(self.booster_)
        logger.info("ChurnModel calibration: %s %s", self.calibration_, self.calibration_scores_)
        return self

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated P(churn) per row, 1-d, finite, in [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
        raw = self._raw(X)
        return _apply_calibration(self.calibration_, self.calibration_map_, raw)

    def reasons(self, X: pd.DataFrame | np.ndarray, top: int = 3) -> pd.DataFrame:
        """Names of the `top` features pushing each customer's risk up most (LightGBM's pred_contrib).

        Columns `churn_reason_1..top`; a slot is "" when fewer features have a positive contribution.
        Ties go to the feature that comes first in `feature_names_`.
        """
        self._check_fitted()
        if top < 1:
            raise ModelError(f"top must be >= 1, got {top}")
        out = top_reasons(self.contributions(X), self.feature_names_, top)  # contributions: features x rows
        return pd.DataFrame(out, index=X.index if isinstance(X, pd.DataFrame) else None)

    def contributions(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Each feature's SHAP contribution to each row's raw score, as a (features, rows) array.

        The values are LightGBM's TreeSHAP (`pred_contrib`) without the bias term. A tree's
        contributions depend on a row only through the side it takes at each split, so for small
        trees (the production recipe grows 4 leaves) they are tabulated once per tree from
        LightGBM's own `pred_contrib` on one row per split pattern and then looked up and summed in
        tree order, ~20x faster than `pred_contrib` over every row (`models.churn_reasons` says why and how). The sums differ from LightGBM's
        by float rounding only (its terms are added leaf by leaf), and a row's result never depends
        on the other rows passed with it.
        """
        self._check_fitted()
        matrix = self._matrix(X, self.feature_names_)
        tables = self.reason_tables_
        if tables is None:
            return self._pred_contrib(matrix)
        out = tables.contributions(matrix)
        unknown = np.isnan(out).any(axis=0)
        if unknown.any():  # a split pattern no probe row took: cannot happen while numerical_decisions is LightGBM's
            logger.warning("churn reasons: %d rows took split patterns missing from the tables", int(unknown.sum()))
            out[:, unknown] = self._pred_contrib(matrix[unknown])
        return out

    def _pred_contrib(self, matrix: np.ndarray) -> np.ndarray:
        """LightGBM's pred_contrib without the bias column, as (features, rows)."""
        contrib = np.asarray(
            self.booster_.predict(matrix, pred_contrib=True, num_threads=predict_threads(len(matrix)))
        )
        return np.ascontiguousarray(contrib[:, : len(self.feature_names_)].T)

    def prepare_reasons(self) -> bool:
        """Check the model can give reasons; True when they come from the tables `fit` and `load` build."""
        self._check_fitted()
        return self.reason_tables_ is not None

    def _extra_state(self) -> dict[str, Any]:
        return {
            "calibration_": self.calibration_,
            "calibration_map_": self.calibration_map_,
            "calibration_scores_": self.calibration_scores_,
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.calibration_ = state["calibration_"]
        self.calibration_map_ = {
            key: [float(v) for v in values] for key, values in state["calibration_map_"].items()
        }
        self.calibration_scores_ = dict(state.get("calibration_scores_", {}))
        self.reason_tables_ = ContributionTables.build(self.booster_)


def _binary_labels(y: Any, n: int) -> np.ndarray:
    """Labels as a 0/1 float array; both classes must be present."""
    labels = np.asarray(y, dtype=float).ravel()
    if labels.shape[0] != n:
        raise ModelError(f"ChurnModel.fit got {n} feature rows but {labels.shape[0]} labels")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ModelError("churn labels must be 0 (retained) or 1 (churned), without missing values")
    if labels.min() == labels.max():
        raise ModelError(
            f"churn labels hold one class only ({int(labels[0])}): the model needs both churned and retained customers"
        )
    return labels


def _fit_map(kind: str, raw: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Fit one calibration map on raw scores (log-odds); stored as plain arrays."""
    if kind == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if kind == "platt":
        # Platt (1999) scaling on the log-odds; a huge C makes the L2 term negligible.
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        return {"coef": [float(lr.coef_[0, 0])], "intercept": [float(lr.intercept_[0])]}
    return {}


def _apply_calibration(kind: str, mapping: dict[str, list[float]], raw: np.ndarray) -> np.ndarray:
    """Map raw scores to probabilities with a stored calibration map (numpy only)."""
    if kind == "isotonic":
        # IsotonicRegression.predict interpolates linearly between thresholds and clips outside;
        # the sigmoid share breaks the ties of its steps in the booster's order (TIE_BREAK_SHARE).
        step = np.interp(raw, np.asarray(mapping["x"]), np.asarray(mapping["y"]))
        prob = (1.0 - TIE_BREAK_SHARE) * step + TIE_BREAK_SHARE * expit(raw)
    elif kind == "platt":
        prob = expit(mapping["coef"][0] * raw + mapping["intercept"][0])
    else:
        prob = expit(raw)
    return np.clip(np.nan_to_num(prob, nan=0.5), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _choose_calibration(
    requested: str, raw: np.ndarray, y: np.ndarray, seed: int
) -> tuple[str, dict[str, list[float]], dict[str, float]]:
    """The requested map, or for "auto" the candidate with the lower cross-fitted log loss."""
    if requested != "auto":
        return requested, _fit_map(requested, raw, y), {}
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < 2:
        logger.warning(
            "validation split has %d rows of one class: Platt scaling without comparison", minority
        )
        return "platt", _fit_map("platt", raw, y), {}
    folds = StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=seed)
    scores = {}
    for kind in ("isotonic", "platt"):
        oof = np.empty(len(y))
        for fit_rows, score_rows in folds.split(raw.reshape(-1, 1), y):
            oof[score_rows] = _apply_calibration(
                kind, _fit_map(kind, raw[fit_rows], y[fit_rows]), raw[score_rows]
            )
        scores[kind] = _log_loss(y, oof)
    platt = _fit_map("platt", raw, y)
    # A Platt map with a negative slope would reverse the booster's ranking (and its monotone
    # constraints); it only happens when the booster is uninformative, so isotonic is kept then.
    if scores["platt"] < scores["isotonic"] and platt["coef"][0] > 0:
        return "platt", platt, scores
    return "isotonic", _fit_map("isotonic", raw, y), scores
