"""Feature pipeline speed: our RFM against lifetimes' summary_data_from_transaction_data, side by side.

Usage: .venv/bin/python benchmarks/bench_features.py [--customers 1000000] [--seed 1]

Generates a log (about 5.7 transactions per customer, returns included), then in one run:
1. times `features.rfm_summary` and `lifetimes.utils.summary_data_from_transaction_data(freq='D')`
   on the same purchase rows and asserts the outputs match (rtol 1e-9);
2. times our RFM again on the same rows shuffled (the general path that sorts and codes the ids;
   a log from `load_transactions` or the generator is already in customer, time order);
3. times the full build (RFM + behaviour + labels) in a fresh process, with its peak memory
   (VmHWM, including reading the log; not ru_maxrss, which a child inherits from this process
   across exec) and the RSS after reading, so the build's own share shows.
Also reported: generation and `load_transactions` (validation) time on the same log.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

AS_OF = "2023-09-30"
HORIZON = 90
RFM = ["frequency", "recency", "T", "monetary_value"]
REPO = Path(__file__).resolve().parents[1]

_BUILD = """
import json, sys, time
sys.path.insert(0, {repo!r})
import pandas as pd
from features import build_features

def status_gb(field):
    with open("/proc/self/status") as status:
        kb = next(int(line.split()[1]) for line in status if line.startswith(field))
    return kb / 1024**2

tx = pd.read_parquet({path!r})
after_read = status_gb("VmRSS:")
start = time.perf_counter()
features = build_features(tx, {as_of!r}, horizon_days={horizon})
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rows": len(features), "columns": features.shape[1],
                  "rss_after_read_gb": after_read,
                  "peak_rss_gb": status_gb("VmHWM:")}}))
"""


def cpu_model() -> str:
    """The CPU model name from /proc/cpuinfo (or the platform's processor string)."""
    try:
        with open("/proc/cpuinfo") as info:
            return next(line.split(":", 1)[1].strip() for line in info if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def build_in_subprocess(path: str) -> dict:
    """Time build_features on a saved log in a fresh process; report seconds and memory."""
    code = _BUILD.format(repo=str(REPO), path=path, as_of=AS_OF, horizon=HORIZON)
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def timed(function, *args, **kwargs):
    """(result, seconds) of one call."""
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))

    from lifetimes.utils import summary_data_from_transaction_data

    from features import load_transactions, rfm_summary
    from features.synthetic import generate_transactions

    data, generate_seconds = timed(generate_transactions, args.customers, seed=args.seed)
    tx = data.transactions
    print(f"generated {len(tx):,} transactions for {args.customers:,} customers in {generate_seconds:.1f} s")
    purchases = tx.loc[~tx["is_return"], ["customer_id", "timestamp", "amount"]].reset_index(drop=True)

    ours, ours_seconds = timed(rfm_summary, purchases, AS_OF)
    reference, lifetimes_seconds = timed(
        summary_data_from_transaction_data,
        purchases, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=AS_OF, freq="D",
    )
    reference = reference.sort_index()
    assert list(ours.index) == list(reference.index.astype(str)), "customers differ"
    np.testing.assert_allclose(ours[RFM].to_numpy(), reference[RFM].to_numpy(), rtol=1e-9, atol=1e-9)
    shuffled = purchases.sample(frac=1.0, random_state=0).reset_index(drop=True)
    unsorted, unsorted_seconds = timed(rfm_summary, shuffled, AS_OF)
    np.testing.assert_allclose(unsorted[RFM].to_numpy(), ours[RFM].to_numpy(), rtol=1e-9, atol=1e-9)

    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "tx.parquet")
        tx.to_parquet(path)
        loaded, load_seconds = timed(load_transactions, path)
        assert loaded.summary["rows_rejected"] == 0
        del loaded
        build = build_in_subprocess(path)

    load = os.getloadavg()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores (nproc), python {platform.python_version()}, "
          f"load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    print(f"{len(purchases):,} purchase rows, {len(ours):,} customers with a purchase by {AS_OF}; outputs equal")
    print(f"{'step':<58}{'seconds':>9}")
    print(f"{'lifetimes summary_data_from_transaction_data (freq=D)':<58}{lifetimes_seconds:>9.2f}")
    print(f"{'patron rfm_summary, log in customer/time order':<58}{ours_seconds:>9.2f}")
    print(f"{'patron rfm_summary, same rows shuffled':<58}{unsorted_seconds:>9.2f}")
    print(f"{'generate_transactions':<58}{generate_seconds:>9.2f}")
    print(f"{'load_transactions (read Parquet + validate + sort)':<58}{load_seconds:>9.2f}")
    print(f"{'build_features with labels (fresh process)':<58}{build['seconds']:>9.2f}")
    print(f"RFM speed-up over lifetimes: {lifetimes_seconds / ours_seconds:.1f}x in order, "
          f"{lifetimes_seconds / unsorted_seconds:.1f}x shuffled")
    print(f"full build: {build['rows']:,} customers x {build['columns']} columns; peak RSS {build['peak_rss_gb']:.2f} GB "
          f"(RSS after reading the log {build['rss_after_read_gb']:.2f} GB)")


if __name__ == "__main__":
    main()
