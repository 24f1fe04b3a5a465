"""The one scoring path: raw or validated transaction rows in, the scores table and the rejected rows out.

The batch job calls it per chunk, the API per pass and the Spark job per partition.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from core.scores import SCORE_COLUMNS
from features.pipeline import build_features
from features.validate import validate_transactions
from models.scorer import PatronScorer
from targeting.tiers import BoundaryKey


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
    tier_boundaries: Sequence[BoundaryKey | None] | None = None,
    allow_empty: bool = False,
) -> ScoredTransactions:
    """Validate `transactions` against the contract, build features at `as_of` and score them.

    `tier_boundaries`: a whole population's (`targeting.tiers.tier_boundaries`), so a chunk or
    partition is tiered as if it were whole; None: the scorer's cut points, else ranks within these
    rows. `allow_empty`: no scores (instead of a DataError) when every row is rejected, for a
    partition of a larger log.
    """
    loaded = validate_transactions(
        transactions, mapping=mapping, date_format=date_format, keep_duplicates=keep_duplicates, allow_empty=allow_empty
    )
    features = build_features(loaded.transactions, as_of=as_of, time_unit_days=scorer.time_unit_days)
    if features.empty:
        return ScoredTransactions(pd.DataFrame(columns=list(SCORE_COLUMNS)), loaded.rejects)
    scores = scorer.score(features, as_of, tier_boundaries=tier_boundaries).sort_values("customer_id", kind="stable").reset_index(drop=True)
    return ScoredTransactions(scores, loaded.rejects)
