"""BTYD purchase fits on distinct (frequency, recency, T) rows: how many rows the driver holds, and what a fit costs.

`patron train --engine spark` fits the purchase models on every customer of a source through the
distinct triples Spark counts (`jobs.spark.btyd`); the driver holds one row per distinct triple. This
prints, for CDNOW and for a generated log of `--customers` customers:

1. customers and distinct triples (the driver's rows; bounded by the log's span of days and its
   purchase counts, not by its customers; weeks divide recency and T by 7, so give as many);
2. the weighted fit's time per purchase model (`CLVModel.fit(features, purchase_counts=...)`, the
   fit both engines make) and, on CDNOW, lifetimes' plain per-customer fit with the largest relative
   difference of the parameters (the claim: equal to 1e-6);
3. with `--spark`, the Spark count pass on `local[2]` (the generated log read back from Parquet).

    .venv/bin/python benchmarks/bench_btyd_counts.py                          # CDNOW + 200,000 generated
    .venv/bin/python benchmarks/bench_btyd_counts.py --customers 1000000 --spark

The machine may be shared: each figure is printed with the load average.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def load() -> str:
    """The 1, 5 and 15 minute load averages."""
    return "load " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def timed(function: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = function(*args, **kwargs)
    return out, time.perf_counter() - start


def distinct_rows(features: pd.DataFrame, label: str) -> pd.DataFrame:
    """Print the customers and their distinct triples; the counts."""
    from models.clv import purchase_counts

    counts = purchase_counts(features)
    print(f"{label}: {len(features):,} customers -> {len(counts):,} distinct triples "
          f"({len(counts) / len(features):.1%})  [{load()}]")
    return counts


def fits(features: pd.DataFrame, counts: pd.DataFrame, label: str, plain: bool) -> None:
    """Time the weighted fit per model; with `plain`, compare lifetimes' per-customer fit."""
    from lifetimes import BetaGeoFitter, ModifiedBetaGeoFitter, ParetoNBDFitter

    from models.clv import MENU, CLVModel

    fitters = {"bgnbd": BetaGeoFitter, "mbgnbd": ModifiedBetaGeoFitter, "pareto": ParetoNBDFitter}
    for name in MENU:
        ours, seconds = timed(CLVModel(model=name).fit, features, purchase_counts=counts)
        line = f"{label} {name}: weighted fit on {len(counts):,} rows {seconds:.1f} s"
        if plain:
            start = {"initial_params": np.ones(4)} if name == "pareto" else {}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs, plain_seconds = timed(fitters[name]().fit, features["frequency"], features["recency"], features["T"], **start)
            worst = max(abs(ours.params_[k] / v - 1) for k, v in theirs.params_.items())
            line += f"; lifetimes per customer ({len(features):,}) {plain_seconds:.1f} s, max relative difference {worst:.1e}"
        print(f"{line}  [{load()}]")


def spark_pass(transactions: pd.DataFrame, as_of: str) -> None:
    """Time the Spark count pass on local[2] over the log written as Parquet."""
    from jobs.load import LoadOptions
    from jobs.spark.btyd import purchase_counts_with_spark
    from jobs.spark.sample import open_training_source
    from jobs.spark.session import spark_session

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "log.parquet"
        transactions.to_parquet(path, index=False)
        spark = spark_session("local[2]", app_name="bench-btyd-counts")
        with open_training_source(spark, str(path), LoadOptions()) as source:
            counted, seconds = timed(purchase_counts_with_spark, source, [pd.Timestamp(as_of)], 1)
        rows = next(iter(counted.values()))
        print(f"spark local[2] count pass: {int(rows['customers'].sum()):,} customers -> {len(rows):,} rows "
              f"in {seconds:.1f} s ({source.keyed.n_partitions} partitions)  [{load()}]")
        spark.stop()


def main() -> None:
    """Run the benchmark (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--spark", action="store_true", help="also time the Spark count pass on local[2]")
    args = parser.parse_args()

    from features import build_features
    from features.datasets import CDNOW_DATE_FORMAT, CDNOW_MAPPING, cdnow_master_path
    from features.synthetic import generate_transactions
    from jobs.load import LoadOptions, load_log

    cdnow = load_log(str(cdnow_master_path()), LoadOptions(mapping=dict(CDNOW_MAPPING), date_format=CDNOW_DATE_FORMAT))
    features = build_features(cdnow.transactions, as_of="1998-06-30")
    fits(features, distinct_rows(features, "CDNOW 1998-06-30"), "CDNOW", plain=True)

    generated = generate_transactions(args.customers, seed=args.seed).transactions
    as_of = generated["timestamp"].max().normalize().date().isoformat()
    features = build_features(generated, as_of=as_of)
    fits(features, distinct_rows(features, f"generated {as_of}"), "generated", plain=False)
    if args.spark:
        spark_pass(generated, as_of)


if __name__ == "__main__":
    main()
