"""`patron serve --workers 2` as a real server: every worker scores, strangers get 401 before the body,
and the documentation pages render in a real headless browser without a request off the machine."""

from __future__ import annotations

import os
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


def test_two_workers_each_load_the_model_and_serve(server, registry):
    base, process, log = server
    text = log.read_text()
    assert text.count("Started server process") == 2
    worker_pids = {line.split("[")[1].split("]")[0] for line in text.splitlines() if "Started server process" in line}
    assert len(worker_pids) == 2 and str(process.pid) not in worker_pids
    body = request_body(registry.transactions, [str(registry.transactions["customer_id"].iloc[0])], registry.as_of)
    headers = {"X-API-Key": API_KEY}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        answers = [client.post("/v1/score", json=body) for _ in range(20)]
        ready = httpx.get(f"{base}/readyz")
    assert {a.status_code for a in answers} == {200}
    assert len({a.json()["scores"][0]["churn_probability"] for a in answers}) == 1  # same model everywhere
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_strangers_get_401_from_the_real_server_before_the_body(server):
    base, _, _ = server
    for body in (b"{not json", b'{"x": "\xff"}', b"x" * 6_000_000):
        answer = httpx.post(f"{base}/v1/score", content=body, headers={"content-type": "application/json"}, timeout=60)
        assert answer.status_code == 401, answer.text[:200]


@pytest.mark.skipif(not CHROMIUM.exists(), reason="`make setup` installs chromium (needs root, which CI has)")
@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("/docs", ".opblock-summary-path"),
        pytest.param(
            "/redoc", "[data-section-id]",
            marks=pytest.mark.xfail(
                strict=True, reason="ReDoc's bundle still loads its 'powered by' logo from cdn.redoc.ly (open)"
            ),
        ),
    ],
)
def test_docs_render_in_a_browser_with_no_request_off_the_machine(server, tmp_path, page, expected):
    from playwright.sync_api import sync_playwright

    base, _, _ = server
    requested: list[str] = []
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS  # a fresh profile
        )
        try:
            context.on("request", lambda request: requested.append(request.url))
            view = context.new_page()
            view.goto(f"{base}{page}", wait_until="networkidle", timeout=90_000)
            view.wait_for_selector(expected, timeout=60_000)
            listed = view.locator(expected).all_inner_texts()
            view.screenshot(path=str(ARTIFACTS / f"{page.strip('/')}.png"), full_page=True)
        finally:
            context.close()
    hosts = {urlparse(url).hostname for url in requested if urlparse(url).scheme in ("http", "https")}
    assert hosts == {"127.0.0.1"}, requested
    shown = " ".join(listed)
    if page == "/docs":
        for path in ("/v1/score", "/v1/campaign", "/v1/model", "/admin/reload", "/readyz"):
            assert path in shown, shown[:500]
    else:
        assert len(listed) >= 5
