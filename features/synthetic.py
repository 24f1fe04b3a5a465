"""Synthetic transaction logs from the BG/NBD + Gamma-Gamma generative process, with known ground truth.

Customer i makes a first purchase at a time drawn uniformly over the first two thirds of the
period (staggered cohorts), then repeat purchases as a Poisson process with rate
lambda_i ~ Gamma(r, alpha) per day; after each repeat purchase it drops out for good with
probability p_i ~ Beta(a, b) (Fader, Hardie & Lee 2005, "Counting your customers the easy way").
Order values are Gamma(p, nu_i) with nu_i ~ Gamma(q, v), so the mean order value of customer i is
p / nu_i (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves", the Gamma-Gamma model).

On top of the textbook process, every optional field of the data contract is exercised: each
order has a unique `order_id` (`<customer_id>-<n>` for its n-th order), a `category` (60% the customer's
preferred one), `quantity` and `unit_price`, a `cost` (margin about `margin_rate`), and a
`promo` flag with a `discount` (each customer has a promotion affinity); each customer has a
`channel` and a return propensity rho_i: an order is returned in full with probability rho_i,
2 to 30 days later, as a row with the same order id and a negative amount. About
`heavy_returner_share` of the customers are heavy returners (rho ~ Beta(8, 4)), the rest return
rarely (rho ~ Beta(1, 14)).

Ground truth, from the generator's own economics (defaults: margin 0.3, handling 5.0 per returned
order, service 1.0 per order)::

    profit_per_order = margin_rate * mean_order_value * (1 - rho) - service_cost_per_order
                       - rho * return_handling_cost
    unprofitable     = profit_per_order < 0

i.e. the margin of the orders a customer keeps, minus the cost of serving every order and of
handling its returns. A customer with a negative expected profit per order loses money on every
order, however many it places; most heavy returners are such customers.

Vectorised, no loop over customers: given K_i ~ Poisson(lambda_i W_i) arrivals in the customer's
window W_i and N_i ~ Geometric(p_i) purchases before dropping out, the kept repeat times are the
first M_i = min(K_i, N_i) order statistics of K_i uniforms on (0, W_i), drawn directly as
W_i S_j / (S_M + G) with S_j cumulative sums of unit exponentials and G ~ Gamma(K_i + 1 - M_i):
no sort is needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from core.units import NS_PER_DAY

NS_PER_SECOND = 1_000_000_000
CATEGORIES = ("books", "music", "video", "games", "home", "garden", "fashion", "toys")
CHANNELS = ("web", "app", "marketplace")
CHANNEL_SHARES = (0.6, 0.3, 0.1)
MAX_EXPECTED_REPEATS = 400.0
"""Cap on lambda_i * W_i, so one extreme draw cannot blow up the log."""


@dataclass(frozen=True)
class GeneratorParams:
    """Population parameters of the generator (days as the time unit) and its economics.

    Attributes
    ----------
    r, alpha : Gamma shape and rate of the purchase rate lambda (per day).
    a, b : Beta parameters of the dropout probability p.
    p, q, v : Gamma-Gamma spend parameters (order value ~ Gamma(p, nu), nu ~ Gamma(q, v)).
    margin_rate, return_handling_cost, service_cost_per_order : economics behind `unprofitable`.
    heavy_returner_share : share of customers with a high return propensity.
    promo_discount : discount of a promotional order, as a share of its list price.
    """

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
    """A generated log and its ground truth.

    Attributes
    ----------
    transactions : the log in the contract's columns, sorted by customer_id then timestamp.
    customers : ground truth indexed by customer_id: lambda_, p_dropout, gg_p, nu,
        mean_order_value, return_propensity, heavy_returner, promo_affinity, channel,
        first_purchase, dropout_time (NaT when still alive at the end), repeat_purchases,
        profit_per_order and unprofitable (formula in the module docstring).
    """

    transactions: pd.DataFrame
    customers: pd.DataFrame


def generate_transactions(
    n_customers: int,
    seed: int = 42,
    start: str = "2022-01-01",
    end: str = "2023-12-31",
    params: GeneratorParams | None = None,
) -> SyntheticData:
    """Generate a reproducible transaction log of `n_customers` from `start` to `end` (inclusive days)."""
    if n_customers < 1:
        raise ValueError(f"n_customers must be at least 1, got {n_customers}")
    params = params or GeneratorParams()
    rng = np.random.default_rng(seed)
    period = _period(start, end)
    people = _draw_customers(rng, n_customers, params)
    orders = _draw_order_times(rng, people, period)
    details = _draw_order_details(rng, people, orders, params)
    returns = _draw_returns(rng, people, orders, period)
    transactions = _log_frame(people, orders, details, returns, period)
    return SyntheticData(transactions=transactions, customers=_truth(people, orders, params))


@dataclass(frozen=True)
class _Period:
    start_ns: int
    end_ns: int
    span_days: float


def _period(start: str, end: str) -> _Period:
    """The log's first and last instant (whole days) and its length in days."""
    start_ns = pd.Timestamp(start).normalize().as_unit("ns").value
    end_ns = pd.Timestamp(end).normalize().as_unit("ns").value + NS_PER_DAY - NS_PER_SECOND
    span_days = (end_ns - start_ns) / NS_PER_DAY
    if span_days < 30:
        raise ValueError(f"the period {start} .. {end} must cover at least 30 days")
    return _Period(start_ns, end_ns, span_days)


