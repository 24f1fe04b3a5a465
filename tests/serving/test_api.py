"""The prediction API through FastAPI's TestClient, on a real model from a temporary registry."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from serving_helpers import app_of, request_body

from core.scores import DAY_SCORE_COLUMNS, EMPTY_WHEN_UNKNOWN_COLUMNS, SCORE_COLUMNS
from serving.deps import key_matches

# --- scoring ----------------------------------------------------------------------------------


def some_customers(registry, n: int = 3) -> list[str]:
    """Customers with several purchases before the as-of date (deterministic pick)."""
    counts = registry.transactions.groupby("customer_id").size().sort_index()
    return [str(cid) for cid in counts[counts >= 3].index[:n]]


def test_score_returns_the_scores_row_per_customer_in_request_order(client, registry):
    ids = some_customers(registry, 3)[::-1]
    response = client.post("/v1/score", json=request_body(registry.transactions, ids, registry.as_of))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [row["customer_id"] for row in body["scores"]] == ids
    assert set(SCORE_COLUMNS) <= set(body["scores"][0])
    assert body["model"] == {"name": "patron", "version": body["scores"][0]["model_version"]}
    assert body["scores"][0]["model_name"] == "patron"
    assert body["as_of"] == registry.as_of.date().isoformat()
    for row in body["scores"]:
        assert 0.0 <= row["churn_probability"] <= 1.0 and 0.0 <= row["p_alive"] <= 1.0
        assert row["value_tier"] in ("diamond", "gold", "silver", "regular")


def test_later_transactions_are_ignored(client, registry):
    ids = some_customers(registry, 1)
    body = request_body(registry.transactions, ids, registry.as_of)
    first = client.post("/v1/score", json=body).json()["scores"][0]
    future = (registry.as_of + pd.Timedelta(days=3)).isoformat()
    body["customers"][0]["transactions"].append({"timestamp": future, "amount": 999.0})
    again = client.post("/v1/score", json=body).json()["scores"][0]
    assert again == first


# --- 422: malformed input names the field --------------------------------------------------


def error_locs(response) -> list[list]:
    return [error["loc"] for error in response.json()["detail"]]


# The optional fields the generated training data carries, so the model's features can be built.
FULL = {"category": "books", "discount": 0.0, "promo": False, "cost": 3.0}


def one_customer(**tx) -> dict:
    return {"as_of": "2011-12-09", "customers": [{"customer_id": "c1", "transactions": [tx]}]}


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"customers": []}, ["body", "as_of"]),
        (one_customer(timestamp="2011-01-01", amount="ten"), ["body", "customers", 0, "transactions", 0, "amount"]),
        (one_customer(timestamp="yesterday", amount=1), ["body", "customers", 0, "transactions", 0, "timestamp"]),
        (one_customer(timestamp="2011-01-01", amount=1, colour="red"), ["body", "customers", 0, "transactions", 0, "colour"]),
        (one_customer(timestamp="2011-01-01"), ["body", "customers", 0, "transactions", 0]),
    ],
)
def test_malformed_fields_answer_422_naming_the_path(client, body, loc):
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert loc in error_locs(response)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_amount_answers_422_naming_it_and_echoing_the_literal(client, literal):
    """Python's JSON parser accepts NaN and Infinity; the 422 must still be JSON (it was a 500)."""
    raw = '{"as_of": "2011-12-09", "customers": [{"customer_id": "a", "transactions": '
    raw += '[{"timestamp": "2011-01-01", "amount": ' + literal + "}]}]}"
    answer = client.post("/v1/score", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422
    [error] = answer.json()["detail"]
    assert error["loc"] == ["body", "customers", 0, "transactions", 0, "amount"] and error["input"] == literal


def test_invalid_json_answers_422(client):
    response = client.post("/v1/score", content=b'{"as_of": ', headers={"content-type": "application/json"})
    assert response.status_code == 422


def test_repeated_customer_answers_422_naming_the_repeat(client):
    tx = {"timestamp": "2011-01-01", "amount": 10}
    body = {
        "as_of": "2011-12-09",
        "customers": [{"customer_id": "a", "transactions": [tx]}, {"customer_id": "a", "transactions": [tx]}],
    }
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "customers", 1, "customer_id"]]


