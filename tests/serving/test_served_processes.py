"""`patron serve --workers 2` as a real server: every worker scores, `/metrics` sums every worker's
counts, strangers get 401 before the body, and the documentation pages render in a real headless
browser without a request off the machine."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from serving_helpers import free_port, request_body

pytestmark = pytest.mark.integration

API_KEY = "workers-test-key"
CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@pytest.fixture(scope="module")
def server(registry, batch_scores, tmp_path_factory):
    """`patron serve --workers 2` (workers from PATRON_WORKERS) with API keys; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("workers") / "server.log"
    env = {
        **os.environ,
        "PATRON_TRACKING_URI": registry.tracking_uri,
        "PATRON_MODEL_URI": registry.model_uri,
        "PATRON_SCORES_PATH": str(batch_scores),
        "PATRON_API_KEYS": API_KEY,
        "PATRON_WORKERS": "2",
    }
    patron = Path(sys.executable).with_name("patron")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(patron), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "info"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while log.read_text().count("Application startup complete") < 2:  # each worker loaded the model
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the server did not start two workers:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield base, process, log
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def started_workers(log: Path) -> list[str]:
    """The pids of the worker processes the server log reports started, in order."""
    lines = log.read_text().splitlines()
    return [line.split("[")[1].split("]")[0] for line in lines if "Started server process" in line]


def scrape(base: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """One `/metrics` scrape on a connection of its own (any worker may answer): samples by name."""
    from prometheus_client.parser import text_string_to_metric_families

    answer = httpx.get(f"{base}/metrics", timeout=30)
    assert answer.status_code == 200
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def scored_requests(samples: dict[str, list[tuple[dict[str, str], float]]]) -> tuple[float, float]:
    """Answered `POST /v1/score` requests: the 200 count and the latency histogram's count."""
    counted = sum(
        value for labels, value in samples.get("patron_http_requests_total", [])
        if labels["route"] == "/v1/score" and labels["status"] == "200"
    )
    timed = sum(
        value for labels, value in samples.get("patron_http_request_duration_seconds_count", [])
        if labels["route"] == "/v1/score"
    )
    return counted, timed


def serving_pids(samples: dict[str, list[tuple[dict[str, str], float]]]) -> set[str]:
    """The worker pids `patron_model_info` lists as serving a model."""
    return {labels["pid"] for labels, value in samples.get("patron_model_info", []) if value == 1}


def test_two_workers_each_load_the_model_and_serve(server, registry):
    base, process, log = server
    worker_pids = set(started_workers(log))
    assert len(worker_pids) == 2 and str(process.pid) not in worker_pids
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[0])], registry.as_of)
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        answers = [client.post("/v1/score", json=body) for _ in range(20)]
        ready = httpx.get(f"{base}/readyz")
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["scores"][0]["churn_probability"] for a in answers}) == 1  # same model everywhere
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_every_scrape_counts_the_requests_of_every_worker(server, registry):
    base, _, log = server
    workers = set(started_workers(log))
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[1])], registry.as_of)
    before = scored_requests(scrape(base))
    # A connection each, so the kernel spreads them over both workers' accept queues.
    headers = {"X-API-Key": API_KEY}
    answers = [httpx.post(f"{base}/v1/score", json=body, headers=headers, timeout=30) for _ in range(20)]
    assert {a.status_code for a in answers} == {200}
    scrapes = [scrape(base) for _ in range(8)]
    assert [scored_requests(samples) for samples in scrapes] == [(before[0] + 20, before[1] + 20)] * 8
    for samples in scrapes:
        assert serving_pids(samples) == workers  # one model series per worker, whichever answered


def test_strangers_get_401_from_the_real_server_before_the_body(server):
    base, _, _ = server
    for body in (b"{not json", b'{"x": "\xff"}', b"x" * 6_000_000):
        answer = httpx.post(f"{base}/v1/score", content=body, headers={"content-type": "application/json"}, timeout=60)
        assert answer.status_code == 401, answer.text[:200]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="`make setup` installs chromium (needs root, which CI has)")
@pytest.mark.parametrize(("page", "expected"), [("/docs", ".opblock-summary-path"), ("/redoc", "[data-section-id]")])
def test_docs_render_in_a_browser_with_no_request_off_the_machine(server, tmp_path, page, expected):
    """Every operation is listed, and whatever the page asks of another host the browser refuses unsent.

    ReDoc's bundle asks cdn.redoc.ly for its logo: without the pages' Content-Security-Policy the
    browser sends that request (failing with a DNS error here), with it Chromium blocks it ("csp").
    """
    from playwright.sync_api import sync_playwright

    base, _, _ = server
    requested: list[str] = []
    failures: dict[str, str | None] = {}
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS  # a fresh profile
        )
        try:
            context.on("request", lambda request: requested.append(request.url))
            context.on("requestfailed", lambda request: failures.update({request.url: request.failure}))
            view = context.new_page()
            view.goto(f"{base}{page}", wait_until="networkidle", timeout=90_000)
            view.wait_for_selector(expected, timeout=60_000)
            shown = view.inner_text("body")
            view.screenshot(path=str(ARTIFACTS / f"{page.strip('/')}.png"), full_page=True)
        finally:
            context.close()
    web = [url for url in requested if urlparse(url).scheme in ("http", "https")]
    off_machine = [url for url in web if urlparse(url).hostname != "127.0.0.1"]
    refused = {url: failures.get(url) for url in off_machine}
    assert all(reason is not None and "csp" in reason.lower() for reason in refused.values()), refused
    assert f"{base}/openapi.json" in web
    operations = httpx.get(f"{base}/openapi.json").json()["paths"]
    summaries = {op["summary"] for methods in operations.values() for op in methods.values()}
    assert len(summaries) >= 8
    missing = sorted(summary for summary in summaries if summary not in shown)
    assert not missing, shown[:1000]


def test_a_killed_worker_leaves_the_model_series_and_its_counts_stay_summed(server, registry):
    """Runs last: it kills a worker. uvicorn starts a replacement; the dead one's model series goes."""
    base, _, log = server
    victim, survivor = started_workers(log)[:2]
    before = scored_requests(scrape(base))
    os.kill(int(victim), signal.SIGKILL)
    deadline = time.monotonic() + 180
    while log.read_text().count("Application startup complete") < 3:  # the replacement loaded the model
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    replacement = started_workers(log)[2]
    for samples in [scrape(base) for _ in range(4)]:
        assert serving_pids(samples) == {survivor, replacement}
        assert {labels["pid"] for labels, _ in samples["patron_model_info"]} == {survivor, replacement}
        assert scored_requests(samples) == before  # the dead worker's requests still count
