"""The training entry point: out-of-time evaluation, production refit, MLflow tracking, registry, gate.

`train(transactions)` runs the whole pipeline of `patron train`:

1. plan the out-of-time design (`training.split`) and fingerprint the data;
2. fit each BTYD model of the menu on data up to E-H and measure it on (E-H, E]; `btyd_model="auto"`
   keeps the one with the lowest holdout purchase MAE (near-ties: the best churn AUC of 1 - P(alive));
3. fit the out-of-time scorer (BTYD up to E-H, churn and value models on snapshots E-2H, E-2H-step, ...)
   and measure it and the baselines on the holdout; the better value ranking becomes `value_score`;
4. refit everything on all data up to E (the production scorer);
5. log params, metrics, plots, fingerprint and versions to MLflow; log the production scorer as the
   pyfunc, register it with alias `candidate`, and run the promotion gate (`training.registry`).
"""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelError
from models.clv import CLVModel
from models.scorer import PatronScorer
from targeting.policy import TargetingPolicy
from training import plots
from training.evaluate import (
    baseline_churn_scores,
    btyd_metrics,
    choose_value_source,
    holdout_metrics,
)
from training.fingerprint import data_fingerprint
from training.fit import (
    BTYD_MENU,
    FeatureCache,
    FittedParts,
    TrainingConfig,
    assemble_scorer,
    clv_model,
    fit_parts,
)
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

logger = logging.getLogger(__name__)

PACKAGES = ("patron", "mlflow", "lightgbm", "lifetimes", "scikit-learn", "pandas", "numpy", "scipy")
MAE_TIE_TOLERANCE = 0.01
MAX_PARAM_CHARS = 5000  # MLflow caps a param value at 6,000 characters
HEADLINE_METRICS = ("churn_auc", "churn_pr_auc", "churn_lift_10", "clv_spearman", "value_spearman")


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


@dataclass
class MenuResult:
    """The BTYD menu measured on the holdout: metrics, the chosen model and its fit at E-H."""

    metrics: dict[str, float]
    chosen: str
    failures: dict[str, str]
    fitted: dict[str, CLVModel]


def package_versions() -> dict[str, str]:
    """Installed versions of Patron and the libraries its models depend on."""
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def choose_btyd_model(metrics: dict[str, float], names: list[str]) -> str:
    """The menu model with the lowest holdout purchase MAE; near-ties go to the better churn AUC.

    "Near" is within `MAE_TIE_TOLERANCE` (relative) of the best MAE: on Online Retail the three models
    reach the same no-dropout limit and their MAEs differ in the ninth digit, while their P(alive)
    rank churners very differently.
    """
    best = min(metrics[f"btyd_{n}_purchase_mae"] for n in names)
    close = [n for n in names if metrics[f"btyd_{n}_purchase_mae"] <= best * (1 + MAE_TIE_TOLERANCE)]
    return max(close, key=lambda n: (np.nan_to_num(metrics.get(f"btyd_{n}_churn_auc", 0.0)), -names.index(n)))


