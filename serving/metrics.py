"""Prometheus metrics of one app instance: request counts, latencies, the served model version."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Latency buckets around the 20 ms single-customer target, up to large batch requests.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class ServingMetrics:
    """The metric families of one app, in their own registry (so several apps can coexist in tests).

    Parameters
    ----------
    registry : CollectorRegistry, optional
        Where the families are registered; a fresh registry by default.
    """

    def __init__(self, registry: CollectorRegistry | None = None):
        self.registry = registry or CollectorRegistry()
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
            "The model being served (value 1), labelled with its name and version.",
            ["model_name", "model_version"],
            registry=self.registry,
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
        self.model_info.clear()
        self.model_info.labels(model_name=name, model_version=version).set(1)
        self.model_version = version


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
