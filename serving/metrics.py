"""Prometheus metrics of the API: request counts, latencies, the served model version, summed over workers."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# prometheus_client's own switch, read when it is imported: set, every process writes its values to
# files in that folder (one per process and metric type) and any process can sum them.
MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
_LIVE_GAUGE_FILE = re.compile(r"gauge_live[a-z]+_(\d+)\.db")

# Latency buckets around the 20 ms single-customer target, up to large batch requests.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServingMetrics:
    """The metric families of one app, in their own registry (so several apps can coexist in tests).

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where the families are registered; a fresh registry by default.
    multiprocess_dir : str, optional
        The workers' shared folder when `PROMETHEUS_MULTIPROC_DIR` is set (`shared_metrics_dir`):
        `exposition` then sums every worker's values. None: this process's values only.
    """

    def __init__(self, registry: CollectorRegistry | None = None, multiprocess_dir: str | None = None):
        self.registry = registry or CollectorRegistry()
        self.multiprocess_dir = multiprocess_dir
        self._model_labels: tuple[str, str] | None = None
        self.model_version = ""
        self.requests = Counter(
            "patron_http_requests_total",
            "HTTP requests by method, route template, status code and served model version.",
            ["method", "route", "status", "model_version"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "patron_http_request_duration_seconds",
            "Time from request start to the last response byte, by method and route template.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.scored = Counter(
            "patron_scored_customers_total",
            "Customers scored through the API, by model version.",
            ["model_version"],
            registry=self.registry,
        )
        self.pass_requests = Histogram(
            "patron_score_pass_requests",
            "Requests scored together in one /v1/score pass (serving/micro_batch.py).",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64),
            registry=self.registry,
        )
        self.pass_seconds = Histogram(
            "patron_score_pass_duration_seconds",
            "Time of one validate -> features -> score pass of /v1/score.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.model_info = Gauge(
            "patron_model_info",
            "The model being served (value 1; 0 for one the worker served before), by name and version "
            "(and worker pid with several workers).",
            ["model_name", "model_version"],
            registry=self.registry,
            multiprocess_mode="liveall",  # one series per live worker, labelled with its pid
        )
        self.reloads = Counter(
            "patron_model_reloads_total",
            "Model (re)load attempts by outcome: reloaded, unchanged, failed.",
            ["outcome"],
            registry=self.registry,
        )

    def observe_pass(self, n_requests: int, seconds: float) -> None:
        """Record one /v1/score pass: how many requests it served and how long it took."""
        self.pass_requests.observe(n_requests)
        self.pass_seconds.observe(seconds)

    def set_model(self, name: str, version: str) -> None:
        """Point the model-info gauge at the model now served."""
        if self.multiprocess_dir is None:
            self.model_info.clear()
        elif self._model_labels not in (None, (name, version)):
            # A worker's values file cannot drop a series: the version served before stays, at 0.
            self.model_info.labels(*self._model_labels).set(0)
        self.model_info.labels(model_name=name, model_version=version).set(1)
        self._model_labels = (name, version)
        self.model_version = version

    def exposition(self) -> bytes:
        """Every metric in Prometheus' text format: summed over the live and past workers when shared."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        forget_dead_workers(self.multiprocess_dir)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """At this worker's exit: drop its live-only series (its counts stay in the sums)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self.multiprocess_dir)


def forget_dead_workers(folder: str) -> list[int]:
    """Drop the live-only gauge files (`patron_model_info`) of workers that no longer run; their pids."""
    pids = {int(m.group(1)) for p in Path(folder).iterdir() if (m := _LIVE_GAUGE_FILE.fullmatch(p.name))}
    dead = []
    for pid in sorted(pids):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:  # it ended without its shutdown running (kill -9, out of memory)
            mark_process_dead(pid, folder)
            dead.append(pid)
        except PermissionError:  # alive, run by another user
            pass
    return dead


@contextlib.contextmanager
def shared_metrics_dir(workers: int) -> Iterator[str | None]:
    """For several workers, a fresh `PROMETHEUS_MULTIPROC_DIR` they inherit, removed afterwards.

    One worker needs none (None). A folder the environment already names is used as it is and kept:
    whoever set it owns it. Set before the workers start, so their prometheus_client writes there.
    """
    given = os.environ.get(MULTIPROC_DIR_ENV)
    if given or workers < 2:
        yield given or None
        return
    folder = tempfile.mkdtemp(prefix="patron-metrics-")
    os.environ[MULTIPROC_DIR_ENV] = folder
    try:
        yield folder
    finally:
        os.environ.pop(MULTIPROC_DIR_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)


class MetricsMiddleware:
    """Times every HTTP request and counts it under its route template (never the raw path).

    Parameters
    ----------
    app : ASGI app
        The wrapped application.
    metrics : ServingMetrics
        Where to record.
    """

    def __init__(self, app: ASGIApp, metrics: ServingMetrics):
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the request's status and duration."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            # The template keeps label cardinality bounded: /v1/customers/{customer_id}, not each id.
            template = getattr(route, "path", None) or "unmatched"
            method = scope.get("method", "")
            self.metrics.requests.labels(method, template, str(status), self.metrics.model_version).inc()
            self.metrics.latency.labels(method, template).observe(time.perf_counter() - start)
