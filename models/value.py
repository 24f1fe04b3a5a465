"""Value model: LightGBM regressor of holdout spend, the learned alternative to the BTYD ranking."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

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
)

SPEND_RATE_INPUTS = ("net_spend", "tenure_days")


def spend_rate(net_spend: np.ndarray, tenure_days: np.ndarray, horizon_days: int) -> np.ndarray:
    """Past net spend per `horizon_days` of tenure (the "spend rate" value source).

    Tenure is floored at the horizon: a customer seen for a week has not shown a rate, and their
    one order would otherwise be multiplied into a large one.
    """
    days = np.maximum(np.asarray(tenure_days, dtype=float), float(horizon_days))
    return np.asarray(net_spend, dtype=float) / days * float(horizon_days)


class ValueModel(BoostedModel):
    """LightGBM regression of each customer's spend over the next horizon, on a log1p scale.

    The target is ``log1p(max(spend, 0))`` (net spend can be negative after returns; spend is heavy
    tailed, and the squared error on the log scale keeps a few wholesalers from dominating); the
    prediction is ``expm1`` of the score, never below 0. Trained with early stopping on a seeded
    random `validation_fraction` of the rows, deterministic like ChurnModel.

    Parameters
    ----------
    seed, n_threads, n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda,
    monotone_constraints, validation_fraction, early_stopping_rounds
        As for `models.churn.ChurnModel`.

    Attributes
    ----------
    booster_ : lightgbm.Booster
    feature_names_ : list[str]
    best_iteration_ : int
    """

    _OBJECTIVE = "regression"
    _METRIC = "l2"
    _STRATIFY = False
    _FORMAT = "patron.ValueModel/1"

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
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds

    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> ValueModel:
        """Train on features X and holdout spend y (money; negatives count as 0).

        `groups` (one label per row, e.g. customer ids) keeps each group on one side of the validation split.
        """
        matrix = self._matrix(X)
        spend = np.asarray(y, dtype=float).ravel()
        if spend.shape[0] != len(matrix):
            raise ModelError(
                f"ValueModel.fit got {len(matrix)} feature rows but {spend.shape[0]} targets"
            )
        if not np.isfinite(spend).all():
            raise ModelError("ValueModel targets (holdout spend) must be finite")
        self._train(
            matrix,
            np.log1p(np.maximum(spend, 0.0)),
            [str(c) for c in X.columns],
            None if groups is None else np.asarray(groups),
        )
        return self

    def predict(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Predicted spend over the horizon per row, >= 0."""
        return np.maximum(np.expm1(self._raw(X)), 0.0)
