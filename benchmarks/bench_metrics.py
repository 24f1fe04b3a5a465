"""Cost of recording one request's metrics, per worker alone and in the workers' shared folder.

`patron serve --workers N` (N > 1) has every worker write its Prometheus values to files in one
folder (serving.metrics.shared_metrics_dir) so that `/metrics` can sum them; one worker keeps them
in memory. This times what the API's middleware records per request (a request count and a latency
observation, serving.metrics.MetricsMiddleware) both ways, each in a fresh process (prometheus_client
picks its value store when imported), and the scrape of the summed folder.

    .venv/bin/python benchmarks/bench_metrics.py [--requests 50000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROUTES = ("/v1/score", "/v1/customers/{customer_id}", "/healthz", "/metrics")


def record(n_requests: int, repeats: int) -> dict[str, float]:
    """Best-of-`repeats` microseconds to record one request, and milliseconds of one scrape."""
    from serving.metrics import MULTIPROC_DIR_ENV, ServingMetrics

    metrics = ServingMetrics(multiprocess_dir=os.environ.get(MULTIPROC_DIR_ENV) or None)
    metrics.set_model("patron", "1")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n_requests):  # the middleware's two calls per request
            route = ROUTES[i % len(ROUTES)]
            metrics.requests.labels("POST", route, "200", "1").inc()
            metrics.latency.labels("POST", route).observe(0.004)
        best = min(best, time.perf_counter() - start)
    scrape = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        text = metrics.exposition()
        scrape = min(scrape, time.perf_counter() - start)
    assert b"patron_http_requests_total" in text
    return {"us_per_request": best / n_requests * 1e6, "scrape_ms": scrape * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=50_000)
    parser.add_argument("--repeats", type=int, default=5)
    options = parser.parse_args()
    print(f"load average (1/5/15 min): {' / '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="bench_metrics_") as folder:
        for label, extra in (("one worker (in memory)", {}), ("shared folder (N workers)", {"PROMETHEUS_MULTIPROC_DIR": folder})):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"} | extra
            done = subprocess.run(
                [sys.executable, __file__, "--child", str(options.requests), str(options.repeats)],
                env=env, capture_output=True, text=True, check=True,
            )
            result = json.loads(done.stdout.strip().splitlines()[-1])
            print(f"{label:28s} {result['us_per_request']:6.2f} us per request   scrape {result['scrape_ms']:6.2f} ms")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--child":
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        print(json.dumps(record(int(sys.argv[2]), int(sys.argv[3]))))
    else:
        main()
