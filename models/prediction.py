"""The one scoring path: raw or validated transaction rows in, the scores table and the rejected rows out.

The batch job calls it per chunk, the API per pass, the MLflow pyfunc per call and the Spark job per
partition. `check_scorer` runs a model's own example through it before the model may serve.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelError
from core.scores import (
    DAY_SCORE_COLUMNS,
    EMPTY_WHEN_UNKNOWN_COLUMNS,
    FLAG_SCORE_COLUMNS,
    SCORE_COLUMNS,
    TEXT_SCORE_COLUMNS,
)
from features.customer_rows import sort_rows
from features.pipeline import build_features
from features.validate import LoadResult, NoUsableRows, validate_transactions
from models.scorer import PatronScorer
from targeting.tiers import BoundaryKey
from targeting.timing import add_transaction_signals

EXAMPLE_AS_OF = "2020-06-30"
"""The as-of day of the example transactions of a model that records no training end (`data_end`)."""


@dataclass(frozen=True)
class ScoredTransactions:
    """What `score_transactions` gives back: one scores row per customer with a purchase, and the rejects.

    `decision_inputs` are the arrays the decisions were computed from (row for row with `scores`), so
    `PatronScorer.redecide` can place the same customers against other tier boundaries without a
    second model pass (the batch job, once it knows the whole population's boundaries).
    """

    scores: pd.DataFrame
    rejects: pd.DataFrame
    decision_inputs: dict[str, np.ndarray] = field(default_factory=dict)


def as_of_timestamp(as_of: str | dt.date | pd.Timestamp) -> pd.Timestamp:
    """The as-of day as a midnight Timestamp (the last observed day, inclusive); ValueError if not a date."""
    stamp = pd.Timestamp(as_of)
    if stamp is pd.NaT:
        raise ValueError(f"not a date: {as_of!r} (use YYYY-MM-DD)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    # One resolution whatever the caller passed ("2011-12-09" parses to seconds, a column max to ns),
    # so the as_of column and the batch file's bytes do not depend on how the date was given.
    return stamp.normalize().as_unit("ns")


def empty_scores() -> pd.DataFrame:
    """A scores table without rows."""
    return pd.DataFrame({name: pd.Series(dtype=object) for name in SCORE_COLUMNS})


def score_transactions(
    transactions: pd.DataFrame | LoadResult,
    scorer: PatronScorer,
    as_of: Any,
    *,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
    tier_boundaries: Sequence[BoundaryKey | None] | None = None,
    tier_ids: Callable[[np.ndarray], np.ndarray] | None = None,
) -> ScoredTransactions:
    """Validate `transactions` against the contract, build features at `as_of` and score them.

    A `LoadResult` (from `features.load_transactions` or `validate_transactions`) is taken as already
    validated. Tiers: ranked within these customers when `tier_boundaries` is None, else placed against
    them (`targeting.tiers.tier_boundaries` of the whole population), ties broken by customer id (by
    `tier_ids(customer_ids)` when the rows carry keys that are not the contract's ids). Scores are sorted by customer_id;
    rejected rows keep their position in `transactions` (`row`) and their `reason`. Rows that are all
    rejected give no scores and every row in the rejects, never an exception.
    """
    as_of_day = as_of_timestamp(as_of)
    if isinstance(transactions, LoadResult):
        loaded = transactions
    else:
        try:
            # The output is `_contract_frame`'s, which every file load checks against the pandera
            # schema; re-checking it here would cost ~8 ms a call whatever the size (an API request).
            loaded = validate_transactions(
                transactions,
                mapping=mapping,
                date_format=date_format,
                keep_duplicates=keep_duplicates,
                check_schema=False,
            )
        except NoUsableRows as nothing:
            return ScoredTransactions(empty_scores(), nothing.result.rejects)
    if loaded.transactions.empty:  # a validated partition may hold no usable row
        return ScoredTransactions(empty_scores(), loaded.rejects)
    rows = sort_rows(loaded.transactions)  # coded once, for the features and the row signals
    features = build_features(rows, as_of=as_of_day, time_unit_days=scorer.time_unit_days)
    if features.empty:
        return ScoredTransactions(empty_scores(), loaded.rejects)
    scores, inputs = scorer.score_with_inputs(features, as_of_day, tier_boundaries, tier_ids)
    # tags and exclusions that need the rows themselves (event days, new arrivals, repurchase cycles)
    scores = add_transaction_signals(scores, rows, as_of_day, scorer.policy, scorer.shop_facts)
    if tuple(scores.columns) != SCORE_COLUMNS:
        missing = [column for column in SCORE_COLUMNS if column not in scores.columns]
        raise ModelError(f"the model's scores lack columns {missing}; retrain with this version of Patron")
    if not scores["customer_id"].is_monotonic_increasing:  # build_features sorts; a foreign scorer may not
        order = np.argsort(scores["customer_id"].to_numpy(dtype=str), kind="stable")
        scores = scores.take(order).reset_index(drop=True)
        inputs = {name: values[order] for name, values in inputs.items()}
    return ScoredTransactions(scores, loaded.rejects, inputs)


def example_transactions(scorer: PatronScorer) -> tuple[pd.DataFrame, pd.Timestamp]:
    """A few synthetic transaction rows (no real customer) with every contract field, and their as-of day.

    The MLflow model's input example, and what `check_scorer` scores: three customers (repeat buyer,
    one-off buyer, buyer with a return) in the 300 days before the model's training end.
    """
    as_of = as_of_timestamp(scorer.metadata.get("data_end") or EXAMPLE_AS_OF)
    days_before = np.array([300, 120, 20, 45, 200, 60, 59])
    frame = pd.DataFrame(
        {
            "customer_id": ["example_1", "example_1", "example_1", "example_2", "example_3", "example_3", "example_3"],
            "timestamp": as_of - pd.to_timedelta(days_before, unit="D") + pd.Timedelta(hours=12),
            "amount": [40.0, 55.5, 38.0, 120.0, 25.0, 60.0, -20.0],
            "is_return": [False, False, False, False, False, False, True],
            "order_id": ["e1", "e2", "e3", "e4", "e5", "e6", "e7"],
            "quantity": [2.0, 3.0, 2.0, 1.0, 1.0, 4.0, -1.0],
            "unit_price": [20.0, 18.5, 19.0, 120.0, 25.0, 15.0, 20.0],
            "category": ["books", "books", "garden", "garden", "toys", "books", "books"],
            "discount": [0.0, 5.0, 0.0, 10.0, 0.0, 0.0, 0.0],
            "channel": ["web", "web", "store", "web", "web", "store", "store"],
            "cost": [24.0, 33.0, 22.0, 80.0, 15.0, 36.0, -12.0],
            "promo": [False, True, False, False, False, True, False],
        }
    )
    return frame, as_of


def check_scorer(scorer: PatronScorer) -> pd.DataFrame:
    """Score the model's example transactions through the one path and check the scores contract.

    Returns the example's scores; raises ModelError naming what is wrong when the model cannot score
    (it then must not serve nor be registered): columns of `SCORE_COLUMNS` in order, their dtypes,
    finite numbers, one row per example customer.
    """
    transactions, as_of = example_transactions(scorer)
    try:
        scored = score_transactions(transactions, scorer, as_of)
    except Exception as exc:  # whatever a broken model raises, it is this model's failure
        raise ModelError(f"the model cannot score its example transactions: {type(exc).__name__}: {exc}") from exc
    scores = scored.scores
    if tuple(scores.columns) != SCORE_COLUMNS:
        raise ModelError(f"the model's scores have columns {list(scores.columns)}, not the scores contract's")
    expected = transactions["customer_id"].nunique()
    if len(scores) != expected or len(scored.rejects):
        raise ModelError(f"the model scored {len(scores)} of its {expected} example customers")
    numbers = [name for name in SCORE_COLUMNS if name not in (*TEXT_SCORE_COLUMNS, *DAY_SCORE_COLUMNS, *FLAG_SCORE_COLUMNS)]
    wrong = [name for name in numbers if scores[name].dtype != np.float64]
    wrong += [name for name in FLAG_SCORE_COLUMNS if scores[name].dtype != bool]
    wrong += [name for name in TEXT_SCORE_COLUMNS if not all(isinstance(v, str) for v in scores[name])]
    if wrong:
        raise ModelError(f"the model's scores have the wrong types in {wrong}")
    not_finite = [
        name for name in numbers
        if name not in EMPTY_WHEN_UNKNOWN_COLUMNS and not np.isfinite(scores[name].to_numpy(dtype=float)).all()
    ]
    if not_finite:
        raise ModelError(f"the model's scores have missing or infinite values in {not_finite}")
    return scores
