"""Diagnostic plots of a training run; each returns a matplotlib Figure to log as an artifact.

Figures are built with the object-oriented API (`Figure`, rendered by Agg on save), not pyplot: no
display, no global backend switch at import, and nothing to close afterwards.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from sklearn.metrics import precision_recall_curve, roc_curve

_SIZE = (6.4, 4.4)


def _axes(figsize: tuple[float, float] = _SIZE) -> tuple[Figure, Axes]:
    fig = Figure(figsize=figsize)
    return fig, fig.subplots()


def purchases_by_frequency(
    calibration_frequency: np.ndarray,
    predicted_purchases: np.ndarray,
    actual_purchases: np.ndarray,
    max_frequency: int = 7,
) -> Figure:
    """Mean holdout purchases, predicted vs actual, by calibration-period repeat purchases (BG/NBD's check)."""
    freq = np.minimum(np.asarray(calibration_frequency, dtype=float).round(), max_frequency)
    table = (
        pd.DataFrame({"f": freq, "predicted": predicted_purchases, "actual": actual_purchases})
        .groupby("f")[["predicted", "actual"]]
        .mean()
    )
    fig, ax = _axes()
    ax.plot(table.index, table["actual"], marker="o", label="actual")
    ax.plot(table.index, table["predicted"], marker="s", linestyle="--", label="predicted")
    ax.set_xlabel(f"repeat purchases in calibration (capped at {max_frequency})")
    ax.set_ylabel("mean purchases in holdout")
    ax.set_title("Holdout purchases by calibration frequency")
    ax.legend()
    fig.tight_layout()
    return fig


def decile_chart(predicted: np.ndarray, actual: np.ndarray, label: str = "spend") -> Figure:
    """Mean predicted vs actual holdout value per decile of the prediction (decile 10 = top)."""
    pred = np.asarray(predicted, dtype=float)
    rank = pd.Series(pred).rank(method="first", pct=True).to_numpy()
    decile = np.clip(np.ceil(rank * 10), 1, 10).astype(int)
    table = (
        pd.DataFrame({"decile": decile, "predicted": pred, "actual": np.asarray(actual, dtype=float)})
        .groupby("decile")[["predicted", "actual"]]
        .mean()
    )
    fig, ax = _axes()
    x = table.index.to_numpy()
    ax.bar(x - 0.2, table["predicted"], width=0.4, label="predicted")
    ax.bar(x + 0.2, table["actual"], width=0.4, label="actual")
    ax.set_xticks(x)
    ax.set_xlabel("decile of predicted value (10 = top)")
    ax.set_ylabel(f"mean holdout {label}")
    ax.set_title(f"Predicted vs actual holdout {label} by decile")
    ax.legend()
    fig.tight_layout()
    return fig


def roc_curves(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """ROC curves of the churn model and the baselines on the holdout."""
    fig, ax = _axes()
    for name, score in scores.items():
        fpr, tpr, _ = roc_curve(y_true, score)
        ax.plot(fpr, tpr, label=name)
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("Churn ROC (holdout)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig


def pr_curves(y_true: np.ndarray, scores: dict[str, np.ndarray]) -> Figure:
    """Precision-recall curves of the churn model and the baselines on the holdout."""
    fig, ax = _axes()
    for name, score in scores.items():
        precision, recall, _ = precision_recall_curve(y_true, score)
        ax.plot(recall, precision, label=name)
    ax.axhline(float(np.mean(y_true)), color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.set_title("Churn precision-recall (holdout)")
    ax.legend(loc="lower left")
    fig.tight_layout()
    return fig


def reliability_curve(y_true: np.ndarray, prob: np.ndarray, n_bins: int = 10) -> Figure:
    """Observed churn rate against mean predicted probability per equal-width bin."""
    p = np.clip(np.asarray(prob, dtype=float), 0, 1)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    table = pd.DataFrame({"bin": bins, "p": p, "y": np.asarray(y_true, dtype=float)}).groupby("bin")
    summary = table.agg(p=("p", "mean"), y=("y", "mean"), n=("y", "size"))
    fig, ax = _axes()
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    ax.plot(summary["p"], summary["y"], marker="o")
    ax.set_xlabel("mean predicted churn probability")
    ax.set_ylabel("observed churn rate")
    ax.set_title("Churn reliability (holdout)")
    fig.tight_layout()
    return fig


def feature_importance(importance: pd.Series, top: int = 20) -> Figure:
    """Horizontal bars of the largest feature importances (e.g. LightGBM total gain)."""
    data = importance.sort_values(ascending=False).head(top)[::-1]
    fig, ax = _axes((6.4, max(2.5, 0.28 * len(data) + 1)))
    ax.barh(data.index.astype(str), data.to_numpy(dtype=float))
    ax.set_xlabel("importance (|coefficient| of a standardised input)" if importance.name == "abs_coef" else "importance (total gain)")
    ax.set_title("Churn model feature importance")
    fig.tight_layout()
    return fig
