"""Value tiers: diamond, gold, silver, regular by rank of `value_score`, or by cut-points saved at training.

Two ways to the same tiers:

- by rank (`assign_tiers(value_score, shares=..., ids=...)`): customers sorted by value_score, highest
  first, ties broken by customer id (ascending, as strings), and the first `round(n * cumulative share)`
  customers of each boundary go to the tiers above it. Every tier then holds its share of the customers
  to within one customer.
- by cut-points (`assign_tiers(value_score, cut_points=...)`): `tier_cut_points` learns three thresholds
  (diamond, gold, silver) at training time, each halfway between the last customer of a tier and the
  first of the next; a customer with `value_score >= cut` belongs to that tier or a better one. Scoring
  one customer through the API and scoring everyone in batch use the same cut-points, so they agree.

On the data the cut-points came from the two ways agree, except where equal scores straddle a boundary:
a cut-point cannot split ties, so all of them go to the better tier.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core import defaults
from core.tier_shares import validate_tier_shares
from targeting.policy import TIERS

TIER_NAMES = np.array(TIERS, dtype=object)


def _check_shares(shares: Sequence[float]) -> np.ndarray:
    return np.asarray(validate_tier_shares(shares), dtype=float)


def _scores(value_score: Sequence[float] | np.ndarray | pd.Series) -> np.ndarray:
    values = np.asarray(value_score, dtype=float).reshape(-1)
    if not np.isfinite(values).all():
        raise ValueError("value_score has missing or infinite values; tiers need a finite score per customer")
    return values


def boundary_counts(n: int, shares: Sequence[float]) -> np.ndarray:
    """How many customers sit above each of the three tier boundaries: round(n * cumulative share)."""
    cumulative = np.cumsum(_check_shares(shares))[:3]
    # floor(x + 0.5) instead of np.round: no banker's rounding, so counts move monotonically with n
    return np.floor(n * cumulative + 0.5).astype(np.int64)


def rank_order(value_score: Sequence[float] | np.ndarray | pd.Series, ids: Sequence[object] | None = None) -> np.ndarray:
    """Positions sorted by value_score descending, ties by id ascending (by position when no ids)."""
    values = _scores(value_score)
    order = np.argsort(-values, kind="stable")
    if ids is None:
        return order
    keys = pd.Series(ids, copy=False) if isinstance(ids, (pd.Series, pd.Index)) else pd.Series(np.asarray(ids))
    if len(keys) != values.size:
        raise ValueError("ids and value_score must have the same length")
    # Only tied scores need the ids: sort those slots again by (score, id). Sorting every id as text
    # would cost more than everything else in `decide`.
    ordered = values[order]
    tied = np.zeros(values.size, dtype=bool)
    same = ordered[1:] == ordered[:-1]
    tied[1:] |= same
    tied[:-1] |= same
    if tied.any():
        slots = np.flatnonzero(tied)
        members = order[slots]
        id_rank = pd.factorize(keys.iloc[members].astype(str), sort=True)[0]
        order[slots] = members[np.lexsort((id_rank, -values[members]))]
    return order


def tier_cut_points(
    value_score: Sequence[float] | np.ndarray | pd.Series,
    shares: Sequence[float] = defaults.TIER_SHARES,
) -> list[float]:
    """The diamond, gold and silver thresholds of `value_score` for `shares` (learned at training time)."""
    values = _scores(value_score)
    if values.size == 0:
        raise ValueError("tier cut-points need at least one customer's value_score")
    ordered = np.sort(values)[::-1]
    cuts = []
    for count in boundary_counts(values.size, shares):
        if count <= 0:  # nobody above: a threshold just over the best score seen
            cuts.append(float(np.nextafter(ordered[0], np.inf)))
        elif count >= values.size:  # everybody above
            cuts.append(float(ordered[-1]))
        else:
            cuts.append(float((ordered[count - 1] + ordered[count]) / 2.0))
    return cuts


def tier_codes(
    value_score: Sequence[float] | np.ndarray | pd.Series,
    cut_points: Sequence[float] | None = None,
    shares: Sequence[float] = defaults.TIER_SHARES,
    ids: Sequence[object] | None = None,
) -> np.ndarray:
    """Tier index per customer (0 diamond ... 3 regular, the order of `TIERS`); see `assign_tiers`."""
    values = _scores(value_score)
    if cut_points is not None:
        cuts = np.asarray(list(cut_points), dtype=float)
        if cuts.shape != (3,) or not np.isfinite(cuts).all() or (np.diff(cuts) > 0).any():
            raise ValueError("cut_points must be three finite, non-increasing thresholds (diamond, gold, silver)")
        # number of thresholds the score fails to reach = tier index (0 diamond ... 3 regular)
        return (values[:, None] < cuts[None, :]).sum(axis=1).astype(np.int8)
    order = rank_order(values, ids)
    bounds = boundary_counts(values.size, shares)
    rank = np.empty(values.size, dtype=np.int64)
    rank[order] = np.arange(values.size)
    return np.searchsorted(bounds, rank, side="right").astype(np.int8)


def assign_tiers(
    value_score: Sequence[float] | np.ndarray | pd.Series,
    cut_points: Sequence[float] | None = None,
    shares: Sequence[float] = defaults.TIER_SHARES,
    ids: Sequence[object] | None = None,
) -> np.ndarray:
    """Tier names per customer: by the saved cut-points when given, else by rank with `shares`."""
    return TIER_NAMES[tier_codes(value_score, cut_points, shares, ids)]


def lower_bound_value(value_score: np.ndarray, clv: np.ndarray, clv_low: np.ndarray) -> np.ndarray:
    """The value score at the low end of the CLV interval: value_score x clv_low / clv (0 where clv is 0).

    For the BTYD CLV source this is `clv_low` itself; for another source it scales the score by the
    customer's own uncertainty, so a customer whose value is uncertain ranks lower (PATRON_TIER_BASIS).
    A negative score (a regressor's) is kept: scaling it towards 0 would raise it.
    """
    value = np.asarray(value_score, dtype=float)
    ratio = np.divide(clv_low, clv, out=np.zeros(len(value)), where=np.asarray(clv) > 0)
    return np.where(value > 0, value * np.clip(ratio, 0.0, 1.0), value)


BoundaryKey = tuple[float, str]
"""(value_score, customer_id) of the last customer above a tier boundary in `rank_order`."""


def tier_boundaries(
    value_score: Sequence[float] | np.ndarray | pd.Series,
    ids: Sequence[object],
    shares: Sequence[float] = defaults.TIER_SHARES,
) -> list[BoundaryKey | None]:
    """The diamond, gold and silver boundaries of a population, as the key of the last customer above each.

    `None` where nobody is above the boundary. Placing the same customers with `boundary_tier_codes`
    gives exactly `tier_codes(value_score, shares=shares, ids=ids)`: ties are split by customer id, so
    a population split in partitions (Spark) or chunks (batch) is tiered exactly as if it were whole.
    """
    values = _scores(value_score)
    keys = np.asarray([str(i) for i in ids], dtype=object) if not isinstance(ids, pd.Series) else ids.astype(str).to_numpy()
    if keys.size != values.size:
        raise ValueError("ids and value_score must have the same length")
    order = rank_order(values, keys)
    return [
        None if count <= 0 else (float(values[order[count - 1]]), str(keys[order[count - 1]]))
        for count in boundary_counts(values.size, shares)
    ]


def cut_point_boundaries(cut_points: Sequence[float]) -> list[BoundaryKey | None]:
    """Training cut-points (`value_score >= cut` is above) as boundaries `boundary_tier_codes` reads.

    A score is `>= cut` exactly when it is `> nextafter(cut, -inf)`; the key's empty id never matches
    an equal score, since every customer id of the contract is non-empty.
    """
    cuts = np.asarray(list(cut_points), dtype=float)
    if cuts.shape != (3,) or not np.isfinite(cuts).all() or (np.diff(cuts) > 0).any():
        raise ValueError("cut_points must be three finite, non-increasing thresholds (diamond, gold, silver)")
    return [(float(np.nextafter(cut, -np.inf)), "") for cut in cuts]


def boundary_tier_codes(
    value_score: Sequence[float] | np.ndarray | pd.Series,
    ids: Sequence[object],
    boundaries: Sequence[BoundaryKey | None],
) -> np.ndarray:
    """Tier index per customer (0 diamond ... 3 regular) against boundaries from `tier_boundaries`.

    A customer is above a boundary when their value_score is higher than its key's, or equal with a
    customer id that sorts no later. A customer the boundaries were not computed from (one scored
    alone through the API) is placed the same way.
    """
    values = _scores(value_score)
    keys = pd.Series(np.asarray(ids, dtype=object), copy=False).astype(str).to_numpy(dtype=object)
    if len(boundaries) != 3:
        raise ValueError("boundaries must hold three keys (diamond, gold, silver)")
    below = np.zeros(values.size, dtype=np.int8)
    for boundary in boundaries:
        if boundary is None:
            below += 1
            continue
        cut, cut_id = boundary
        above = (values > cut) | ((values == cut) & (keys <= cut_id))
        below += ~above
    return below
