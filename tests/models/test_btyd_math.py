"""The closed forms of models.btyd_math against independent numerical integrals and exact bounds."""

from __future__ import annotations

import itertools
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, ParetoNBDFitter
from scipy.integrate import quad
from scipy.special import betaln

from models.btyd_math import (
    beta_geo_alive_purchases,
    beta_geo_p_alive,
    gamma_gamma_order_value,
    modified_beta_geo_p_alive,
    pareto_alive_purchases,
    pareto_p_alive,
)

# (r, alpha, a, b): CDNOW in days, Online Retail's ridge (a -> 0), a > 1, a next to 1, both < 1.
BG_PARAMS = [
    (0.243, 30.9, 0.793, 2.426),
    (0.83, 69.0, 0.0034, 6.7),
    (2.0, 10.0, 3.0, 10.0),
    (0.5, 5.0, 1.0 + 1e-7, 2.0),
    (0.5, 5.0, 1.0 - 3e-5, 2.0),
    (0.05, 1.0, 0.2, 0.3),
]
EXTREME_X = [0, 1, 5, 50, 1000]
EXTREME_T = [0.0, 1.0, 30.0, 365.0, 3650.0]
HORIZONS = [1.0, 30.0, 365.0, 3650.0]


def alive_by_quadrature(A: float, a: float, bprime: float, u: float) -> float:
    """E[(1 - (1 + p u)^-A) / p] for p ~ Beta(a, b'), by adaptive quadrature (independent of 2F1)."""

    def h(p: float) -> float:
        return -np.expm1(-A * np.log1p(p * u)) / p if p > 0 else A * u

    log_beta = betaln(a, bprime)
    if a < 1 or bprime < 1:  # integrable singularities at the ends: QUADPACK's algebraic weight
        value, _ = quad(
            lambda p: h(p) * np.exp(-log_beta),
            0,
            1,
            weight="alg",
            wvar=(a - 1, bprime - 1),
            limit=500,
            epsabs=0,
            epsrel=1e-12,
        )
        return value
    mode = (a - 1) / (a + bprime - 2)
    sd = np.sqrt(a * bprime / ((a + bprime) ** 2 * (a + bprime + 1)))
    points = sorted(
        {float(np.clip(mode + k * sd, 1e-12, 1 - 1e-12)) for k in (-8, -4, -2, -1, 0, 1, 2, 4, 8)}
    )

    def integrand(p: float) -> float:
        if p <= 0 or p >= 1:
            return 0.0
        return h(p) * np.exp((a - 1) * np.log(p) + (bprime - 1) * np.log1p(-p) - log_beta)

    value, _ = quad(integrand, 0, 1, points=points, limit=500, epsabs=0, epsrel=1e-12)
    return value


def _grid(xs, Ts, ts):
    rows = np.array(list(itertools.product(xs, Ts, ts)), dtype=float)
    return rows[:, 0], rows[:, 1], rows[:, 2]


@pytest.mark.parametrize("params", BG_PARAMS)
@pytest.mark.parametrize("modified", [False, True], ids=["bgnbd", "mbgnbd"])
def test_alive_purchases_match_quadrature(params, modified):
    r, alpha, a, b = params
    x, T, t = _grid([0, 1, 5, 50], [0.0, 30.0, 365.0], [1.0, 30.0, 365.0])
    bprime = b + x + (1 if modified else 0)
    got = beta_geo_alive_purchases(r + x, a, a + bprime - 1, t / (alpha + T))
    expected = np.array(
        [
            alive_by_quadrature(r + xi, a, bi, ti / (alpha + Ti))
            for xi, bi, ti, Ti in zip(x, bprime, t, T, strict=True)
        ]
    )
    # 1e-6: the quadrature's own accuracy; where a is within 1e-4 of 1 the closed form interpolates
    # (error of order 1e-8).
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "params",
    [
        *BG_PARAMS,
        (0.6, 49.0, 1e-6, 1e6),
        (5.0, 0.5, 0.5, 1e4),
        (10.0, 0.1, 1e-8, 1e-8),
        (0.5, 5.0, 50.0, 1000.0),
    ],
)
def test_alive_purchases_are_finite_and_inside_exact_bounds_for_extreme_customers(params):
    r, alpha, a, b = params
    x, T, t = _grid(EXTREME_X, EXTREME_T, HORIZONS)
    A, c, u = r + x, a + b + x - 1, t / (alpha + T)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning may escape either
        got = beta_geo_alive_purchases(A, a, c, u)
    assert np.isfinite(got).all()
    p_mean = a / (c + 1)
    jensen = -np.expm1(-A * np.log1p(p_mean * u)) / p_mean
    upper = np.minimum(A * u, c / (a - 1)) if a > 1 else A * u
    assert (got >= jensen * (1 - 1e-9)).all() and (got <= upper * (1 + 1e-9)).all()
    # more time never means fewer expected purchases
    by_horizon = got.reshape(len(EXTREME_X) * len(EXTREME_T), len(HORIZONS))
    assert (np.diff(by_horizon, axis=1) >= -1e-9 * by_horizon[:, 1:]).all()


def test_alive_purchases_are_zero_at_horizon_zero():
    assert beta_geo_alive_purchases(
        np.array([1.3, 5.0]), 0.8, np.array([3.0, 7.0]), np.zeros(2)
    ).tolist() == [0.0, 0.0]


