"""API benchmark: single-customer scoring latency and throughput, Patron's API beside `mlflow models serve`.

Both servers run on 127.0.0.1 with one worker each and serve the same registered pyfunc
(`models:/patron@champion`, trained here on generated data into a temporary store). Each is sent the
same customer over and over at concurrency 1, 4 and 16 (a bounded number of requests per level). Both
get the customer's transaction rows and score them through the same path
(`models.prediction.score_transactions`): Patron's `/v1/score` as JSON customers, mlflow's
`/invocations` as a `dataframe_split` of the rows (the pyfunc takes transaction rows too).

    .venv/bin/python benchmarks/bench_api.py [--requests 1500] [--concurrency 1 4 16]

Targets (issue 10), as ratios within one run because the machine's speed drifts 2-3x: Patron's p99 at
concurrency 1 no higher than mlflow's p50; at least 2x mlflow's throughput at concurrency 4 and 16.

The client (httpx, async) runs on the same 2 cores, so every latency includes its share; Patron's
own time per request (its Prometheus latency histogram, first byte in to last byte out) is printed
beside it. The load average is printed before and after: the machine is shared.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_setup import train_model  # noqa: E402

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(args: list[str], env: dict[str, str], ready_url: str, log: Path, timeout: float = 600) -> subprocess.Popen:
    """Start a server and wait (at most `timeout` seconds) until `ready_url` answers 200."""
    with open(log, "wb") as out:
        process = subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"{args[0]} exited:\n{log.read_text()}")
        try:
            if httpx.get(ready_url, timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.3)
    process.kill()
    sys.exit(f"{ready_url} not ready after {timeout:.0f} s:\n{log.read_text()}")


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


async def load(url: str, body: dict[str, Any], concurrency: int, n_requests: int) -> dict[str, float]:
    """Send `n_requests` POSTs from `concurrency` keep-alive workers; latency percentiles and throughput."""
    latencies: list[float] = []
    remaining = n_requests
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:
        for _ in range(min(20, n_requests)):  # warm-up on one connection, not measured
            (await client.post(url, json=body)).raise_for_status()

        async def worker() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                start = time.perf_counter()
                response = await client.post(url, json=body)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
        "rps": len(ms) / wall,
        "n": len(ms),
    }


def load_average() -> str:
    return " / ".join(f"{value:.2f}" for value in os.getloadavg())


def histogram_totals(metrics_url: str) -> dict[str, float]:
    """Sums and counts of Patron's /v1/score latency and of its passes, from its Prometheus histograms."""
    text = httpx.get(metrics_url).text
    found: dict[str, float] = {}
    for line in text.splitlines():
        name, _, value = line.rpartition(" ")
        if name.startswith("patron_http_request_duration_seconds_") and 'route="/v1/score"' not in name:
            continue
        for family in (
            "patron_http_request_duration_seconds", "patron_score_pass_requests", "patron_score_pass_duration_seconds"
        ):
            for kind in ("sum", "count"):
                if name.startswith(f"{family}_{kind}"):
                    found[f"{family}_{kind}"] = float(value)
    return found


def typical_customer(transactions: pd.DataFrame) -> str:
    """A repeat customer with the median number of transactions among repeat customers."""
    counts = transactions.groupby("customer_id").size()
    repeat = counts[counts >= 2].sort_index()
    median = int(repeat.median())
    return str(repeat[repeat == median].index[0])


