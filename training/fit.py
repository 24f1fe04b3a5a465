"""Fitting a PatronScorer at an anchor date: BTYD on the anchor's features, churn and value models on
stacked snapshots before it, each snapshot with its own BTYD fit and labels (nothing after the anchor)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from core import defaults
from core.errors import DataError
from features import build_features
from features.labels import LABEL_COLUMNS
from features.pipeline import PURCHASE_EFFECT
from models.blend_churn import BlendChurnModel
from models.churn import ChurnModel
from models.churn_kinds import ChurnPredictor
from models.clv import CLVModel
from models.linear_churn import LogisticChurnModel
from models.next_order import shop_reference
from models.scorer import BTYD_COLUMNS, PatronScorer, btyd_outputs
from models.value import ValueModel
from targeting.policy import TargetingPolicy
from targeting.tiers import tier_cut_points
from training.split import SNAPSHOT_COLUMN, restrict_to, snapshot_dates

logger = logging.getLogger(__name__)

SMALL_FIT_ROWS = 100_000
CHURN_MONOTONE = {name: -effect for name, effect in PURCHASE_EFFECT.items() if effect}
"""Direction of a churn input's effect on the risk (+1 raises it, -1 lowers it), all else equal: the
opposite of what a purchase on the as-of day does to the feature (`features.pipeline.PURCHASE_EFFECT`),
so a purchase can never raise a churn model's risk. Features a purchase leaves as they were are free."""


def churn_inputs(columns: Sequence[str]) -> list[str]:
    """The columns a churn model reads: those whose move under a purchase on the as-of day is known.

    Left out (a purchase moves them either way): the completed-gap statistics, the per-order means,
    the optional shares and the BTYD outputs (BG/NBD's P(alive) falls at the first repeat purchase;
    Gamma-Gamma's order value follows the mean spend). Leaving them out cost no measurable churn AUC on
    CDNOW and Online Retail and 0.0009 on the generated shop, whose log has promotions, discounts and
    categories (benchmarks/RESULTS.md, "Churn inputs a purchase moves one way").
    """
    return [c for c in columns if c in PURCHASE_EFFECT]


# Regularisation measured on the CDNOW and Online Retail holdouts (benchmarks/RESULTS.md): shallow
# trees with large leaves generalise across as-of dates better than the library defaults, for both
# the churn classifier and the spend regressor.
BOOSTING_PARAMS = {"learning_rate": 0.05, "num_leaves": 4, "min_child_samples": 200, "reg_lambda": 10.0}


@dataclass(frozen=True)
class TrainingConfig:
    """Every value that shapes a training run (read from Settings by the entry point)."""

    churn_horizon_days: int = defaults.CHURN_HORIZON_DAYS
    clv_horizon_days: int = defaults.CLV_HORIZON_DAYS
    time_unit_days: int = defaults.TIME_UNIT_DAYS
    btyd_model: str = defaults.BTYD_MODEL
    penalizer_coef: float = defaults.PENALIZER_COEF
    monthly_discount_rate: float = defaults.MONTHLY_DISCOUNT_RATE
    margin_rate: float = defaults.MARGIN_RATE
    churn_snapshots: int = defaults.CHURN_SNAPSHOTS
    snapshot_step_days: int = defaults.SNAPSHOT_STEP_DAYS
    seed: int = defaults.SEED
    n_threads: int = defaults.N_THREADS
    churn_params: dict[str, Any] = field(default_factory=lambda: dict(BOOSTING_PARAMS))
    churn_family: str = "lightgbm"
    value_params: dict[str, Any] = field(default_factory=lambda: dict(BOOSTING_PARAMS))

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
        params = {k: v for k, v in self.__dict__.items() if k not in ("churn_params", "value_params")}
        params.update({f"churn_{k}": v for k, v in self.churn_params.items()})
        params.update({f"value_{k}": v for k, v in self.value_params.items()})
        return params


class FeatureCache:
    """Features (with labels over the churn horizon) per as-of date, each built once per run.

    With `add_purchase_counts`, it also holds per as-of date the BTYD purchase models' rows
    (`models.clv.PURCHASE_COUNT_COLUMNS`) of more customers than `transactions` holds: every customer of
    a Spark source whose sample `transactions` is (`jobs.spark.btyd`).
    """

    def __init__(self, transactions: pd.DataFrame, horizon_days: int, time_unit_days: int):
        self.transactions = transactions
        self.horizon_days = horizon_days
        self.time_unit_days = time_unit_days
        self._frames: dict[tuple[pd.Timestamp, bool], pd.DataFrame] = {}
        self._purchase_counts: dict[pd.Timestamp, pd.DataFrame] = {}

    def add_purchase_counts(self, counts: Mapping[pd.Timestamp, pd.DataFrame]) -> None:
        """Fit the BTYD purchase models at these as-of dates on these rows instead of the features' own."""
        self._purchase_counts.update({pd.Timestamp(k).normalize(): v for k, v in counts.items()})

    def population_counts(self, as_of: pd.Timestamp) -> pd.DataFrame | None:
        """The purchase models' rows at `as_of` from beyond `transactions`, or None (fit on the features)."""
        return self._purchase_counts.get(pd.Timestamp(as_of).normalize())

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
    """Columns the churn and value models learn from: every numeric feature but the labels, then BTYD outputs."""
    skip = {*LABEL_COLUMNS, *BTYD_COLUMNS, SNAPSHOT_COLUMN, "customer_id"}
    own = [c for c in features.columns if c not in skip and pd.api.types.is_numeric_dtype(features[c])]
    return own + list(BTYD_COLUMNS)


