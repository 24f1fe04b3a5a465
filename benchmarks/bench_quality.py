"""Model quality per data set as `patron train` measures it: inner-holdout choices, reported-holdout
figures, gain over the best simple rule with a bootstrap interval, interval coverage, training time.

For each data set (CDNOW, Online Retail, generated data with known truth) one `training.train.train`
run into a throwaway sqlite store; then:
- the menu's inner-holdout figures (features at E-2H, labels (E-2H, E-H]) and the choices they made;
- the reported holdout (features at E-H, labels (E-H, E]): churn ROC-AUC, value Spearman, coverage of
  the 80% and 90% intervals of purchases and spend over the horizon;
- the churn AUC's gain over the best simple rule (recency, 1-P(alive), RFM score) with a 90% interval
  from a bootstrap over holdout customers (`--bootstrap` resamples).
With `--before SRC` the run is repeated with the code exported at SRC (e.g. `git archive <commit>`),
in a subprocess, alternating with the current code, so both training times share the machine's load.

Usage: .venv/bin/python benchmarks/bench_quality.py [--data cdnow,retail,generated] [--seeds 42] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

REPO = Path(__file__).resolve().parents[1]

_RUN = """
import json, sys, tempfile, time, warnings
warnings.filterwarnings("ignore")
sys.path[:0] = [{src!r}, {tests!r}]
from realdata import CDNOW_MAP, ONLINE_RETAIL, ONLINE_RETAIL_MAP
from features import load_transactions
from features.datasets import cdnow_master_path
from features.synthetic import generate_transactions
from patron.settings import Settings
from training.train import train
name = {name!r}
if name == "cdnow":
    tx = load_transactions(cdnow_master_path(), mapping=CDNOW_MAP, date_format="%Y%m%d").transactions
elif name == "retail":
    tx = load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAP).transactions
else:
    tx = generate_transactions(20_000, seed=7).transactions
folder = tempfile.mkdtemp()
started = time.perf_counter()
train(tx, settings=Settings(n_threads=1, seed={seed}), tracking_uri=f"sqlite:///{{folder}}/mlflow.db", experiment=name)
print("SECONDS", time.perf_counter() - started)
"""


def time_training(src: Path, name: str, seed: int) -> float:
    """Seconds of one `train()` call with the code at `src`, in a fresh interpreter."""
    code = _RUN.format(src=str(src), tests=str(REPO / "tests"), name=name, seed=seed)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(next(line for line in done.stdout.splitlines() if line.startswith("SECONDS")).split()[1])


def load(name: str):
    """The data set's transactions through the contract."""
    sys.path[:0] = [str(REPO), str(REPO / "tests")]
    from realdata import CDNOW_MAP, ONLINE_RETAIL, ONLINE_RETAIL_MAP

    from features import load_transactions
    from features.datasets import cdnow_master_path
    from features.synthetic import generate_transactions

    if name == "cdnow":
        return load_transactions(cdnow_master_path(), mapping=CDNOW_MAP, date_format="%Y%m%d").transactions
    if name == "retail":
        return load_transactions(ONLINE_RETAIL, mapping=ONLINE_RETAIL_MAP).transactions
    return generate_transactions(20_000, seed=7).transactions


def auc_gain_interval(y: np.ndarray, model: np.ndarray, rule: np.ndarray, n: int, seed: int) -> tuple[float, float, float]:
    """The AUC gain of `model` over `rule` and its 90% bootstrap interval over customers."""
    rng = np.random.default_rng(seed)
    gains = []
    for _ in range(n):  # resamples, not customers: each resample's AUC is vectorised
        idx = rng.integers(0, len(y), len(y))
        if y[idx].min() == y[idx].max():
            continue
        gains.append(roc_auc_score(y[idx], model[idx]) - roc_auc_score(y[idx], rule[idx]))
    low, high = np.quantile(gains, [0.05, 0.95])
    return roc_auc_score(y, model) - roc_auc_score(y, rule), float(low), float(high)


