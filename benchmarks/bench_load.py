"""Steady-load benchmark: open-loop one-customer `/v1/score` traffic at fixed rates, 1 and 2 workers.

`patron serve --workers N` runs on 127.0.0.1 with a model trained here on generated data. A load
client in a separate process (aiohttp, asyncio) sends requests on a fixed schedule, whatever the
server's speed (open loop), over at most 64 connections; each latency is measured from the
request's *scheduled* send time, as wrk2 does, so a stalled server cannot hide its queue
(no coordinated omission). Per rate it reports p50/p99/max latency, errors (non-200 answers and
failed connections), and the server's resident memory (all its processes) sampled each second.

    .venv/bin/python benchmarks/bench_load.py [--rates 100 200 400] [--seconds 60] [--workers 1 2]

Target (issue 15 item 9): 200 requests/s for 60 s with p99 under 50 ms, 0 errors, memory flat.
Client and server share the machine's cores; the load average is printed before and after.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _serving_setup import train_model  # noqa: E402
from bench_api import free_port, load_average, payloads, start, stop, typical_customer  # noqa: E402

BIN = Path(sys.executable).parent
CONNECTIONS = 64


async def open_loop(url: str, body: bytes, rate: float, seconds: float) -> dict[str, Any]:
    """Send `rate` requests a second for `seconds` on a fixed schedule; latencies from scheduled times."""
    import aiohttp

    n_requests = int(rate * seconds)
    latencies = np.full(n_requests, np.nan)
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    headers = {"content-type": "application/json"}
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for _ in range(50):  # warm-up, not measured (a server still draining the last rate may time out)
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
            except (aiohttp.ClientError, asyncio.TimeoutError):
                pass

        async def send(index: int, scheduled: float) -> None:
            try:
                async with session.post(url, data=body, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors[str(response.status)] = errors.get(str(response.status), 0) + 1
                        return
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                return
            latencies[index] = time.perf_counter() - scheduled

        start = time.perf_counter()
        tasks = []
        for index in range(n_requests):
            scheduled = start + index / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(send(index, scheduled)))
        await asyncio.gather(*tasks)
        wall = time.perf_counter() - start
    ms = latencies[~np.isnan(latencies)] * 1000
    return {
        "sent": n_requests,
        "ok": int(ms.size),
        "errors": errors,
        "p50": float(np.percentile(ms, 50)) if ms.size else float("nan"),
        "p99": float(np.percentile(ms, 99)) if ms.size else float("nan"),
        "max": float(ms.max()) if ms.size else float("nan"),
        "achieved_rps": ms.size / wall,
    }


def wait_for_workers(metrics_url: str, workers: int, timeout: float = 600) -> None:
    """Wait until `/metrics` lists a served model for every worker (one `pid` per worker with several)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = httpx.get(metrics_url, timeout=10).text
        served = [line for line in text.splitlines() if line.startswith("patron_model_info{") and line.endswith(" 1.0")]
        if workers == 1 or len({line.split('pid="')[1].split('"')[0] for line in served if 'pid="' in line}) == workers:
            return
        time.sleep(0.5)
    sys.exit(f"not every one of the {workers} workers loaded the model within {timeout:.0f} s")


def server_rss_mb(pid: int) -> float:
    """Resident memory of a server process and all its children (the workers), in MB."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return float("nan")
    total = 0
    for process in processes:
        try:
            total += process.memory_info().rss
        except psutil.NoSuchProcess:
            pass
    return total / 1e6


def run_client(url: str, body_path: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Run the load client in its own process (its CPU is not the sampler's) and return its result."""
    done = subprocess.run(
        [sys.executable, __file__, "--client", url, str(body_path), str(rate), str(seconds)],
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        sys.exit(f"the load client failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(pid: int, url: str, body_path: Path, rate: float, seconds: float) -> dict[str, Any]:
    """Drive one rate while sampling the server's memory every second."""
    samples: list[float] = []
    stop_sampling = threading.Event()

    def sample() -> None:
        while not stop_sampling.wait(1.0):
            samples.append(server_rss_mb(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = run_client(url, body_path, rate, seconds)
    finally:
        stop_sampling.set()
        sampler.join()
    tenth = max(len(samples) // 10, 1)
    result["rss_start"] = float(np.mean(samples[:tenth])) if samples else float("nan")
    result["rss_end"] = float(np.mean(samples[-tenth:])) if samples else float("nan")
    result["rss_max"] = max(samples) if samples else float("nan")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", type=float, nargs="+", default=[100, 200, 400])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--train-customers", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", type=Path, default=None, help="Keep data and model here (reused).")
    options = parser.parse_args()

    folder = options.workdir or Path(tempfile.mkdtemp(prefix="bench_load_"))
    folder.mkdir(parents=True, exist_ok=True)
    model = train_model(folder, options.train_customers, options.seed)
    customer = typical_customer(model.transactions)
    body_path = folder / "body.json"
    body_path.write_text(json.dumps(payloads(model, customer)[0]))
    env = {**os.environ, "PATRON_TRACKING_URI": model.tracking_uri, "PATRON_MODEL_URI": model.model_uri}
    rows = []
    print(f"load average (1/5/15 min) before: {load_average()}", flush=True)
    for workers in options.workers:
        port = free_port()
        server = start(
            [str(BIN / "patron"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
             "--log-level", "warning"],
            env, f"http://127.0.0.1:{port}/readyz", folder / f"patron_{workers}.log", timeout=600,
        )
        try:
            wait_for_workers(f"http://127.0.0.1:{port}/metrics", workers)  # /readyz answered for one of them
            for rate in options.rates:
                result = measure(server.pid, f"http://127.0.0.1:{port}/v1/score", body_path, rate, options.seconds)
                rows.append((workers, rate, result))
                errors = sum(result["errors"].values())
                print(f"workers={workers} rate={rate:.0f}/s  p50 {result['p50']:7.1f} ms  p99 {result['p99']:7.1f} ms  "
                      f"max {result['max']:7.1f} ms  errors {errors} {result['errors'] or ''}  "
                      f"achieved {result['achieved_rps']:.0f}/s  RSS {result['rss_start']:.0f} -> "
                      f"{result['rss_end']:.0f} MB (max {result['rss_max']:.0f})", flush=True)
        finally:
            stop(server)
    print(f"load average (1/5/15 min) after: {load_average()}")
    print(f"\nmachine: {platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
          f"{options.seconds:.0f} s per rate, {CONNECTIONS} connections, open loop")
    print("| workers | rate (req/s) | p50 | p99 | max | errors | server RSS start -> end (max) |")
    print("|---|---|---|---|---|---|---|")
    for workers, rate, r in rows:
        print(f"| {workers} | {rate:.0f} | {r['p50']:.1f} ms | {r['p99']:.1f} ms | {r['max']:.0f} ms | "
              f"{sum(r['errors'].values())} of {r['sent']} | {r['rss_start']:.0f} -> {r['rss_end']:.0f} MB "
              f"({r['rss_max']:.0f}) |")


if __name__ == "__main__":
    if len(sys.argv) == 6 and sys.argv[1] == "--client":
        url, body_file, rate_text, seconds_text = sys.argv[2:]
        outcome = asyncio.run(open_loop(url, Path(body_file).read_bytes(), float(rate_text), float(seconds_text)))
        print(json.dumps(outcome))
    else:
        main()
