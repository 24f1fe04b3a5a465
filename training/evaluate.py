"""Holdout metrics: churn classification, value ranking and BTYD purchase counts, plus the baselines.

Every metric is a plain float keyed by the name MLflow logs it under (`churn_auc`, `clv_spearman`, ...);
a baseline's metrics carry its prefix (`baseline_recency_churn_auc`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.isotonic import IsotonicRegression
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from models.value import spend_rate

BASELINES = ("recency", "palive", "rfm")
CHURN_METRICS = ("churn_auc", "churn_pr_auc", "churn_brier", "churn_logloss", "churn_lift_10", "churn_ece")
VALUE_METRICS = ("clv_spearman", "clv_gini", "clv_top10_capture", "clv_top20_capture")
_EPS = 1e-6


# --- churn ---------------------------------------------------------------------------------------


def lift_at(y_true: np.ndarray, score: np.ndarray, share: float = 0.10) -> float:
    """Churn rate among the top `share` by score divided by the overall churn rate."""
    y = np.asarray(y_true, dtype=float)
    s = np.asarray(score, dtype=float)
    base = y.mean()
    if base <= 0:
        return 0.0
    k = max(1, int(np.ceil(share * len(y))))
    top = np.argsort(-s, kind="stable")[:k]
    return float(y[top].mean() / base)


def expected_calibration_error(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> float:
    """Weighted mean |mean predicted - observed rate| over equal-width probability bins."""
    y = np.asarray(y_true, dtype=float)
    p = np.clip(np.asarray(prob, dtype=float), 0.0, 1.0)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    pred_sum = np.bincount(bins, weights=p, minlength=n_bins)
    true_sum = np.bincount(bins, weights=y, minlength=n_bins)
    filled = count > 0
    gap = np.abs(pred_sum[filled] - true_sum[filled]) / count[filled]
    return float(np.sum(gap * count[filled]) / len(y))


def churn_metrics(y_true: np.ndarray, score: np.ndarray, prob: np.ndarray | None = None, prefix: str = "") -> dict[str, float]:
    """ROC-AUC, PR-AUC and lift of a risk score; Brier, log loss and ECE of its probability.

    `score` ranks customers (higher = more likely to churn); `prob` is its calibrated probability
    (default: `score` itself, which must then lie in [0, 1]).
    """
    y = np.asarray(y_true, dtype=int)
    s = np.asarray(score, dtype=float)
    p = np.clip(np.asarray(s if prob is None else prob, dtype=float), _EPS, 1 - _EPS)
    two_classes = 0 < y.sum() < len(y)
    metrics = {
        "churn_auc": float(roc_auc_score(y, s)) if two_classes else float("nan"),
        "churn_pr_auc": float(average_precision_score(y, s)) if two_classes else float("nan"),
        "churn_brier": float(brier_score_loss(y, p)),
        "churn_logloss": float(log_loss(y, p, labels=[0, 1])),
        "churn_lift_10": lift_at(y, s, 0.10),
        "churn_ece": expected_calibration_error(y, p),
    }
    return {f"{prefix}{name}": value for name, value in metrics.items()}


def calibrate_score(train_score: np.ndarray, train_y: np.ndarray, score: np.ndarray) -> np.ndarray:
    """Turn a baseline's rank score into a probability by isotonic regression on training labels.

    A rule such as "days since last purchase" has no probability of its own; learning the monotone map
    on the training snapshot (never the holdout) lets it be compared on Brier, log loss and ECE too.
    """
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip", increasing=True)
    iso.fit(np.asarray(train_score, dtype=float), np.asarray(train_y, dtype=float))
    return np.asarray(iso.predict(np.asarray(score, dtype=float)), dtype=float)


# --- baselines -----------------------------------------------------------------------------------


def quintile(values: pd.Series) -> np.ndarray:
    """Quintile 1..5 of each value (ties share a quintile; higher value, higher quintile)."""
    pct = values.rank(method="average", pct=True).to_numpy(dtype=float)
    return np.clip(np.ceil(pct * 5), 1, 5)


def rfm_score(features: pd.DataFrame) -> np.ndarray:
    """Classic RFM score 3..15: sum of recency (recent = 5), frequency and monetary quintiles."""
    r = quintile(-features["days_since_last"].astype(float))
    f = quintile(features["frequency"].astype(float))
    m = quintile(features["gross_spend"].astype(float))
    return r + f + m


def baseline_churn_scores(features: pd.DataFrame, p_alive: np.ndarray) -> dict[str, np.ndarray]:
    """Risk scores of the simple rules (higher = more likely to churn): recency, 1 - P(alive), -RFM."""
    return {
        "recency": features["days_since_last"].to_numpy(dtype=float),
        "palive": 1.0 - np.asarray(p_alive, dtype=float),
        "rfm": -rfm_score(features),
    }


def baseline_value_scores(features: pd.DataFrame, p_alive: np.ndarray) -> dict[str, np.ndarray]:
    """Value rankings of the simple rules (higher = more valuable), including past net spend."""
    risk = baseline_churn_scores(features, p_alive)
    scores = {name: -score for name, score in risk.items()}
    scores["spend"] = features["net_spend"].to_numpy(dtype=float)
    return scores


# --- value ranking -------------------------------------------------------------------------------


def normalized_gini(actual: np.ndarray, predicted: np.ndarray) -> float:
    """Gini of `actual` ordered by `predicted`, divided by the Gini of the perfect ordering."""
    a = np.asarray(actual, dtype=float)
    p = np.asarray(predicted, dtype=float)

    def gini(order_by: np.ndarray) -> float:
        order = np.lexsort((np.arange(len(a)), -order_by))
        cum = np.cumsum(a[order])
        total = cum[-1] if len(cum) else 0.0
        if total == 0:
            return 0.0
        n = len(a)
        return float(cum.sum() / total - (n + 1) / 2.0) / n

    best = gini(a)
    return float(gini(p) / best) if best != 0 else 0.0


def top_capture(actual: np.ndarray, predicted: np.ndarray, share: float) -> float:
    """Share of total actual value earned by the top `share` of customers by prediction."""
    a = np.asarray(actual, dtype=float)
    total = a.sum()
    if total <= 0:
        return 0.0
    k = max(1, int(np.ceil(share * len(a))))
    top = np.argsort(-np.asarray(predicted, dtype=float), kind="stable")[:k]
    return float(a[top].sum() / total)


def value_metrics(actual_spend: np.ndarray, predicted: np.ndarray, prefix: str = "") -> dict[str, float]:
    """Spearman, normalized Gini and top-10%/20% capture of a value ranking against holdout spend."""
    a = np.asarray(actual_spend, dtype=float)
    p = np.asarray(predicted, dtype=float)
    rho = spearmanr(p, a).statistic if np.ptp(p) > 0 and np.ptp(a) > 0 else 0.0
    metrics = {
        "clv_spearman": float(np.nan_to_num(rho)),
        "clv_gini": normalized_gini(a, p),
        "clv_top10_capture": top_capture(a, p, 0.10),
        "clv_top20_capture": top_capture(a, p, 0.20),
    }
    return {f"{prefix}{name}": value for name, value in metrics.items()}


def aggregate_metrics(
    predicted_purchases: np.ndarray,
    actual_purchases: np.ndarray,
    predicted_spend: np.ndarray,
    actual_spend: np.ndarray,
) -> dict[str, float]:
    """Totals over the holdout: predicted vs actual purchases and spend, and per-customer purchase MAE."""
    pp = np.asarray(predicted_purchases, dtype=float)
    ap = np.asarray(actual_purchases, dtype=float)
    return {
        "clv_predicted_purchases": float(pp.sum()),
        "clv_actual_purchases": float(ap.sum()),
        "clv_predicted_spend": float(np.sum(predicted_spend)),
        "clv_actual_spend": float(np.sum(actual_spend)),
        "clv_purchase_mae": float(np.mean(np.abs(pp - ap))) if len(ap) else 0.0,
    }


def btyd_metrics(name: str, expected_purchases: np.ndarray, p_alive: np.ndarray, holdout: pd.DataFrame) -> dict[str, float]:
    """A BTYD model of the menu on the holdout: purchase MAE and churn AUC of 1 - P(alive)."""
    y = holdout["churned"].to_numpy(dtype=int)
    actual = holdout["holdout_purchases"].to_numpy(dtype=float)
    two_classes = 0 < y.sum() < len(y)
    return {
        f"btyd_{name}_purchase_mae": float(np.mean(np.abs(np.asarray(expected_purchases, float) - actual))),
        f"btyd_{name}_churn_auc": float(roc_auc_score(y, 1.0 - np.asarray(p_alive, float))) if two_classes else float("nan"),
    }


# --- the holdout report of one run ----------------------------------------------------------------


def holdout_metrics(
    components: pd.DataFrame,
    holdout: pd.DataFrame,
    training_set: pd.DataFrame,
    horizon_days: int | None = None,
) -> dict[str, float]:
    """Every holdout metric of a run: the churn model, its baselines, value rankings and aggregates.

    `components` are the out-of-time scorer's outputs on the holdout (`PatronScorer.components`),
    `holdout` the features at E-H with labels, `training_set` the stacked snapshots the churn model
    learned from (with `p_alive`), on which the baselines' probability maps are fitted; with
    `horizon_days` the past spend rate over that horizon is measured as a value source too.
    """
    comp = components.reindex(holdout.index)
    y = holdout["churned"].to_numpy(dtype=int)
    spend = holdout["holdout_net_spend"].to_numpy(dtype=float)
    metrics = churn_metrics(y, comp["churn_probability"].to_numpy(dtype=float))

    train_y = training_set["churned"].to_numpy(dtype=int)
    train_scores = baseline_churn_scores(training_set, training_set["p_alive"].to_numpy(dtype=float))
    for name, score in baseline_churn_scores(holdout, comp["p_alive"].to_numpy(dtype=float)).items():
        prob = calibrate_score(train_scores[name], train_y, score)
        metrics.update(churn_metrics(y, score, prob, prefix=f"baseline_{name}_"))

    metrics.update(value_metrics(spend, comp["clv"].to_numpy(dtype=float)))
    if "regressor_value" in comp:
        metrics.update(value_metrics(spend, comp["regressor_value"].to_numpy(dtype=float), prefix="regressor_"))
    if horizon_days is not None:
        rate = spend_rate(holdout["net_spend"].to_numpy(dtype=float), holdout["tenure_days"].to_numpy(dtype=float), horizon_days)
        metrics.update(value_metrics(spend, rate, prefix="spend_rate_"))
    for name, score in baseline_value_scores(holdout, comp["p_alive"].to_numpy(dtype=float)).items():
        metrics.update(value_metrics(spend, score, prefix=f"baseline_{name}_"))

    expected = comp["expected_purchases_churn_horizon"].to_numpy(dtype=float)
    metrics.update(
        aggregate_metrics(
            expected,
            holdout["holdout_purchases"].to_numpy(dtype=float),
            expected * comp["expected_order_value"].to_numpy(dtype=float),
            spend,
        )
    )
    metrics["holdout_customers"] = float(len(holdout))
    metrics["holdout_churn_rate"] = float(y.mean()) if len(y) else 0.0
    return metrics


VALUE_SOURCE_METRICS = {
    "clv": "clv_spearman",
    "regressor": "regressor_clv_spearman",
    "spend_rate": "spend_rate_clv_spearman",
}
"""Each value source (`PatronScorer.value_source`) and the Spearman metric it is judged by."""
VALUE_SOURCE_LABELS = {"clv": "BTYD clv", "regressor": "regressor", "spend_rate": "spend rate"}


def choose_value_source(metrics: dict[str, float]) -> str:
    """The value source whose ranking has the best Spearman with holdout spend (ties: the first listed)."""
    scores = {source: metrics.get(name, float("-inf")) for source, name in VALUE_SOURCE_METRICS.items()}
    return max(scores, key=lambda source: scores[source])
