"""The one rule for value-tier shares, checked wherever shares enter: settings, policy and tiers."""

from __future__ import annotations

import math
from collections.abc import Iterable

TIER_COUNT = 4
"""Diamond, gold, silver, regular (top to bottom)."""
SUM_TOLERANCE = 1e-6
"""Shares read from text (`0.1,0.15,0.25,0.5`) sum to 1 up to float rounding."""


def validate_tier_shares(shares: Iterable[float]) -> tuple[float, ...]:
    """The shares as floats when they are four positive finite numbers summing to 1; else ValueError."""
    values = tuple(float(share) for share in shares)
    if (
        len(values) != TIER_COUNT
        or not all(math.isfinite(share) and share > 0 for share in values)
        or abs(sum(values) - 1.0) > SUM_TOLERANCE
    ):
        raise ValueError(
            f"tier_shares must be four positive shares summing to 1 (diamond, gold, silver, regular), got {list(values)}"
        )
    return values
