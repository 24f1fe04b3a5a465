"""CLV predictions on 1M customers: CLVModel.predict against lifetimes' customer_lifetime_value.

Run: .venv/bin/python benchmarks/bench_clv.py [--customers 1000000]

Customers are drawn with replacement from CDNOW's RFM in days (integer recency and T, as
features.build_features produces), and once more with their ages jittered by up to a day so that
no two customers share (frequency, T): the worst case for our evaluation per distinct pair.
lifetimes' time is measured once per data set (it loops month by month).
"""

from __future__ import annotations

import argparse
import importlib.resources
import os
import platform
import time
import warnings

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data

from models.clv import CLVModel


def cdnow_rfm() -> pd.DataFrame:
    """CDNOW's RFM in days over its full 18 months."""
    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
    tx = pd.read_csv(
        path,
        sep=r"\s+",
        header=None,
        skiprows=1,
        names=["customer_id", "date", "cds", "amount"],
        dtype={"date": str},
    )
    tx["date"] = pd.to_datetime(tx["date"], format="%Y%m%d")
    return summary_data_from_transaction_data(
        tx, "customer_id", "date", "amount", observation_period_end="1998-06-30"
    )


def lifetimes_clv(model: CLVModel, data: pd.DataFrame) -> pd.Series:
    """lifetimes' CLV (time in months, freq='D': 30-day months) with our fitted parameters."""
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({key: model.params_[key] for key in ("r", "alpha", "a", "b")})
    bgf.predict = bgf.conditional_expected_number_of_purchases_up_to_time
    ggf = GammaGammaFitter()
    ggf.params_ = pd.Series({key: model.params_[key] for key in ("p", "q", "v")})
    return ggf.customer_lifetime_value(
        bgf,
        data["frequency"],
        data["recency"],
        data["T"],
        data["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq="D",
    )


def main() -> None:
    """Time both on the two data sets and print them side by side."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    n = parser.parse_args().customers
    warnings.simplefilter("ignore")
    base = cdnow_rfm()
    model = CLVModel(model="bgnbd", clv_horizon_days=360).fit(base)
    rng = np.random.default_rng(0)
    daily = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    jitter = rng.uniform(0, 1, n)
    continuous = daily.assign(
        T=daily["T"] + jitter,
        recency=np.where(daily["frequency"] > 0, daily["recency"] + jitter, 0.0),
    )
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}"
    )
    print(f"CLV over 12 months of 30 days, BG/NBD x Gamma-Gamma, {n:,} customers")
    print(
        f"{'data':<34}{'distinct (x, T)':>16}{'CLVModel.predict':>18}{'lifetimes CLV':>15}{'max rel diff':>14}"
    )
    for name, data in (
        ("CDNOW resampled, integer days", daily),
        ("ages jittered (all distinct)", continuous),
    ):
        start = time.perf_counter()
        ours = model.predict(data, horizon_days=90)
        ours_s = time.perf_counter() - start
        start = time.perf_counter()
        theirs = lifetimes_clv(model, data) * model.margin_rate
        theirs_s = time.perf_counter() - start
        diff = np.max(
            np.abs(ours["clv"].to_numpy() - theirs.to_numpy()) / np.abs(theirs.to_numpy())
        )
        pairs = data.groupby(["frequency", "T"]).ngroups
        print(f"{name:<34}{pairs:>16,}{ours_s:>16.2f} s{theirs_s:>13.2f} s{diff:>14.1e}")
    print(
        "CLVModel.predict also returns p_alive, expected purchases (90 days) and expected order value."
    )


if __name__ == "__main__":
    main()
