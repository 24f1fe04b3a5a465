"""Schemathesis against the app's own OpenAPI schema: no input, however odd, gets a 5xx."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error

from patron.settings import Settings

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def api_schema(registry, scorer, batch_scores):
    """The running app's schema (schemathesis starts the app's lifespan itself)."""
    from serving.app import create_app

    app_settings = Settings(
        tracking_uri=registry.tracking_uri,
        model_uri=registry.model_uri,
        scores_path=str(batch_scores),
        max_customers_per_request=50,
        max_transactions_per_customer=200,
    )
    app = create_app(settings=app_settings, scorer_loader=lambda uri: scorer)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case):
    case.call_and_validate(checks=[not_a_server_error])
