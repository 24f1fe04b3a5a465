"""A model's shop reference (learned at training, saved as JSON with the scorer) parsed once, when it loads.

The reference (`models.next_order.shop_reference`) holds the relative tags' cut points and the shop's
median gap (numbers), the last day it saw (`reference_end`), the event days, each product's first sale
day and each category's repurchase cycle, as JSON text. Scoring used to parse the dates and rebuild the
lookups on every call; a `ShopFacts` holds them as arrays and indexes, so a one-customer API pass
only looks its rows up.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.units import NS_PER_DAY

REFERENCE_TEXT_KEYS = ("reference_end", "event_days", "product_first_sale", "category_cycles")
"""Keys of the reference that are not cut points."""


def _days(dates: Any) -> np.ndarray:
    """ISO dates as whole days since 1970-01-01 (int64)."""
    stamps = pd.to_datetime(pd.Series(list(dates), dtype=object)).to_numpy(dtype="datetime64[ns]")
    return stamps.view(np.int64) // NS_PER_DAY


@dataclass(frozen=True)
class ShopFacts:
    """The shop reference as lookups; `learned` is False for a model without one (bare calls).

    A learned reference that lacks a key (a model trained without `promo`, `product_id` or `category`)
    means that signal is not computed: never guessed from the rows being scored, whose other
    customers would then change a customer's tag.
    """

    learned: bool
    cut_points: Mapping[str, float]
    """Numeric entries: the relative tags' cut points and `median_gap_days`."""
    reference_end: int | None
    """Last day the reference saw (days since the epoch)."""
    event_days: np.ndarray | None
    """The shop's event days (sorted days since the epoch); None when not learned."""
    has_product_first_sale: bool
    products: pd.Index | None
    """Products with a learned first sale, and their first sale days (`product_first_day`, same order)."""
    product_first_day: np.ndarray | None
    category_cycles: pd.Series | None
    """Median repurchase cycle in days, indexed by category; None when not learned (or learned empty)."""

    @classmethod
    def from_reference(cls, reference: Mapping[str, Any] | None) -> ShopFacts:
        """Parse a scorer's `shop_reference` (None or empty: nothing learned)."""
        reference = reference or {}
        cuts = {str(k): float(v) for k, v in reference.items() if k not in REFERENCE_TEXT_KEYS}
        end = reference.get("reference_end")
        events = reference.get("event_days")
        first_sale = reference.get("product_first_sale")
        products = first_day = None
        if first_sale is not None and end is not None:
            products = pd.Index(list(first_sale.keys()), dtype="str")
            first_day = _days(first_sale.values())
        cycles = reference.get("category_cycles")
        return cls(
            learned=bool(reference),
            cut_points=cuts,
            reference_end=None if end is None else int(_days([end])[0]),
            event_days=None if events is None else np.sort(_days(events)),
            has_product_first_sale=first_sale is not None,
            products=products,
            product_first_day=first_day,
            category_cycles=pd.Series(cycles, dtype=float, index=pd.Index(list(cycles), dtype="str")) if cycles else None,
        )
