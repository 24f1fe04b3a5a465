"""The API's answers to strangers and operators: key before body, every status documented, live alias."""

from __future__ import annotations

import pytest
from test_reload import POLL_NAME, poll_registry  # noqa: F401 - the fixture, shared with the reload tests

from serving.model_store import ScorerProtocol
from serving.routes.health import HIDDEN_ERROR

API_KEY = "reliability-key"


@pytest.fixture
def keyed_client(make_client, settings):
    return make_client(settings.model_copy(update={"api_keys": [API_KEY]}))


@pytest.mark.parametrize(
    ("path", "body", "headers"),
    [
        ("/v1/score", b"{not json", {"content-type": "application/json"}),
        ("/v1/score", b'{"customers": "\xff\xfe"}', {"content-type": "application/json"}),
        ("/v1/score", b"x" * 6_000_000, {"content-type": "application/json"}),
        ("/v1/campaign", b"[]", {"content-type": "application/json"}),
        ("/admin/reload", b"", {}),
        ("/v1/no-such-route", b"{", {"content-type": "application/json"}),
    ],
)
def test_a_caller_without_a_key_gets_401_before_the_body_is_read(keyed_client, path, body, headers):
    for key in (None, "wrong", "", API_KEY[:-1]):
        sent = {**headers, **({"X-API-Key": key} if key is not None else {})}
        answer = keyed_client.post(path, content=body, headers=sent)
        assert answer.status_code == 401, (key, answer.text[:200])
        assert answer.json() == {"detail": "missing or invalid X-API-Key header"}
        assert answer.headers["www-authenticate"] == "ApiKey"


def test_with_the_key_the_same_bodies_reach_the_parser(keyed_client):
    headers = {"X-API-Key": API_KEY, "content-type": "application/json"}
    assert keyed_client.post("/v1/score", content=b"{not json", headers=headers).status_code == 422
    assert keyed_client.post("/v1/score", content=b"x" * 6_000_000, headers=headers).status_code == 413
    assert keyed_client.get("/healthz").status_code == 200  # open routes stay open


def test_openapi_documents_every_status_the_layers_answer(client):
    schema = client.get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            statuses = set(operation["responses"])
            assert "500" in statuses, (method, path)
            if path.startswith(("/v1/", "/admin/")):
                assert "401" in statuses, (method, path)
            if "requestBody" in operation:
                assert {"400", "413", "422"} <= statuses, (method, path)
    assert "400" in schema["paths"]["/v1/score"]["post"]["responses"]


def test_campaign_schema_states_exactly_one_source(client):
    schema = client.get("/openapi.json").json()["components"]["schemas"]["CampaignRequest"]
    assert schema["oneOf"] == [{"required": ["scores"]}, {"required": ["customer_ids"]}]
    assert "exactly one of" in schema["description"]
    both = client.post("/v1/campaign", json={"budget": 10, "scores": [], "customer_ids": ["1"]})
    neither = client.post("/v1/campaign", json={"budget": 10})
    assert both.status_code == neither.status_code == 422
    assert "exactly one of scores or customer_ids" in both.text


def _failing_loader(uri: str) -> ScorerProtocol:
    raise RuntimeError("cannot open /srv/secret-path/model on db.internal:5432")


def test_readyz_shows_the_load_error_only_to_a_caller_with_the_key(make_client, settings):
    client = make_client(settings.model_copy(update={"api_keys": [API_KEY]}), loader=_failing_loader)
    open_answer = client.get("/readyz")
    assert open_answer.status_code == 503
    assert open_answer.json()["last_error"] == HIDDEN_ERROR
    assert "secret-path" not in open_answer.text
    keyed = client.get("/readyz", headers={"X-API-Key": API_KEY})
    assert keyed.status_code == 503 and "secret-path" in keyed.json()["last_error"]


def test_model_reports_an_alias_only_while_it_points_at_the_served_version(make_client, settings, poll_registry):  # noqa: F811
    client_ml, new_version = poll_registry
    app_settings = settings.model_copy(update={"model_uri": f"models:/{POLL_NAME}@champion"})
    client = make_client(app_settings, loader=None, use_registry=True)
    info = client.get("/v1/model").json()
    assert (info["version"], info["alias"]) == ("1", "champion")
    client_ml.set_registered_model_alias(POLL_NAME, "champion", new_version())  # promoted, not reloaded
    info = client.get("/v1/model").json()
    assert (info["version"], info["alias"]) == ("1", None)
    assert client.post("/admin/reload").json()["status"] == "reloaded"
    info = client.get("/v1/model").json()
    assert (info["version"], info["alias"]) == ("2", "champion")
    assert set(info["metrics"]) and info["data_fingerprint"]
