"""Batch scoring benchmark: 1M generated customers (~5.7M transactions) scored end to end.

`patron score` runs as a child process (load Parquet -> validate -> features -> score -> write), so
its wall time and peak memory are the command's own, not this script's data generation. The peak
is the child's VmHWM, read by the child as it exits: `ru_maxrss` of a child also counts the memory
of this process, which it starts from (fork) before `exec`.

    .venv/bin/python benchmarks/bench_batch.py                      # 1M customers
    .venv/bin/python benchmarks/bench_batch.py --customers 100000   # quicker
    .venv/bin/python benchmarks/bench_batch.py --profile            # and where the time goes

Targets (issue 5): under 45 s and under 4 GB on the 2-core machine. The model is trained as
production trains it (`training.train.train` with default settings) on generated customers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_setup import generate, train_model  # noqa: E402

# `patron` as a child that reports its own peak resident memory when it exits.
CHILD = """
import atexit, os, sys

def report_peak():
    with open("/proc/self/status") as status:
        peak = next(line for line in status if line.startswith("VmHWM:"))
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        out.write(peak.split()[1])  # kB

atexit.register(report_peak)
from patron.cli import app

sys.argv = ["patron", *sys.argv[1:]]
app()
"""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def run_score(args: list[str], env: dict[str, str], folder: Path) -> tuple[float, float, str]:
    """Run `patron score` once: (wall seconds, peak RSS of the child in GB, its output)."""
    peak_file = folder / "peak_kb.txt"
    peak_file.unlink(missing_ok=True)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", CHILD, *args], env={**env, "BENCH_PEAK_FILE": str(peak_file)},
                          capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"patron score failed:\n{done.stdout}\n{done.stderr}")
    return wall, int(peak_file.read_text()) / 1024**2, done.stdout


def profile(data_path: Path, out: Path, model: object, as_of: str) -> None:
    """Score again in this process under cProfile and print where the time goes."""
    import cProfile
    import pstats

    from serving.batch import score_file
    from serving.model_store import mlflow_scorer_loader

    start = time.perf_counter()
    scorer = mlflow_scorer_loader(model.tracking_uri)(model.model_uri)
    print(f"\nprofile: model load (registry, reason tables) {time.perf_counter() - start:.1f} s")
    profiler = cProfile.Profile()
    profiler.enable()
    score_file(data_path, out, scorer, as_of, progress=False)
    profiler.disable()
    stats = pstats.Stats(profiler)
    stats.sort_stats("cumulative").print_stats(
        r"\((score_file|load_transactions|read_table|validate_transactions|validate|build_features|score|score_chunks|"
        r"score_transactions|score_with_inputs|population_tier_boundaries|redecide|"
        r"_btyd_arrays|_raw|reasons|contributions|decision_columns|write_scores|scores_table|take)\)", 30
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--train-customers", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and model here (reused).")
    parser.add_argument("--rerun", action="store_true", help="Score twice and check the bytes are identical.")
    parser.add_argument("--profile", action="store_true", help="Then score in-process under cProfile.")
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
    args = ["score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out)]
    env = {**os.environ, "PATRON_TRACKING_URI": model.tracking_uri, "PATRON_MODEL_URI": model.model_uri}
    before = load_average()
    wall, peak_gb, output = run_score(args, env, folder)
    print(output.strip())
    scored = pd.read_parquet(out, columns=["customer_id"])
    print(f"\nscored {len(scored):,} customers ({n_rows:,} transactions): wall {wall:.1f} s, peak RSS {peak_gb:.2f} GB")
    print(f"load average (1/5/15 min) before: {before}, after: {load_average()}")
    if options.rerun:
        first = sha256(out)
        wall2, _, _ = run_score(args, env, folder)
        print(f"rerun: wall {wall2:.1f} s, byte-identical: {sha256(out) == first}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print(f"| {options.customers:,} | {n_rows:,} | {wall:.1f} s | {peak_gb:.2f} GB |")
    if options.profile:
        profile(data_path, folder / "scores_profiled.parquet", model, as_of)


if __name__ == "__main__":
    main()
