"""Choices made on the inner out-of-time holdout, never on the reported one.

With data ending at E and churn horizon H, the reported holdout is features at E-H and labels in
(E-H, E]. Every choice of a training run is made one horizon earlier: features at E-2H, labels in
(E-2H, E-H], with models fitted on data up to E-2H only. There:

- the BTYD model of `BTYD_MENU` with the lowest purchase MAE (near-ties: better churn AUC);
- the churn model with the best ROC-AUC among `CHURN_CHOICES`: LightGBM at the regularisation levels of
  `CHURN_MENU`, a regularised logistic regression on monotone transforms of RFM and rhythm features
  (`models.linear_churn`), and the calibrated blend of the best LightGBM level's risk with the RFM score
  (`models.blend_churn`; it reuses that level's fit, so it costs no extra tree fit);
- the value score's source (BTYD CLV, the spend regressor or the past spend rate) with the best Spearman;
- the central levels of the prediction intervals (`models.intervals.calibrate_levels`) and the spread of
  the shop-wide rate from one window to the next (`calendar_rate_sd`: monthly origins up to E-2H, each
  window ending by E-H).

`btyd_model="auto"` means exactly this: the BTYD menu's best inner-holdout fit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from models.blend_churn import BlendChurnModel
from models.churn import ChurnModel
from models.clv import MENU as BTYD_MENU
from models.clv import CLVModel
from models.intervals import RATE_SD_KEY, calibrate_levels, rate_shock_sd, window_rate_multiplier
from models.scorer import btyd_outputs
from models.value import spend_rate
from training.evaluate import (
    VALUE_SOURCE_METRICS,
    btyd_metrics,
    choose_value_source,
    churn_metrics,
    value_metrics,
)
from training.fit import (
    BOOSTING_PARAMS,
    FeatureCache,
    TrainingConfig,
    churn_model,
    clv_model,
    fit_churn,
    fit_parts,
)
from training.split import OutOfTimePlan, snapshot_dates

logger = logging.getLogger(__name__)

MAE_TIE_TOLERANCE = 0.01
MAX_RATE_WINDOWS = 12  # a year of monthly origins bounds the feature builds the shock spread costs
# LightGBM churn models from loose to strong regularisation; "default" is the recipe measured in
# benchmarks/RESULTS.md. A small fixed menu: each level costs one churn fit on the inner snapshots.
CHURN_MENU: dict[str, dict[str, Any]] = {
    "lightgbm_loose": {**BOOSTING_PARAMS, "num_leaves": 15, "min_child_samples": 50, "reg_lambda": 1.0},
    "lightgbm_default": dict(BOOSTING_PARAMS),
    "lightgbm_strong": {**BOOSTING_PARAMS, "num_leaves": 4, "min_child_samples": 800, "reg_lambda": 50.0},
}
CHURN_CHOICES = (*CHURN_MENU, "logistic", "blend")
"""Every churn model the inner holdout compares (`inner_churn_<name>_auc`)."""


@dataclass
class InnerChoice:
    """What the inner holdout chose, its figures (`inner_*`, `btyd_*`) and why."""

    btyd_model: str
    churn_level: str
    value_source: str
    interval_levels: dict[str, float]
    metrics: dict[str, float]
    btyd_failures: dict[str, str] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    booster_level: str = "lightgbm_default"
    """The best LightGBM level: the blend's booster when the blend is chosen."""

    def config_for(self, config: TrainingConfig) -> TrainingConfig:
        """The run's config with the chosen churn model (unless the caller fixed `churn_params` or the family)."""
        if config.churn_params != BOOSTING_PARAMS or config.churn_family != "lightgbm":
            return config
        if self.churn_level in CHURN_MENU:
            return replace(config, churn_params=dict(CHURN_MENU[self.churn_level]))
        return replace(config, churn_family=self.churn_level, churn_params=dict(CHURN_MENU[self.booster_level]))


def inner_as_of(plan: OutOfTimePlan) -> pd.Timestamp:
    """The inner holdout's as-of date, E-2H."""
    return plan.holdout_as_of - pd.Timedelta(days=plan.horizon_days)


def choose_btyd_model(metrics: dict[str, float], names: list[str]) -> str:
    """The menu model with the lowest purchase MAE; near-ties go to the better churn AUC.

    "Near" is within `MAE_TIE_TOLERANCE` (relative) of the best MAE: on Online Retail the three models
    reach the same no-dropout limit and their MAEs differ in the ninth digit, while their P(alive)
    rank churners very differently.
    """
    best = min(metrics[f"btyd_{n}_purchase_mae"] for n in names)
    close = [n for n in names if metrics[f"btyd_{n}_purchase_mae"] <= best * (1 + MAE_TIE_TOLERANCE)]
    return max(close, key=lambda n: (np.nan_to_num(metrics.get(f"btyd_{n}_churn_auc", 0.0)), -names.index(n)))


