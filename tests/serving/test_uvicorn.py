"""The API as a real server: `patron serve` on 127.0.0.1 in a subprocess, hit over HTTP with httpx."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from serving_helpers import free_port, request_body

pytestmark = pytest.mark.integration

API_KEY = "integration-test-key"


@pytest.fixture(scope="module")
def server(registry, batch_scores, tmp_path_factory):
    """`patron serve` with API keys, the temporary registry and scores file; yields its base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("uvicorn") / "server.log"
    env = {
        **os.environ,
        "PATRON_TRACKING_URI": registry.tracking_uri,
        "PATRON_MODEL_URI": registry.model_uri,
        "PATRON_SCORES_PATH": str(batch_scores),
        "PATRON_API_KEYS": f"other-key,{API_KEY}",
        "PATRON_MAX_BODY_BYTES": "200000",
    }
    patron = Path(sys.executable).with_name("patron")
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [str(patron), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited early:\n{log.read_text()}")
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /healthz within 90 s:\n{log.read_text()}")
            time.sleep(0.25)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_real_server_is_ready_and_guards_v1(server):
    assert httpx.get(f"{server}/readyz").json()["status"] == "ready"
    assert httpx.get(f"{server}/v1/model").status_code == 401
    info = httpx.get(f"{server}/v1/model", headers={"X-API-Key": API_KEY})
    assert info.status_code == 200 and info.json()["alias"] == "champion"


def test_real_server_scores_like_the_test_client(server, client, registry):
    counts = registry.transactions.groupby("customer_id").size()
    ids = [str(c) for c in counts[counts >= 2].index[:5]]
    body = request_body(registry.transactions, ids, registry.as_of)
    over_http = httpx.post(f"{server}/v1/score", json=body, headers={"X-API-Key": API_KEY}, timeout=30)
    assert over_http.status_code == 200, over_http.text
    in_process = client.post("/v1/score", json=body).json()
    assert over_http.json()["scores"] == in_process["scores"]


def test_real_server_refuses_large_bodies_with_413(server):
    body = b'{"as_of": "2011-12-09", "customers": [' + b" " * 300_000 + b"]}"
    response = httpx.post(
        f"{server}/v1/score", content=body, headers={"X-API-Key": API_KEY, "content-type": "application/json"}
    )
    assert response.status_code == 413 and response.json()["limit"] == "max_body_bytes"


def test_reloads_do_not_drop_in_flight_requests(server, registry):
    counts = registry.transactions.groupby("customer_id").size()
    ids = [str(c) for c in counts[counts >= 2].index[:50]]
    body = request_body(registry.transactions, ids, registry.as_of)
    headers = {"X-API-Key": API_KEY}

    def score(_: int) -> int:
        return httpx.post(f"{server}/v1/score", json=body, headers=headers, timeout=60).status_code

    def reload(_: int) -> str:
        return httpx.post(f"{server}/admin/reload?force=true", headers=headers, timeout=60).json()["status"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        scores = [pool.submit(score, i) for i in range(16)]
        reloads = [pool.submit(reload, i) for i in range(3)]
        assert [f.result() for f in scores] == [200] * 16
        assert {f.result() for f in reloads} <= {"reloaded", "unchanged"}
    assert httpx.get(f"{server}/readyz").json()["last_error"] is None


def test_metrics_are_scrapable(server):
    text = httpx.get(f"{server}/metrics").text
    assert "patron_http_requests_total" in text and "patron_model_info{" in text