def _draw_customers(rng: np.random.Generator, n: int, params: GeneratorParams) -> dict[str, np.ndarray]:
    """Per-customer traits: purchase rate, dropout, spend, returns, promotion affinity, category, channel."""
    rate = rng.gamma(params.r, 1.0 / params.alpha, n)
    dropout = rng.beta(params.a, params.b, n)
    nu = rng.gamma(params.q, 1.0 / params.v, n)
    heavy = rng.random(n) < params.heavy_returner_share
    return_propensity = np.where(heavy, rng.beta(8.0, 4.0, n), rng.beta(1.0, 14.0, n))
    return {
        "rate": rate,
        "dropout": dropout,
        "nu": nu,
        "mean_order": params.p / nu,
        "heavy": heavy,
        "return_propensity": return_propensity,
        "promo_affinity": rng.beta(2.0, 8.0, n),
        "preferred": rng.integers(0, len(CATEGORIES), n),
        "channel": rng.choice(len(CHANNELS), n, p=CHANNEL_SHARES),
    }


def _draw_order_times(rng: np.random.Generator, people: dict[str, np.ndarray], period: _Period) -> dict[str, np.ndarray]:
    """Order instants in (customer, time) order: each customer's first purchase, then its kept repeats."""
    n = people["rate"].size
    # First purchase (in days from the start) over the first two thirds of the period.
    first = rng.random(n) * (2.0 * period.span_days / 3.0)
    window = period.span_days - first
    arrivals = rng.poisson(np.minimum(people["rate"] * window, MAX_EXPECTED_REPEATS))
    lifetime_purchases = rng.geometric(people["dropout"])
    repeats = np.minimum(arrivals, lifetime_purchases)

    per_customer = 1 + repeats
    n_orders = int(per_customer.sum())
    owner = np.repeat(np.arange(n), per_customer)
    group_start = np.cumsum(per_customer) - per_customer
    is_first = np.zeros(n_orders, dtype=bool)
    is_first[group_start] = True
    gaps = rng.standard_exponential(n_orders)
    gaps[is_first] = 0.0
    cumulative = np.cumsum(gaps)
    cumulative -= np.repeat(cumulative[group_start], per_customer)
    # Uniform order statistics: S_j / S_{K+1}, with S_{K+1} = S_M + Gamma(K + 1 - M).
    total = cumulative[group_start + repeats] + rng.standard_gamma(arrivals + 1 - repeats)
    offset_days = window[owner] * cumulative / total[owner]
    order_ns = period.start_ns + ((first[owner] + offset_days) * NS_PER_DAY).astype(np.int64)
    # Whole seconds, like a shop's clock; keeps the merge key below exact.
    order_ns = np.minimum(order_ns, period.end_ns) // NS_PER_SECOND * NS_PER_SECOND
    return {
        "owner": owner,
        "order_ns": order_ns,
        "group_start": group_start,
        "per_customer": per_customer,
        "repeats": repeats,
        "died": lifetime_purchases <= arrivals,
    }


