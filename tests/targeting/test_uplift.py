"""Intervals of incremental conversion and profit: known values and coverage on simulated experiments."""

import numpy as np
import pytest

from targeting.uplift import bootstrap_mean_difference, difference_of_proportions, wilson_interval


def test_wilson_interval_known_value():
    # Newcombe (1998), table I: 81/263 -> 95% Wilson interval 0.2553 .. 0.3662
    low, high = wilson_interval(81, 263, confidence=0.95)
    assert (low, high) == pytest.approx((0.2553, 0.3662), abs=5e-4)


def test_newcombe_difference_known_value():
    # Newcombe (1998), example (56/70 - 48/80): method 10 gives 0.0524 .. 0.3339 at 95%
    diff, low, high = difference_of_proportions(56, 70, 48, 80, confidence=0.95)
    assert diff == pytest.approx(0.2)
    assert (low, high) == pytest.approx((0.0524, 0.3339), abs=5e-4)


def test_interval_exists_without_buyers():
    diff, low, high = difference_of_proportions(0, 50, 0, 10)
    assert diff == 0 and low < 0 < high


def test_newcombe_covers_about_90_percent_at_retail_rates():
    # 2,000 simulated experiments, conversion 2% vs 1%, 3,000 treated and 400 control customers
    rng = np.random.default_rng(0)
    x_t, x_c = rng.binomial(3000, 0.02, 2000), rng.binomial(400, 0.01, 2000)
    covered = [low <= 0.01 <= high for _, low, high in (difference_of_proportions(a, 3000, b, 400) for a, b in zip(x_t, x_c, strict=True))]
    # binomial sd of the coverage over 2,000 runs at 0.9: 0.0067; allow 3 sd either side
    assert 0.88 <= np.mean(covered) <= 0.93


def test_bootstrap_interval_covers_the_mean_difference():
    rng = np.random.default_rng(1)
    runs, covered = 200, 0
    for _ in range(runs):
        # zero-inflated spend: 5% buy ~ Gamma(2, 20) in treatment, 3% in control
        t = np.where(rng.random(2000) < 0.05, rng.gamma(2, 20, 2000), 0.0)
        c = np.where(rng.random(1000) < 0.03, rng.gamma(2, 20, 1000), 0.0)
        _, low, high = bootstrap_mean_difference(t, c, draws=500, seed=int(rng.integers(1 << 30)))
        covered += low <= 0.05 * 40 - 0.03 * 40 <= high
    # 200 runs: sd of the coverage 0.021 at 0.9; 3 sd below
    assert covered / runs >= 0.83


def test_bootstrap_is_reproducible_for_a_seed():
    values = np.arange(100.0)
    assert bootstrap_mean_difference(values, values[::-1], seed=3) == bootstrap_mean_difference(values, values[::-1], seed=3)
