"""/v1/score bodies to scores: per-request checks, then one validate -> features -> score pass for many.

Every reason to refuse a request is a 422 naming the field. Checks that need only the request run in
`prepare_request`; the data contract (`features.validate_transactions`) and the scoring run in
`score_requests` over one or more prepared requests together, each request's customer ids prefixed
with its position so that two requests may carry the same id. A request whose rows the contract
rejects gets its own 422; the others in the pass are scored.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi.exceptions import RequestValidationError

from core.errors import DataError
from serving.model_store import ScorerProtocol
from serving.schemas import ScoreRequest, TransactionIn
from serving.scoring import score_frame

OPTIONAL_FIELDS = tuple(name for name in TransactionIn.model_fields if name != "timestamp")
MAX_ERRORS = 20  # a 422 names the first few offending fields, not thousands

# Features that exist only when the transactions carry an optional contract field (features.behaviour).
FEATURE_SOURCES = {
    "discount_share": "discount",
    "promo_share": "promo",
    "n_categories": "category",
    "top_category_share": "category",
    "margin_rate": "cost",
}


def field_error(loc: tuple[Any, ...], message: str, value: Any = None) -> dict[str, Any]:
    """One error entry in FastAPI's 422 format."""
    return {"type": "value_error", "loc": ("body", *loc), "msg": message, "input": value}


def refuse(errors: Iterable[dict[str, Any]]) -> None:
    """Raise a 422 with (at most MAX_ERRORS of) `errors`, if there are any."""
    listed = list(errors)[:MAX_ERRORS]
    if listed:
        raise RequestValidationError(listed)


@dataclass(frozen=True)
class PreparedRequest:
    """A /v1/score body that passed the per-request checks."""

    body: ScoreRequest
    ids: list[str]
    """Customer ids as the data contract reads them, in request order."""
    fields: tuple[str, ...]
    """Optional transaction fields some transaction sent: they decide the frame's columns."""

    @functools.cached_property
    def counts(self) -> np.ndarray:
        """Transactions per customer."""
        return np.array([len(customer.transactions) for customer in self.body.customers])

    @property
    def n_rows(self) -> int:
        """Transactions in the request."""
        return int(self.counts.sum())


def prefixed_ids(requests: Sequence[PreparedRequest]) -> list[str]:
    """Each request's customer ids prefixed with its position (`<k>|<id>`), so requests sharing a pass
    may carry the same id; the frames of a pass use these ids."""
    return [f"{k}|{cid}" for k, request in enumerate(requests) for cid in request.ids]


def row_ids(requests: Sequence[PreparedRequest]) -> list[str]:
    """The prefixed customer id of every transaction of the requests, in request order."""
    counts = np.concatenate([request.counts for request in requests])
    return np.repeat(np.array(prefixed_ids(requests), dtype=object), counts).tolist()


def normalised_ids(body: ScoreRequest) -> pd.Series:
    """The request's customer ids as the data contract reads them (`17850.0` and ` 17850` are `17850`)."""
    from features.validate import normalise_customer_ids  # the contract's one definition of an id

    return normalise_customer_ids(pd.Series([c.customer_id for c in body.customers], dtype=object)).astype(str)


def sent_fields(body: ScoreRequest) -> tuple[str, ...]:
    """Optional fields that at least one transaction of the request carries."""
    sent = set()
    for customer in body.customers:  # bounded by the request limits
        for tx in customer.transactions:
            sent.update(tx.model_fields_set)
    return tuple(name for name in OPTIONAL_FIELDS if name in sent)


def duplicate_id_errors(ids: pd.Series) -> list[dict[str, Any]]:
    """Errors naming each repeat of a customer id (after the contract's normalisation)."""
    repeated = np.flatnonzero(ids.duplicated().to_numpy())
    return [field_error(("customers", int(i), "customer_id"), "customer_id appears more than once", ids[i]) for i in repeated]