def measure_btyd_menu(
    features: pd.DataFrame, config: TrainingConfig, purchase_counts: pd.DataFrame | None = None
) -> tuple[dict[str, float], dict[str, CLVModel], dict[str, str]]:
    """Fit every BTYD model of the menu on labelled features (the purchase models on `purchase_counts`
    when given); purchase MAE and churn AUC of each on `features`."""
    metrics: dict[str, float] = {}
    failures: dict[str, str] = {}
    fitted_models: dict[str, CLVModel] = {}
    for name in BTYD_MENU:
        try:
            fitted = clv_model(config, name).fit(features, purchase_counts)
        except Exception as exc:  # a menu entry that cannot be fitted is reported, not fatal
            failures[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("BTYD model %s failed on the inner calibration data: %s", name, exc)
            continue
        if fitted.model_ != name:
            failures[name] = f"fell back to {fitted.model_}: {'; '.join(fitted.fallbacks_)}"
            continue
        fitted_models[name] = fitted
        predicted = fitted.predict(features, horizon_days=config.churn_horizon_days)
        metrics.update(
            btyd_metrics(name, predicted["expected_purchases"].to_numpy(), predicted["p_alive"].to_numpy(), features)
        )
    return metrics, fitted_models, failures


def btyd_menu_choice(features: pd.DataFrame, config: TrainingConfig) -> str:
    """What `btyd_model="auto"` means: the menu's best fit on these labelled features (bgnbd if none fits)."""
    metrics, fitted, _ = measure_btyd_menu(features, config)
    names = [n for n in BTYD_MENU if n in fitted]
    return choose_btyd_model(metrics, names) if names else "bgnbd"


def calendar_rate_sd(
    cache: FeatureCache, model: CLVModel, anchor: pd.Timestamp, earliest: pd.Timestamp, config: TrainingConfig
) -> tuple[float, dict[str, float]]:
    """Log-sd of the shop-wide purchase rate against the BTYD model's over windows ending by anchor + H.

    Origins every `snapshot_step_days` from the anchor back to `earliest` (at most `MAX_RATE_WINDOWS`),
    each predicting its next H days with the anchor's parameters. No refit: Pareto/NBD fits took up to
    157 s on early origins, and on CDNOW the RMS is 0.099 with the anchor's parameters against 0.094 with
    a refit per origin (single ratios differ by up to 0.26 on its earliest origins).
    """
    step = pd.Timedelta(days=config.snapshot_step_days)
    actual: list[float] = []
    predicted: list[float] = []
    origin = anchor
    while origin >= earliest and len(actual) < MAX_RATE_WINDOWS:
        features = cache.get(origin)
        if len(features):
            actual.append(float(features["holdout_purchases"].sum()))
            expected = model.predict(features, horizon_days=config.churn_horizon_days)["expected_purchases"]
            predicted.append(float(expected.sum()))
        origin -= step
    log_ratios = np.log(np.maximum(actual, 1e-12) / np.maximum(predicted, 1e-12))
    metrics = {
        "inner_rate_windows": float(len(actual)),
        "inner_rate_log_ratio_max": float(np.max(np.abs(log_ratios), initial=0.0)),
    }
    return rate_shock_sd(np.array(actual), np.array(predicted)), metrics


def choose_on_inner_holdout(cache: FeatureCache, plan: OutOfTimePlan, config: TrainingConfig) -> InnerChoice:
    """Every choice of a run, made on features at E-2H with labels (E-2H, E-H] (see the module docstring)."""
    anchor = inner_as_of(plan)
    inner = cache.get(anchor)
    metrics, fitted, failures = measure_btyd_menu(inner, config, cache.population_counts(anchor))
    names = [n for n in BTYD_MENU if n in fitted]
    if config.btyd_model != "auto":
        btyd = config.btyd_model
        btyd_reason = "fixed by the btyd_model setting"
    elif names:
        btyd = choose_btyd_model(metrics, names)
        best_mae = min(metrics[f"btyd_{n}_purchase_mae"] for n in names)
        btyd_reason = (
            f"inner-holdout purchase MAE {metrics[f'btyd_{btyd}_purchase_mae']:.4f}, within "
            f"{MAE_TIE_TOLERANCE:.0%} of the lowest ({best_mae:.4f}), best churn AUC among those"
        )
    else:
        btyd, btyd_reason = "bgnbd", "every menu model fell back; CLVModel's own fallbacks decide"
    earliest = plan.data_start + pd.Timedelta(days=plan.horizon_days)
    # Half the snapshots of the reported fits: the menu's extra fits then cost what one more training
    # set does, keeping a run on CDNOW near 2x the time of one without a menu (benchmarks/RESULTS.md).
    inner_snapshots = max(1, config.churn_snapshots // 2)
    snapshots = snapshot_dates(anchor, plan.horizon_days, inner_snapshots, config.snapshot_step_days, earliest)
    parts = fit_parts(cache, anchor, snapshots, config, btyd, fitted.get(btyd))
    x = parts.training_set[parts.churn_columns].astype(float)
    y = parts.training_set["churned"].to_numpy(dtype=int)
    groups = parts.training_set["customer_id"].to_numpy()
    btyd_inner = btyd_outputs(parts.clv_model, inner, config.churn_horizon_days, config.clv_horizon_days)
    inner_x = pd.concat([inner.drop(columns=btyd_inner.columns, errors="ignore"), btyd_inner], axis=1)
    inner_x = inner_x[parts.columns].astype(float)
    inner_churn_x = inner_x[parts.churn_columns]
    inner_y = inner["churned"].to_numpy(dtype=int)

    fixed_churn = config.churn_params != BOOSTING_PARAMS or config.churn_family != "lightgbm"
    boosters: dict[str, ChurnModel] = {}
    for level, params in CHURN_MENU.items():
        if fixed_churn and level != "lightgbm_default":
            continue
        model = parts.churn_model if level == "lightgbm_default" else None
        if not isinstance(model, ChurnModel):
            model = churn_model(replace(config, churn_params=dict(params)), parts.churn_columns, len(x)).fit(x, y, groups=groups)
        boosters[level] = model
        metrics[f"inner_churn_{level}_auc"] = churn_metrics(inner_y, model.predict_proba(inner_churn_x))["churn_auc"]
    booster_level = max(boosters, key=lambda level: metrics[f"inner_churn_{level}_auc"])
    if not fixed_churn:
        others = {
            "logistic": fit_churn(replace(config, churn_family="logistic"), x, y, groups),
            "blend": BlendChurnModel(boosters[booster_level], seed=config.seed).fit(x, y, groups),
        }
        for name, other in others.items():
            metrics[f"inner_churn_{name}_auc"] = churn_metrics(inner_y, other.predict_proba(inner_churn_x))["churn_auc"]
    choices = [name for name in CHURN_CHOICES if f"inner_churn_{name}_auc" in metrics]
    churn_level = max(choices, key=lambda name: metrics[f"inner_churn_{name}_auc"])
    churn_reason = (
        "fixed by churn_params or churn_family"
        if fixed_churn
        else f"best inner-holdout AUC ({metrics[f'inner_churn_{churn_level}_auc']:.4f})"
        + (f" on {booster_level}" if churn_level == "blend" else "")
    )

    spend = inner["holdout_net_spend"].to_numpy(dtype=float)
    value = {**value_metrics(spend, btyd_inner["clv"].to_numpy(dtype=float))}
    value.update(value_metrics(spend, parts.value_model.predict(inner_x), prefix="regressor_"))
    rate = spend_rate(inner["net_spend"].to_numpy(dtype=float), inner["tenure_days"].to_numpy(dtype=float), plan.horizon_days)
    value.update(value_metrics(spend, rate, prefix="spend_rate_"))
    metrics.update({f"inner_{k}": v for k, v in value.items()})
    value_source = choose_value_source(value)
    metrics["inner_value_spearman"] = value[VALUE_SOURCE_METRICS[value_source]]
    value_reason = f"best inner-holdout Spearman ({metrics['inner_value_spearman']:.4f})"

    inner_purchases = inner["holdout_purchases"].to_numpy(dtype=float)
    inner_expected = btyd_inner["expected_purchases_churn_horizon"].to_numpy(dtype=float)
    interval_levels = calibrate_levels(
        inner_purchases,
        spend,
        inner_expected,
        btyd_inner["p_alive"].to_numpy(dtype=float),
        inner["frequency"].to_numpy(dtype=float),
        btyd_inner["expected_order_value"].to_numpy(dtype=float),
        parts.clv_model.params_,
        rate_multiplier=window_rate_multiplier(inner_purchases, inner_expected),
    )
    rate_sd, rate_metrics = calendar_rate_sd(cache, parts.clv_model, anchor, earliest, config)
    interval_levels[RATE_SD_KEY] = rate_sd
    metrics.update({**rate_metrics, "inner_rate_sd": rate_sd})
    reasons = {"btyd_model": btyd_reason, "churn_model": churn_reason, "value_source": value_reason}
    logger.info("inner holdout at %s chose %s, %s, %s", anchor.date(), btyd, churn_level, value_source)
    return InnerChoice(btyd, churn_level, value_source, interval_levels, metrics, failures, reasons, booster_level)