def payloads(model: Any, customer_id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(Patron body with the customer's transactions, mlflow body with the same transaction rows)."""
    from serving.schemas import TransactionIn

    tx = model.transactions[model.transactions["customer_id"] == customer_id]
    columns = [c for c in tx.columns if c in TransactionIn.model_fields]
    records = []
    for record in tx[columns].to_dict(orient="records"):  # one customer's handful of rows
        clean = {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and np.isnan(v))}
        clean["timestamp"] = pd.Timestamp(clean["timestamp"]).isoformat()
        records.append(clean)
    ours = {"as_of": model.as_of.date().isoformat(), "customers": [{"customer_id": customer_id, "transactions": records}]}
    rows = tx[columns].assign(customer_id=customer_id, timestamp=tx["timestamp"].map(pd.Timestamp.isoformat))
    theirs = {
        "dataframe_split": {"columns": list(rows.columns), "data": rows.astype(object).to_numpy().tolist()},
        "params": {"as_of": model.as_of.date().isoformat()},
    }
    return ours, theirs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1500, help="Measured requests per server and level.")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--train-customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and model here (reused).")
    options = parser.parse_args()

    folder = options.workdir or Path(tempfile.mkdtemp(prefix="bench_api_"))
    folder.mkdir(parents=True, exist_ok=True)
    model = train_model(folder, options.train_customers, options.seed)
    customer = typical_customer(model.transactions)
    ours_body, mlflow_body = payloads(model, customer)
    n_tx = len(ours_body["customers"][0]["transactions"])

    env = {
        **os.environ,
        "PATRON_TRACKING_URI": model.tracking_uri,
        "PATRON_MODEL_URI": model.model_uri,
        "MLFLOW_TRACKING_URI": model.tracking_uri,
        # mlflow serve runs `uvicorn` by name: the venv's bin must be on PATH.
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    ours_port, mlflow_port = free_port(), free_port()
    ours = start(
        [str(BIN / "uvicorn"), "serving.app:app", "--host", "127.0.0.1", "--port", str(ours_port),
         "--log-level", "warning", "--no-access-log"],
        env, f"http://127.0.0.1:{ours_port}/readyz", folder / "patron.log",
    )
    try:
        theirs = start(
            [str(BIN / "mlflow"), "models", "serve", "--env-manager", "local", "-m", model.model_uri,
             "-h", "127.0.0.1", "-p", str(mlflow_port), "-w", "1"],
            env, f"http://127.0.0.1:{mlflow_port}/ping", folder / "mlflow.log",
        )
    except BaseException:
        stop(ours)
        raise
    try:
        ours_url = f"http://127.0.0.1:{ours_port}/v1/score"
        mlflow_url = f"http://127.0.0.1:{mlflow_port}/invocations"
        a = httpx.post(ours_url, json=ours_body).json()["scores"][0]
        b = httpx.post(mlflow_url, json=mlflow_body).json()["predictions"][0]
        same = all(a[k] == b[k] for k in ("clv", "churn_probability", "p_alive", "net_value"))
        print(f"customer {customer} ({n_tx} transactions): both servers agree on the scores: {same}")
        rows = []
        metrics_url = f"http://127.0.0.1:{ours_port}/metrics"
        print(f"load average (1/5/15 min) before: {load_average()}", flush=True)
        for concurrency in options.concurrency:
            for name, url, body in (("patron", ours_url, ours_body), ("mlflow", mlflow_url, mlflow_body)):
                before = histogram_totals(metrics_url)
                result = asyncio.run(load(url, body, concurrency, options.requests))
                after = histogram_totals(metrics_url)
                rows.append((name, concurrency, result))
                inside = ""
                if name == "patron":
                    # includes the 20 warm-up requests, so a little below the measured ones' mean
                    change = {key: after.get(key, 0.0) - before.get(key, 0.0) for key in after}
                    latency = "patron_http_request_duration_seconds"
                    mean = change[f"{latency}_sum"] / max(change[f"{latency}_count"], 1) * 1000
                    per_pass = change["patron_score_pass_requests_sum"] / max(change["patron_score_pass_requests_count"], 1)
                    passes = max(change["patron_score_pass_duration_seconds_count"], 1)
                    pass_ms = change["patron_score_pass_duration_seconds_sum"] / passes * 1000
                    inside = (f"  (inside Patron: mean {mean:.2f} ms; passes of {per_pass:.1f} requests, "
                              f"{pass_ms:.2f} ms each)")
                print(f"{name:7s} c={concurrency:<3d} p50 {result['p50']:6.2f} ms  p99 {result['p99']:6.2f} ms  "
                      f"{result['rps']:7.1f} req/s  (n={result['n']}){inside}", flush=True)
        print(f"load average (1/5/15 min) after: {load_average()}")
    finally:
        stop(ours)
        stop(theirs)

    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| concurrency | patron p50 | patron p99 | patron req/s | mlflow p50 | mlflow p99 | mlflow req/s | ratio |")
    print("|---|---|---|---|---|---|---|---|")
    for concurrency in options.concurrency:
        p = next(r for n, c, r in rows if n == "patron" and c == concurrency)
        m = next(r for n, c, r in rows if n == "mlflow" and c == concurrency)
        print(f"| {concurrency} | {p['p50']:.1f} ms | {p['p99']:.1f} ms | {p['rps']:.0f} | {m['p50']:.1f} ms | "
              f"{m['p99']:.1f} ms | {m['rps']:.0f} | {p['rps'] / m['rps']:.2f}x |")
    # A server's throughput: the most requests a second it served at any of the levels.
    best = {name: max(r["rps"] for n, _, r in rows if n == name) for name in ("patron", "mlflow")}
    print(f"\nbest throughput over the levels: patron {best['patron']:.0f} req/s, mlflow {best['mlflow']:.0f} req/s "
          f"({best['patron'] / best['mlflow']:.2f}x)")


if __name__ == "__main__":
    main()