def test_lifetimes_returns_non_finite_values_where_ours_are_finite():
    """Why the closed forms are ours: lifetimes overflows for long-lived heavy buyers."""
    r, alpha, a, b = 0.5, 5.0, 50.0, 1000.0
    x, T, t = _grid(EXTREME_X, EXTREME_T, HORIZONS)
    bgf = BetaGeoFitter()
    bgf.params_ = pd.Series({"r": r, "alpha": alpha, "a": a, "b": b})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = bgf.conditional_expected_number_of_purchases_up_to_time(t, x, T, T)
    ours = beta_geo_p_alive(r, alpha, a, b, x, T, T) * beta_geo_alive_purchases(
        r + x, a, a + b + x - 1, t / (alpha + T)
    )
    assert (~np.isfinite(theirs)).sum() > 0
    assert np.isfinite(ours).all()
    finite = np.isfinite(theirs)
    np.testing.assert_allclose(ours[finite], theirs[finite], rtol=1e-8, atol=1e-300)


@pytest.mark.parametrize("fn", [beta_geo_p_alive, modified_beta_geo_p_alive])
def test_beta_geo_p_alive_is_a_probability_and_matches_the_paper(fn):
    x, t_x, T = (
        np.array([0.0, 1, 1, 1000, 1000]),
        np.array([0.0, 0, 10, 0, 3650]),
        np.array([10.0, 10, 10, 3650, 3650]),
    )
    got = fn(0.243, 4.414, 0.793, 2.426, x, t_x, T)
    assert np.isfinite(got).all() and ((got >= 0) & (got <= 1)).all()
    # recency == T: the customer just bought, the odds of being dead are a / (b + x - 1) (MBG: b + x)
    shift = -1.0 if fn is beta_geo_p_alive else 0.0
    np.testing.assert_allclose(got[2], 1 / (1 + 0.793 / (2.426 + 1 + shift)), rtol=1e-12)
    assert got[3] < 1e-12  # a heavy buyer silent for ten years is gone
    if fn is beta_geo_p_alive:
        assert got[0] == 1.0  # BG/NBD: no repeat purchase, no evidence of dropout


def pareto_p_alive_by_quadrature(r, alpha, s, beta, x, t_x, T) -> float:
    """1 / (1 + s int_{t_x}^T ((alpha+T)/(alpha+tau))^(r+x) ((beta+T)/(beta+tau))^s dtau/(beta+tau))."""
    if t_x == T:
        return 1.0
    peak = (r + x) * np.log((alpha + T) / (alpha + t_x)) + s * np.log((beta + T) / (beta + t_x))

    def f(tau: float) -> float:
        return np.exp(
            (r + x) * np.log((alpha + T) / (alpha + tau))
            + s * np.log((beta + T) / (beta + tau))
            - peak
        ) / (beta + tau)

    width = (alpha + t_x) / (r + x + 1)
    points = [t_x + k * width for k in (1, 5, 20, 100) if t_x + k * width < T]
    value, _ = quad(f, t_x, T, points=points or None, limit=500, epsabs=0, epsrel=1e-12)
    log_odds = np.log(s) + np.log(value) + peak
    return float(1 / (1 + np.exp(log_odds))) if log_odds < 700 else 0.0


@pytest.mark.parametrize(
    "params",
    [
        (0.553, 10.58, 0.606, 11.67),
        (0.83, 69.0, 1.1e-7, 1594.0),
        (2.0, 5.0, 3.0, 50.0),
        (0.5, 100.0, 2.0, 1.0),
    ],
)
def test_pareto_p_alive_matches_quadrature_where_lifetimes_overflows(params):
    r, alpha, s, beta = params
    rows = [
        (x, t_x, T)
        for x, T in itertools.product(EXTREME_X, EXTREME_T)
        for t_x in sorted({0.0, T / 2, max(T - 1e-3, 0.0), T})
        if x > 0 or t_x == 0
    ]
    x, t_x, T = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    got = pareto_p_alive(r, alpha, s, beta, x, t_x, T)
    expected = np.array([pareto_p_alive_by_quadrature(r, alpha, s, beta, *row) for row in rows])
    np.testing.assert_allclose(got, expected, rtol=1e-8, atol=1e-300)
    fitter = ParetoNBDFitter()
    fitter.params_ = pd.Series({"r": r, "alpha": alpha, "s": s, "beta": beta})
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = np.asarray(fitter.conditional_probability_alive(x, t_x, T), dtype=float)
    assert (~np.isfinite(theirs)).any()


def test_pareto_alive_purchases_are_continuous_through_s_equal_one():
    x, T, t = np.array([0.0, 3.0]), np.array([10.0, 200.0]), np.array([30.0, 365.0])
    at_one = pareto_alive_purchases(0.5, 10.0, 1.0, 20.0, x, T, t)
    np.testing.assert_allclose(
        at_one, (0.5 + x) / (10 + T) * (20 + T) * np.log1p(t / (20 + T)), rtol=1e-12
    )
    for s in (1 - 1e-9, 1 + 1e-9):
        np.testing.assert_allclose(
            pareto_alive_purchases(0.5, 10.0, s, 20.0, x, T, t), at_one, rtol=1e-7
        )
    # s -> 0 is no dropout: the Poisson-Gamma expectation (r + x) t / (alpha + T)
    np.testing.assert_allclose(
        pareto_alive_purchases(0.5, 10.0, 1e-12, 20.0, x, T, t), (0.5 + x) * t / (10 + T), rtol=1e-9
    )


def test_gamma_gamma_order_value_shrinks_towards_the_population_mean():
    p, q, v = 6.25, 3.74, 15.44
    population = v * p / (q - 1)
    got = gamma_gamma_order_value(
        p, q, v, np.array([0.0, 1.0, 100.0, 2.0, 2.0]), np.array([0.0, 50.0, 50.0, np.nan, -5.0])
    )
    assert got[0] == pytest.approx(population)
    assert population < got[1] < got[2] < 50.0
    assert got[3] == got[4] == pytest.approx((q - 1) / (p * 2 + q - 1) * population)
