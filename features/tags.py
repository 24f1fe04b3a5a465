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
from typing import Any

import numpy as np
import pandas as pd

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


def _column(features: pd.DataFrame, name: str) -> np.ndarray | None:
    """A feature column as floats (NaN as 0), or None when absent."""
    if name not in features.columns:
        return None
    return np.nan_to_num(pd.to_numeric(features[name], errors="coerce").to_numpy(dtype=float, na_value=0.0))


def shop_cut_points(features: pd.DataFrame, policy: Any) -> dict[str, float]:
    """Cut points of the relative tags on the shop's own customers (the top share's lower bound)."""
    shares = {"high_end": policy.high_end_top_share, "serial_returner": policy.serial_returner_top_share}
    cuts: dict[str, float] = {}
    for tag, source in CUT_POINT_SOURCES.items():
        values = _column(features, source)
        if values is not None and len(values):
            cuts[tag] = float(np.quantile(values, 1.0 - shares[tag]))
    return cuts


def tag_flags(
    features: pd.DataFrame,
    policy: Any,
    cut_points: Mapping[str, float] | None = None,
    row_shares: pd.DataFrame | None = None,
) -> dict[str, np.ndarray]:
    """Boolean arrays per computable tag (features in `features`' row order; absent sources: no key)."""
    cuts = dict(shop_cut_points(features, policy))
    cuts.update(cut_points or {})
    n = len(features)
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
        shares = row_shares.reindex(features.index)
        if "event_share" in shares.columns:
            flags["event_buyer"] = repeat & (shares["event_share"].fillna(0.0).to_numpy() >= policy.event_buyer_share)
        if "new_arrival_share" in shares.columns:
            flags["new_arrival_buyer"] = shares["new_arrival_share"].fillna(0.0).to_numpy() >= policy.new_arrival_share
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


def event_days(transactions: pd.DataFrame, policy: Any) -> pd.DatetimeIndex:
    """The shop's event days in a log: days with at least the median day's orders, of which at least
    `event_day_promo_share` were on promotion."""
    return _event_days_of(_purchase_orders(transactions), policy)


def _event_days_of(orders: pd.DataFrame, policy: Any) -> pd.DatetimeIndex:
    """`event_days` from the purchase orders (`_purchase_orders`)."""
    by_day = orders.groupby("day")["promo"]
    share, count = by_day.mean(), by_day.size()
    # a quiet day's few orders can all be on promotion by chance: only days at least as busy as the
    # shop's median day count
    busy = count.to_numpy() >= np.median(count.to_numpy()) if len(count) else np.zeros(0, dtype=bool)
    return pd.DatetimeIndex(share.index[(share.to_numpy() >= policy.event_day_promo_share) & busy])


def product_first_sales(transactions: pd.DataFrame) -> pd.Series:
    """The first sale day of each product in a log (purchases only), indexed by product_id."""
    rows = transactions[~transactions["is_return"].astype(bool) & transactions["product_id"].notna()]
    return rows["timestamp"].groupby(rows["product_id"].astype(str)).min().dt.normalize()


def _purchase_orders(transactions: pd.DataFrame) -> pd.DataFrame:
    """One row per purchase order: customer, order key, day and whether any line was on promotion."""
    rows = transactions[~transactions["is_return"].astype(bool)]
    customer = rows["customer_id"].astype(str)
    day = rows["timestamp"].dt.normalize()
    order = rows["order_id"].astype(str) if "order_id" in rows.columns else customer + "|" + day.astype(str)
    frame = pd.DataFrame({"customer": customer, "order": order, "day": day, "promo": rows["promo"].astype(bool)})
    return frame.groupby(["customer", "order"], sort=False).agg(day=("day", "first"), promo=("promo", "max"))


def transaction_tag_shares(
    transactions: pd.DataFrame, as_of: Any, policy: Any, reference: Mapping[str, Any] | None = None
) -> pd.DataFrame | None:
    """Per customer: `event_share` (orders on event days; needs `promo`) and `new_arrival_share`
    (purchase lines within `new_arrival_days` of the product's first sale; needs `product_id`).

    `reference` (the shop's, learned at training: `event_days`, `product_first_sale`, `reference_end`)
    gives the event days and first sales up to its end, so a chunk of customers is tagged like the
    whole shop; days after it are judged from the rows given. None when neither source column is there.
    Indexed by customer_id (string).
    """
    has_promo, has_product = "promo" in transactions.columns, "product_id" in transactions.columns
    if not (has_promo or has_product):
        return None
    reference = reference or {}
    cutoff = pd.Timestamp(as_of).normalize() + pd.Timedelta(days=1)
    rows = transactions[(transactions["timestamp"] < cutoff) & ~transactions["is_return"].astype(bool)]
    customer = rows["customer_id"].astype(str)
    out = pd.DataFrame(index=pd.Index(customer.unique(), name="customer_id"))
    known_until = pd.Timestamp(reference["reference_end"]) if "reference_end" in reference else None
    if has_promo and (not reference or "event_days" in reference):
        orders = _purchase_orders(rows)
        # With a reference, only the shop's event days learned at training count: days seen in the rows
        # being scored would make a customer's tag depend on who else is in the chunk or partition.
        if "event_days" in reference:
            days = pd.DatetimeIndex(reference["event_days"])
        else:
            days = _event_days_of(orders, policy)
        on_event = orders["day"].isin(days)
        out["event_share"] = on_event.groupby(level="customer").mean().reindex(out.index).fillna(0.0)
    if has_product and (not reference or "product_first_sale" in reference):
        known = rows["product_id"].notna()
        product = rows["product_id"][known].astype(str)
        if "product_first_sale" in reference and known_until is not None:
            # learned first sales; a product unknown at training was first sold after it (not from the
            # scored rows, which would tie a customer's tag to the other customers scored with them)
            learned = product.map(pd.Series(reference["product_first_sale"], dtype=object)).astype("datetime64[ns]")
            first_sale = learned.fillna(known_until + pd.Timedelta(days=1))
        else:
            first_sale = product.map(product_first_sales(rows))
        fresh = (rows["timestamp"][known].dt.normalize() - first_sale) <= pd.Timedelta(days=float(policy.new_arrival_days))
        out["new_arrival_share"] = fresh.groupby(customer[known]).mean().reindex(out.index).fillna(0.0)
    return out
