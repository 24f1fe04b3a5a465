"""The API's frame of clean rows equals the data contract's, and scores through it equal the general path's."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from serving_helpers import request_body

import serving.clean_rows as clean_rows
from features import validate_transactions
from serving.clean_rows import clean_contract_frame
from serving.request_frame import prepare_request, raw_frame, score_requests
from serving.schemas import ScoreRequest

START = dt.datetime(2020, 1, 1)
IDS = ["c-1", "007", "12.0", " 12", "ü-9", "b", "a|b", "10", "9"]  # "12.0" and " 12" are one customer
CLEAN_TEXTS = [None, "o-1", "o-2", "Books", "x y", "ß"]
TEXTS = [*CLEAN_TEXTS, " pad", "pad ", "", "123.0", "1.5"]  # the last five need the contract's repairs

stamps = st.one_of(
    st.integers(0, 6).map(lambda d: START + dt.timedelta(days=d)),  # days: same-instant rows are common
    st.integers(0, 10**7).map(lambda s: START + dt.timedelta(seconds=s)),
)
CLEAN_MONEY = [None, 12.5, -12.5, 3.0, 1e-3, 99.99, -7.0]
MONEY = [*CLEAN_MONEY, 0.0, -0.0]


@st.composite
def transactions(draw: Any, dirty: bool) -> dict[str, Any]:
    tx: dict[str, Any] = {"timestamp": draw(stamps).isoformat()}
    amount = draw(st.sampled_from(MONEY if dirty else CLEAN_MONEY))
    if amount is None or draw(st.booleans()):
        tx["quantity"] = draw(st.sampled_from([1.0, 2.0, -1.0, 0.5, 3.0]))
        tx["unit_price"] = draw(st.sampled_from([10.0, 0.1, 4.25] + ([0.0] if dirty else [])))
    if amount is not None or draw(st.booleans()):
        tx["amount"] = amount
    for name in ("order_id", "category", "channel"):
        if draw(st.booleans()):
            tx[name] = draw(st.sampled_from(TEXTS if dirty else CLEAN_TEXTS))
    for name, values in (("discount", [None, 0.0, 1.5]), ("cost", [None, 2.0, -1.0]), ("is_return", [None, True, False]), ("promo", [None, True, False])):
        if draw(st.booleans()):
            tx[name] = draw(st.sampled_from(values))
    return tx


@st.composite
def bodies(draw: Any) -> dict[str, Any]:
    """Mostly clean requests (the API's common case), some with rows the contract repairs or refuses."""
    dirty = draw(st.integers(0, 3)) == 0
    ids = draw(st.lists(st.sampled_from(IDS), min_size=1, max_size=3, unique=True))
    customers = [
        {"customer_id": cid, "transactions": draw(st.lists(transactions(dirty), min_size=1, max_size=8))} for cid in ids
    ]
    return {"as_of": "2020-06-30", "customers": customers}


def prepared(*raw_bodies: dict[str, Any]) -> list[Any]:
    return [prepare_request(ScoreRequest.model_validate(body), ()) for body in raw_bodies]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=bodies(), second=bodies(), keep_duplicates=st.booleans())
def test_clean_frame_equals_the_contracts_frame(first, second, keep_duplicates):
    try:
        requests = prepared(first, second)
    except Exception:  # duplicate ids after normalisation ("12.0" and " 12"): a 422 before any frame
        return
    if requests[0].fields != requests[1].fields:
        requests = requests[:1]  # a pass holds requests that sent the same fields
    frame = clean_contract_frame(requests, requests[0].fields, keep_duplicates)
    if frame is None:
        return
    expected = validate_transactions(raw_frame(requests, requests[0].fields), keep_duplicates=keep_duplicates)
    assert len(expected.rejects) == 0  # a clean frame never hides a row the contract refuses
    pd.testing.assert_frame_equal(frame, expected.transactions, check_exact=True)


def test_typical_requests_take_the_clean_path():
    body = {"as_of": "2020-06-30", "customers": [
        {"customer_id": "c-1", "transactions": [
            {"timestamp": "2020-01-03T10:00:00", "amount": 20.0, "order_id": "o-1", "category": "Books", "promo": True},
            {"timestamp": "2020-01-02T09:00:00", "quantity": 2, "unit_price": 4.5, "order_id": "o-0", "discount": 1.0},
            {"timestamp": "2020-02-01T09:00:00", "amount": -5.0, "order_id": "o-1", "cost": 3.0},
        ]},
        {"customer_id": "b", "transactions": [{"timestamp": "2020-01-05", "amount": 7.0, "is_return": False}]},
    ]}
    (request,) = prepared(body)
    frame = clean_contract_frame([request], request.fields, keep_duplicates=False)
    assert frame is not None
    expected = validate_transactions(raw_frame([request], request.fields)).transactions
    pd.testing.assert_frame_equal(frame, expected, check_exact=True)
    assert frame["customer_id"].tolist() == ["0|b", "0|c-1", "0|c-1", "0|c-1"]


@pytest.mark.parametrize(
    "change",
    [
        {"amount": 0.0},  # zero_amount
        {"order_id": " o-1"},  # the contract trims it
        {"category": ""},  # the contract blanks it
        {"order_id": "17.0"},  # the contract reads it as 17
        {"timestamp": "2020-01-02T09:00:00"},  # same instant as the next row: maybe a duplicate
    ],
)
def test_rows_that_need_the_contracts_repairs_take_the_general_path(change):
    rows = [{"timestamp": "2020-01-01T09:00:00", "amount": 5.0, "order_id": "o-1", "category": "A"},
            {"timestamp": "2020-01-02T09:00:00", "amount": 6.0, "order_id": "o-2", "category": "A"}]
    rows[0] = {**rows[0], **change}
    (request,) = prepared({"as_of": "2020-06-30", "customers": [{"customer_id": "x", "transactions": rows}]})
    assert clean_contract_frame([request], request.fields, keep_duplicates=False) is None


def test_large_requests_take_the_general_path(monkeypatch):
    rows = [{"timestamp": f"2020-01-{d:02d}", "amount": 5.0} for d in range(1, 11)]
    (request,) = prepared({"as_of": "2020-06-30", "customers": [{"customer_id": "x", "transactions": rows}]})
    assert clean_contract_frame([request], request.fields, keep_duplicates=False) is not None
    monkeypatch.setattr(clean_rows, "MAX_ROWS", 9)
    assert clean_contract_frame([request], request.fields, keep_duplicates=False) is None


def test_scores_through_the_clean_path_equal_the_general_paths(registry, scorer, monkeypatch):
    counts = registry.transactions.groupby("customer_id").size().sort_index()
    ids = [str(cid) for cid in counts.index[::7][:150]]
    requests = [prepare_request(ScoreRequest.model_validate(request_body(registry.transactions, ids[i : i + 10], registry.as_of)), scorer.required_columns) for i in range(0, len(ids), 10)]
    assert clean_contract_frame(requests, requests[0].fields, False) is not None
    fast = score_requests(requests, scorer, registry.as_of, False)
    monkeypatch.setattr(clean_rows, "MAX_ROWS", -1)  # every request through validate_transactions
    general = score_requests(requests, scorer, registry.as_of, False)
    for got, want in zip(fast, general, strict=True):
        if isinstance(want, Exception):
            assert isinstance(got, Exception) and got.errors() == want.errors()
        else:
            pd.testing.assert_frame_equal(got, want, check_exact=True)
