"""Behaviour tags: how a customer buys, as short names a marketer can filter on.

Each tag comes from one source and is computed only when that source is there (never guessed):

- `promo_sensitive`: at least `promo_sensitive_share` of the customer's spend was on promotion
  (`promo_share`) or given off as discount (`discount_share`); needs `promo` or `discount`.
- `full_price_loyal`: a repeat buyer (`frequency >= 1`) with at most `full_price_max_share` of spend on
  promotion or discount: leave coupons out; needs `promo` or `discount`.
- `high_end`: average order value in the shop's top `high_end_top_share` of customers.
- `serial_returner`: return rate in the shop's top `serial_returner_top_share` of customers and at
  least `serial_returner_min_returns` returned orders.
- `event_buyer`: a repeat buyer with at least `event_buyer_share` of their orders on the shop's event
  days (days at least as busy as the shop's median day, with at least `event_day_promo_share` of
  orders on promotion); needs `promo` and the transaction rows.
- `new_arrival_buyer`: at least `new_arrival_share` of the customer's purchase lines are products
  bought within `new_arrival_days` of their first sale in the shop; needs `product_id` and the rows.

"The shop's top share" is a cut point on the shop's own distribution: learned at training on the
anchor's customers (`shop_cut_points`, saved with the model) so a single customer scored by the API is
tagged against the shop, not against itself.

The scores carry the tags as one text column, names joined by "," in TAG_NAMES order ("" for none):
one value that the Parquet file, the API's JSON and a CSV campaign list all hold unchanged.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeAlias

import numpy as np
import pandas as pd

from core.units import NS_PER_DAY
from features.behaviour import safe_ratio
from features.customer_rows import CustomerRows, as_of_day, sort_rows
from features.rfm import run_starts
from features.shop_facts import ShopFacts

TAG_NAMES = (
    "promo_sensitive",
    "new_arrival_buyer",
    "high_end",
    "event_buyer",
    "full_price_loyal",
    "serial_returner",
)
TAG_SEPARATOR = ","
ROW_TAGS = ("event_buyer", "new_arrival_buyer")
"""Tags that need the transaction rows, not only the features (`transaction_tag_shares`)."""
CUT_POINT_SOURCES = {"high_end": "avg_order_value", "serial_returner": "return_rate"}


Features: TypeAlias = pd.DataFrame | Mapping[str, np.ndarray]
"""Feature columns as a frame, or as float arrays by name (the scorer's one block, row for row)."""


def _column(features: Features, name: str) -> np.ndarray | None:
    """A feature column as floats (NaN as 0), or None when absent."""
    if isinstance(features, pd.DataFrame):
        if name not in features.columns:
            return None
        return np.nan_to_num(pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float, na_value=0.0))
    if name not in features:
        return None
    return np.nan_to_num(np.asarray(features[name], dtype=float))


def _length(features: Features) -> int:
    if isinstance(features, pd.DataFrame):
        return len(features)
    return len(next(iter(features.values()))) if features else 0


def shop_cut_points(features: Features, policy: Any, known: Mapping[str, float] | None = None) -> dict[str, float]:
    """Cut points of the relative tags on the shop's own customers (the top share's lower bound);
    the ones in `known` (a model's, learned at training) are taken as they are, not recomputed."""
    shares = {"high_end": policy.high_end_top_share, "serial_returner": policy.serial_returner_top_share}
    cuts: dict[str, float] = {}
    for tag, source in CUT_POINT_SOURCES.items():
        if known is not None and tag in known:
            cuts[tag] = known[tag]
            continue
        values = _column(features, source)
        if values is not None and len(values):
            cuts[tag] = float(np.quantile(values, 1.0 - shares[tag]))
    return cuts


