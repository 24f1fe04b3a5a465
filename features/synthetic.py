"""Synthetic transaction logs from the BG/NBD + Gamma-Gamma generative process, with known ground truth.

Each customer i makes a first purchase at a uniformly drawn day, then repeat purchases as a Poisson
process with rate lambda_i ~ Gamma(r, alpha) per day; after each repeat purchase it drops out with
probability p_i ~ Beta(a, b) (Fader, Hardie & Lee 2005). Order values are Gamma(p, nu_i) with
nu_i ~ Gamma(q, v) (Gamma-Gamma, Fader, Hardie & Lee 2005b). On top of the textbook process each
customer has a return propensity (a small share are heavy returners), a promotion affinity, a
preferred category and a channel, so every optional field of the data contract is exercised.

Vectorised: the repeat purchases of a customer alive for W days are the first min(N_i, K_i) of
K_i ~ Poisson(lambda_i W) uniform arrival times, N_i ~ Geometric(p_i) being the purchase after which
it drops out; no loop over customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

CATEGORIES = np.array(["books", "music", "video", "games", "home", "garden", "fashion", "toys"], dtype=object)
CHANNELS = np.array(["web", "app", "marketplace"], dtype=object)
MAX_EXPECTED_REPEATS = 400.0
"""Cap on lambda_i * W, so one extreme draw cannot blow up the log."""


@dataclass(frozen=True)
class GeneratorParams:
    """Population parameters of the generator (days as the time unit)."""

    r: float = 0.8
    alpha: float = 40.0
    a: float = 0.8
    b: float = 3.0
    p: float = 6.0
    q: float = 4.0
    v: float = 15.0
    margin_rate: float = 0.30
    return_handling_cost: float = 5.0
    service_cost_per_order: float = 1.0
    heavy_returner_share: float = 0.05
    promo_discount: float = 0.20


@dataclass
class SyntheticData:
    """A generated log (`transactions`, contract columns) and its `customers` ground truth."""

    transactions: pd.DataFrame
    customers: pd.DataFrame


def generate_transactions(
    n_customers: int,
    seed: int = 42,
    start: str = "2022-01-01",
    end: str = "2023-12-31",
    params: GeneratorParams | None = None,
) -> SyntheticData:
    """Generate a realistic, reproducible transaction log of `n_customers` with known parameters."""
    if n_customers < 1:
        raise ValueError("n_customers must be at least 1")
    params = params or GeneratorParams()
    rng = np.random.default_rng(seed)
    start_day = int(pd.Timestamp(start).value // 86_400_000_000_000)
    span = int((pd.Timestamp(end) - pd.Timestamp(start)).days) + 1
    if span < 30:
        raise ValueError("the generated period must cover at least 30 days")

    n = n_customers
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    nu = rng.gamma(params.q, 1.0 / params.v, n)
    mean_order = params.p / nu
    heavy = rng.random(n) < params.heavy_returner_share
    return_propensity = np.where(heavy, rng.beta(8.0, 4.0, n), rng.beta(1.0, 14.0, n))
    promo_affinity = rng.beta(2.0, 8.0, n)
    preferred = rng.integers(0, len(CATEGORIES), n)
    channel = CHANNELS[rng.choice(len(CHANNELS), n, p=[0.6, 0.3, 0.1])]
    # First purchases spread over the first two thirds of the period, so everyone has some history.
    first_day = rng.integers(0, max(1, (2 * span) // 3), n)
    window = (span - 1 - first_day).astype(float)

    expected = np.minimum(rate * window, MAX_EXPECTED_REPEATS)
    arrivals = rng.poisson(expected)
    lifetime_purchases = rng.geometric(dropout)
    repeats = np.minimum(arrivals, lifetime_purchases)
    # The customer's repeat times: the `repeats` smallest of `arrivals` uniforms on (0, window).
    owner = np.repeat(np.arange(n), arrivals)
    offsets = rng.random(len(owner)) * window[owner]
    order = np.lexsort((offsets, owner))
    owner, offsets = owner[order], offsets[order]
    rank = np.arange(len(owner)) - np.repeat(np.cumsum(arrivals) - arrivals, arrivals)
    keep = rank < repeats[owner]
    owner, offsets = owner[keep], offsets[keep]

    order_owner = np.concatenate([np.arange(n), owner])
    order_day = np.concatenate([first_day.astype(float), first_day[owner] + np.ceil(offsets)])
    order_day = np.minimum(order_day, span - 1).astype(np.int64)
    seconds = rng.integers(8 * 3600, 22 * 3600, len(order_owner))
    sort = np.lexsort((seconds, order_day, order_owner))
    order_owner, order_day, seconds = order_owner[sort], order_day[sort], seconds[sort]
    n_orders = len(order_owner)

    value = rng.gamma(params.p, 1.0 / nu[order_owner])
    value = np.round(np.maximum(value, 0.5), 2)
    promo = rng.random(n_orders) < promo_affinity[order_owner]
    discount = np.round(np.where(promo, value * params.promo_discount / (1 - params.promo_discount), 0.0), 2)
    category = np.where(rng.random(n_orders) < 0.6, preferred[order_owner], rng.integers(0, len(CATEGORIES), n_orders))
    quantity = rng.integers(1, 4, n_orders)
    cost = np.round(value * (1.0 - params.margin_rate) * rng.uniform(0.9, 1.1, n_orders), 2)
    order_id = np.arange(1, n_orders + 1)
    timestamp = (start_day + order_day) * 86_400_000_000_000 + seconds * 1_000_000_000

    returned = rng.random(n_orders) < return_propensity[order_owner]
    return_delay = rng.integers(2, 30, n_orders)
    returned &= order_day + return_delay <= span - 1
    ret = np.flatnonzero(returned)
    return_ts = timestamp[ret] + return_delay[ret] * 86_400_000_000_000

    all_ts = np.concatenate([timestamp, return_ts])
    all_owner = np.concatenate([order_owner, order_owner[ret]])
    chronological = np.lexsort((all_ts, all_owner))
    rows = np.concatenate([np.arange(n_orders), ret])[chronological]
    is_return = np.concatenate([np.zeros(n_orders, bool), np.ones(len(ret), bool)])[chronological]
    sign = np.where(is_return, -1.0, 1.0)
    ids = _customer_ids(n)
    transactions = pd.DataFrame(
        {
            "customer_id": ids[order_owner[rows]],
            "timestamp": all_ts[chronological].astype("datetime64[ns]"),
            "amount": sign * value[rows],
            "order_id": order_id[rows].astype(str).astype(object),
            "quantity": quantity[rows].astype(float),
            "unit_price": np.round(value[rows] / quantity[rows], 4),
            "category": CATEGORIES[category[rows]],
            "discount": np.where(is_return, 0.0, discount[rows]),
            "is_return": is_return,
            "channel": channel[order_owner[rows]],
            "cost": sign * cost[rows],
            "promo": promo[rows] & ~is_return,
        }
    )

    # Expected profit of one order: margin on what is kept, minus service, minus handling of returns.
    profit_per_order = (
        params.margin_rate * mean_order * (1.0 - return_propensity)
        - params.service_cost_per_order
        - return_propensity * params.return_handling_cost
    )
    dropout_day = np.full(n, np.nan)
    died = lifetime_purchases <= arrivals
    dropout_day[died] = first_day[died] + np.ceil(_nth_arrival(owner, offsets, repeats, n)[died])
    customers = pd.DataFrame(
        {
            "lambda_": rate,
            "p_dropout": dropout,
            "nu": nu,
            "mean_order_value": mean_order,
            "return_propensity": return_propensity,
            "heavy_returner": heavy,
            "promo_affinity": promo_affinity,
            "first_purchase": pd.to_datetime((start_day + first_day) * 86_400_000_000_000),
            "dropout_date": pd.to_datetime(start_day + dropout_day, unit="D"),
            "profit_per_order": profit_per_order,
            "unprofitable": profit_per_order < 0,
        },
        index=pd.Index(ids, name="customer_id"),
    )
    return SyntheticData(transactions=transactions, customers=customers.sort_index())


def _customer_ids(n: int) -> np.ndarray:
    """Zero-padded string ids `C0000001` ... so lexical order is numeric order."""
    width = max(7, len(str(n)))
    return pd.Index(np.arange(1, n + 1)).map(lambda i: f"C{i:0{width}d}").to_numpy(dtype=object)


def _nth_arrival(owner: np.ndarray, offsets: np.ndarray, repeats: np.ndarray, n: int) -> np.ndarray:
    """Offset of each customer's last kept repeat purchase (0 when it made none)."""
    last = np.zeros(n)
    if len(owner):
        ends = np.flatnonzero(np.append(owner[1:] != owner[:-1], True))
        last[owner[ends]] = offsets[ends]
    return np.where(repeats > 0, last, 0.0)