def quality(name: str, seed: int, n_bootstrap: int) -> dict[str, object]:
    """One tracked training run on a data set and its figures."""
    from patron.settings import Settings
    from training.evaluate import BASELINES, VALUE_SOURCE_METRICS, baseline_churn_scores
    from training.menu import BTYD_MENU, CHURN_CHOICES
    from training.train import train

    transactions = load(name)
    with tempfile.TemporaryDirectory() as folder:
        started = time.perf_counter()
        result = train(
            transactions,
            settings=Settings(n_threads=1, seed=seed),
            tracking_uri=f"sqlite:///{folder}/mlflow.db",
            experiment=name,
        )
        seconds = time.perf_counter() - started
        m = result.metrics
        best_rule = max(BASELINES, key=lambda b: m[f"baseline_{b}_churn_auc"])
        figures: dict[str, object] = {
            "data": name,
            "seed": seed,
            "train_seconds": round(seconds, 1),
            "btyd_model": result.btyd_model,
            "churn_model": result.choice.churn_level,
            "value_source": result.value_source,
            "inner_churn_auc": {name: m.get(f"inner_churn_{name}_auc") for name in CHURN_CHOICES},
            "inner_value_spearman": {s: m.get(f"inner_{name}") for s, name in VALUE_SOURCE_METRICS.items()},
            "inner_btyd_purchase_mae": {b: m.get(f"btyd_{b}_purchase_mae") for b in BTYD_MENU},
            "churn_auc": m["churn_auc"],
            "best_rule": best_rule,
            "best_rule_auc": m[f"baseline_{best_rule}_churn_auc"],
            "value_spearman": m["value_spearman"],
            "clv_spearman": m["clv_spearman"],
            "regressor_spearman": m.get("regressor_clv_spearman"),
            "spend_rate_spearman": m.get("spend_rate_clv_spearman"),
            "coverage": {k: m[k] for k in sorted(m) if k.startswith("interval_coverage_")},
            "pit_coverage": {k: m[k] for k in sorted(m) if k.startswith("interval_pit_coverage_")},
            "interval_levels": result.choice.interval_levels,
        }
        if n_bootstrap:
            from models.scorer import PatronScorer
            from training.fit import FeatureCache

            holdout = FeatureCache(transactions, result.plan.horizon_days, 1).get(result.plan.holdout_as_of)
            evaluation = _evaluation_scorer(result, PatronScorer)
            components = evaluation.model_outputs(holdout).reindex(holdout.index)
            y = holdout["churned"].to_numpy(dtype=int)
            rule = baseline_churn_scores(holdout, components["p_alive"].to_numpy(dtype=float))[best_rule]
            model = components["churn_probability"].to_numpy(dtype=float)
            gain, low, high = auc_gain_interval(y, model, rule, n_bootstrap, seed)
            figures["gain_over_best_rule"] = [round(gain, 4), round(low, 4), round(high, 4)]
            figures["coverage_what_if"] = _coverage_what_if(components, holdout, result, evaluation.clv_model.params_)
    return figures


def _coverage_what_if(components, holdout, result, params) -> dict[str, dict[str, float]]:
    """Holdout coverage at other levels than the calibrated ones (nominal, never below nominal), with and without the shock."""
    from models.intervals import RATE_SD_KEY, interval_coverage, prediction_intervals

    calibrated = {k: v for k, v in result.choice.interval_levels.items() if k != RATE_SD_KEY}
    nominal = {k: int(k.rsplit("_", 1)[1]) / 100 for k in calibrated}
    shock = {RATE_SD_KEY: result.choice.interval_levels.get(RATE_SD_KEY, 0.0)}
    rules = {
        "nominal": nominal,
        "nominal_with_shock": {**nominal, **shock},
        "calibrated_without_shock": calibrated,
        "never_below_nominal": {**{k: max(v, nominal[k]) for k, v in calibrated.items()}, **shock},
    }
    outputs = {c: components[c].to_numpy(dtype=float) for c in components.columns}
    frequency = holdout["frequency"].to_numpy(dtype=float)
    out = {}
    for rule, levels in rules.items():
        intervals = prediction_intervals(outputs, frequency, params, levels)
        coverage = interval_coverage(
            intervals, holdout["holdout_purchases"].to_numpy(dtype=float), holdout["holdout_net_spend"].to_numpy(dtype=float)
        )
        out[rule] = {k.removeprefix("interval_coverage_"): round(v, 3) for k, v in coverage.items()}
    return out


def _evaluation_scorer(result, scorer_class):
    """The out-of-time scorer (fitted up to E-H), read back from the run's artifacts."""
    import mlflow

    from training.registry import EVALUATION_SCORER_PATH

    client = mlflow.MlflowClient(result.tracking_uri)
    with tempfile.TemporaryDirectory() as tmp:
        path = client.download_artifacts(result.run_id, EVALUATION_SCORER_PATH, tmp)
        return scorer_class.load(path)


def main() -> None:
    """Parse options, run the data sets, print one JSON line per run and the time ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="cdnow,retail,generated")
    parser.add_argument("--seeds", default="42")
    parser.add_argument("--bootstrap", type=int, default=200)
    parser.add_argument("--before", type=Path, help="a source tree of the previous code, to time side by side")
    parser.add_argument("--time-only", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    for name in args.data.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            if args.before is not None:
                before = time_training(args.before, name, seed)
                after = time_training(REPO, name, seed)
                print(json.dumps({"data": name, "seed": seed, "before_s": round(before, 1), "after_s": round(after, 1),
                                  "ratio": round(after / before, 2)}), flush=True)
            if not args.time_only:
                print(json.dumps(quality(name, seed, args.bootstrap), default=float), flush=True)


if __name__ == "__main__":
    main()
