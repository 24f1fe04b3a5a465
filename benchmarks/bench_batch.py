"""Batch scoring benchmark: 1M generated customers (~5M transactions) scored end to end.

`patron score` runs as a child process (load Parquet -> validate -> features -> score -> write), so
its wall time and peak RSS are the command's own, not this script's data generation.

    .venv/bin/python benchmarks/bench_batch.py                      # 1M customers
    .venv/bin/python benchmarks/bench_batch.py --customers 100000   # quicker

Targets (issue 5): under 45 s and under 4 GB on the 2-core machine.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_setup import generate, train_model  # noqa: E402


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_score(args: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run `patron score` once: (wall seconds, peak RSS in GB of the child, its output)."""
    start = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"patron score failed:\n{done.stdout}\n{done.stderr}")
    # Linux reports the largest waited-for child's peak RSS, in KiB; this script starts no other child.
    peak_kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return wall, peak_kib / 1024**2, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and model here (reused).")
    parser.add_argument("--rerun", action="store_true", help="Score twice and check the bytes are identical.")
    options = parser.parse_args()

    folder = options.workdir or Path(tempfile.mkdtemp(prefix="bench_batch_"))
    folder.mkdir(parents=True, exist_ok=True)
    model = train_model(folder, options.train_customers, options.seed + 1)
    data_path = folder / f"score_{options.customers}.parquet"
    transactions = generate(options.customers, options.seed, data_path)
    n_rows = len(transactions)
    as_of = pd.Timestamp(transactions["timestamp"].max()).date().isoformat()
    del transactions

    out = folder / "scores.parquet"
    patron = str(Path(sys.executable).with_name("patron"))
    args = [patron, "score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out)]
    env = {**os.environ, "PATRON_TRACKING_URI": model.tracking_uri, "PATRON_MODEL_URI": model.model_uri}
    wall, peak_gb, output = run_score(args, env)
    print(output.strip())
    scored = pd.read_parquet(out, columns=["customer_id"])
    print(f"\nscored {len(scored):,} customers ({n_rows:,} transactions): wall {wall:.1f} s, peak RSS {peak_gb:.2f} GB")
    if options.rerun:
        first = sha256(out)
        wall2, _, _ = run_score(args, env)
        print(f"rerun: wall {wall2:.1f} s, byte-identical: {sha256(out) == first}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"| {options.customers:,} | {n_rows:,} | {wall:.1f} s | {peak_gb:.2f} GB |")


if __name__ == "__main__":
    main()
