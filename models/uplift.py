"""CustomerUpliftModel: per-customer uplift of an email contact, a two-model LightGBM learner.

Two classifiers of "bought within the campaign window" on the customer's features at the send date, one
fitted on the treated customers of past campaigns and one on the control customers; the uplift is the
difference of their probabilities (the "two-model" or T-learner, Kunzelmann et al. 2019 "Metalearners
for estimating heterogeneous treatment effects"), divided by the campaigns' mean channel lift so it is
in email units like the policy's table. Strong regularisation (few leaves, large leaves, few rounds):
the difference of two noisy classifiers is noisier than either, and the learner is used only when it
beats the segment table on held-out campaign customers (`training.campaign_learning`).

Saved as LightGBM text (one file per arm) plus JSON: no pickle.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from core import defaults
from core.errors import ModelError, NotFittedError
from models.boosting import predict_threads

UPLIFT_FEATURES = (
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "days_since_last",
    "order_count",
    "avg_order_value",
    "promo_share",
    "discount_share",
    "orders_365d",
    "spend_365d",
    "tenure_days",
    "gap_mean",
    "overdue_ratio",
    "return_rate",
)
"""Feature columns the learner uses when the features have them (`promo_share`, `discount_share` need
the log's `promo`, `discount`)."""
META_FILE = "uplift.json"
ARMS = ("treatment", "control")


class CustomerUpliftModel:
    """Two LightGBM classifiers (treated, control); `predict` gives their difference in email units.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM's, per arm.
    seed, n_threads : determinism and threads.
    """

    def __init__(
        self,
        n_estimators: int = 150,
        learning_rate: float = 0.05,
        num_leaves: int = 7,
        min_child_samples: int = 200,
        seed: int = defaults.SEED,
        n_threads: int = defaults.N_THREADS,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.seed = seed
        self.n_threads = n_threads

    def _params(self) -> dict[str, Any]:
        return {
            "objective": "binary",
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "lambda_l2": 1.0,
            "seed": self.seed,
            "deterministic": True,
            "force_row_wise": True,
            "num_threads": self.n_threads,
            "verbosity": -1,
        }

    def fit(self, X: pd.DataFrame, treated: Any, bought: Any, lift: float = 1.0) -> CustomerUpliftModel:
        """Fit one classifier per arm on the features `X` of past campaign customers."""
        treated_ = np.asarray(treated, dtype=bool)
        bought_ = np.asarray(bought, dtype=float)
        if len(X) != treated_.size or treated_.size != bought_.size:
            raise ModelError("X, treated and bought must have one row per campaign customer")
        if treated_.all() or not treated_.any():
            raise ModelError("the uplift model needs treated and control customers")
        features = [c for c in UPLIFT_FEATURES if c in X.columns]
        if not features:
            raise ModelError(f"the features hold none of the uplift model's columns {list(UPLIFT_FEATURES)}")
        matrix = X[features].to_numpy(dtype=float)
        boosters = {}
        for arm, rows in zip(ARMS, (treated_, ~treated_), strict=True):
            data = lgb.Dataset(matrix[rows], label=bought_[rows], feature_name=features, free_raw_data=True)
            boosters[arm] = lgb.train(self._params(), data, num_boost_round=self.n_estimators)
        self.boosters_ = boosters
        self.feature_names_ = features
        self.lift_ = float(lift) if lift > 0 else 1.0
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Uplift of an email contact per row of `X`: P(buy | treated) - P(buy | control), over the lift."""
        if not hasattr(self, "boosters_"):
            raise NotFittedError("CustomerUpliftModel is not fitted; call fit first")
        missing = [c for c in self.feature_names_ if c not in X.columns]
        if missing:
            raise ModelError(f"the features lack the uplift model's columns {missing}")
        matrix = X[self.feature_names_].to_numpy(dtype=float)
        if matrix.shape[0] == 0:
            return np.zeros(0)
        threads = predict_threads(len(matrix))  # one customer per API request: no OpenMP team
        p_t, p_c = (np.asarray(self.boosters_[arm].predict(matrix, num_threads=threads), dtype=float) for arm in ARMS)
        return (p_t - p_c) / self.lift_

    @property
    def required_columns(self) -> Sequence[str]:
        """The feature columns `predict` needs."""
        return list(getattr(self, "feature_names_", []))

    def save(self, directory: str | Path) -> Path:
        """Write both boosters as LightGBM text and the rest as JSON."""
        if not hasattr(self, "boosters_"):
            raise NotFittedError("CustomerUpliftModel is not fitted; call fit first")
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        for arm, booster in self.boosters_.items():
            booster.save_model(str(path / f"{arm}.txt"))
        meta = {
            "params": {k: getattr(self, k) for k in ("n_estimators", "learning_rate", "num_leaves", "min_child_samples", "seed", "n_threads")},
            "feature_names": self.feature_names_,
            "lift": self.lift_,
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> CustomerUpliftModel:
        """Read a model written by `save`; ModelError when the folder is not one."""
        path = Path(directory)
        if not (path / META_FILE).is_file():
            raise ModelError(f"{path} holds no uplift model ({META_FILE} missing)")
        meta = json.loads((path / META_FILE).read_text())
        model = cls(**meta["params"])
        model.boosters_ = {arm: lgb.Booster(model_file=str(path / f"{arm}.txt")) for arm in ARMS}
        model.feature_names_ = list(meta["feature_names"])
        model.lift_ = float(meta["lift"])
        return model
