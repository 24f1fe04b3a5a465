"""/v1/score bodies to scores: per-request checks, then one `score_transactions` pass for many requests.

Checks that need only the request (unique ids, the fields the model needs) run in `prepare_request`
and refuse with a 422 naming the field. `score_requests` puts the transactions of one or more prepared
requests into one raw frame -- each request's customer ids prefixed with its position, so two requests
may carry the same id -- and scores it through `models.prediction.score_transactions`, the path the
batch job and the pyfunc take. Each request then gets the scores of its customers and the rows the data
contract rejected, with their reasons; a request none of whose customers can be scored gets a 422.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fastapi.exceptions import RequestValidationError

from models.prediction import score_transactions
from serving.schemas import ScoreRequest, TransactionIn
from targeting.tiers import BoundaryKey

OPTIONAL_FIELDS = tuple(name for name in TransactionIn.model_fields if name != "timestamp")
MAX_ERRORS = 20  # a 422 names the first few offending fields, not thousands
NO_PURCHASE = "no_purchase_by_as_of"
"""The reason a customer whose rows were accepted still has no score: no purchase on or before as_of."""

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
        return np.array([len(customer.transactions) for customer in self.body.customers], dtype=np.int64)

    @property
    def n_rows(self) -> int:
        """Transactions in the request."""
        return int(self.counts.sum())


@dataclass(frozen=True)
class ScoredRequest:
    """A request's answer: the scores of its scored customers in request order, and what was rejected."""

    scores: pd.DataFrame
    rejects: list[dict[str, Any]]
    """customer_index, customer_id, transaction_index (None for a customer-level reason) and reason."""


def prefixed_ids(requests: Sequence[PreparedRequest]) -> list[str]:
    """Each request's customer ids prefixed with its position (`<k>|<id>`), so requests sharing a pass
    may carry the same id; the frames of a pass use these ids."""
    return [f"{k}|{cid}" for k, request in enumerate(requests) for cid in request.ids]


def unprefixed_ids(keys: np.ndarray) -> np.ndarray:
    """The customer ids of a pass's keys (`<k>|<id>` -> `<id>`): value-score ties at a tier boundary are
    broken by the customer's own id, as in the batch, not by the key (`0|C9` sorts before `C1`)."""
    return np.array([str(key).split("|", 1)[1] for key in keys], dtype=object)


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


def raw_transactions(requests: Sequence[PreparedRequest], fields: Sequence[str]) -> pd.DataFrame:
    """The requests' transactions as one raw frame in request order, customer ids prefixed `<request>|`."""
    counts = np.concatenate([request.counts for request in requests])
    rows = [tx for request in requests for customer in request.body.customers for tx in customer.transactions]
    data: dict[str, Any] = {
        "customer_id": np.repeat(np.array(prefixed_ids(requests), dtype=object), counts),
        "timestamp": np.array([tx.timestamp for tx in rows], dtype="datetime64[ns]"),
    }
    for name in fields:
        data[name] = [getattr(tx, name) for tx in rows]
    return pd.DataFrame(data)


def score_requests(
    requests: Sequence[PreparedRequest],
    scorer: Any,
    as_of: pd.Timestamp,
    keep_duplicates: bool,
    tier_boundaries: Sequence[BoundaryKey | None] | None = None,
) -> list[ScoredRequest | Exception]:
    """Each request's answer, in order: its scores and rejected rows, or the 422 when nothing could be scored.

    All requests must share `as_of` and their `fields` (the frame's columns shape the features). A
    customer's row does not depend on who shares the pass: tiers are placed against `tier_boundaries`
    (the latest batch's), else against the model's training cut points.
    """
    fields = requests[0].fields
    if tier_boundaries is None:  # never rank within a pass: a customer's tier must not depend on who shares it
        tier_boundaries = scorer.training_tier_boundaries()
    scored = score_transactions(
        raw_transactions(requests, fields),
        scorer,
        as_of,
        keep_duplicates=keep_duplicates,
        tier_boundaries=tier_boundaries,
        tier_ids=unprefixed_ids,
    )
    customer_starts = np.cumsum([0] + [len(request.ids) for request in requests])
    prefixed = prefixed_ids(requests)
    position = pd.Index(scored.scores["customer_id"]).get_indexer(prefixed)  # -1: not scored
    row_rejects = _row_rejects(scored.rejects, requests)
    answers: list[ScoredRequest | Exception] = []
    for k, request in enumerate(requests):  # a handful of requests per pass
        positions = position[customer_starts[k] : customer_starts[k + 1]]
        rejects = row_rejects[k]
        rejected_customers = {reject["customer_index"] for reject in rejects}
        for i in np.flatnonzero(positions < 0):
            if int(i) not in rejected_customers:
                rejects.append(_reject(request, int(i), None, NO_PURCHASE))
        rejects.sort(key=lambda r: (r["customer_index"], -1 if r["transaction_index"] is None else r["transaction_index"]))
        kept = positions[positions >= 0]
        if len(kept) == 0:
            answers.append(RequestValidationError([_as_error(reject, as_of) for reject in rejects[:MAX_ERRORS]]))
            continue
        rows = scored.scores.iloc[kept].reset_index(drop=True)
        rows["customer_id"] = np.asarray(request.ids, dtype=object)[positions >= 0]
        answers.append(ScoredRequest(rows, rejects))
    return answers


def _reject(request: PreparedRequest, customer: int, transaction: int | None, reason: str) -> dict[str, Any]:
    return {
        "customer_index": customer,
        "customer_id": request.ids[customer],
        "transaction_index": transaction,
        "reason": reason,
    }


def _row_rejects(rejects: pd.DataFrame, requests: Sequence[PreparedRequest]) -> list[list[dict[str, Any]]]:
    """Per request, its rows the data contract rejected (`rejects.row` points at rows of the pass's frame)."""
    row_starts = np.cumsum([0] + [request.n_rows for request in requests])
    out: list[list[dict[str, Any]]] = [[] for _ in requests]
    if rejects.empty:  # the usual pass: reading the empty columns would cost ~1 ms
        return out
    rows = rejects["row"].to_numpy(dtype=np.int64)
    owners = np.searchsorted(row_starts, rows, side="right") - 1
    for row, owner, reason in zip(rows, owners, rejects["reason"].astype(str), strict=True):  # rejected rows only
        request = requests[owner]
        local = row - row_starts[owner]
        tx_starts = np.concatenate([[0], np.cumsum(request.counts)[:-1]])
        customer = int(np.searchsorted(tx_starts, local, side="right") - 1)
        out[owner].append(_reject(request, customer, int(local - tx_starts[customer]), reason))
    return out


def _as_error(reject: dict[str, Any], as_of: pd.Timestamp) -> dict[str, Any]:
    """A reject as a 422 error entry naming the customer's transaction (or transactions)."""
    if reject["transaction_index"] is None:
        customer_loc = ("customers", reject["customer_index"], "transactions")
        return field_error(customer_loc, f"no purchase on or before as_of {as_of.date()}: nothing to score")
    row_loc = ("customers", reject["customer_index"], "transactions", reject["transaction_index"])
    return field_error(row_loc, f"rejected by the data contract: {reject['reason']}")
