"""The training entry point: out-of-time evaluation, production refit, MLflow tracking, registry, gate.

`train(transactions)` runs the whole pipeline of `patron train`:

1. plan the out-of-time design (`training.split`) and fingerprint the data;
2. choose on the inner holdout one horizon earlier (features at E-2H, labels (E-2H, E-H];
   `training.menu`): the BTYD model, the churn model's regularisation, the value score's source and
   the intervals' calibrated levels -- the reported holdout never takes part in a choice;
3. fit the out-of-time scorer (BTYD up to E-H, churn and value models on snapshots E-2H, E-2H-step, ...)
   with those choices and measure it, its intervals' coverage (plain, and randomized PIT at the
   nominal levels) and the baselines on the holdout;
4. refit everything on all data up to E (the production scorer);
5. log params, metrics, plots, fingerprint and versions to MLflow; log the production scorer as the
   pyfunc, register it with alias `candidate`, and run the promotion gate (`training.registry`).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelError
from models.intervals import RATE_SD_KEY, interval_coverage, pit_coverage, prediction_intervals
from models.scorer import PatronScorer
from targeting.policy import TargetingPolicy
from training import plots
from training.campaign_learning import log_uplift
from training.evaluate import VALUE_SOURCE_METRICS, baseline_churn_scores, holdout_metrics
from training.fingerprint import data_fingerprint
from training.fit import FeatureCache, FittedParts, TrainingConfig, assemble_scorer, fit_parts
from training.menu import InnerChoice, choose_on_inner_holdout, inner_as_of
from training.registry import (
    CANDIDATE_ALIAS,
    EVALUATION_SCORER_PATH,
    TAG_DATA_END,
    Holdout,
    PromotionDecision,
    promote_if_better,
    set_alias,
)
from training.split import OutOfTimePlan, plan_out_of_time, restrict_to
from training.uplift_model import UpliftChoice

logger = logging.getLogger(__name__)

PACKAGES = ("patron", "mlflow", "lightgbm", "lifetimes", "scikit-learn", "pandas", "numpy", "scipy")
MAX_PARAM_CHARS = 5000  # MLflow caps a param value at 6,000 characters
HEADLINE_METRICS = ("churn_auc", "churn_pr_auc", "churn_lift_10", "clv_spearman", "value_spearman")
PurchaseCounter = Callable[[Sequence[pd.Timestamp], int], Mapping[pd.Timestamp, pd.DataFrame]]
"""Given the run's BTYD as-of dates and time unit (days), the purchase models' rows at each
(`models.clv.PURCHASE_COUNT_COLUMNS`)."""


@dataclass
class TrainResult:
    """What a training run produced: where it is tracked, its metrics, the model and the gate's decision."""

    run_id: str
    experiment_id: str
    tracking_uri: str
    model_name: str
    model_version: str
    plan: OutOfTimePlan
    metrics: dict[str, float]
    params: dict[str, Any]
    decision: PromotionDecision
    scorer: PatronScorer
    btyd_model: str
    value_source: str
    choice: InnerChoice


