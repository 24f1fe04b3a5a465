"""The one scoring path: raw or validated transaction rows in, the scores table and the rejected rows out.

The batch job calls it per chunk, the API per pass and the Spark job per partition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.scores import SCORE_COLUMNS
from features.pipeline import build_features
from features.validate import validate_transactions
from models.scorer import PatronScorer
from targeting.timing import add_transaction_signals


@dataclass(frozen=True)
class ScoredTransactions:
    """What `score_transactions` gives back: one scores row per customer with a purchase, and the rejects."""

    scores: pd.DataFrame
    rejects: pd.DataFrame


def score_transactions(
    transactions: pd.DataFrame,
    scorer: PatronScorer,
    as_of: Any,
    *,
    mapping: dict[str, str] | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
) -> ScoredTransactions:
    """Validate `transactions` against the contract, build features at `as_of` and score them."""
    loaded = validate_transactions(
        transactions, mapping=mapping, date_format=date_format, keep_duplicates=keep_duplicates
    )
    features = build_features(loaded.transactions, as_of=as_of, time_unit_days=scorer.time_unit_days)
    if features.empty:
        return ScoredTransactions(pd.DataFrame(columns=list(SCORE_COLUMNS)), loaded.rejects)
    scores = scorer.score(features, as_of).sort_values("customer_id", kind="stable").reset_index(drop=True)
    scores = add_transaction_signals(scores, loaded.transactions, as_of, scorer.policy, scorer.shop_reference)
    return ScoredTransactions(scores, loaded.rejects)
