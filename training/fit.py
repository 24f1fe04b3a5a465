"""Fitting a PatronScorer at an anchor date: BTYD on the anchor's features, churn and value models on
stacked snapshots before it, each snapshot with its own BTYD fit and labels (nothing after the anchor)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from features import build_features
from features.errors import DataError
from models.churn import ChurnModel
from models.clv import CLVModel
from models.scorer import PatronScorer, btyd_outputs
from models.value import ValueModel
from targeting.policy import TargetingPolicy
from targeting.tiers import tier_cut_points
from training.split import SNAPSHOT_COLUMN

logger = logging.getLogger(__name__)

LABEL_COLUMNS = ("churned", "holdout_purchases", "holdout_net_spend")
BTYD_MENU = ("bgnbd", "mbgnbd", "pareto")
# BTYD outputs the churn and value models see beside the behaviour features.
BTYD_MODEL_INPUTS = ["p_alive", "expected_purchases_churn_horizon", "expected_order_value", "clv"]
# Direction of a feature's effect on churn risk (+1 raises it, -1 lowers it), all else equal: a more
# recent purchase, more recent orders or a higher P(alive) never raise the churn score.
CHURN_MONOTONE = {
    "days_since_last": 1,
    "overdue_ratio": 1,
    "recency": -1,
    "orders_30d": -1,
    "orders_90d": -1,
    "orders_180d": -1,
    "p_alive": -1,
    "expected_purchases_churn_horizon": -1,
}


@dataclass(frozen=True)
class TrainingConfig:
    """Every value that shapes a training run (read from Settings by the entry point)."""

    churn_horizon_days: int = 90
    clv_horizon_days: int = 365
    time_unit_days: int = 1
    btyd_model: str = "auto"
    penalizer_coef: float = 0.0
    monthly_discount_rate: float = 0.01
    margin_rate: float = 0.30
    churn_snapshots: int = 4
    snapshot_step_days: int = 30
    seed: int = 42
    n_threads: int = 2
    churn_params: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> TrainingConfig:
        """The config of a Settings object, with explicit overrides (None values are ignored)."""
        config = cls(
            churn_horizon_days=settings.churn_horizon_days,
            clv_horizon_days=settings.clv_horizon_days,
            time_unit_days=settings.time_unit_days,
            btyd_model=settings.btyd_model,
            penalizer_coef=settings.penalizer_coef,
            monthly_discount_rate=settings.monthly_discount_rate,
            margin_rate=settings.margin_rate,
            churn_snapshots=settings.churn_snapshots,
            snapshot_step_days=settings.snapshot_step_days,
            seed=settings.seed,
            n_threads=settings.n_threads,
        )
        return replace(config, **{k: v for k, v in overrides.items() if v is not None})

    def to_params(self) -> dict[str, Any]:
        """Flat values for MLflow params."""
        params = {k: v for k, v in self.__dict__.items() if k != "churn_params"}
        params.update({f"churn_{k}": v for k, v in self.churn_params.items()})
        return params


class FeatureCache:
    """Features (with labels over the churn horizon) per as-of date, each built once per run."""

    def __init__(self, transactions: pd.DataFrame, horizon_days: int, time_unit_days: int):
        self.transactions = transactions
        self.horizon_days = horizon_days
        self.time_unit_days = time_unit_days
        self._frames: dict[tuple[pd.Timestamp, bool], pd.DataFrame] = {}

    def get(self, as_of: pd.Timestamp, labels: bool = True) -> pd.DataFrame:
        """Features at `as_of`, labelled with the next `horizon_days` when `labels`."""
        key = (pd.Timestamp(as_of), labels)
        if key not in self._frames:
            self._frames[key] = build_features(
                self.transactions,
                as_of=key[0],
                time_unit_days=self.time_unit_days,
                horizon_days=self.horizon_days if labels else None,
            )
        return self._frames[key]


def clv_model(config: TrainingConfig, model: str) -> CLVModel:
    """An unfitted CLV model with the run's settings."""
    return CLVModel(
        model=model,
        penalizer_coef=config.penalizer_coef,
        time_unit_days=config.time_unit_days,
        clv_horizon_days=config.clv_horizon_days,
        monthly_discount_rate=config.monthly_discount_rate,
        margin_rate=config.margin_rate,
    )


def model_inputs(features: pd.DataFrame) -> list[str]:
    """Columns the churn and value models learn from: every feature but the labels, plus BTYD outputs."""
    own = [c for c in features.columns if c not in LABEL_COLUMNS and c != SNAPSHOT_COLUMN]
    numeric = [c for c in own if pd.api.types.is_numeric_dtype(features[c])]
    return numeric + [c for c in BTYD_MODEL_INPUTS if c not in numeric]