def package_versions() -> dict[str, str]:
    """Installed versions of Patron and the libraries its models depend on."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if v is not None and np.isfinite(v)}


def _btyd_params(scorer: PatronScorer) -> dict[str, Any]:
    """The production BTYD and Gamma-Gamma parameters under the names MLflow shows."""
    model = scorer.clv_model
    params = dict(getattr(model, "params_", {}) or {})
    out: dict[str, Any] = {"btyd_model": getattr(model, "model_", "")}
    names = {"r": "bgnbd_r", "alpha": "bgnbd_alpha", "a": "bgnbd_a", "b": "bgnbd_b", "s": "pareto_s"}
    names.update({"beta": "pareto_beta", "p": "gg_p", "q": "gg_q", "v": "gg_v"})
    for key, name in names.items():
        value = params.get(key)
        if value is not None and np.isfinite(value):  # Pareto/NBD has no a, b (NaN)
            out[name] = float(value)
    out["btyd_fit_customers"] = int(getattr(model, "n_customers_", 0))
    out["btyd_fit_distinct_rows"] = int(getattr(model, "n_purchase_rows_", 0))
    out["fallbacks"] = ("; ".join(getattr(model, "fallbacks_", []) or []) or "none")[:MAX_PARAM_CHARS]
    corr = getattr(model, "freq_monetary_corr_", None)
    out["freq_monetary_corr"] = float(corr) if corr is not None and np.isfinite(corr) else "n/a"
    return out


def _log_plots(
    parts: FittedParts,
    components: pd.DataFrame,
    holdout: pd.DataFrame,
) -> None:
    import mlflow

    comp = components.reindex(holdout.index)
    y = holdout["churned"].to_numpy(dtype=int)
    scores = {"churn model": comp["churn_probability"].to_numpy(dtype=float)}
    for name, score in baseline_churn_scores(holdout, comp["p_alive"].to_numpy(dtype=float)).items():
        scores[f"baseline {name}"] = score
    expected = comp["expected_purchases_churn_horizon"].to_numpy(dtype=float)
    figures = {
        "plots/holdout_purchases_by_frequency.png": plots.purchases_by_frequency(
            holdout["frequency"].to_numpy(), expected, holdout["holdout_purchases"].to_numpy()
        ),
        "plots/value_deciles.png": plots.decile_chart(
            expected * comp["expected_order_value"].to_numpy(dtype=float),
            holdout["holdout_net_spend"].to_numpy(),
        ),
        "plots/churn_roc.png": plots.roc_curves(y, scores),
        "plots/churn_pr.png": plots.pr_curves(y, scores),
        "plots/churn_reliability.png": plots.reliability_curve(y, scores["churn model"]),
    }
    importance = _feature_importance(parts)
    if importance is not None:
        figures["plots/churn_feature_importance.png"] = plots.feature_importance(importance)
    for path, figure in figures.items():
        mlflow.log_figure(figure, path)


def _feature_importance(parts: FittedParts) -> pd.Series | None:
    """Total-gain importance of the churn model's features (a blend's booster's), if it reports them."""
    model = getattr(parts.churn_model, "booster", parts.churn_model)
    return getattr(model, "feature_importances_", None)


def _design(
    transactions: pd.DataFrame, config: TrainingConfig, as_of: str | pd.Timestamp | None
) -> tuple[OutOfTimePlan, pd.DataFrame, dict[str, Any], FeatureCache, pd.DataFrame]:
    """Step 1: the out-of-time plan, the data up to E, its fingerprint, the feature cache and the holdout."""
    plan = plan_out_of_time(
        transactions, config.churn_horizon_days, config.churn_snapshots, config.snapshot_step_days, as_of
    )
    transactions = restrict_to(transactions, plan.data_end)
    fingerprint = data_fingerprint(transactions)
    cache = FeatureCache(transactions, config.churn_horizon_days, config.time_unit_days)
    holdout = cache.get(plan.holdout_as_of)
    if holdout.empty:
        raise ModelError(f"no customer has bought by the holdout date {plan.holdout_as_of.date()}")
    return plan, transactions, fingerprint, cache, holdout


@dataclass
class Evaluation:
    """The out-of-time scorer (fitted up to E-H), its outputs and metrics on the reported holdout."""

    parts: FittedParts
    components: pd.DataFrame
    metrics: dict[str, float]
    scorer: PatronScorer


def _evaluate_out_of_time(
    cache: FeatureCache,
    plan: OutOfTimePlan,
    holdout: pd.DataFrame,
    config: TrainingConfig,
    policy: TargetingPolicy,
    choice: InnerChoice,
    base_metadata: dict[str, Any],
) -> Evaluation:
    """Step 3: fit with the inner holdout's choices up to E-H; measure models, baselines and intervals on (E-H, E]."""
    parts = fit_parts(cache, plan.holdout_as_of, plan.evaluation_snapshots, config, choice.btyd_model)
    metadata = {**base_metadata, "data_end": plan.holdout_as_of.date().isoformat(), "role": "out-of-time evaluation"}
    scorer = assemble_scorer(parts, config, policy, choice.value_source, metadata, cache.transactions, plan.holdout_as_of)
    components = scorer.model_outputs(holdout)
    metrics = holdout_metrics(components, holdout, parts.training_set, config.churn_horizon_days)
    metrics.update(choice.metrics)
    metrics["value_spearman"] = metrics[VALUE_SOURCE_METRICS[choice.value_source]]
    outputs = {c: components[c].to_numpy(dtype=float) for c in components.columns}
    frequency = holdout["frequency"].to_numpy(dtype=float)
    purchases = holdout["holdout_purchases"].to_numpy(dtype=float)
    spend = holdout["holdout_net_spend"].to_numpy(dtype=float)
    intervals = prediction_intervals(outputs, frequency, parts.clv_model.params_, choice.interval_levels)
    metrics.update(interval_coverage(intervals, purchases, spend))
    rate_sd = choice.interval_levels.get(RATE_SD_KEY, 0.0)
    metrics.update(pit_coverage(outputs, frequency, parts.clv_model.params_, purchases, spend, rate_sd))
    metadata["metrics"] = {k: metrics[k] for k in HEADLINE_METRICS if k in metrics}
    return Evaluation(parts, components, metrics, scorer)


