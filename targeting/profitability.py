"""Net value: the margin a customer is expected to leave over the CLV horizon after the cost to serve.

`clv` is the model's margin on the expected spend over the CLV horizon (models.clv.CLVModel: margin x
expected spend, discounted). With m the margin rate, s the share of spend the customer sends back
(`return_value_share`, clipped to [0, 1]) and r the returns per order (`return_rate`, clipped to [0, 1]:
at most one handled return per order):

    expected orders  N = max(expected_purchases_clv_horizon, clv / (m * expected_order_value))
    margin kept        = clv * (1 - s)            # the margin on refunded spend is lost
    cost to serve      = N * (service_cost_per_order + r * return_handling_cost)
    net_value          = margin kept - cost to serve

`N` takes the larger of the purchase model's count and the count the CLV implies at the expected order
value, so a CLV never rests on orders that cost nothing to serve. The `s` term assumes the CLV is built
on purchase spend (`monetary_value` from purchase rows, returns counted apart in `return_value_share`).

Return rates seen on one or two orders are mostly noise (one returned order of one is a 100% return rate),
so `decide` first shrinks both rates towards a prior with `shrink_rate`: `(rate * orders + prior * k) /
(orders + k)`, k = `return_prior_orders` pseudo-orders (benchmarks/RESULTS.md shows the recall/precision
trade-off of k against generated truth).

Customers with negative net value are the "highest-cost customers": targeting excludes them from every
spend (`exclude_reason == "negative_net_value"`).
"""

from __future__ import annotations

import numpy as np

from core import defaults

NEGATIVE_NET_VALUE = "negative_net_value"


def expected_orders(
    clv: np.ndarray,
    expected_purchases: np.ndarray,
    expected_order_value: np.ndarray,
    margin_rate: float | np.ndarray = defaults.MARGIN_RATE,
) -> np.ndarray:
    """Orders expected over the CLV horizon: the model's count, or more if the CLV implies more."""
    margin = np.maximum(np.asarray(clv, dtype=float), 0.0)
    revenue_per_order = np.asarray(margin_rate, dtype=float) * np.asarray(expected_order_value, dtype=float)
    revenue_per_order = np.broadcast_to(revenue_per_order, margin.shape)
    implied = np.divide(margin, revenue_per_order, out=np.zeros_like(margin), where=revenue_per_order > 0)
    return np.maximum(np.maximum(np.asarray(expected_purchases, dtype=float), 0.0), implied)


def shrink_rate(
    observed: np.ndarray,
    orders: np.ndarray,
    prior: float = defaults.RETURN_RATE_PRIOR,
    prior_orders: float = defaults.RETURN_PRIOR_ORDERS,
) -> np.ndarray:
    """A per-order rate pulled towards `prior` as if `prior_orders` more orders had shown it."""
    n = np.maximum(np.asarray(orders, dtype=float), 0.0)
    rate = np.asarray(observed, dtype=float)
    total = n + prior_orders
    safe = np.where(total > 0, total, 1.0)
    return np.where(total > 0, (rate * n + prior * prior_orders) / safe, rate)


def net_value(
    clv: np.ndarray,
    expected_purchases: np.ndarray,
    expected_order_value: np.ndarray,
    return_rate: np.ndarray,
    return_value_share: np.ndarray,
    margin_rate: float | np.ndarray = defaults.MARGIN_RATE,
    service_cost_per_order: float = defaults.SERVICE_COST_PER_ORDER,
    return_handling_cost: float = defaults.RETURN_HANDLING_COST,
) -> np.ndarray:
    """Expected margin kept over the CLV horizon minus the expected cost to serve (see the module doc)."""
    margin = np.maximum(np.asarray(clv, dtype=float), 0.0)
    kept = 1.0 - np.clip(np.asarray(return_value_share, dtype=float), 0.0, 1.0)
    returns_per_order = np.clip(np.asarray(return_rate, dtype=float), 0.0, 1.0)
    orders = expected_orders(margin, expected_purchases, expected_order_value, margin_rate)
    cost_per_order = service_cost_per_order + returns_per_order * return_handling_cost
    return margin * kept - orders * cost_per_order

