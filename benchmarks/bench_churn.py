"""Churn model variants against the simple baselines, out of time, on CDNOW and Online Retail.

Run: .venv/bin/python benchmarks/bench_churn.py [--data cdnow retail] [--threads 1] [--experiments]

Everything goes through training's own functions: `training.split.plan_out_of_time` lays out the
design (features at E-H, labels from (E-H, E]; training snapshots at E-2H, E-2H-30d, ...),
`training.fit` builds the stacked, point-in-time training sets (BTYD outputs from the model fitted at
the anchor, as `fit_parts` does) and the churn model (`churn_model` with config overrides, fitted with
the validation split grouped by customer), `training.evaluate` computes the metrics and the baselines,
`training.menu.btyd_menu_choice` picks the BTYD model as `patron train` does.

Variants, each adding one step to the one before:

1. plain LightGBM on RFM + simple behaviour features (orders, money, returns, windows), one snapshot;
2. + stacked training snapshots (the training default: 4, 30 days apart);
3. + rhythm features (days since last, tenure, gap mean/std, overdue ratio, gap trend, last gap, the
   gap before it, days since last / longest gap);
4. + BTYD outputs as features (P(alive), expected purchases, order value, CLV);
5. + monotone constraints (training.fit.CHURN_MONOTONE);
6. + regularisation tuned out of time: the grid is scored on an inner holdout one horizon earlier
   (features at E-2H, labels (E-2H, E-H]), so the reported holdout is never used to choose;
T. for reference, 5 with training's current default boosting parameters (what `patron train` fits).

`--experiments` adds candidate improvements on top of variant 6 (see EXPERIMENTS) and T refitted
with four other seeds. Beside each variant: the paired bootstrap of its AUC gain over the best
baseline, and the AUC of the raw booster score (a difference is what the calibration map's ties
cost in ranking).
Results and the command's output are recorded in benchmarks/RESULTS.md ("Churn and value models vs
baselines").
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features import load_transactions
from features.datasets import CDNOW_MAPPING, ONLINE_RETAIL_MAPPING
from features.pipeline import RHYTHM_COLUMNS
from models.scorer import BTYD_COLUMNS, btyd_outputs
from training.evaluate import baseline_churn_scores, churn_metrics, rfm_score
from training.fit import (
    FeatureCache,
    TrainingConfig,
    churn_model,
    clv_model,
    model_inputs,
    stacked_training_set,
)
from training.menu import btyd_menu_choice, inner_as_of
from training.split import SNAPSHOT_COLUMN, OutOfTimePlan, plan_out_of_time, snapshot_dates

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO_ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
ONLINE_RETAIL_MAP = ONLINE_RETAIL_MAPPING
CDNOW_MAP = CDNOW_MAPPING

RHYTHM = RHYTHM_COLUMNS
# The gap features of experiment 7c, now production features (`features.behaviour.rhythm_features`).
GAPS = ("gap_last", "gap_previous", "overdue_longest_ratio")
BTYD = tuple(BTYD_COLUMNS)
NO_CONSTRAINTS: dict[str, Any] = {"monotone_constraints": None}
AGE = ("T", "tenure_days")
DENSE_SNAPSHOTS, DENSE_STEP_DAYS = 8, 15
# Regularisation grid of variant 6 (num_leaves, min_child_samples, reg_lambda); the first is the default.
GRID = (
    {"num_leaves": 15, "min_child_samples": 50, "reg_lambda": 1.0},
    {"num_leaves": 7, "min_child_samples": 200, "reg_lambda": 10.0},
    {"num_leaves": 15, "min_child_samples": 200, "reg_lambda": 10.0},
    {"num_leaves": 31, "min_child_samples": 400, "reg_lambda": 10.0},
    {"num_leaves": 4, "min_child_samples": 100, "reg_lambda": 1.0},
    {"num_leaves": 7, "min_child_samples": 800, "reg_lambda": 30.0},
)
BASELINE_LABELS = {"recency": "baseline: recency (days since last)", "rfm": "baseline: RFM score", "palive": "baseline: 1 - P(alive)"}

logger = logging.getLogger("bench_churn")


# --- data -----------------------------------------------------------------------------------------


def load_cdnow() -> pd.DataFrame:
    """CDNOW_master.txt from the lifetimes package, validated."""
    import importlib.resources

    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
    return load_transactions(path, mapping=CDNOW_MAP, date_format="%Y%m%d").transactions


def load_retail() -> pd.DataFrame:
    """UCI Online Retail from ../shared/data, validated (returns are the negative-amount lines)."""
    if not ONLINE_RETAIL.exists():
        raise SystemExit(f"Online Retail not found at {ONLINE_RETAIL}")
    return load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAP).transactions


DATASETS: dict[str, Callable[[], pd.DataFrame]] = {"cdnow": load_cdnow, "retail": load_retail}


# --- the prepared design of one data set -------------------------------------------------------------


@dataclass
class Prepared:
    """Holdout and stacked training frames (features, labels, BTYD outputs) of one out-of-time design."""

    plan: OutOfTimePlan
    btyd_model: str
    holdout: pd.DataFrame
    training: pd.DataFrame
    inner_holdout: pd.DataFrame
    inner_training: pd.DataFrame
    extra: dict[str, Any] = field(default_factory=dict)


def labelled_with_btyd(cache: FeatureCache, anchor: pd.Timestamp, config: TrainingConfig, model: str) -> tuple[pd.DataFrame, Any]:
    """Labelled features at `anchor` with the outputs of a BTYD model fitted on data up to `anchor`."""
    fitted = clv_model(config, model).fit(cache.get(anchor, labels=False))
    features = cache.get(anchor)
    outputs = btyd_outputs(fitted, features, config.churn_horizon_days, config.clv_horizon_days)
    return pd.concat([features, outputs], axis=1), fitted


def prepare(transactions: pd.DataFrame, config: TrainingConfig) -> Prepared:
    """Plan the design as `patron train` does and build every frame the variants need once.

    As in `training.fit.fit_parts`, the BTYD model is fitted at the anchor (the holdout date) and its
    outputs are the BTYD features of every training snapshot.
    """
    h = config.churn_horizon_days
    plan = plan_out_of_time(transactions, h, config.churn_snapshots, config.snapshot_step_days)
    cache = FeatureCache(transactions, h, config.time_unit_days)
    chosen = btyd_menu_choice(cache.get(inner_as_of(plan)), config)
    holdout, fitted = labelled_with_btyd(cache, plan.holdout_as_of, config, chosen)
    training = stacked_training_set(cache, plan.evaluation_snapshots, config, fitted)
    # The same design one horizon earlier: its "holdout" (E-2H, labels up to E-H) chooses the grid point.
    inner = plan_out_of_time(
        transactions, h, config.churn_snapshots, config.snapshot_step_days, as_of=plan.holdout_as_of
    )
    inner_holdout, inner_fitted = labelled_with_btyd(cache, inner.holdout_as_of, config, chosen)
    inner_training = stacked_training_set(cache, inner.evaluation_snapshots, config, inner_fitted)
    earliest = plan.data_start + pd.Timedelta(days=h)
    dense = snapshot_dates(plan.holdout_as_of, h, DENSE_SNAPSHOTS, DENSE_STEP_DAYS, earliest)
    extra = {"inner": inner, "dense_training": stacked_training_set(cache, dense, config, fitted)}
    return Prepared(plan, chosen, holdout, training, inner_holdout, inner_training, extra)


# --- variants -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """One churn model setup: which snapshots and feature groups, and churn model overrides.

    `drop` removes columns; `dense` trains on DENSE_SNAPSHOTS snapshots DENSE_STEP_DAYS apart instead of
    the default; `blend` scores by the mean percentile rank of the model's risk and the RFM score's;
    `seed` replaces the run's seed (the spread over seeds is the noise of the fit itself).
    """

    name: str
    stacked: bool
    groups: tuple[str, ...]
    params: dict[str, Any]
    tune: bool = False
    drop: tuple[str, ...] = ()
    dense: bool = False
    blend: bool = False
    seed: int | None = None


def columns_for(frame: pd.DataFrame, groups: tuple[str, ...]) -> list[str]:
    """Model inputs of the frame restricted to the feature groups (base = RFM and simple behaviour)."""
    allowed_extra = set()
    if "rhythm" in groups:
        allowed_extra |= set(RHYTHM)
    if "btyd" in groups:
        allowed_extra |= set(BTYD)
    extra_features = {c for c in frame.columns if c.startswith("x_")}
    columns = model_inputs(frame.drop(columns=["customer_id"], errors="ignore"))
    columns += sorted(c for c in extra_features if c not in columns)
    return [
        c
        for c in columns
        if (c not in RHYTHM and c not in BTYD and not c.startswith("x_"))
        or c in allowed_extra
        or (c.startswith("x_") and c.split("__")[0][2:] in groups)
    ]


def training_rows(prepared_training: pd.DataFrame, stacked: bool) -> pd.DataFrame:
    """All stacked snapshots, or only the newest one (E-2H)."""
    if stacked:
        return prepared_training
    newest = prepared_training[SNAPSHOT_COLUMN].max()
    return prepared_training.loc[prepared_training[SNAPSHOT_COLUMN] == newest]


@dataclass
class Outcome:
    """Holdout metrics of one fitted variant."""

    metrics: dict[str, float]
    raw_auc: float
    trees: int
    seconds: float
    params: dict[str, Any]
    model: Any
    holdout_prob: np.ndarray


def fit_and_score(
    train: pd.DataFrame, holdout: pd.DataFrame, columns: list[str], config: TrainingConfig, params: dict[str, Any]
) -> Outcome:
    """Fit `training.fit.churn_model` with the overrides (validation split by customer, as training does)
    and measure it on the holdout."""
    run_config = replace(config, churn_params=dict(params))
    start = time.perf_counter()
    model = churn_model(run_config, columns, len(train)).fit(
        train[columns].astype(float),
        train["churned"].to_numpy(dtype=int),
        groups=train["customer_id"].to_numpy(),
    )
    seconds = time.perf_counter() - start
    x = holdout[columns].astype(float)
    y = holdout["churned"].to_numpy(dtype=int)
    prob = model.predict_proba(x)
    raw = model.booster_.predict(x.to_numpy(), raw_score=True)
    return Outcome(churn_metrics(y, prob), float(roc_auc_score(y, raw)), model.best_iteration_, seconds, params, model, prob)


def tuned_params(prepared: Prepared, variant: Variant, config: TrainingConfig) -> tuple[dict[str, Any], list[str]]:
    """The grid point with the best inner-holdout AUC (E-2H design; the reported holdout is unseen)."""
    train = training_rows(prepared.inner_training, variant.stacked)
    columns = columns_for(train, variant.groups)
    notes = []
    best: tuple[float, dict[str, Any]] | None = None
    for point in GRID:
        params = {**variant.params, **point}
        outcome = fit_and_score(train, prepared.inner_holdout, columns, config, params)
        auc = outcome.metrics["churn_auc"]
        notes.append(f"{point} -> inner AUC {auc:.4f} ({outcome.trees} trees)")
        logger.info("grid %s: inner AUC %.4f", point, auc)
        if best is None or auc > best[0]:
            best = (auc, params)
    assert best is not None
    return best[1], notes


def run_variant(prepared: Prepared, variant: Variant, config: TrainingConfig) -> tuple[Outcome, list[str]]:
    """Fit one variant on the evaluation snapshots and measure it on the holdout."""
    notes: list[str] = []
    if variant.seed is not None:
        config = replace(config, seed=variant.seed)
    params = dict(variant.params)
    if variant.tune:
        params, notes = tuned_params(prepared, variant, config)
    train = prepared.extra["dense_training"] if variant.dense else training_rows(prepared.training, variant.stacked)
    columns = [c for c in columns_for(train, variant.groups) if c not in variant.drop]
    outcome = fit_and_score(train, prepared.holdout, columns, config, params)
    if variant.blend:
        holdout = prepared.holdout
        rank = pd.Series(outcome.holdout_prob).rank(pct=True).to_numpy()
        rfm_rank = pd.Series(-rfm_score(holdout)).rank(pct=True).to_numpy()
        blended = (rank + rfm_rank) / 2
        outcome.metrics = churn_metrics(holdout["churned"].to_numpy(dtype=int), blended, outcome.holdout_prob)
        outcome.holdout_prob = blended
    logger.info("%s: AUC %.4f on %d rows x %d features", variant.name, outcome.metrics["churn_auc"], len(train), len(columns))
    return outcome, notes


VARIANTS = (
    Variant("1 plain: RFM + simple behaviour, one snapshot", False, (), NO_CONSTRAINTS),
    Variant("2 + stacked snapshots", True, (), NO_CONSTRAINTS),
    Variant("3 + rhythm features", True, ("rhythm",), NO_CONSTRAINTS),
    Variant("4 + BTYD outputs", True, ("rhythm", "btyd"), NO_CONSTRAINTS),
    Variant("5 + monotone constraints", True, ("rhythm", "btyd"), {}),
    Variant("6 + tuned regularisation", True, ("rhythm", "btyd"), {}, tune=True),
    # What `patron train` fits today: 5 with training's own boosting parameters (TrainingConfig defaults).
    Variant("T training's defaults (5 + TrainingConfig().churn_params)", True, ("rhythm", "btyd"), dict(TrainingConfig().churn_params)),
)


# --- candidate improvements (--experiments) ---------------------------------------------------------


def add_experiment_features(prepared: Prepared, transactions: pd.DataFrame, config: TrainingConfig) -> None:
    """Extra feature columns `x_<group>__<name>` on every frame, computed point in time per snapshot.

    - `season`: purchase days in the window one year before the coming horizon, (as_of-365, as_of-365+H],
      and the share of the customer's purchase days in the calendar quarter that the horizon starts in;
    - `btydp0`: BTYD's P(no purchase in the horizon) = 1 - P(alive) (1 - P(X(H)=0 | alive)), with
      P(X(H)=0 | alive) approximated by exp(-E[X(H) | alive]);
    - `rfm`: the classic RFM score (training.evaluate.rfm_score, quintiles within the snapshot).
    """
    frames = {
        "holdout": prepared.holdout,
        "training": prepared.training,
        "inner_holdout": prepared.inner_holdout,
        "inner_training": prepared.inner_training,
        "dense_training": prepared.extra["dense_training"],
    }
    holdout_dates = {"holdout": prepared.plan.holdout_as_of, "inner_holdout": prepared.extra["inner"].holdout_as_of}
    bought = transactions.loc[~transactions["is_return"], ["customer_id", "timestamp"]]
    days = (
        bought.assign(day=bought["timestamp"].dt.normalize())[["customer_id", "day"]]
        .drop_duplicates()
        .sort_values(["customer_id", "day"], kind="stable")
    )
    for key, frame in frames.items():
        if SNAPSHOT_COLUMN in frame.columns:
            as_of = pd.to_datetime(frame[SNAPSHOT_COLUMN])
            ids = frame["customer_id"].astype(str)
        else:
            as_of = pd.Series(holdout_dates[key], index=frame.index)
            ids = pd.Series(frame.index.astype(str), index=frame.index)
        extra = _experiment_columns(days, ids, as_of, frame, config.churn_horizon_days)
        for column in extra.columns:
            frame[column] = extra[column].to_numpy()


def _experiment_columns(
    days: pd.DataFrame, ids: pd.Series, as_of: pd.Series, frame: pd.DataFrame, horizon: int
) -> pd.DataFrame:
    """The extra features of rows (customer id, as-of date), vectorised over a join of purchase days."""
    rows = pd.DataFrame({"customer_id": ids.to_numpy(), "as_of": as_of.to_numpy(), "row": np.arange(len(ids))})
    joined = rows.merge(days, on="customer_id", how="left")
    joined = joined.loc[joined["day"] <= joined["as_of"]]
    age = (joined["as_of"] - joined["day"]).dt.days
    n = len(rows)
    last_year = (age >= 365 - horizon) & (age < 365)
    season = np.bincount(joined["row"][last_year], minlength=n).astype(float)
    quarter = joined["day"].dt.quarter.to_numpy() == (joined["as_of"] + pd.Timedelta(days=1)).dt.quarter.to_numpy()
    in_quarter = np.bincount(joined["row"][quarter], minlength=n).astype(float)
    total = np.bincount(joined["row"], minlength=n).astype(float)
    out = pd.DataFrame(
        {
            "x_season__last_year_window": season,
            "x_season__quarter_share": np.divide(in_quarter, total, out=np.zeros(n), where=total > 0),
        }
    )
    out["x_rfm__score"] = rfm_score(frame)
    p0 = _btyd_no_purchase(frame, horizon)
    if p0 is not None:
        out["x_btydp0__p_no_purchase"] = p0
    return out


def _btyd_no_purchase(frame: pd.DataFrame, horizon: int) -> np.ndarray | None:
    """BTYD's P(no purchase in the horizon), from its expected purchases and P(alive) (moment match).

    The posterior of an alive customer's rate is Gamma(r+x, alpha+T); without the parameters of each
    snapshot's fit at hand, P(X=0 | alive) is approximated by exp(-E[X | alive]) (Poisson).
    """
    if "p_alive" not in frame.columns:
        return None
    p_alive = frame["p_alive"].to_numpy(dtype=float)
    expected = frame["expected_purchases_churn_horizon"].to_numpy(dtype=float)
    alive_expected = np.divide(expected, p_alive, out=np.zeros_like(expected), where=p_alive > 0)
    return 1.0 - p_alive * (1.0 - np.exp(-alive_expected))


BEST = ("rhythm", "btyd")
EXPERIMENTS = (
    ("7a 6 + seasonality (last-year window, quarter share)", {"groups": (*BEST, "season")}),
    ("7b 6 + BTYD P(no purchase in H)", {"groups": (*BEST, "btydp0")}),
    ("7c 6 without the gap features (last gap, gap before it, days since last / longest gap)", {"groups": BEST, "drop": GAPS}),
    ("7d 6 + RFM score as a feature", {"groups": (*BEST, "rfm")}),
    ("7e 6 without age features (T, tenure_days)", {"groups": BEST, "drop": AGE}),
    (f"7f 6 on {DENSE_SNAPSHOTS} snapshots {DENSE_STEP_DAYS} days apart", {"groups": BEST, "dense": True}),
    ("7g 6: mean rank of its risk and the RFM score", {"groups": BEST, "blend": True}),
    ("7h 6 without age, 7f snapshots, 7g blend", {"groups": BEST, "drop": AGE, "dense": True, "blend": True}),
    *(
        (f"S{seed} T with seed {seed}", {"groups": BEST, "params": dict(TrainingConfig().churn_params), "seed": seed})
        for seed in (1, 2, 3, 4)
    ),
)


# --- report -----------------------------------------------------------------------------------------


def baseline_rows(prepared: Prepared) -> list[tuple[str, dict[str, float]]]:
    """The baselines' rank metrics on the holdout (their probability maps do not change a rank)."""
    holdout = prepared.holdout
    y = holdout["churned"].to_numpy(dtype=int)
    rows = []
    for name, score in baseline_churn_scores(holdout, holdout["p_alive"].to_numpy(dtype=float)).items():
        prob = pd.Series(score).rank(pct=True).to_numpy()  # any monotone map: only the rank metrics are read
        rows.append((BASELINE_LABELS[name], churn_metrics(y, score, prob)))
    return rows


