"""Request models: the edge that turns malformed input into 422s naming the field."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from serving.schemas import CampaignRequest, ScoreRequest, TransactionIn


def error_locs(exc: ValidationError) -> list[tuple]:
    return [tuple(error["loc"]) for error in exc.errors()]


def test_amount_or_quantity_times_price_is_required():
    assert TransactionIn(timestamp="2011-01-02", amount=10).amount == 10
    assert TransactionIn(timestamp="2011-01-02", quantity=2, unit_price=3.5).amount is None
    with pytest.raises(ValidationError, match="amount is required"):
        TransactionIn(timestamp="2011-01-02", quantity=2)


def test_offsets_become_naive_utc_and_dates_midnight():
    tx = TransactionIn(timestamp="2011-03-01T10:00:00+02:00", amount=1)
    assert tx.timestamp == dt.datetime(2011, 3, 1, 8, 0)
    assert TransactionIn(timestamp="2011-03-01", amount=1).timestamp == dt.datetime(2011, 3, 1)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"timestamp": "1200-01-01", "amount": 1}, "timestamp"),  # outside pandas' datetime64[ns] range
        ({"timestamp": "2011-01-01", "amount": 1e300}, "amount"),
        ({"timestamp": "2011-01-01", "amount": float("nan")}, "amount"),
        ({"timestamp": "2011-01-01", "amount": 1, "discount": -1}, "discount"),
        ({"timestamp": "2011-01-01", "amount": 1, "colour": "red"}, "colour"),
        ({"timestamp": "not a date", "amount": 1}, "timestamp"),
    ],
)
def test_bad_fields_are_named(payload, field):
    with pytest.raises(ValidationError) as info:
        TransactionIn(**payload)
    assert (field,) in error_locs(info.value)


def test_score_request_names_nested_paths():
    body = {
        "as_of": "2011-12-09",
        "customers": [
            {"customer_id": "a", "transactions": [{"timestamp": "2011-01-01", "amount": 1}]},
            {"customer_id": "b", "transactions": [{"timestamp": "2011-01-01", "amount": "lots"}]},
        ],
    }
    with pytest.raises(ValidationError) as info:
        ScoreRequest.model_validate(body)
    assert ("customers", 1, "transactions", 0, "amount") in error_locs(info.value)


@pytest.mark.parametrize(
    "body",
    [
        {"as_of": "2011-12-09", "customers": []},
        {"as_of": "2011-12-09", "customers": [{"customer_id": " ", "transactions": [{"timestamp": "2011-01-01", "amount": 1}]}]},
        {"as_of": "2011-12-09", "customers": [{"customer_id": "a", "transactions": []}]},
        {"as_of": "9999-12-31", "customers": [{"customer_id": "a", "transactions": [{"timestamp": "2011-01-01", "amount": 1}]}]},
    ],
)
def test_empty_or_out_of_range_requests_are_invalid(body):
    with pytest.raises(ValidationError):
        ScoreRequest.model_validate(body)


def test_campaign_takes_exactly_one_source():
    assert CampaignRequest(budget=10, customer_ids=["a"]).customer_ids == ["a"]
    with pytest.raises(ValidationError, match="exactly one"):
        CampaignRequest(budget=10)
    with pytest.raises(ValidationError, match="exactly one"):
        CampaignRequest(budget=10, customer_ids=["a"], scores=[])