def _draw_order_details(
    rng: np.random.Generator, people: dict[str, np.ndarray], orders: dict[str, np.ndarray], params: GeneratorParams
) -> dict[str, np.ndarray]:
    """Per order: value, promotion and discount, category, quantity, cost and its number for the customer."""
    owner = orders["owner"]
    n_orders = owner.size
    value = np.round(np.maximum(rng.gamma(params.p, 1.0 / people["nu"][owner]), 0.5), 2)
    promo = rng.random(n_orders) < people["promo_affinity"][owner]
    discount = np.round(np.where(promo, value * params.promo_discount / (1 - params.promo_discount), 0.0), 2)
    category = np.where(rng.random(n_orders) < 0.6, people["preferred"][owner], rng.integers(0, len(CATEGORIES), n_orders))
    quantity = rng.integers(1, 4, n_orders).astype(float)
    cost = np.round(value * (1.0 - params.margin_rate) * rng.uniform(0.9, 1.1, n_orders), 2)
    # The customer's n-th order is `<customer_id>-<n>`: unique, increasing with time per customer.
    order_number = np.arange(1, n_orders + 1) - np.repeat(orders["group_start"], orders["per_customer"])
    return {"value": value, "promo": promo, "discount": discount, "category": category, "quantity": quantity, "cost": cost, "order_number": order_number}


def _draw_returns(rng: np.random.Generator, people: dict[str, np.ndarray], orders: dict[str, np.ndarray], period: _Period) -> dict[str, np.ndarray]:
    """Orders returned in full, 2 to 30 days later (within the period): positions and return instants."""
    owner, order_ns = orders["owner"], orders["order_ns"]
    returned = rng.random(owner.size) < people["return_propensity"][owner]
    return_ns = order_ns + rng.integers(2 * 86_400, 30 * 86_400, owner.size) * NS_PER_SECOND
    returned &= return_ns <= period.end_ns
    return {"return_ns": return_ns, "ret": np.flatnonzero(returned)}