def lightgbm_threads(rows: int, n_threads: int) -> int:
    """Threads for a LightGBM fit: one below `SMALL_FIT_ROWS` rows, else `n_threads`.

    Why: on small data OpenMP's thread start-up and spin-waiting cost more than they save, and on a
    machine whose cores are busy they make a fit several times slower (measured here: 200 trees on
    75,000 rows took 60 s with 2 threads against 11 s with 1 while other jobs ran).
    """
    return 1 if rows < SMALL_FIT_ROWS else n_threads


def stacked_training_set(
    cache: FeatureCache, snapshots: Sequence[pd.Timestamp], config: TrainingConfig, fitted_clv: CLVModel
) -> pd.DataFrame:
    """Labelled snapshots stacked into one frame (customer_id a column) with their BTYD outputs.

    The BTYD outputs of every snapshot come from `fitted_clv`, the model fitted at the anchor, as at
    scoring time: P(alive) and expected purchases then mean the same thing in training and in
    production (refitting per snapshot let the BTYD fallbacks pick different models on Online Retail),
    and nothing after the anchor is used.
    """
    frames = []
    for as_of in snapshots:
        features = cache.get(as_of)
        outputs = btyd_outputs(fitted_clv, features, config.churn_horizon_days, config.clv_horizon_days)
        frame = pd.concat([features, outputs], axis=1).reset_index()
        frame[SNAPSHOT_COLUMN] = pd.Timestamp(as_of)
        frames.append(frame)
    stacked = pd.concat(frames, ignore_index=True)
    if stacked.empty:
        raise DataError("no customer has a purchase before the first training snapshot")
    if stacked["churned"].nunique() < 2:
        raise DataError("every training customer has the same churn label: cannot learn churn from this data")
    return stacked


def churn_model(config: TrainingConfig, columns: Sequence[str], rows: int) -> ChurnModel:
    """An unfitted churn model with the run's seed, threads, monotone constraints and overrides."""
    constraints = {c: CHURN_MONOTONE[c] for c in columns if c in CHURN_MONOTONE}
    params: dict[str, Any] = {
        "seed": config.seed,
        "n_threads": lightgbm_threads(rows, config.n_threads),
        "monotone_constraints": constraints,
    }
    params.update(config.churn_params)
    return ChurnModel(**params)


CHURN_FAMILIES = ("lightgbm", "logistic", "blend")


def fit_churn(config: TrainingConfig, x: pd.DataFrame, y: np.ndarray, groups: np.ndarray) -> ChurnPredictor:
    """The run's churn model of `config.churn_family`, fitted (a blend on its own LightGBM of `churn_params`)."""
    if config.churn_family not in CHURN_FAMILIES:
        raise ValueError(f"churn_family must be one of {CHURN_FAMILIES}, got {config.churn_family!r}")
    if config.churn_family == "logistic":
        constraints = {c: CHURN_MONOTONE[c] for c in x.columns if c in CHURN_MONOTONE}
        return LogisticChurnModel(seed=config.seed, monotone_constraints=constraints).fit(x, y)
    booster = churn_model(config, list(x.columns), len(x)).fit(x, y, groups=groups)
    if config.churn_family == "blend":
        return BlendChurnModel(booster, seed=config.seed).fit(x, y, groups)
    return booster


def value_model(config: TrainingConfig, rows: int) -> ValueModel:
    """An unfitted value regressor with the run's seed, threads and overrides."""
    params: dict[str, Any] = {"seed": config.seed, "n_threads": lightgbm_threads(rows, config.n_threads)}
    params.update(config.value_params)
    return ValueModel(**params)


@dataclass
class FittedParts:
    """What `fit_parts` learns at one anchor, before the value source and tiers are chosen."""

    clv_model: CLVModel
    churn_model: ChurnPredictor
    value_model: ValueModel
    columns: list[str]
    churn_columns: list[str]
    training_set: pd.DataFrame
    anchor_features: pd.DataFrame