def tag_flags(
    features: Features,
    policy: Any,
    cut_points: Mapping[str, float] | None = None,
    row_shares: pd.DataFrame | Mapping[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """Boolean arrays per computable tag (features in `features`' row order; absent sources: no key).

    `row_shares` (`transaction_tag_shares`) is a frame indexed by customer id (then `features` is a
    frame with that index) or arrays row for row with `features` (`row_tag_shares` gathered).
    """
    cuts = {**(cut_points or {}), **shop_cut_points(features, policy, cut_points)}
    n = _length(features)
    flags: dict[str, np.ndarray] = {}
    frequency = _column(features, "frequency")
    repeat = frequency >= 1 if frequency is not None else np.zeros(n, dtype=bool)
    promo, discount = _column(features, "promo_share"), _column(features, "discount_share")
    if promo is not None or discount is not None:
        deal_share = np.maximum(promo if promo is not None else 0.0, discount if discount is not None else 0.0)
        flags["promo_sensitive"] = deal_share >= policy.promo_sensitive_share
        flags["full_price_loyal"] = repeat & (deal_share <= policy.full_price_max_share)
    aov = _column(features, "avg_order_value")
    if aov is not None and "high_end" in cuts:
        flags["high_end"] = aov > cuts["high_end"]
    rate, returns = _column(features, "return_rate"), _column(features, "return_count")
    if rate is not None and returns is not None and "serial_returner" in cuts:
        flags["serial_returner"] = (
            (rate >= cuts["serial_returner"]) & (rate > 0) & (returns >= policy.serial_returner_min_returns)
        )
    if row_shares is not None:
        if isinstance(row_shares, pd.DataFrame):
            assert isinstance(features, pd.DataFrame), "shares by customer id need features indexed by it"
            aligned = row_shares.reindex(features.index)
            row_shares = {name: aligned[name].fillna(0.0).to_numpy() for name in aligned.columns}
        if "event_share" in row_shares:
            flags["event_buyer"] = repeat & (np.asarray(row_shares["event_share"]) >= policy.event_buyer_share)
        if "new_arrival_share" in row_shares:
            flags["new_arrival_buyer"] = np.asarray(row_shares["new_arrival_share"]) >= policy.new_arrival_share
    return flags


def join_tags(flags: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    """The tags column: names of the set flags joined by TAG_SEPARATOR in TAG_NAMES order."""
    present = [name for name in TAG_NAMES if name in flags]
    if not present:
        return np.full(n, "", dtype=object)
    # one code per distinct combination (at most 2**6), then a gather over customers
    bits = np.zeros(n, dtype=np.int64)
    for k, name in enumerate(present):
        bits |= np.asarray(flags[name], dtype=np.int64) << k
    combos, inverse = np.unique(bits, return_inverse=True)
    text = [TAG_SEPARATOR.join(name for k, name in enumerate(present) if combo >> k & 1) for combo in combos]
    return np.asarray(text, dtype=object)[inverse]


def split_tags(column: pd.Series) -> pd.Series:
    """The tags column back as lists of names (for reports and counts)."""
    text = column.fillna("").astype(str)
    return text.map(lambda value: [t for t in value.split(TAG_SEPARATOR) if t])


def tag_counts(column: pd.Series) -> pd.DataFrame:
    """Customers per tag (every tag listed, zero included): columns `tag, customers, share`."""
    exploded = split_tags(column).explode().dropna()
    counts = exploded.value_counts().reindex(list(TAG_NAMES), fill_value=0).astype(np.int64)
    total = max(len(column), 1)
    return pd.DataFrame({"tag": list(TAG_NAMES), "customers": counts.to_numpy(), "share": counts.to_numpy() / total})


def purchase_orders(rows: CustomerRows, end: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Purchase orders on or before day `end` (every day when None): each one's customer code, day and
    whether any of its lines was on promotion (`promo`; False without the column).

    An order is a customer's `order_id` (lines without one are left out) or, without the column, a
    customer's purchase day; its day is that of its first line.
    """
    keep = ~rows.is_return if end is None else ~rows.is_return & (rows.day <= end)
    order_id = rows.strings("order_id")
    if order_id is None:
        at = np.flatnonzero(keep)
        starts = run_starts(rows.code[at], rows.day[at])  # rows are in (customer, time) order
        group, first = np.cumsum(starts) - 1, at[starts]
    else:
        key = pd.factorize(pd.Series(pd.arrays.ArrowExtensionArray(order_id)), sort=False)[0].astype(np.int64)
        at = np.flatnonzero(keep & (key >= 0))
        pair = rows.code[at] * (int(key.max(initial=0)) + 1) + key[at]
        _, first_of, group = np.unique(pair, return_index=True, return_inverse=True)
        first = at[first_of]  # the earliest position: the order's first line
    promo = rows.column("promo", bool)
    lines_on_promo = np.zeros(len(at)) if promo is None else promo[at].astype(float)
    on_promo = np.bincount(group, weights=lines_on_promo, minlength=len(first)) > 0
    return rows.code[first], rows.day[first], on_promo


def _event_days_of(day: np.ndarray, on_promo: np.ndarray, policy: Any) -> np.ndarray:
    """Event days (days since the epoch) among purchase orders' days and promotion flags."""
    days, inverse = np.unique(day, return_inverse=True)
    count = np.bincount(inverse, minlength=len(days))
    share = np.bincount(inverse, weights=on_promo.astype(float), minlength=len(days)) / np.maximum(count, 1)
    # a quiet day's few orders can all be on promotion by chance: only days at least as busy as the
    # shop's median day count
    busy = count >= np.median(count) if len(count) else np.zeros(0, dtype=bool)
    return days[(share >= policy.event_day_promo_share) & busy]


def event_days(transactions: pd.DataFrame, policy: Any) -> pd.DatetimeIndex:
    """The shop's event days in a log: days with at least the median day's orders, of which at least
    `event_day_promo_share` were on promotion."""
    _, day, on_promo = purchase_orders(sort_rows(transactions))
    return pd.DatetimeIndex((_event_days_of(day, on_promo, policy) * NS_PER_DAY).astype("datetime64[ns]"))


def product_first_sales(transactions: pd.DataFrame) -> pd.Series:
    """The first sale day of each product in a log (purchases only), indexed by product_id."""
    rows = sort_rows(transactions)
    product, names, at = _product_lines(rows, None)
    first_day = _first_days(product, names, at, rows.day)
    sold = first_day < np.iinfo(np.int64).max
    days = (first_day[sold] * NS_PER_DAY).astype("datetime64[ns]")
    first = pd.Series(days, index=pd.Index(names[sold], dtype="str", name="product_id"), name="timestamp")
    return first.sort_index()


def _product_lines(rows: CustomerRows, end: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each row's product code (-1 without one), the product ids by code, and the positions of the
    purchase lines with a product on or before day `end` (every day when None)."""
    product_id = rows.strings("product_id")
    assert product_id is not None
    product, names = pd.factorize(pd.Series(pd.arrays.ArrowExtensionArray(product_id)), sort=False)
    keep = ~rows.is_return & (product >= 0)
    if end is not None:
        keep &= rows.day <= end
    return product, np.asarray(names, dtype=object), np.flatnonzero(keep)


def _first_days(product: np.ndarray, names: np.ndarray, at: np.ndarray, day: np.ndarray) -> np.ndarray:
    """First sale day of each product code among the lines `at` (int64 max for a product without one)."""
    first_day = np.full(len(names), np.iinfo(np.int64).max)
    np.minimum.at(first_day, product[at], day[at])
    return first_day


def row_tag_shares(rows: CustomerRows, end: int, policy: Any, facts: ShopFacts) -> dict[str, np.ndarray]:
    """Per customer code, from purchase rows on or before day `end`: `event_share` (orders on the shop's
    event days; needs `promo`) and `new_arrival_share` (lines within `new_arrival_days` of the product's
    first sale; needs `product_id`); 0 for a customer without such orders or lines.

    A learned reference (`facts`) gives the event days and first sales up to its end, so a chunk of
    customers is tagged like the whole shop; a product unknown to it was first sold after it. Without
    one (`facts.learned` False) they come from these rows; a learned reference without the key means
    the share is not computed.
    """
    shares: dict[str, np.ndarray] = {}
    n = rows.n_customers
    columns = rows.frame.columns
    if "promo" in columns and (not facts.learned or facts.event_days is not None):
        owner, day, on_promo = purchase_orders(rows, end)
        days = facts.event_days if facts.event_days is not None else _event_days_of(day, on_promo, policy)
        on_event = np.isin(day, days)
        shares["event_share"] = safe_ratio(
            np.bincount(owner[on_event], minlength=n), np.bincount(owner, minlength=n)
        )
    if "product_id" in columns and (not facts.learned or facts.has_product_first_sale):
        product, names, at = _product_lines(rows, end)
        if facts.products is not None and facts.product_first_day is not None and facts.reference_end is not None:
            learned = facts.products.get_indexer(pd.Index(names, dtype="str"))
            first_day = np.where(learned >= 0, facts.product_first_day[learned], facts.reference_end + 1)
        else:
            first_day = _first_days(product, names, at, rows.day)
        fresh = (rows.day[at] - first_day[product[at]]) <= float(policy.new_arrival_days)
        owner = rows.code[at]
        shares["new_arrival_share"] = safe_ratio(
            np.bincount(owner[fresh], minlength=n), np.bincount(owner, minlength=n)
        )
    return shares


def transaction_tag_shares(
    transactions: pd.DataFrame, as_of: Any, policy: Any, reference: Mapping[str, Any] | None = None
) -> pd.DataFrame | None:
    """`row_tag_shares` of a log at `as_of` as a frame indexed by customer_id (string), one row per
    customer with a purchase on or before `as_of`; None when neither source column is there.

    `reference` is a scorer's `shop_reference` (`features.shop_facts`)."""
    if "promo" not in transactions.columns and "product_id" not in transactions.columns:
        return None
    rows = sort_rows(transactions)
    end = as_of_day(as_of)
    shares = row_tag_shares(rows, end, policy, ShopFacts.from_reference(reference))
    bought = np.bincount(rows.code[~rows.is_return & (rows.day <= end)], minlength=rows.n_customers) > 0
    return pd.DataFrame({name: values[bought] for name, values in shares.items()}, index=rows.ids[bought])