def missing_field_errors(fields: Iterable[str], required_features: Iterable[str]) -> list[dict[str, Any]]:
    """Errors when the model uses a feature built from an optional field no transaction carries."""
    present = set(fields)
    needed: dict[str, list[str]] = {}
    for feature in required_features:
        source = FEATURE_SOURCES.get(feature)
        if source is not None and source not in present:
            needed.setdefault(source, []).append(feature)
    return [
        field_error(("customers",), f"the model uses {', '.join(features)}, built from the transaction field '{source}': send it")
        for source, features in needed.items()
    ]


def prepare_request(body: ScoreRequest, required_features: Iterable[str]) -> PreparedRequest:
    """The checks that need only the request: unique ids, the fields the model needs; else 422."""
    ids = normalised_ids(body)
    refuse(duplicate_id_errors(ids))
    fields = sent_fields(body)
    refuse(missing_field_errors(fields, required_features))
    return PreparedRequest(body=body, ids=ids.tolist(), fields=fields)


def raw_frame(requests: Sequence[PreparedRequest], fields: Sequence[str], extra_rows: int = 0) -> pd.DataFrame:
    """The requests' transactions as one raw frame, ids prefixed `<request>|`; `extra_rows` blank rows."""
    ids = row_ids(requests)
    rows = [tx for request in requests for customer in request.body.customers for tx in customer.transactions]
    pad = [None] * extra_rows
    data: dict[str, Any] = {
        "customer_id": ids + pad,
        "timestamp": np.array([tx.timestamp for tx in rows] + pad, dtype="datetime64[ns]"),
    }
    for name in fields:
        data[name] = [getattr(tx, name) for tx in rows] + pad
    return pd.DataFrame(data)


def _validate(requests: Sequence[PreparedRequest], fields: Sequence[str], as_of: pd.Timestamp, keep_duplicates: bool) -> Any:
    """`validate_transactions` over the requests' rows (its `rejects` point at raw rows by position)."""
    from features import validate_transactions

    # pydantic typed every field at the edge: the output's pandera re-check would only cost time.
    try:
        return validate_transactions(raw_frame(requests, fields), keep_duplicates=keep_duplicates, check_schema=False)
    except DataError:
        # Every row was rejected, and validate_transactions says so without naming the rows: run it
        # again with one valid row of an id no client sends, so each row's own reason comes back.
        frame = raw_frame(requests, fields, extra_rows=1)
        frame.loc[len(frame) - 1, ["customer_id", "timestamp"]] = [f"sentinel-{uuid.uuid4().hex}", as_of]
        if "amount" in frame.columns:
            frame.loc[len(frame) - 1, "amount"] = 1.0
        else:
            frame.loc[len(frame) - 1, ["quantity", "unit_price"]] = [1.0, 1.0]
        return validate_transactions(frame, keep_duplicates=keep_duplicates, check_schema=False)


