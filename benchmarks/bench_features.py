"""Feature pipeline speed: our RFM vs lifetimes' summary_data_from_transaction_data, side by side.

Usage: .venv/bin/python benchmarks/bench_features.py [--customers 1000000]
Generates a log (about 5 transactions per customer), checks that both RFMs match, and prints the
time of each and of the full feature build (RFM + behaviour + labels) with its peak memory, the
build measured in a fresh subprocess so its peak RSS is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

AS_OF = "2023-09-30"
HORIZON = 90


def _build_in_subprocess(path: str) -> dict:
    """Time build_features on a saved log in a fresh process; report seconds and peak RSS."""
    code = f"""
import json, resource, time
import pandas as pd
from features import build_features
tx = pd.read_parquet({path!r})
start = time.perf_counter()
features = build_features(tx, {AS_OF!r}, horizon_days={HORIZON})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": len(features), "columns": features.shape[1],
                  "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2}}))
"""
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()

    from lifetimes.utils import summary_data_from_transaction_data

    from features import build_features
    from features.synthetic import generate_transactions

    start = time.perf_counter()
    tx = generate_transactions(args.customers, seed=1).transactions
    print(f"generated {len(tx):,} transactions for {args.customers:,} customers in {time.perf_counter() - start:.1f} s")
    purchases = tx.loc[~tx["is_return"], ["customer_id", "timestamp", "amount"]]

    start = time.perf_counter()
    ours = build_features(tx, AS_OF)[["frequency", "recency", "T", "monetary_value"]]
    ours_seconds = time.perf_counter() - start
    start = time.perf_counter()
    reference = summary_data_from_transaction_data(
        purchases, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=AS_OF, freq="D"
    ).sort_index()
    lifetimes_seconds = time.perf_counter() - start
    assert list(ours.index) == list(reference.index.astype(str))
    np.testing.assert_allclose(ours.to_numpy(), reference[ours.columns].to_numpy(), rtol=1e-9, atol=1e-9)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tx.parquet")
        tx.to_parquet(path)
        build = _build_in_subprocess(path)

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"{'step':<44}{'seconds':>10}")
    print(f"{'lifetimes summary_data_from_transaction_data':<44}{lifetimes_seconds:>10.2f}")
    print(f"{'patron build_features (full, includes RFM)':<44}{ours_seconds:>10.2f}")
    print(f"speed-up of our full build over lifetimes' RFM alone: {lifetimes_seconds / ours_seconds:.1f}x (outputs equal)")
    print(
        f"full build with labels in a fresh process: {build['seconds']:.2f} s, {build['rows']:,} customers x "
        f"{build['columns']} columns, peak RSS {build['peak_rss_gb']:.2f} GB (includes reading the log)"
    )
    del resource  # imported for the subprocess's sake only


if __name__ == "__main__":
    main()