def btyd_as_of_dates(plan: OutOfTimePlan) -> tuple[pd.Timestamp, ...]:
    """The as-of dates of a run's BTYD fits: the inner holdout's (E-2H), the out-of-time (E-H), production (E)."""
    return (inner_as_of(plan), plan.holdout_as_of, plan.data_end)


def train(
    transactions: pd.DataFrame,
    *,
    settings: Any = None,
    as_of: str | pd.Timestamp | None = None,
    churn_horizon_days: int | None = None,
    experiment: str | None = None,
    force_promote: bool = False,
    tracking_uri: str | None = None,
    registered_model_name: str | None = None,
    config: TrainingConfig | None = None,
    policy: TargetingPolicy | None = None,
    uplift_choice: UpliftChoice | None = None,
    purchase_counts: PurchaseCounter | None = None,
) -> TrainResult:
    """Train, evaluate out of time, track in MLflow, register and gate a Patron model.

    Values not given come from `settings` (default: `patron.settings.get_settings()`). `uplift_choice`
    (from `training.campaign_learning.learn_uplift`) puts its per-customer uplift model, when chosen, in
    the production scorer and its held-out comparison in the run. `purchase_counts`, when
    `transactions` is a sample of a larger log, gives every BTYD purchase fit (the menu's at E-2H,
    the out-of-time one at E-H, the production one at E) the whole log's (frequency, recency, T)
    rows; everything else is fitted on `transactions`.
    """
    import mlflow

    from models.pyfunc import log_scorer
    from training.tracking import configure_tracking, ensure_experiment

    if settings is None:
        from patron.settings import get_settings

        settings = get_settings()
    config = config or TrainingConfig.from_settings(settings, churn_horizon_days=churn_horizon_days)
    policy = policy or TargetingPolicy.from_settings(settings)
    experiment = experiment or settings.experiment_name
    model_name = registered_model_name or settings.registered_model_name
    tracking_uri = configure_tracking(tracking_uri or settings.resolved_tracking_uri())

    plan, transactions, fingerprint, cache, holdout = _design(transactions, config, as_of)
    if purchase_counts is not None:
        cache.add_purchase_counts(purchase_counts(btyd_as_of_dates(plan), config.time_unit_days))
    choice = choose_on_inner_holdout(cache, plan, config)
    config = choice.config_for(config)
    base_metadata = {
        "trained_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "model_name": model_name,
        "model_version": "",
        "btyd_model": choice.btyd_model,
        "churn_model": choice.churn_level,
        "value_source": choice.value_source,
        "choice_reasons": choice.reasons,
        "interval_levels": choice.interval_levels,
        "data_fingerprint": fingerprint,
        "plan": plan.to_dict(),
    }
    evaluation = _evaluate_out_of_time(cache, plan, holdout, config, policy, choice, base_metadata)
    metrics = evaluation.metrics
    base_metadata["metrics"] = {k: metrics[k] for k in HEADLINE_METRICS if k in metrics}
    value_source = choice.value_source
    evaluation_parts, components, evaluation_scorer = evaluation.parts, evaluation.components, evaluation.scorer
    production_parts = fit_parts(cache, plan.data_end, plan.production_snapshots, config, choice.btyd_model)

    # 5. tracking, registry, gate
    experiment_id = ensure_experiment(experiment, tracking_uri)
    with mlflow.start_run(experiment_id=experiment_id, run_name=f"train-{plan.data_end.date()}") as run:
        run_id = run.info.run_id
        scorer = assemble_scorer(
            production_parts,
            config,
            policy,
            value_source,
            {**base_metadata, "data_end": plan.data_end.date().isoformat(), "run_id": run_id, "role": "production"},
            cache.transactions,
            plan.data_end,
        )
        if uplift_choice is not None:
            scorer.uplift_model = uplift_choice.model
            scorer.metadata["uplift_learner"] = uplift_choice.summary()
        params: dict[str, Any] = {
            **config.to_params(),
            **_btyd_params(scorer),
            "value_source": value_source,
            "registered_model_name": model_name,
            "data_rows": fingerprint["rows"],
            "data_customers": fingerprint["customers"],
            "data_first_timestamp": fingerprint["first_timestamp"],
            "data_last_timestamp": fingerprint["last_timestamp"],
            "data_sha256": fingerprint["sha256"],
            "data_end": plan.data_end.date().isoformat(),
            "holdout_as_of": plan.holdout_as_of.date().isoformat(),
            "evaluation_snapshots": ",".join(d.date().isoformat() for d in plan.evaluation_snapshots),
            "production_snapshots": ",".join(d.date().isoformat() for d in plan.production_snapshots),
            "churn_features": len(scorer.churn_features),
            "churn_training_rows": len(production_parts.training_set),
            "force_promote": force_promote,
            **{f"version_{k}": v for k, v in package_versions().items()},
        }
        for name, reason in choice.btyd_failures.items():
            params[f"btyd_{name}_failure"] = reason[:MAX_PARAM_CHARS]
        params["churn_model"] = choice.churn_level
        params["churn_booster_level"] = choice.booster_level  # the blend's LightGBM, when the blend is chosen
        params.update({f"choice_{k}": v[:MAX_PARAM_CHARS] for k, v in choice.reasons.items()})
        params.update({f"interval_level_{k}": v for k, v in choice.interval_levels.items()})
        mlflow.log_params(params)
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        mlflow.log_dict(package_versions(), "package_versions.json")
        mlflow.log_dict({"churn_features": scorer.churn_features}, "churn_features.json")
        log_uplift(policy, uplift_choice)  # which uplift figures are measured on past campaigns (patron train --campaigns)
        _log_plots(evaluation_parts, components, holdout)
        with tempfile.TemporaryDirectory() as tmp:
            evaluation_dir = evaluation_scorer.save(Path(tmp) / EVALUATION_SCORER_PATH)
            mlflow.log_artifacts(str(evaluation_dir), EVALUATION_SCORER_PATH)
            scorer_dir = scorer.save(Path(tmp) / "scorer")
            info = log_scorer(scorer, scorer_dir, registered_model_name=model_name)
        model_version = str(info.registered_model_version)
        scorer.metadata["model_version"] = model_version
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
        client.set_model_version_tag(model_name, model_version, TAG_DATA_END, plan.data_end.date().isoformat())
        set_alias(model_name, CANDIDATE_ALIAS, model_version, tracking_uri)
        decision = promote_if_better(
            model_name,
            model_version,
            metrics["churn_auc"],
            {name: metrics[f"baseline_{name}_churn_auc"] for name in ("recency", "palive", "rfm")},
            Holdout(
                features=holdout,
                as_of=plan.holdout_as_of,
                time_unit_days=config.time_unit_days,
                horizon_days=config.churn_horizon_days,
                transactions=transactions,
            ),
            candidate_data_end=plan.data_end,
            tolerance=settings.promotion_tolerance,
            force=force_promote,
            tracking_uri=tracking_uri,
        )
        mlflow.set_tags(
            {
                "model_version": model_version,
                "promotion": decision.label,
                "promotion_reason": decision.reason,
                "force_promote": str(bool(force_promote)).lower(),
            }
        )
        if decision.champion_auc is not None:
            mlflow.log_metric("champion_churn_auc", decision.champion_auc)
    return TrainResult(
        run_id=run_id,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        model_name=model_name,
        model_version=model_version,
        plan=plan,
        metrics=metrics,
        params=params,
        decision=decision,
        scorer=scorer,
        btyd_model=choice.btyd_model,
        value_source=value_source,
        choice=choice,
    )