def fit_parts(
    cache: FeatureCache,
    anchor: pd.Timestamp,
    snapshots: Sequence[pd.Timestamp],
    config: TrainingConfig,
    btyd_model: str,
    fitted_clv: CLVModel | None = None,
) -> FittedParts:
    """Fit BTYD on data up to `anchor` (unless given) and churn and value models on the snapshots before it."""
    anchor_features = cache.get(anchor, labels=False)
    if fitted_clv is None:
        fitted_clv = clv_model(config, btyd_model).fit(anchor_features, cache.population_counts(anchor))
    training = stacked_training_set(cache, snapshots, config, fitted_clv)
    columns = model_inputs(training)
    x = training[columns].astype(float)
    # A customer appears in several snapshots, and a later snapshot's features reveal an earlier one's
    # label (a purchase in the next 30 days shows in its `orders_30d`): the validation split that drives
    # early stopping and calibration must keep each customer on one side. With a plain random split,
    # early stopping never triggered and CDNOW's holdout AUC fell from 0.838 to 0.790.
    groups = training["customer_id"].to_numpy()
    churn_columns = churn_inputs(columns)
    churn = fit_churn(config, x[churn_columns], training["churned"].to_numpy(dtype=int), groups)
    value = value_model(config, len(x)).fit(x, training["holdout_net_spend"].to_numpy(dtype=float), groups=groups)
    logger.info(
        "fitted at %s: BTYD %s, churn and value models on %d rows from %d snapshots",
        pd.Timestamp(anchor).date(),
        fitted_clv.model_,
        len(training),
        len(snapshots),
    )
    return FittedParts(fitted_clv, churn, value, columns, churn_columns, training, anchor_features)


def assemble_scorer(
    parts: FittedParts,
    config: TrainingConfig,
    policy: TargetingPolicy,
    value_source: str,
    metadata: dict[str, Any],
    transactions: pd.DataFrame | None = None,
    anchor: pd.Timestamp | None = None,
) -> PatronScorer:
    """A PatronScorer from fitted parts, with tier cut-points learned on the anchor's value scores
    and the shop's reference for tags and timing (from the rows up to `anchor` when given)."""
    settings: dict[str, Any] = {
        "clv_model": parts.clv_model,
        "churn_model": parts.churn_model,
        "policy": policy,
        "value_model": parts.value_model,
        "value_source": value_source,
        "churn_horizon_days": config.churn_horizon_days,
        "clv_horizon_days": config.clv_horizon_days,
        "time_unit_days": config.time_unit_days,
        "churn_features": parts.churn_columns,
        "value_features": parts.columns,
    }
    # The cut points need the scorer's own value scores: a probe scorer computes them, and the
    # scorer returned is built once, complete (never changed after construction).
    probe = PatronScorer(**settings)
    value_score = probe.model_outputs(parts.anchor_features)["value_score"].to_numpy(dtype=float)
    cut_points = [float(c) for c in np.asarray(tier_cut_points(value_score, policy.tier_shares))]
    reference = shop_reference(parts.anchor_features, policy, config.time_unit_days, transactions, anchor)
    return PatronScorer(**settings, cut_points=cut_points, metadata=metadata, shop_reference=reference)


def fit_scorer(
    transactions: pd.DataFrame,
    config: TrainingConfig | None = None,
    policy: TargetingPolicy | None = None,
    as_of: str | pd.Timestamp | None = None,
    btyd_model: str | None = None,
    value_source: str = "clv",
    metadata: dict[str, Any] | None = None,
) -> PatronScorer:
    """A scorer fitted on all data up to `as_of` (default: the last day), without evaluation or MLflow.

    For notebooks and tests; `training.train.train` is the tracked, evaluated and gated path.
    """
    config = config or TrainingConfig()
    policy = policy or TargetingPolicy()
    first_day = transactions["timestamp"].min().normalize()
    anchor = transactions["timestamp"].max().normalize() if as_of is None else pd.Timestamp(as_of).normalize()
    earliest = first_day + pd.Timedelta(days=config.churn_horizon_days)
    if anchor - pd.Timedelta(days=config.churn_horizon_days) < earliest:
        raise DataError(
            f"fitting a scorer needs at least {2 * config.churn_horizon_days} days of history before {anchor.date()}"
        )
    snapshots = snapshot_dates(anchor, config.churn_horizon_days, config.churn_snapshots, config.snapshot_step_days, earliest)
    cache = FeatureCache(restrict_to(transactions, anchor), config.churn_horizon_days, config.time_unit_days)
    model = btyd_model or config.btyd_model
    if model == "auto":
        from training.menu import btyd_menu_choice  # the menu builds on this module's fitting steps

        model = btyd_menu_choice(cache.get(anchor - pd.Timedelta(days=config.churn_horizon_days)), config)
    parts = fit_parts(cache, anchor, snapshots, config, model)
    info = {"data_end": anchor.date().isoformat(), "model_name": "", "model_version": "", **(metadata or {})}
    return assemble_scorer(parts, config, policy, value_source, info, cache.transactions, anchor)
