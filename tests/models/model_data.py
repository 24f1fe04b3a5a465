"""Real data for the model tests: CDNOW (inside lifetimes) and UCI Online Retail (../shared/data)."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
import pandas as pd
from lifetimes.utils import summary_data_from_transaction_data

REPO_ROOT = Path(__file__).resolve().parents[2]
ONLINE_RETAIL = (
    REPO_ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
)
CDNOW_DIR = importlib.resources.files("lifetimes") / "datasets"


def read_cdnow(name: str) -> pd.DataFrame:
    """One of lifetimes' raw CDNOW files as customer_id, date, amount."""
    if name == "CDNOW_sample.txt":
        names, skip = ["customer_id", "id", "date", "number_of_cds", "dollar_value"], 0
    else:
        names, skip = ["customer_id", "date", "number_of_cds", "dollar_value"], 1
    tx = pd.read_csv(
        CDNOW_DIR / name,
        sep=r"\s+",
        header=None,
        skiprows=skip,
        names=names,
        dtype={"customer_id": str, "date": str},
    )
    return pd.DataFrame(
        {
            "customer_id": tx["customer_id"],
            "date": pd.to_datetime(tx["date"], format="%Y%m%d"),
            "amount": tx["dollar_value"],
        }
    )


def rfm(transactions: pd.DataFrame, end: str, time_unit_days: int = 1) -> pd.DataFrame:
    """lifetimes' RFM (days, then divided by the time unit) of purchases up to `end`."""
    summary = summary_data_from_transaction_data(
        transactions, "customer_id", "date", "amount", observation_period_end=end, freq="D"
    )
    summary["recency"] /= time_unit_days
    summary["T"] /= time_unit_days
    return summary


def churn_frame(
    transactions: pd.DataFrame, as_of: str, horizon_days: int
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """Simple behaviour features as of `as_of`, the churn label and holdout spend over the horizon.

    A stand-in for features.build_features with a few of its columns (same names and meaning).
    """
    cut = pd.Timestamp(as_of)
    past = transactions[transactions["date"] <= cut]
    future = transactions[
        (transactions["date"] > cut)
        & (transactions["date"] <= cut + pd.Timedelta(days=horizon_days))
    ]
    features = rfm(past, as_of)
    days_ago = (cut - past["date"]).dt.days
    grouped = past.assign(days_ago=days_ago).groupby("customer_id")
    features["days_since_last"] = features["T"] - features["recency"]
    features["order_count"] = grouped["date"].nunique().reindex(features.index).astype(float)
    features["gross_spend"] = grouped["amount"].sum().reindex(features.index)
    for window in (90, 180, 365):
        recent = past[days_ago <= window].groupby("customer_id")
        features[f"orders_{window}d"] = (
            recent["date"].nunique().reindex(features.index).fillna(0.0).astype(float)
        )
        features[f"spend_{window}d"] = recent["amount"].sum().reindex(features.index).fillna(0.0)
    features["avg_order_value"] = features["gross_spend"] / features["order_count"]
    features["gap_mean"] = np.where(
        features["frequency"] > 0, features["recency"] / features["frequency"].clip(lower=1), np.nan
    )
    features["overdue_ratio"] = features["days_since_last"] / features["gap_mean"]
    bought = future.groupby("customer_id")["amount"].sum()
    churned = (~features.index.isin(bought.index)).astype(int)
    spend = bought.reindex(features.index).fillna(0.0)
    return (
        features.astype(float),
        pd.Series(churned, index=features.index, name="churned"),
        spend.rename("holdout_net_spend"),
    )


def with_a_more_recent_purchase(features: pd.DataFrame, shift: float = 30.0) -> pd.DataFrame:
    """The same customers with their last purchase `shift` days later, all else equal."""
    recent = features.copy()
    recent["recency"] += shift
    recent["days_since_last"] -= shift
    recent["overdue_ratio"] *= recent["days_since_last"] / features["days_since_last"]
    return recent
