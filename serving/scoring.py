"""The one scoring path shared by the batch job and the API: transactions -> features -> scores."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd

from core.errors import ModelError
from core.scores import SCORE_COLUMNS
from serving.model_store import ScorerProtocol
from targeting.timing import add_transaction_signals


def as_of_timestamp(as_of: str | dt.date | pd.Timestamp) -> pd.Timestamp:
    """The as-of day as a midnight Timestamp (the last observed day, inclusive)."""
    stamp = pd.Timestamp(as_of)
    if stamp is pd.NaT:
        raise ValueError(f"not a date: {as_of!r} (use YYYY-MM-DD)")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert(None)
    # One resolution whatever the caller passed ("2011-12-09" parses to seconds, a column max to ns),
    # so the as_of column and the batch file's bytes do not depend on how the date was given.
    return stamp.normalize().as_unit("ns")


def score_frame(transactions: pd.DataFrame, scorer: ScorerProtocol, as_of: Any) -> pd.DataFrame:
    """Score validated transactions at `as_of`: one row per customer with a purchase, sorted by id."""
    from features import build_features

    as_of = as_of_timestamp(as_of)
    features = build_features(transactions, as_of=as_of, time_unit_days=scorer.time_unit_days)
    if features.empty:
        return pd.DataFrame(columns=list(SCORE_COLUMNS))
    scores = scorer.score(features, as_of)
    if getattr(scorer, "policy", None) is not None:  # a PatronScorer: the signals that need the rows
        scores = add_transaction_signals(
            scores, transactions, as_of, scorer.policy, getattr(scorer, "shop_reference", None)  # type: ignore[attr-defined]
        )
    if tuple(scores.columns) != SCORE_COLUMNS:
        missing = [column for column in SCORE_COLUMNS if column not in scores.columns]
        if missing:
            raise ModelError(f"the model's scores lack columns {missing}; retrain with this version of Patron")
        scores = scores[list(SCORE_COLUMNS)]
    if not scores["customer_id"].is_monotonic_increasing:
        scores = scores.sort_values("customer_id", kind="stable")
    elif isinstance(scores.index, pd.RangeIndex) and scores.index.start == 0 and scores.index.step == 1:
        return scores  # PatronScorer's own output: already in order and numbered from 0
    return scores.reset_index(drop=True)