def btyd_frame(cache: FeatureCache, as_of: pd.Timestamp, config: TrainingConfig, model: str) -> tuple[pd.DataFrame, CLVModel]:
    """Features at `as_of` with labels and the outputs of a BTYD model fitted on them (point in time)."""
    features = cache.get(as_of)
    fitted = clv_model(config, model).fit(features)
    outputs = btyd_outputs(fitted, features, config.churn_horizon_days, config.clv_horizon_days)
    return pd.concat([features, outputs], axis=1), fitted


def stacked_training_set(
    cache: FeatureCache, snapshots: Sequence[pd.Timestamp], config: TrainingConfig, model: str
) -> pd.DataFrame:
    """Snapshots stacked into one frame (customer_id a column), each with its own BTYD fit and labels."""
    frames = []
    for as_of in snapshots:
        frame, _ = btyd_frame(cache, as_of, config, model)
        frame = frame.reset_index()
        frame[SNAPSHOT_COLUMN] = pd.Timestamp(as_of)
        frames.append(frame)
    stacked = pd.concat(frames, ignore_index=True)
    if stacked.empty:
        raise DataError("no customer has a purchase before the first training snapshot")
    if stacked["churned"].nunique() < 2:
        raise DataError("every training customer has the same churn label: cannot learn churn from this data")
    return stacked


def churn_model(config: TrainingConfig, columns: Sequence[str]) -> ChurnModel:
    """An unfitted churn model with the run's seed, threads, monotone constraints and overrides."""
    constraints = {c: CHURN_MONOTONE[c] for c in columns if c in CHURN_MONOTONE}
    params: dict[str, Any] = {"seed": config.seed, "n_threads": config.n_threads, "monotone_constraints": constraints}
    params.update(config.churn_params)
    return ChurnModel(**params)


@dataclass
class FittedParts:
    """What `fit_parts` learns at one anchor, before the value source and tiers are chosen."""

    clv_model: CLVModel
    churn_model: ChurnModel
    value_model: ValueModel
    columns: list[str]
    training_set: pd.DataFrame
    anchor_features: pd.DataFrame


def fit_parts(
    cache: FeatureCache,
    anchor: pd.Timestamp,
    snapshots: Sequence[pd.Timestamp],
    config: TrainingConfig,
    btyd_model: str,
) -> FittedParts:
    """Fit BTYD on data up to `anchor` and churn and value models on the stacked snapshots before it."""
    anchor_features = cache.get(anchor, labels=False)
    fitted_clv = clv_model(config, btyd_model).fit(anchor_features)
    training = stacked_training_set(cache, snapshots, config, btyd_model)
    columns = model_inputs(training.drop(columns=["customer_id"]))
    x = training[columns].astype(float)
    churn = churn_model(config, columns).fit(x, training["churned"].to_numpy(dtype=int))
    value = ValueModel(seed=config.seed, n_threads=config.n_threads).fit(
        x, training["holdout_net_spend"].to_numpy(dtype=float)
    )
    logger.info(
        "fitted at %s: BTYD %s, churn and value models on %d rows from %d snapshots",
        pd.Timestamp(anchor).date(),
        getattr(fitted_clv, "model_", btyd_model),
        len(training),
        len(snapshots),
    )
    return FittedParts(fitted_clv, churn, value, columns, training, anchor_features)


def assemble_scorer(
    parts: FittedParts,
    config: TrainingConfig,
    policy: TargetingPolicy,
    value_source: str,
    metadata: dict[str, Any],
) -> PatronScorer:
    """A PatronScorer from fitted parts, with tier cut-points learned on the anchor's value scores."""
    scorer = PatronScorer(
        clv_model=parts.clv_model,
        churn_model=parts.churn_model,
        policy=policy,
        value_model=parts.value_model,
        value_source=value_source,  # type: ignore[arg-type]
        churn_horizon_days=config.churn_horizon_days,
        clv_horizon_days=config.clv_horizon_days,
        time_unit_days=config.time_unit_days,
        churn_features=parts.columns,
        value_features=parts.columns,
        metadata=metadata,
    )
    value_score = scorer.components(parts.anchor_features)["value_score"].to_numpy(dtype=float)
    scorer.cut_points = [float(c) for c in np.asarray(tier_cut_points(value_score, policy.tier_shares))]
    return scorer
