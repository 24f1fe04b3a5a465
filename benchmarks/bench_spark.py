"""Spark engine benchmark: the local engine and Spark `local[2]` side by side on one generated log.

Both run `patron score` as a child process on the same Parquet log with the same registered model.
Peak memory is sampled every 0.2 s over the child's whole process tree and reported per role: the
driver (the `patron` Python process; for Spark it also holds the in-process JVM's Python side), the
JVM (Spark's driver and its local executor threads) and the executors' Python workers (the sum of
the workers alive at once, and the largest single worker: the memory one partition needs).

    .venv/bin/python benchmarks/bench_spark.py                              # 1M customers, both engines
    .venv/bin/python benchmarks/bench_spark.py --customers 100000           # quicker
    .venv/bin/python benchmarks/bench_spark.py --customers 0 --large-customers 16000000 --large-local-cap-gb 12
                                                                            # a log larger than the local engine can hold
    .venv/bin/python benchmarks/bench_spark.py --customers 200000 --partition-rows 100000 --memory-cap-gb 0.8

The last form runs both engines under one memory cap, a scaled-down stand-in for a log larger than a
machine holds: a Python process whose resident memory passes the cap is killed, as a container's
OOM killer would (the local engine's process; Spark's driver and each Python worker; Spark's JVM
heap is bounded by -Xmx). The local engine's peak grows with the log; a Spark worker's with its
partition (`--partition-rows`), so Spark finishes under a cap the local engine cannot.

The large log is written as Parquet files of 1M customers each (ids prefixed per file), so it never
sits whole in this script's memory. The machine may be shared: each report prints the load average.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_setup import generate, train_model  # noqa: E402

GB = 1024**3


@dataclass
class TreePeak:
    """Peak resident memory of a process tree, by role, sampled while it runs."""

    driver: int = 0
    jvm: int = 0
    workers_total: int = 0
    worker_largest: int = 0
    samples: int = 0
    cap: int = 0
    """Kill the tree when a Python process's resident memory exceeds this (0: never), as a container's OOM killer would."""
    killed: str = ""
    stop: threading.Event = field(default_factory=threading.Event)

    def sample(self, root: psutil.Process) -> None:
        while not self.stop.is_set():
            try:
                tree = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            workers = 0
            for process in tree:
                try:
                    rss = process.memory_info().rss
                    name = " ".join(process.cmdline()[:3])
                except psutil.Error:
                    continue
                if process.pid == root.pid:
                    self.driver = max(self.driver, rss)
                elif "java" in name:
                    self.jvm = max(self.jvm, rss)
                else:  # pyspark daemon and its forked workers
                    workers += rss
                    self.worker_largest = max(self.worker_largest, rss)
            self.workers_total = max(self.workers_total, workers)
            self.samples += 1
            if self.cap and max(self.driver, self.worker_largest) > self.cap and not self.killed:
                role = "driver" if self.driver > self.cap else "a Python worker"
                self.killed = f"killed: {role} over the {self.cap / GB:.2f} GB cap"
                for process in reversed(tree):
                    with contextlib.suppress(psutil.Error):
                        process.kill()
            time.sleep(0.2)


def run(args: list[str], env: dict[str, str], cap_bytes: int = 0,
        allow_failure: bool = False) -> tuple[float, TreePeak, str, int]:
    """Run `patron <args>` (killed when a Python process exceeds `cap_bytes` resident): seconds, peaks, output, exit code."""
    start = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "patron.cli", *args], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = TreePeak(cap=cap_bytes)
    sampler = threading.Thread(target=peak.sample, args=(psutil.Process(child.pid),), daemon=True)
    sampler.start()
    output, _ = child.communicate()
    wall = time.perf_counter() - start
    peak.stop.set()
    sampler.join()
    if child.returncode != 0 and not allow_failure:
        sys.exit(f"patron {' '.join(args)} failed:\n{output}")
    return wall, peak, output, child.returncode


def capped_runs(data_path: Path, rows: int, customers: int, as_of: str, folder: Path, env: dict[str, str],
                cap_gb: float) -> list[str]:
    """Both engines on one log, every Python process killed when its resident memory exceeds `cap_gb`.

    The cap stands for a container's memory limit (the OOM killer acts on resident memory): it
    applies to the local engine's one process, and to Spark's driver and each of its Python workers.
    Spark's JVM is not capped by the script: its heap is bounded by -Xmx, whatever the log.
    """
    cap = int(cap_gb * GB)
    lines = []
    out = folder / "capped_local.parquet"
    args = ["score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out)]
    wall, peak, output, code = run(args, env, cap_bytes=cap, allow_failure=True)
    lines.append(capped_line("local", customers, rows, wall, peak, code, output))
    print(lines[-1], flush=True)
    out = folder / "capped_spark"
    shutil.rmtree(out, ignore_errors=True)
    args = ["score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out),
            "--engine", "spark", "--spark-master", "local[2]"]
    wall, peak, output, code = run(args, env, cap_bytes=cap, allow_failure=True)
    lines.append(capped_line("spark local[2]", customers, rows, wall, peak, code, output))
    print(lines[-1], flush=True)
    return lines


def capped_line(label: str, customers: int, rows: int, wall: float, peak: TreePeak, code: int, output: str) -> str:
    """One row of the capped table: what finished and what it held."""
    last = output.strip().splitlines()[-1] if output.strip() else ""
    result = "finished" if code == 0 else peak.killed or f"failed (exit {code}: {last[:120]})"
    return f"{report(label, customers, rows, wall, peak)} {result} |"


def generate_large(folder: Path, n_customers: int, seed: int, per_file: int = 1_000_000) -> int:
    """A log of `n_customers` as Parquet files of `per_file` customers each; returns the row count."""
    from features.synthetic import generate_transactions

    folder.mkdir(parents=True, exist_ok=True)
    rows = 0
    for number, start in enumerate(range(0, n_customers, per_file)):
        path = folder / f"part-{number:04d}.parquet"
        if path.exists():
            rows += pd.read_parquet(path, columns=["customer_id"]).shape[0]
            continue
        data = generate_transactions(min(per_file, n_customers - start), seed=seed + number).transactions
        data["customer_id"] = f"f{number}-" + data["customer_id"].astype(str)
        data.to_parquet(path, index=False)
        rows += len(data)
        print(f"  wrote {path.name}: {len(data):,} rows", flush=True)
    return rows


def report(label: str, customers: int, rows: int, wall: float, peak: TreePeak) -> str:
    return (f"| {label} | {customers:,} | {rows:,} | {wall:.0f} s | {peak.driver / GB:.2f} GB | "
            f"{peak.jvm / GB:.2f} GB | {peak.workers_total / GB:.2f} GB | {peak.worker_largest / GB:.2f} GB |")


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def large_runs(folder: Path, n_customers: int, seed: int, as_of: str, env: dict[str, str],
               local_cap_gb: float) -> list[str]:
    """The large log: the local engine under `local_cap_gb` (when given), then Spark `local[2]` uncapped."""
    large = folder / f"large_{n_customers}"
    large_rows = generate_large(large, n_customers, seed)
    print(f"large log: {n_customers:,} customers, {large_rows:,} rows in {large}", flush=True)
    lines = []
    if local_cap_gb:
        out = folder / "large_local.parquet"
        args = ["score", "--transactions", str(large), "--as-of", as_of, "--out", str(out)]
        wall, peak, output, code = run(args, env, cap_bytes=int(local_cap_gb * GB), allow_failure=True)
        lines.append(capped_line("local", n_customers, large_rows, wall, peak, code, output))
        print(lines[-1], flush=True)
        out.unlink(missing_ok=True)
    out = folder / "spark_large_scores"
    shutil.rmtree(out, ignore_errors=True)
    args = ["score", "--transactions", str(large), "--as-of", as_of, "--out", str(out),
            "--engine", "spark", "--spark-master", "local[2]"]
    wall, peak, output, code = run(args, env, allow_failure=True)
    print(output.strip().splitlines()[-2:], flush=True)
    result = "finished" if code == 0 else f"failed (exit {code})"
    lines.append(f"{report('spark local[2]', n_customers, large_rows, wall, peak)} {result} |")
    print(lines[-1], flush=True)
    if code == 0:
        scored = pd.read_parquet(out, columns=["customer_id"]).shape[0]
        print(f"spark scored {scored:,} customers", flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000, help="Both engines on this many customers (0: skip).")
    parser.add_argument("--large-customers", type=int, default=0,
                        help="Also a run on a log this large, written as Parquet files of 1M customers.")
    parser.add_argument("--large-local-cap-gb", type=float, default=0.0,
                        help="On the large log, also the local engine, killed when its resident memory passes this.")
    parser.add_argument("--train-customers", type=int, default=5_000)
    parser.add_argument("--partition-rows", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and model here (reused).")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument("--memory-cap-gb", type=float, default=0.0,
                        help="Only the capped runs: a Python process over this resident memory is killed.")
    options = parser.parse_args()

    folder = options.workdir or Path(tempfile.mkdtemp(prefix="bench_spark_"))
    folder.mkdir(parents=True, exist_ok=True)
    model = train_model(folder, options.train_customers, options.seed + 1)
    as_of = model.as_of.date().isoformat()
    env = {**os.environ, "PATRON_TRACKING_URI": model.tracking_uri, "PATRON_MODEL_URI": model.model_uri,
           "PATRON_SPARK_PARTITION_ROWS": str(options.partition_rows)}
    lines = ["| engine | customers | transactions | wall | driver peak | JVM peak | workers peak (sum) | largest worker |",
             "|---|---|---|---|---|---|---|---|"]
    print(f"load average (1/5/15 min) at start: {load_average()}", flush=True)
    if options.customers:
        data_path = folder / f"score_{options.customers}.parquet"
        rows = len(generate(options.customers, options.seed, data_path))
        if options.memory_cap_gb:
            lines = [lines[0] + " result |", lines[1] + "---|",
                     *capped_runs(data_path, rows, options.customers, as_of, folder, env, options.memory_cap_gb)]
            print(f"load average (1/5/15 min) at end: {load_average()}")
            print("\n".join(lines))
            return
        lines += both_engines(data_path, rows, options.customers, as_of, folder, env, options.skip_local)
    if options.large_customers:
        lines[0:2] = [lines[0] + " result |", lines[1] + "---|"]
        lines += large_runs(folder, options.large_customers, options.seed + 100, as_of, env, options.large_local_cap_gb)
    print(f"load average (1/5/15 min) at end: {load_average()}")
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / GB:.0f} GB, "
          f"Python {platform.python_version()}")
    print("\n".join(lines))


def both_engines(data_path: Path, rows: int, customers: int, as_of: str, folder: Path, env: dict[str, str],
                 skip_local: bool) -> list[str]:
    """The local engine and Spark `local[2]` on one log, and whether their outputs agree."""
    lines = []
    if not skip_local:
        out = folder / "local.parquet"
        wall, peak, output, _ = run(["score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out)], env)
        print(output.strip().splitlines()[-2:], flush=True)
        lines.append(report("local", customers, rows, wall, peak))
        print(lines[-1], flush=True)
    out = folder / "spark_scores"
    shutil.rmtree(out, ignore_errors=True)
    spark_args = ["--engine", "spark", "--spark-master", "local[2]"]
    wall, peak, output, _ = run(["score", "--transactions", str(data_path), "--as-of", as_of, "--out", str(out), *spark_args], env)
    print(output.strip().splitlines()[-2:], flush=True)
    lines.append(report("spark local[2]", customers, rows, wall, peak))
    print(lines[-1], flush=True)
    if not skip_local:
        local = pd.read_parquet(folder / "local.parquet", columns=["customer_id", "clv"]).sort_values("customer_id")
        spark = pd.read_parquet(out, columns=["customer_id", "clv"]).sort_values("customer_id")
        same = local["customer_id"].tolist() == spark["customer_id"].tolist() and (
            (local["clv"].to_numpy() - spark["clv"].to_numpy()) == 0).all()
        print(f"same customers and clv in both outputs: {same}", flush=True)
    return lines


if __name__ == "__main__":
    main()