def score_requests(
    requests: Sequence[PreparedRequest],
    scorer: ScorerProtocol,
    as_of: pd.Timestamp,
    keep_duplicates: bool,
) -> list[pd.DataFrame | Exception]:
    """Scores of each request's customers in request order, or the 422 refusing that request.

    All requests must share `as_of` and their `fields` (the frame's columns shape the features).
    """
    from serving.clean_rows import clean_contract_frame

    fields = requests[0].fields
    transactions = clean_contract_frame(requests, fields, keep_duplicates)
    if transactions is None:  # some row needs the contract's repairs or refusals
        result = _validate(requests, fields, as_of, keep_duplicates)
        transactions = result.transactions
        errors = rejected_row_errors(result.rejects, requests)
    else:
        errors = [[] for _ in requests]

    # Which request and customer each validated row belongs to, by looking the prefixed ids up (the
    # sentinel row's id is in no request: -1).
    prefixed = prefixed_ids(requests)
    customer_starts = np.cumsum([0] + [len(request.ids) for request in requests])
    row_customer = pd.Index(prefixed).get_indexer(transactions["customer_id"])
    # a purchase on or before the as-of day (as_of is a midnight: the day's rows are < as_of + 1 day)
    stamps = transactions["timestamp"].to_numpy(dtype="datetime64[ns]")
    bought = (stamps < (as_of + pd.Timedelta(days=1)).to_datetime64()) & ~transactions["is_return"].to_numpy(dtype=bool)
    scorable = np.zeros(len(prefixed), dtype=bool)
    scorable[row_customer[bought & (row_customer >= 0)]] = True
    for k in range(len(requests)):  # a handful of requests
        if errors[k]:
            continue
        missing = np.flatnonzero(~scorable[customer_starts[k] : customer_starts[k + 1]])
        errors[k] = [
            field_error(("customers", int(i), "transactions"), f"no purchase on or before as_of {as_of.date()}: nothing to score")
            for i in missing[:MAX_ERRORS]
        ]

    ok = np.array([not e for e in errors])
    answers: list[pd.DataFrame | Exception] = [RequestValidationError(e) for e in errors]
    if ok.any():
        request_of = np.searchsorted(customer_starts, row_customer, side="right") - 1
        keep = (row_customer >= 0) & ok[np.clip(request_of, 0, len(requests) - 1)]
        kept = transactions if keep.all() else transactions[keep].reset_index(drop=True)
        scores = score_frame(kept, scorer, as_of)
        served = [int(k) for k in np.flatnonzero(ok)]
        groups = [prefixed[customer_starts[k] : customer_starts[k + 1]] for k in served]
        rows = rows_for(scores, groups, [requests[k].ids for k in served])
        for k, request_rows in zip(served, rows, strict=True):
            answers[k] = request_rows
    return answers


def rejected_row_errors(rejects: pd.DataFrame, requests: Sequence[PreparedRequest]) -> list[list[dict[str, Any]]]:
    """Per request, a 422 error naming each of its rows the contract rejected (rejects point at raw rows)."""
    counts = [request.counts for request in requests]
    row_starts = np.cumsum([0] + [request.n_rows for request in requests])
    errors: list[list[dict[str, Any]]] = [[] for _ in requests]
    rejected_rows = rejects["row"].to_numpy(dtype=np.int64)
    reasons = rejects["reason"].astype(str).to_numpy()
    in_request = rejected_rows < row_starts[-1]  # not the sentinel
    owner = np.searchsorted(row_starts, rejected_rows[in_request], side="right") - 1
    for k, row, why in zip(owner, rejected_rows[in_request], reasons[in_request], strict=True):
        if len(errors[k]) < MAX_ERRORS:
            local = row - row_starts[k]
            tx_starts = np.concatenate([[0], np.cumsum(counts[k])[:-1]])
            customer = int(np.searchsorted(tx_starts, local, side="right") - 1)
            loc = ("customers", customer, "transactions", int(local - tx_starts[customer]))
            errors[k].append(field_error(loc, f"rejected by the data contract: {why}"))
    return errors


def rows_for(scores: pd.DataFrame, prefixed: list[list[str]], ids: list[list[str]]) -> list[pd.DataFrame]:
    """Per request, the rows of its `prefixed` ids in order, with its own `ids` restored (one take for all)."""
    positions = pd.Index(scores["customer_id"]).get_indexer([cid for group in prefixed for cid in group])
    if (positions < 0).any():
        raise RuntimeError("the scorer returned no row for a customer with a purchase")
    rows = scores.iloc[positions].reset_index(drop=True)
    rows["customer_id"] = pd.Series([cid for group in ids for cid in group], dtype=rows["customer_id"].dtype)
    if len(ids) == 1:
        return [rows]
    bounds = np.cumsum([0] + [len(group) for group in ids])
    return [rows.iloc[lo:hi].reset_index(drop=True) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]
