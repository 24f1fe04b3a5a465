"""Net value: margin kept minus the cost to serve, pinned on hand-computed customers."""

import numpy as np
import pytest

from targeting.profitability import expected_orders, net_value, shrink_rate


def test_net_value_formula_by_hand():
    # CLV 60 = 30% margin on 200 of spend, 10% of it returned; 4 orders, half of them returned
    # margin kept 60 * 0.9 = 54; cost to serve 4 * (1 + 0.5 * 5) = 14
    value = net_value([60.0], [4.0], [50.0], [0.5], [0.1], margin_rate=0.3, service_cost_per_order=1.0, return_handling_cost=5.0)
    assert value.tolist() == pytest.approx([40.0])


def test_serial_returner_is_unprofitable():
    # buys 3 times for 20 a time (CLV 0.3 * 60 = 18), returns 80% of it: kept 3.6, cost 3 * (1 + 5) = 18
    assert net_value([18.0], [3.0], [20.0], [1.0], [0.8])[0] == pytest.approx(-14.4)


def test_orders_are_at_least_what_the_clv_implies():
    # the purchase model says 1 order, but a CLV of 60 at 30% margin is 200 of spend: 5 orders of 40
    assert expected_orders(np.array([60.0]), np.array([1.0]), np.array([40.0]), 0.3).tolist() == pytest.approx([5.0])
    assert expected_orders(np.array([60.0]), np.array([8.0]), np.array([40.0]), 0.3).tolist() == [8.0]
    assert expected_orders(np.array([60.0]), np.array([2.0]), np.array([0.0]), 0.3).tolist() == [2.0]


def test_more_returns_never_raise_net_value():
    shares = np.linspace(0, 1, 11)
    values = net_value(np.full(11, 90.0), np.full(11, 3.0), np.full(11, 100.0), shares, shares)
    assert np.all(np.diff(values) < 0)


def test_rates_are_clipped_and_negative_clv_counts_as_zero():
    # second customer: CLV 30 at 30% margin is 100 of spend, one order of 100; no returns after clipping
    value = net_value([-50.0, 30.0], [0.0, 1.0], [50.0, 100.0], [3.0, -1.0], [2.0, -0.5])
    assert value.tolist() == pytest.approx([0.0, 29.0])


def test_per_customer_margin_rate():
    # CLV 100 at 10% margin is 1000 of spend = 10 orders of 100; at 50% margin, 2 orders
    value = net_value([100.0, 100.0], [1.0, 1.0], [100.0, 100.0], [0, 0], [0, 0], margin_rate=np.array([0.1, 0.5]))
    assert value.tolist() == pytest.approx([90.0, 98.0])


def test_shrink_rate():
    rates = shrink_rate(np.array([1.0, 0.0, 0.5, 0.3]), np.array([1.0, 3.0, 0.0, 7.0]), prior=0.1, prior_orders=1.0)
    assert rates.tolist() == pytest.approx([0.55, 0.025, 0.1, (2.1 + 0.1) / 8])
    unchanged = shrink_rate(np.array([0.7, 0.2]), np.array([0.0, 4.0]), prior=0.1, prior_orders=0.0)
    assert unchanged.tolist() == pytest.approx([0.7, 0.2])
