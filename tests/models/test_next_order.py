"""Time to the next purchase: the model's median against simulation, the blend with own gaps."""

from __future__ import annotations

import numpy as np
import pytest

from models.clv import CLVModel
from models.next_order import days_to_next_order, model_days_to_next_order, usual_gap_days


def _model(r: float = 0.8, alpha: float = 30.0, time_unit_days: int = 1) -> CLVModel:
    model = CLVModel(time_unit_days=time_unit_days)
    model.model_ = "bgnbd"
    model.params_ = {"r": r, "alpha": alpha, "a": 0.5, "b": 2.0, "p": 6.0, "q": 4.0, "v": 15.0}
    return model


@pytest.mark.parametrize(("x", "T"), [(0, 40.0), (3, 200.0), (12, 365.0)])
def test_model_median_matches_the_simulated_waiting_time(x, T):
    model = _model()
    rng = np.random.default_rng(0)
    rate = rng.gamma(model.params_["r"] + x, 1.0 / (model.params_["alpha"] + T), 400_000)
    waits = rng.exponential(1.0 / rate)
    predicted = model_days_to_next_order(model, np.array([x]), np.array([T]))[0]
    # 400k draws: the sample median's relative standard error is well under 1%
    assert predicted == pytest.approx(np.median(waits), rel=0.02)


def test_weeks_as_the_time_unit_give_days():
    days = model_days_to_next_order(_model(alpha=30.0 / 7, time_unit_days=7), np.array([2.0]), np.array([100.0 / 7]))
    assert days[0] == pytest.approx(model_days_to_next_order(_model(), np.array([2.0]), np.array([100.0]))[0])


def test_usual_gap_is_empty_without_a_repeat_purchase():
    gaps = usual_gap_days(np.array([0.0, 4.0]), np.array([0.0, 120.0]), 1)
    assert np.isnan(gaps[0]) and gaps[1] == 30.0


def test_many_regular_purchases_follow_the_customers_own_rhythm():
    # 40 purchases 10 days apart, the last 4 days ago; the shop's usual gap is 60 days
    ahead = days_to_next_order(np.array([40.0]), np.array([10.0]), np.array([4.0]), 60.0, 3.0)
    assert ahead[0] == pytest.approx((40 * 10 + 3 * 60) / 43 - 4)
    # a one-time buyer 20 days after the first purchase: the shop's gap
    assert days_to_next_order(np.array([0.0]), np.array([np.nan]), np.array([20.0]), 60.0, 3.0)[0] == 40.0


def test_outputs_are_finite_and_at_least_a_day():
    x = np.array([0.0, 1.0, 500.0, 3.0])
    ahead = days_to_next_order(x, np.array([np.nan, 1.0, 1.4, 0.2]), np.array([400.0, 1.0, 0.0, 0.5]), float("nan"), 0.0)
    assert np.isfinite(ahead).all() and (ahead >= 1.0).all()