def test_a_rejected_row_is_listed_and_the_other_customers_are_scored(client):
    """Issue 15.8: one zero-amount or duplicate row does not fail the request; its reason is returned."""
    body = {
        "as_of": "2011-12-09",
        "customers": [
            {"customer_id": "ok", "transactions": [{"timestamp": "2011-01-01", "amount": 10, **FULL}]},
            {
                "customer_id": "bad",
                "transactions": [
                    {"timestamp": "2011-01-01", "amount": 10, **FULL},
                    {"timestamp": "2011-02-01", "amount": 0, **FULL},
                ],
            },
        ],
    }
    body["customers"].append(
        {
            "customer_id": "twice",
            "transactions": [{"timestamp": "2011-03-01T10:00:00", "amount": 12, **FULL}] * 2,
        }
    )
    body["customers"].append({"customer_id": "late", "transactions": [{"timestamp": "2012-01-01", "amount": 9, **FULL}]})
    response = client.post("/v1/score", json=body)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert [row["customer_id"] for row in answer["scores"]] == ["ok", "bad", "twice"]
    assert answer["rejects"] == [
        {"customer_index": 1, "customer_id": "bad", "transaction_index": 1, "reason": "zero_amount"},
        {"customer_index": 2, "customer_id": "twice", "transaction_index": 1, "reason": "duplicate"},
        {"customer_index": 3, "customer_id": "late", "transaction_index": None, "reason": "no_purchase_by_as_of"},
    ]
    alone = client.post("/v1/score", json={"as_of": "2011-12-09", "customers": body["customers"][:1]}).json()
    assert alone["scores"][0] == answer["scores"][0] and alone["rejects"] == []


def test_nothing_scorable_answers_422_naming_each_rejected_row(client):
    body = {
        "as_of": "2011-12-09",
        "customers": [
            {"customer_id": "zero", "transactions": [{"timestamp": "2011-01-01", "amount": 0, **FULL}]},
            {"customer_id": "late", "transactions": [{"timestamp": "2012-01-01", "amount": 5, **FULL}]},
        ],
    }
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "customers", 0, "transactions", 0], ["body", "customers", 1, "transactions"]]
    assert "zero_amount" in response.json()["detail"][0]["msg"]


def test_fields_the_model_needs_are_required(client):
    response = client.post("/v1/score", json=one_customer(timestamp="2011-01-01", amount=10, category="books"))
    assert response.status_code == 422
    messages = " ".join(error["msg"] for error in response.json()["detail"])
    assert "'cost'" in messages and "margin_rate" in messages and "'category'" not in messages


def test_customer_without_purchase_before_as_of_answers_422(client):
    body = one_customer(timestamp="2012-01-01", amount=10, **FULL)
    response = client.post("/v1/score", json=body)
    assert response.status_code == 422
    assert error_locs(response) == [["body", "customers", 0, "transactions"]]
    assert "as_of" in response.json()["detail"][0]["msg"]


# --- 413: limits name themselves --------------------------------------------------------------


def test_too_many_customers_answers_413(make_client, settings):
    client = make_client(settings.model_copy(update={"max_customers_per_request": 2}))
    tx = [{"timestamp": "2011-01-01", "amount": 5}]
    body = {"as_of": "2011-12-09", "customers": [{"customer_id": str(i), "transactions": tx} for i in range(3)]}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 413
    assert response.json()["limit"] == "max_customers_per_request" and response.json()["limit_value"] == 2


def test_too_many_transactions_answers_413(make_client, settings):
    client = make_client(settings.model_copy(update={"max_transactions_per_customer": 3}))
    tx = [{"timestamp": f"2011-01-0{d}", "amount": 5} for d in range(1, 5)]
    body = {"as_of": "2011-12-09", "customers": [{"customer_id": "big", "transactions": tx}]}
    response = client.post("/v1/score", json=body)
    assert response.status_code == 413
    assert response.json()["limit"] == "max_transactions_per_customer"
    assert "'big'" in response.json()["detail"]


def test_body_over_limit_answers_413_on_content_length(make_client, settings):
    client = make_client(settings.model_copy(update={"max_body_bytes": 200}))
    body = one_customer(timestamp="2011-01-01", amount=1, category="x" * 250)
    response = client.post("/v1/score", json=body)
    assert response.status_code == 413
    assert response.json()["limit"] == "max_body_bytes"