def measure_btyd_menu(cache: FeatureCache, plan: OutOfTimePlan, config: TrainingConfig) -> MenuResult:
    """Fit every BTYD model of the menu on data up to E-H; holdout purchase MAE and churn AUC of each."""
    holdout = cache.get(plan.holdout_as_of)
    metrics: dict[str, float] = {}
    failures: dict[str, str] = {}
    fitted_models: dict[str, CLVModel] = {}
    for name in BTYD_MENU:
        try:
            fitted = clv_model(config, name).fit(holdout)
        except Exception as exc:  # a menu entry that cannot be fitted is reported, not fatal
            failures[name] = f"{type(exc).__name__}: {exc}"
            logger.warning("BTYD model %s failed on the calibration data: %s", name, exc)
            continue
        if getattr(fitted, "model_", name) != name:
            failures[name] = f"fell back to {fitted.model_}: {'; '.join(fitted.fallbacks_)}"
            continue
        fitted_models[name] = fitted
        predicted = fitted.predict(holdout, horizon_days=config.churn_horizon_days)
        metrics.update(
            btyd_metrics(name, predicted["expected_purchases"].to_numpy(), predicted["p_alive"].to_numpy(), holdout)
        )
    fitted_names = [n for n in BTYD_MENU if f"btyd_{n}_purchase_mae" in metrics]
    if config.btyd_model != "auto":
        chosen = config.btyd_model
    elif fitted_names:
        chosen = choose_btyd_model(metrics, fitted_names)
    else:
        chosen = "bgnbd"  # every menu model fell back; let CLVModel's own fallbacks decide
    logger.info("BTYD model: %s (menu: %s)", chosen, {n: metrics.get(f"btyd_{n}_purchase_mae") for n in BTYD_MENU})
    return MenuResult(metrics, chosen, failures, fitted_models)


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
    """Total-gain importance of the churn model's features, if it reports them."""
    try:
        return parts.churn_model.feature_importances_
    except AttributeError:
        return None


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
) -> TrainResult:
    """Train, evaluate out of time, track in MLflow, register and gate a Patron model.

    Values not given come from `settings` (default: `patron.settings.get_settings()`).
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

    # 1. design and data
    plan = plan_out_of_time(
        transactions, config.churn_horizon_days, config.churn_snapshots, config.snapshot_step_days, as_of
    )
    transactions = restrict_to(transactions, plan.data_end)
    fingerprint = data_fingerprint(transactions)
    cache = FeatureCache(transactions, config.churn_horizon_days, config.time_unit_days)
    holdout = cache.get(plan.holdout_as_of)
    if holdout.empty:
        raise ModelError(f"no customer has bought by the holdout date {plan.holdout_as_of.date()}")

    # 2-3. out-of-time models and their measurement
    menu = measure_btyd_menu(cache, plan, config)
    evaluation_parts = fit_parts(
        cache, plan.holdout_as_of, plan.evaluation_snapshots, config, menu.chosen, menu.fitted.get(menu.chosen)
    )
    probe = assemble_scorer(evaluation_parts, config, policy, "clv", {})
    components = probe.components(holdout)
    metrics = holdout_metrics(components, holdout, evaluation_parts.training_set)
    metrics.update(menu.metrics)
    value_source = choose_value_source(metrics)
    metrics["value_spearman"] = metrics["regressor_clv_spearman" if value_source == "regressor" else "clv_spearman"]
    trained_at = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    base_metadata = {
        "trained_at": trained_at,
        "model_name": model_name,
        "model_version": "",
        "btyd_model": menu.chosen,
        "value_source": value_source,
        "data_fingerprint": fingerprint,
        "plan": plan.to_dict(),
        "metrics": {k: metrics[k] for k in HEADLINE_METRICS if k in metrics},
    }
    evaluation_scorer = assemble_scorer(
        evaluation_parts,
        config,
        policy,
        value_source,
        {**base_metadata, "data_end": plan.holdout_as_of.date().isoformat(), "role": "out-of-time evaluation"},
        transactions,
        plan.holdout_as_of,
    )

    # 4. production refit on everything up to E
    production_parts = fit_parts(cache, plan.data_end, plan.production_snapshots, config, menu.chosen)

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
            transactions,
            plan.data_end,
        )
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
        for name, reason in menu.failures.items():
            params[f"btyd_{name}_failure"] = reason[:MAX_PARAM_CHARS]
        mlflow.log_params(params)
        mlflow.log_metrics(_finite(metrics))
        mlflow.log_dict(fingerprint, "data_fingerprint.json")
        mlflow.log_dict(package_versions(), "package_versions.json")
        mlflow.log_dict({"churn_features": scorer.churn_features}, "churn_features.json")
        _log_plots(evaluation_parts, components, holdout)
        with tempfile.TemporaryDirectory() as tmp:
            evaluation_dir = evaluation_scorer.save(Path(tmp) / EVALUATION_SCORER_PATH)
            mlflow.log_artifacts(str(evaluation_dir), EVALUATION_SCORER_PATH)
            scorer_dir = scorer.save(Path(tmp) / "scorer")
            info = log_scorer(scorer, scorer_dir, production_parts.anchor_features, registered_model_name=model_name)
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
        btyd_model=menu.chosen,
        value_source=value_source,
    )
