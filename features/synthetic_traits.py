"""Buying traits on top of a generated log, with the truth the behaviour tags are checked against.

`with_traits(data, seed)` takes `features.synthetic.generate_transactions`' output and adds, per
customer, a known trait of each kind the tags look for:

- deal seekers (`deal_seeker_share`): a promotion affinity ~ Beta(9, 2) instead of the generator's
  Beta(2, 8); every order is on promotion with the customer's affinity, so the true promo share is it;
- the shop's event days: one every `event_every_days` days; on them an order is on promotion with
  probability at least `event_promo_rate`. Event buyers (`event_buyer_share`, repeat or not) buy only
  on event days: each of their rows moves to the next event day (rows keep their order, so a return
  still follows its purchase);
- a catalogue of products with launch days (`launch_share_at_start` of them on sale from the start,
  the rest launched uniformly over the period); new-arrival buyers (`new_arrival_share`) pick among
  the products launched in the last `new_arrival_days` days when there are any, everyone else among
  all products on sale. A return carries its purchase's product;
- price level (the generator's `mean_order_value`) and returns (`return_propensity`,
  `heavy_returner`) are the generator's own.

Truth columns added to `customers`: `promo_affinity` (as used), `deal_seeker`, `event_buyer`,
`new_arrival_buyer`, `true_promo_share` (expected share of orders on promotion). Vectorised: no loop
over customers, orders or products.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.synthetic import GeneratorParams, SyntheticData

NS_PER_DAY = 86_400_000_000_000


@dataclass(frozen=True)
class TraitParams:
    """Shares and sizes of the traits (see the module docstring)."""

    deal_seeker_share: float = 0.15
    event_buyer_share: float = 0.10
    new_arrival_share: float = 0.10
    event_every_days: int = 14
    event_promo_rate: float = 0.7
    n_products: int = 400
    launch_share_at_start: float = 0.3
    new_arrival_days: int = 30


@dataclass(frozen=True)
class TraitData:
    """A generated log with traits: transactions (with `product_id`), customers' truth, event days, products."""

    transactions: pd.DataFrame
    customers: pd.DataFrame
    event_days: pd.DatetimeIndex
    products: pd.DataFrame


def with_traits(
    data: SyntheticData,
    seed: int = 7,
    params: TraitParams | None = None,
    generator: GeneratorParams | None = None,
) -> TraitData:
    """`data` with deal seekers, event days and buyers, and a product catalogue (module docstring)."""
    params = params or TraitParams()
    generator = generator or GeneratorParams()
    rng = np.random.default_rng(seed)
    tx = data.transactions.copy()
    customers = data.customers.copy()
    n = len(customers)
    position = pd.Index(customers.index).get_indexer(tx["customer_id"].astype(str))

    deal = rng.random(n) < params.deal_seeker_share
    affinity = np.where(deal, rng.beta(9.0, 2.0, n), customers["promo_affinity"].to_numpy(dtype=float))
    event_buyer = rng.random(n) < params.event_buyer_share
    new_arrival = rng.random(n) < params.new_arrival_share

    start = tx["timestamp"].min().normalize()
    end = tx["timestamp"].max().normalize()
    event_days = pd.date_range(start + pd.Timedelta(days=params.event_every_days // 2), end, freq=f"{params.event_every_days}D")
    stamp = tx["timestamp"].to_numpy().astype("datetime64[ns]").astype(np.int64)
    event_ns = event_days.to_numpy().astype("datetime64[ns]").astype(np.int64)
    # event buyers' rows move to the next event day (same time of day); beyond the last one they stay
    day_ns = stamp - stamp % NS_PER_DAY
    nxt = np.searchsorted(event_ns, day_ns, side="left")
    movable = event_buyer[position] & (nxt < len(event_ns))
    stamp = np.where(movable, event_ns[np.minimum(nxt, len(event_ns) - 1)] + stamp % NS_PER_DAY, stamp)
    on_event = np.isin(stamp - stamp % NS_PER_DAY, event_ns)

    purchase = ~tx["is_return"].to_numpy(dtype=bool)
    order_key = tx["order_id"].astype(str).to_numpy()
    rate = np.where(on_event, np.maximum(affinity[position], params.event_promo_rate), affinity[position])
    promo_by_order = pd.Series(rng.random(len(tx)) < rate, index=order_key)
    # one draw per order (the purchase row's), carried to its return row
    first_of_order = ~pd.Series(order_key).duplicated().to_numpy()
    promo_lookup = promo_by_order[first_of_order]
    promo = promo_lookup.reindex(order_key).to_numpy(dtype=bool) & purchase
    value = np.abs(tx["amount"].to_numpy(dtype=float))
    discount = np.where(promo, np.round(value * generator.promo_discount / (1 - generator.promo_discount), 2), 0.0)

    n_at_start = int(round(params.n_products * params.launch_share_at_start))
    launch_ns = np.sort(
        np.concatenate(
            [
                np.full(n_at_start, start.value),
                start.value + (rng.random(params.n_products - n_at_start) * (end.value - start.value)).astype(np.int64),
            ]
        )
    ).astype(np.int64)
    on_sale = np.searchsorted(launch_ns, stamp, side="right")  # products launched by then: [0, on_sale)
    fresh_from = np.searchsorted(launch_ns, stamp - params.new_arrival_days * NS_PER_DAY, side="left")
    low = np.where(new_arrival[position] & (fresh_from < on_sale), fresh_from, 0)
    pick = low + np.floor(rng.random(len(tx)) * (on_sale - low)).astype(np.int64)
    product_by_order = pd.Series(pick, index=order_key)[first_of_order]
    product = product_by_order.reindex(order_key).to_numpy(dtype=np.int64)

    tx["timestamp"] = stamp.astype("datetime64[ns]")
    tx["promo"] = promo
    tx["discount"] = discount
    tx["product_id"] = pd.array([f"P{i:04d}" for i in range(params.n_products)], dtype="str")[product]
    tx = tx.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)

    customers["promo_affinity"] = affinity
    customers["deal_seeker"] = deal
    customers["event_buyer"] = event_buyer
    customers["new_arrival_buyer"] = new_arrival
    customers["true_promo_share"] = np.where(event_buyer, np.maximum(affinity, params.event_promo_rate), affinity)
    products = pd.DataFrame(
        {"product_id": [f"P{i:04d}" for i in range(params.n_products)], "launch": launch_ns.astype("datetime64[ns]")}
    )
    return TraitData(transactions=tx, customers=customers, event_days=event_days, products=products)