def test_body_over_limit_answers_413_when_streamed_without_length(make_client, settings):
    client = make_client(settings.model_copy(update={"max_body_bytes": 200}))
    payload = json.dumps(one_customer(timestamp="2011-01-01", amount=1, category="x" * 250)).encode()

    def chunks():  # no Content-Length: sent chunked, so only the streamed size can tell
        for start in range(0, len(payload), 64):
            yield payload[start : start + 64]

    response = client.post("/v1/score", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["limit"] == "max_body_bytes"


def test_body_under_limit_passes_the_limit(make_client, settings, registry):
    client = make_client(settings.model_copy(update={"max_body_bytes": 100_000}))
    body = request_body(registry.transactions, some_customers(registry, 1), registry.as_of)
    assert client.post("/v1/score", json=body).status_code == 200


# --- security ---------------------------------------------------------------------------------


def test_key_matching():
    assert key_matches("k2", ["k1", "k2"])
    assert not key_matches("k", ["k1", "k2"]) and not key_matches("", ["k1"]) and not key_matches("k1", [])


def test_api_keys_guard_v1_and_admin_only(make_client, settings, registry):
    client = make_client(settings.model_copy(update={"api_keys": ["alpha-key", "beta-key"]}))
    body = request_body(registry.transactions, some_customers(registry, 1), registry.as_of)
    assert client.post("/v1/score", json=body).status_code == 401
    assert client.post("/v1/score", json=body, headers={"X-API-Key": "wrong"}).status_code == 401
    assert client.post("/v1/score", json=body, headers={"X-API-Key": "beta-key"}).status_code == 200
    assert client.get("/v1/model").status_code == 401
    assert client.get("/v1/model", headers={"X-API-Key": "alpha-key"}).status_code == 200
    assert client.post("/admin/reload").status_code == 401
    assert client.get("/v1/customers/x").headers.get("www-authenticate") == "ApiKey"
    for open_path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(open_path).status_code == 200


def test_no_keys_means_open(client):
    assert client.get("/v1/model").status_code == 200


def test_only_the_documentation_pages_carry_the_no_off_machine_policy(client):
    from serving.docs_policy import DOCS_POLICY

    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        answer = client.get(page)
        assert answer.status_code == 200 and answer.headers["content-security-policy"] == DOCS_POLICY
    assert "default-src 'self'" in DOCS_POLICY and "https:" not in DOCS_POLICY
    for path in ("/openapi.json", "/healthz", "/v1/model", "/metrics"):
        answer = client.get(path)
        assert answer.status_code == 200 and "content-security-policy" not in answer.headers


# --- model, readiness, metrics ---------------------------------------------------------------


def test_model_info_describes_the_champion(client, scorer):
    info = client.get("/v1/model").json()
    assert info["name"] == "patron" and info["alias"] == "champion"
    assert info["version"] == str(scorer.metadata["model_version"])
    assert info["trained_at"] and info["data_fingerprint"]["rows"] > 0
    assert 0.5 < info["metrics"]["churn_auc"] <= 1.0


def test_readyz_is_503_until_a_model_loads(make_client, settings, scorer):
    attempts = {"n": 0}

    def flaky(uri: str):
        attempts["n"] += 1
        if attempts["n"] == 1:
            raise ConnectionError("registry down")
        return scorer

    client = make_client(settings, loader=flaky)
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "registry down" in ready.json()["last_error"]
    scored = client.post("/v1/score", json=one_customer(timestamp="2011-01-01", amount=1))
    assert scored.status_code == 503 and "registry down" in scored.json()["detail"]
    assert client.post("/admin/reload").json()["status"] == "reloaded"
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and ready["last_error"] is None


def test_metrics_count_requests_by_route_and_model_version(client, registry, scorer):
    version = str(scorer.metadata["model_version"])
    client.post("/v1/score", json=request_body(registry.transactions, some_customers(registry, 2), registry.as_of))
    client.get("/v1/customers/nobody-at-all")
    text = client.get("/metrics").text
    assert f'patron_model_info{{model_name="patron",model_version="{version}"}} 1.0' in text
    assert (
        f'patron_http_requests_total{{method="POST",model_version="{version}",route="/v1/score",status="200"}} 1.0'
        in text
    )
    assert 'route="/v1/customers/{customer_id}",status="404"' in text  # the template, never the id
    assert "nobody-at-all" not in text
    assert 'patron_http_request_duration_seconds_bucket{le="0.02",method="POST",route="/v1/score"}' in text
    assert f'patron_scored_customers_total{{model_version="{version}"}} 2.0' in text


# --- customers and campaign from the batch file -------------------------------------------


def test_customer_lookup_returns_the_batch_row(client, batch_scores):
    batch = pd.read_parquet(batch_scores)
    row = batch.iloc[5]
    got = client.get(f"/v1/customers/{row['customer_id']}")
    assert got.status_code == 200
    body = got.json()
    for column in SCORE_COLUMNS:
        if column in DAY_SCORE_COLUMNS:  # as_of, and the dates that are empty when unknown
            expected = None if pd.isna(row[column]) else pd.Timestamp(row[column]).date().isoformat()
            assert body[column] == expected, column
        elif column in EMPTY_WHEN_UNKNOWN_COLUMNS and pd.isna(row[column]):
            assert body[column] is None, column
        else:
            assert body[column] == (row[column].item() if hasattr(row[column], "item") else row[column]), column


def test_unknown_customer_is_404_with_a_clear_message(client):
    response = client.get("/v1/customers/not-a-customer")
    assert response.status_code == 404
    assert "'not-a-customer' is not in the batch scores file" in response.json()["detail"]


def test_no_scores_file_is_503_naming_the_setting(make_client, settings):
    client = make_client(settings.model_copy(update={"scores_path": None}))
    response = client.get("/v1/customers/x")
    assert response.status_code == 503 and "PATRON_SCORES_PATH" in response.json()["detail"]


def test_campaign_by_customer_ids_respects_the_budget(client, batch_scores):
    batch = pd.read_parquet(batch_scores)
    ids = batch["customer_id"].astype(str).tolist()[:300]
    response = client.post("/v1/campaign", json={"budget": 5.0, "customer_ids": ids})
    assert response.status_code == 200, response.text
    body = response.json()
    assert sum(row["spend"] for row in body["selected"]) <= 5.0 + 1e-9
    assert sum(row["customers"] for row in body["excluded"]) + len(body["selected"]) == 300
    assert {row["customer_id"] for row in body["selected"]} <= set(ids)


def test_campaign_from_score_rows_equals_campaign_from_ids(client, batch_scores):
    batch = pd.read_parquet(batch_scores)
    ids = batch["customer_id"].astype(str).tolist()[:200]
    rows = [client.get(f"/v1/customers/{cid}").json() for cid in ids[:50]]
    by_rows = client.post("/v1/campaign", json={"budget": 3.0, "scores": rows}).json()
    by_ids = client.post("/v1/campaign", json={"budget": 3.0, "customer_ids": ids[:50]}).json()
    assert by_rows == by_ids


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_campaign_refuses_non_finite_score_rows_naming_the_field(client, batch_scores, literal):
    row = pd.read_parquet(batch_scores).iloc[:1]
    text = row.to_json(orient="records", date_format="iso")[1:-1]
    record = json.loads(text)
    record["as_of"] = str(record["as_of"])[:10]
    for name in ("expected_next_order_date", "recommended_contact_date"):
        record[name] = None if record[name] is None else str(record[name])[:10]
    record["clv"] = "__X__"
    raw = json.dumps({"budget": 100, "scores": [record]}).replace('"__X__"', literal)
    answer = client.post("/v1/campaign", content=raw, headers={"content-type": "application/json"})
    assert answer.status_code == 422, answer.text[:300]
    assert ["body", "scores", 0, "clv"] in [error["loc"] for error in answer.json()["detail"]]
    record["clv"] = 1.0
    assert client.post("/v1/campaign", json={"budget": 100, "scores": [record]}).status_code == 200


def test_campaign_with_unknown_ids_is_404(client):
    response = client.post("/v1/campaign", json={"budget": 3.0, "customer_ids": ["ghost-1", "ghost-2"]})
    assert response.status_code == 404 and "'ghost-1'" in response.json()["detail"]


# --- micro-batching ---------------------------------------------------------------------------


def test_concurrent_requests_share_passes_and_get_their_own_rows(client, registry):
    from concurrent.futures import ThreadPoolExecutor

    ids = some_customers(registry, 12)
    bodies = [request_body(registry.transactions, [cid], registry.as_of) for cid in ids]
    # Two requests with the same customer id but different histories must not be mixed up.
    clash = request_body(registry.transactions, [ids[0]], registry.as_of)
    clash["customers"][0]["transactions"] = clash["customers"][0]["transactions"][:1]
    bodies.append(clash)
    alone = [client.post("/v1/score", json=body).json()["scores"] for body in bodies]
    batcher = app_of(client).state.batcher
    passes_before = batcher.passes
    with ThreadPoolExecutor(max_workers=8) as pool:
        together = list(pool.map(lambda body: client.post("/v1/score", json=body).json()["scores"], bodies * 3))
    for got, want in zip(together, alone * 3, strict=True):
        for g, w in zip(got, want, strict=True):
            assert g == w, {k: (g[k], w[k]) for k in g if g[k] != w[k]}
    assert alone[-1] != alone[0]  # the clash really differs, and each request kept its own
    assert batcher.passes - passes_before <= len(together)
