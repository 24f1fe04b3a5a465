"""Schemathesis against the app's own OpenAPI schema: no input, however odd, gets a 5xx.

Every operation gets generated requests that follow the schema (positive) and requests that break
it (negative: wrong types, missing fields, out-of-range values); the check is schemathesis'
`not_a_server_error`. Examples per operation and mode are bounded so the run stays well under a minute.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error

from patron.settings import Settings

pytestmark = pytest.mark.slow

EXAMPLES_PER_MODE = 25


@pytest.fixture(scope="module")
def api_schema(registry, scorer, batch_scores):
    """The app's schema; schemathesis starts the app (lifespan included) on its first call."""
    from serving.app import create_app

    app_settings = Settings(
        tracking_uri=registry.tracking_uri,
        model_uri=registry.model_uri,
        scores_path=str(batch_scores),
        max_customers_per_request=20,
        max_transactions_per_customer=50,
    )
    app = create_app(settings=app_settings, scorer_loader=lambda uri: scorer)
    return schemathesis.openapi.from_asgi("/openapi.json", app)


def operations(schema, mode):
    """Operations to fuzz; negative cases exist only for operations that take some input."""
    found = [result.ok() for result in schema.get_all_operations()]
    if mode == GenerationMode.NEGATIVE:
        found = [op for op in found if len(op.body) or len(op.path_parameters) or len(op.query)]
    return found


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["positive", "negative"])
def test_no_server_errors(api_schema, mode):
    checked = []
    for operation in operations(api_schema, mode):

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_MODE,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case):
            response = case.call()
            case.validate_response(response, checks=[not_a_server_error])

        call()
        checked.append(operation.label)
    assert {"POST /v1/score", "POST /v1/campaign", "GET /v1/customers/{customer_id}"} <= set(checked)
