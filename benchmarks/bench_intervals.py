"""What the prediction intervals add to batch scoring: `models.intervals.prediction_intervals` on N
customers' BTYD outputs, beside the BTYD outputs themselves (`models.scorer.btyd_outputs`) in the same run.

Customers come from a BG/NBD model fitted on a generated log, tiled to N rows with varied RFM.
Usage: .venv/bin/python benchmarks/bench_intervals.py [--customers 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO)]

from features import build_features  # noqa: E402
from features.synthetic import generate_transactions  # noqa: E402
from models.clv import CLVModel  # noqa: E402
from models.intervals import RATE_SD_KEY, prediction_intervals  # noqa: E402
from models.scorer import btyd_outputs  # noqa: E402


def main() -> None:
    """Time the BTYD outputs and the intervals on the same customers; print seconds and the ratio."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    transactions = generate_transactions(20_000, seed=3).transactions
    features = build_features(transactions, as_of=transactions["timestamp"].max().normalize(), time_unit_days=1)
    model = CLVModel(model="bgnbd").fit(features)
    rng = np.random.default_rng(0)
    big = features.iloc[rng.integers(0, len(features), args.customers)].reset_index(drop=True)
    big["T"] = big["T"] + rng.integers(0, 30, len(big))  # vary RFM so few rows are exact copies
    frequency = big["frequency"].to_numpy(dtype=float)
    for _ in range(args.repeats):
        started = time.perf_counter()
        outputs = btyd_outputs(model, big, 90, 365)
        btyd_seconds = time.perf_counter() - started
        arrays = {c: outputs[c].to_numpy() for c in outputs}
        started = time.perf_counter()
        intervals = prediction_intervals(arrays, frequency, model.params_, {RATE_SD_KEY: 0.1})  # with the calendar shock
        interval_seconds = time.perf_counter() - started
        print(  # noqa: T201
            f"{args.customers:,} customers: BTYD outputs {btyd_seconds:.2f} s, intervals {interval_seconds:.2f} s "
            f"({len(intervals)} columns), ratio {interval_seconds / btyd_seconds:.2f}"
        )


if __name__ == "__main__":
    main()