def _log_frame(
    people: dict[str, np.ndarray], orders: dict[str, np.ndarray], details: dict[str, np.ndarray], returns: dict[str, np.ndarray], period: _Period
) -> pd.DataFrame:
    """Orders and returns merged into one log in (customer, time) order, in the contract's columns."""
    owner, order_ns = orders["owner"], orders["order_ns"]
    return_ns, ret = returns["return_ns"], returns["ret"]
    n_orders = owner.size
    # Merge the returns into (customer, time) order: two sorted runs, so a stable sort is a merge.
    seconds = (np.concatenate([order_ns, return_ns[ret]]) - period.start_ns) // NS_PER_SECOND
    span_seconds = int((period.end_ns - period.start_ns) // NS_PER_SECOND) + 1
    key = np.concatenate([owner, owner[ret]]).astype(np.int64) * span_seconds + seconds
    rows = np.argsort(key, kind="stable")
    source = np.concatenate([np.arange(n_orders), ret])[rows]
    is_return = rows >= n_orders
    sign = np.where(is_return, -1.0, 1.0)
    row_owner = owner[source]
    customer_ids = _zero_padded("C", np.arange(1, people["rate"].size + 1))
    row_customer = customer_ids.take(pa.array(row_owner))
    order_number = details["order_number"]
    width = len(str(int(order_number.max())))
    suffixes = pa.array([f"-{i:0{width}d}" for i in range(10**width)])
    order_id = pc.binary_join_element_wise(row_customer, suffixes.take(pa.array(order_number[source])), "")
    value, quantity = details["value"], details["quantity"]
    return pd.DataFrame(
        {
            "customer_id": pd.array(row_customer, dtype="str"),
            "timestamp": np.where(is_return, return_ns[source], order_ns[source]).astype("datetime64[ns]"),
            "amount": sign * value[source],
            "is_return": is_return,
            "order_id": pd.array(order_id, dtype="str"),
            "quantity": quantity[source],
            "unit_price": np.round(value[source] / quantity[source], 4),
            "category": _strings(pa.array(CATEGORIES), details["category"][source]),
            "channel": _strings(pa.array(CHANNELS), people["channel"][row_owner]),
            "discount": np.where(is_return, 0.0, details["discount"][source]),
            "cost": sign * details["cost"][source],
            "promo": details["promo"][source] & ~is_return,
        }
    )


def _truth(people: dict[str, np.ndarray], orders: dict[str, np.ndarray], params: GeneratorParams) -> pd.DataFrame:
    """The ground-truth customer table (see `SyntheticData.customers`)."""
    n = people["rate"].size
    group_start, repeats = orders["group_start"], orders["repeats"]
    dropout_ns = orders["order_ns"][group_start + repeats]
    return_propensity = people["return_propensity"]
    profit_per_order = (
        params.margin_rate * people["mean_order"] * (1.0 - return_propensity)
        - params.service_cost_per_order
        - return_propensity * params.return_handling_cost
    )
    customer_ids = _zero_padded("C", np.arange(1, n + 1))
    return pd.DataFrame(
        {
            "lambda_": people["rate"],
            "p_dropout": people["dropout"],
            "gg_p": np.full(n, params.p),
            "nu": people["nu"],
            "mean_order_value": people["mean_order"],
            "return_propensity": return_propensity,
            "heavy_returner": people["heavy"],
            "promo_affinity": people["promo_affinity"],
            "channel": _strings(pa.array(CHANNELS), people["channel"]),
            "first_purchase": orders["order_ns"][group_start].astype("datetime64[ns]"),
            "dropout_time": pd.to_datetime(np.where(orders["died"], dropout_ns, np.iinfo(np.int64).min).astype("datetime64[ns]")),
            "repeat_purchases": repeats.astype(np.int64),
            "profit_per_order": profit_per_order,
            "unprofitable": profit_per_order < 0,
        },
        index=pd.Index(pd.array(customer_ids, dtype="str"), name="customer_id"),
    )


def _zero_padded(prefix: str, numbers: np.ndarray) -> pa.Array:
    """`prefix` + zero-padded decimal numbers, one width for all, so text order is numeric order."""
    groups = max(3, -(-len(str(int(numbers.max(initial=1)))) // 3))  # 3-digit groups, at least 9 digits
    head = len(prefix)
    chars = np.empty((len(numbers), head + 3 * groups), dtype=np.uint8)
    chars[:, :head] = np.frombuffer(prefix.encode(), dtype=np.uint8)
    remaining = numbers.astype(np.int64)
    for group in range(groups - 1, -1, -1):
        chars[:, head + 3 * group : head + 3 * group + 3] = _DIGIT_TRIPLES[remaining % 1000]
        remaining = remaining // 1000
    return pa.array(chars.view(f"S{chars.shape[1]}").ravel()).cast(pa.string())


_DIGIT_TRIPLES = np.frombuffer("".join(f"{i:03d}" for i in range(1000)).encode(), dtype=np.uint8).reshape(1000, 3)


def _strings(values: pa.Array, index: np.ndarray) -> pd.arrays.ArrowStringArray:
    """values[index] as pandas' Arrow-backed string column (no Python objects)."""
    return pd.array(values.take(pa.array(index)), dtype="str")