BOOTSTRAP_RESAMPLES = 200


def bootstrap_gain(y: np.ndarray, score: np.ndarray, baseline: np.ndarray, resamples: np.ndarray) -> tuple[float, float, float]:
    """Paired bootstrap of AUC(score) - AUC(baseline) over holdout customers: 5%, 95% quantiles, P(> 0)."""
    gains = np.array([roc_auc_score(y[i], score[i]) - roc_auc_score(y[i], baseline[i]) for i in resamples])
    return float(np.quantile(gains, 0.05)), float(np.quantile(gains, 0.95)), float((gains > 0).mean())


def markdown_table(data: str, prepared: Prepared, results: list[tuple[str, Outcome]]) -> str:
    """One data set's variants and baselines as a markdown table."""
    plan = prepared.plan
    h = prepared.holdout
    lines = [
        f"**{data}**: holdout features at {plan.holdout_as_of.date()}, labels ({plan.holdout_as_of.date()}, "
        f"{plan.data_end.date()}]; {len(h):,} customers, churn rate {h['churned'].mean():.3f}; "
        f"training snapshots {', '.join(str(d.date()) for d in plan.evaluation_snapshots)} "
        f"({len(prepared.training):,} rows stacked); BTYD model {prepared.btyd_model}",
        "",
        "| variant | ROC-AUC | PR-AUC | lift@10% | AUC gain over best baseline [90% CI], P(gain > 0) "
        "| AUC of raw score | trees | fit s |",
        "|---|---:|---:|---:|---|---:|---:|---:|",
    ]
    y = h["churned"].to_numpy(dtype=int)
    baselines = baseline_churn_scores(h, h["p_alive"].to_numpy(dtype=float))
    best_name, best_baseline = "", 0.0
    for (name, _), (label, m) in zip(baselines.items(), baseline_rows(prepared), strict=True):
        if m["churn_auc"] > best_baseline:
            best_name, best_baseline = name, m["churn_auc"]
        lines.append(f"| {label} | {m['churn_auc']:.4f} | {m['churn_pr_auc']:.4f} | {m['churn_lift_10']:.3f} | | | | |")
    resamples = np.random.default_rng(0).integers(0, len(y), size=(BOOTSTRAP_RESAMPLES, len(y)))
    for name, o in results:
        m = o.metrics
        mark = "**" if m["churn_auc"] > best_baseline else ""
        low, high, p_gain = bootstrap_gain(y, o.holdout_prob, baselines[best_name], resamples)
        lines.append(
            f"| {name} | {mark}{m['churn_auc']:.4f}{mark} | {m['churn_pr_auc']:.4f} | {m['churn_lift_10']:.3f} "
            f"| {m['churn_auc'] - best_baseline:+.4f} [{low:+.4f}, {high:+.4f}], {p_gain:.2f} "
            f"| {o.raw_auc:.4f} | {o.trees} | {o.seconds:.1f} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Run every variant on the chosen data sets and print markdown tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=sorted(DATASETS), default=["cdnow", "retail"])
    parser.add_argument("--threads", type=int, default=1, help="LightGBM threads (1 is fastest on a shared 2-core box)")
    parser.add_argument("--experiments", action="store_true", help="also run the candidate improvements")
    parser.add_argument("--only", nargs="*", type=int, help="run only these variants (1-6; 7 = training's defaults)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for noisy in ("models", "training", "features"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    config = TrainingConfig(n_threads=args.threads)

    print(f"# machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    for data in args.data:
        start = time.perf_counter()
        transactions = DATASETS[data]()
        prepared = prepare(transactions, config)
        logger.info("%s prepared in %.1f s", data, time.perf_counter() - start)
        results: list[tuple[str, Outcome]] = []
        tuned: dict[str, Any] = {}
        for number, variant in enumerate(VARIANTS, start=1):
            if args.only and number not in args.only:
                continue
            outcome, notes = run_variant(prepared, variant, config)
            results.append((variant.name, outcome))
            if variant.tune:
                tuned = outcome.params
                for note in notes:
                    print(f"# {data} grid: {note}")
        if args.experiments:
            add_experiment_features(prepared, transactions, config)
            params = tuned or {}
            for name, options in EXPERIMENTS:
                outcome, _ = run_variant(prepared, Variant(name, True, **{"params": params, **options}), config)
                results.append((name, outcome))
        print()
        print(markdown_table(data, prepared, results))
        if tuned:
            print(f"\ntuned ({data}): {tuned}")
        print(f"\n# {data}: {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
