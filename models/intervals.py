"""Prediction intervals for a customer's purchases, spend and CLV: the customer's own randomness in
closed form, the interval levels calibrated on an out-of-time holdout.

The purchase count over a horizon t is a mixture: with probability 1 - P(alive) the customer has left
and buys nothing; alive, the count is negative binomial with the shape of the posterior purchase rate,
``r + x`` (Gamma(r, alpha) prior, x repeat purchases; Fader, Hardie & Lee 2005, eq. 7), and the BTYD
model's own mean (which accounts for dropout inside the window). Spend is the sum of the orders: zero
with the count's mass at zero, otherwise a Gamma matched to the compound mean and variance, where one
order's value is Gamma-Gamma (Fader, Hardie & Lee 2005b) with the posterior of the customer's mean spend
(shape ``q + p x``). The 12-month CLV interval scales the 12-month spend interval by the CLV's margin and
discount (`clv * spend_quantile / expected_spend`).

Calendar time: a stationary BTYD model predicts every window alike, but a shop's rate moves from one
window to the next (season, trend, promotions), for all customers at once. The intervals integrate over
a common rate multiplier M (mean 1, log-sd `rate_sd`) on every alive customer's rate; `rate_sd` is the
root mean square of log(actual / predicted purchases of all customers) over monthly origins whose
horizon ends by the inner holdout's end (`rate_shock_sd`). The Gamma x lognormal rate is replaced by
the Gamma of the same mean and variance (1/n' = 1/n + v (1 + 1/n), v = Var M): the count stays
negative binomial, so the shock costs nothing at scoring time. Measured log ratios (pareto, H = 90 days):
CDNOW -0.16 to +0.06 over 10 origins (rate_sd 0.10), generated -0.09 to -0.04 (0.06), Online Retail
-0.06 to +0.12 over its 4 origins (0.07) -- and +0.30 on its reported Christmas quarter, which 12 months
of history cannot show (benchmarks/RESULTS.md, "Model quality per shop").

The closed forms cover neither the uncertainty of the fitted parameters nor the misfit of the model at
the customer level: both are absorbed by calibration. `calibrate_levels` finds, per quantity and nominal
level, the central level whose interval covers the nominal share of customers on the inner out-of-time
holdout (features at E-2H, purchases in (E-2H, E-H]) given that window's own shop-wide rate (the
model's means scaled by its realised actual / predicted ratio, no shock): the levels then correct the
customers' spread, not one window's season, and the shock is added on top. The scorer keeps both, so
the reported holdout (E-H, E] measures them honestly. Reported 90% coverage, purchases / spend: CDNOW
0.922 / 0.922, generated 0.908 / 0.909, Online Retail 0.811 / 0.811 (0.798 / 0.794 with levels fitted
to the inner window's season; its Christmas quarter runs 1.35x the model, beyond any window before it).

Plain coverage of counts cannot reach an exact share: an interval holds whole atoms, and where most
customers buy nothing any interval holding 0 covers them. `pit_coverage` reports beside it the
randomized PIT coverage of the distributions at the nominal levels, which is the nominal level when the
distributions are right (0.896 / 0.898 at 90% on CDNOW, 0.877 / 0.891 on Online Retail). Everything is
vectorised over customers (`benchmarks/bench_intervals.py`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np
from scipy import special

INTERVAL_LEVELS = (0.80, 0.90)
DEFAULT_INTERVAL_LEVEL = 0.90
INTERVAL_QUANTITIES = ("purchases", "spend")
# Column stems per quantity; the default level keeps the plain name, others carry `_<percent>`.
_STEMS = {"purchases": "expected_purchases", "spend": "expected_spend", "clv": "clv"}
_CALIBRATION_RANGE = (0.5, 0.999)
_BISECTION_STEPS = 12
_MIN_GG_SHAPE_EXCESS = 0.05  # q + p x - 2 must be > 0 for a finite variance of the mean order value
RATE_SD_KEY = "rate_sd"
"""The key of the calendar-time shock's log-sd beside the calibrated levels (`InnerChoice.interval_levels`)."""


@functools.lru_cache(maxsize=64)  # six calls per scoring call, each ~0.1 ms of np.isclose on one API request
def interval_column_names(quantity: str, level: float) -> tuple[str, str]:
    """The low and high column names of an interval: `clv_low` at the default level, `clv_low_80` otherwise."""
    suffix = "" if np.isclose(level, DEFAULT_INTERVAL_LEVEL) else f"_{round(level * 100)}"
    stem = _STEMS[quantity]
    return f"{stem}_low{suffix}", f"{stem}_high{suffix}"




def coverage_metric_name(quantity: str, level: float) -> str:
    """The MLflow metric of an interval's holdout coverage, e.g. `interval_coverage_purchases_90`."""
    return f"interval_coverage_{quantity}_{round(level * 100)}"


def rate_shock_sd(actual_totals: np.ndarray, predicted_totals: np.ndarray) -> float:
    """Log-sd of the shop-wide rate multiplier: RMS of log(actual / predicted) total purchases over windows.

    Taken about 0, not about the windows' mean: the intervals stay centred on the model's mean, so a
    persistent bias is part of the spread they must cover. 0 when no window has purchases on both sides.
    """
    actual = np.asarray(actual_totals, dtype=float)
    predicted = np.asarray(predicted_totals, dtype=float)
    usable = (actual > 0) & (predicted > 0)
    if not usable.any():
        return 0.0
    return float(np.sqrt(np.mean(np.log(actual[usable] / predicted[usable]) ** 2)))


def pit_metric_name(quantity: str, level: float) -> str:
    """The MLflow metric of a distribution's randomized PIT coverage, e.g. `interval_pit_coverage_purchases_90`."""
    return f"interval_pit_coverage_{quantity}_{round(level * 100)}"


def purchase_distribution(
    expected_purchases: np.ndarray, p_alive: np.ndarray, frequency: np.ndarray, r: float, rate_sd: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The alive count's negative binomial (shape n, success probability q) and P(alive), as arrays.

    With `rate_sd` > 0 the rate carries a common lognormal multiplier (mean 1, that log-sd); the shape
    is that of the Gamma matching the product's mean and variance (see the module docstring).
    """
    p_alive = np.clip(np.asarray(p_alive, dtype=float), 1e-12, 1.0)
    alive_mean = np.maximum(np.asarray(expected_purchases, dtype=float) / p_alive, 0.0)
    shape = r + np.maximum(np.asarray(frequency, dtype=float), 0.0)
    if rate_sd > 0:
        shock_variance = float(np.expm1(rate_sd**2))
        shape = 1.0 / (1.0 / shape + shock_variance * (1.0 + 1.0 / shape))
    success = shape / (shape + alive_mean)
    return shape, success, p_alive


def purchase_quantiles(
    expected_purchases: np.ndarray,
    p_alive: np.ndarray,
    frequency: np.ndarray,
    r: float,
    u: float,
    rate_sd: float = 0.0,
) -> np.ndarray:
    """The u-quantile of each customer's purchase count over the horizon of `expected_purchases`.

    The count's CDF is summed term by term (pmf(k+1) = pmf(k) (n+k)/(k+1) (1-q)) over the customers
    whose CDF is still below u: exact, and on 1M customers 0.3 s against 39 s for scipy's
    `nbinom.ppf` (benchmarks/bench_intervals.py, same run, shared machine).
    """
    shape, success, alive = purchase_distribution(expected_purchases, p_alive, frequency, r, rate_sd)
    quantile = np.zeros(len(shape))
    pmf = np.exp(shape * np.log(success))
    cdf = (1.0 - alive) + alive * pmf
    active = np.flatnonzero(cdf < u)
    k = 0
    while active.size:
        quantile[active] += 1.0
        pmf_a = pmf[active] * (shape[active] + k) / (k + 1.0) * (1.0 - success[active])
        pmf[active] = pmf_a
        cdf_a = cdf[active] + alive[active] * pmf_a
        cdf[active] = cdf_a
        # a customer's CDF can stall below u in floating point only far in the tail: stop there
        keep = (cdf_a < u) & (pmf_a > 1e-15 * u)
        active = active[keep]
        k += 1
    return quantile


def _spend_moments(
    expected_purchases: np.ndarray,
    p_alive: np.ndarray,
    frequency: np.ndarray,
    order_value: np.ndarray,
    params: Mapping[str, float],
    rate_sd: float = 0.0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(no spend), and the mean and variance of the spend of a customer who buys."""
    shape, success, alive = purchase_distribution(expected_purchases, p_alive, frequency, params["r"], rate_sd)
    alive_mean = shape * (1.0 - success) / success
    alive_second = alive_mean + alive_mean**2 / shape + alive_mean**2
    p_zero = (1.0 - alive) + alive * success**shape
    buys = np.maximum(1.0 - p_zero, 1e-12)
    n1 = alive * alive_mean / buys  # E[N | N > 0]
    n2 = alive * alive_second / buys  # E[N^2 | N > 0]
    mu = np.maximum(np.asarray(order_value, dtype=float), 0.0)
    p, q = float(params["p"]), float(params["q"])
    excess = np.maximum(q + p * np.maximum(np.asarray(frequency, dtype=float), 0.0) - 2.0, _MIN_GG_SHAPE_EXCESS)
    # Given N orders: Var(S | N) = N mu^2 (Q-1) / (p) + N^2 mu^2 / (Q-2), with Q = q + p x.
    mean = n1 * mu
    variance = mu**2 * (n1 * (excess + 1.0) / (p * excess) + n2 / excess) + mu**2 * (n2 - n1**2)
    return p_zero, mean, np.maximum(variance, 1e-12)


def spend_quantiles(
    expected_purchases: np.ndarray,
    p_alive: np.ndarray,
    frequency: np.ndarray,
    order_value: np.ndarray,
    params: Mapping[str, float],
    u: float,
    rate_sd: float = 0.0,
) -> np.ndarray:
    """The u-quantile of each customer's spend over the horizon of `expected_purchases`."""
    return _spend_quantile(_spend_moments(expected_purchases, p_alive, frequency, order_value, params, rate_sd), u)


def _spend_quantile(moments: tuple[np.ndarray, np.ndarray, np.ndarray], u: float) -> np.ndarray:
    """The u-quantile of spend from `_spend_moments` (P(no spend), mean and variance given a purchase)."""
    p_zero, mean, variance = moments
    inner = np.clip((u - p_zero) / np.maximum(1.0 - p_zero, 1e-12), 1e-12, 1.0 - 1e-12)
    shape = np.maximum(mean**2 / variance, 1e-6)
    quantile = _gamma_quantile(inner, shape) * variance / np.maximum(mean, 1e-12)
    quantile = np.where((u <= p_zero) | (mean <= 0.0), 0.0, quantile)
    return np.nan_to_num(quantile, nan=0.0, posinf=0.0)


def _gamma_quantile(u: np.ndarray, shape: np.ndarray) -> np.ndarray:
    """Quantiles of Gamma(shape, 1) by Wilson & Hilferty's cube-root normal approximation (1931).

    Why not scipy's `gamma.ppf`: 9 s per call on 1M customers against 0.1 s, and a batch needs eight
    calls. Its error against `gamma.ppf` is below 1% for shapes above 1; below that the simulation
    test of the spend quantiles (tests/models/test_intervals.py) bounds what it costs in coverage.
    """
    z = special.ndtri(u)
    c = 1.0 / (9.0 * shape)
    return shape * np.maximum(1.0 - c + z * np.sqrt(c), 0.0) ** 3


def _bounds(level: float) -> tuple[float, float]:
    return (1.0 - level) / 2.0, (1.0 + level) / 2.0


def covered(actual: np.ndarray, low: np.ndarray, high: np.ndarray) -> float:
    """Share of customers whose actual value lies in [low, high]."""
    actual = np.asarray(actual, dtype=float)
    return float(np.mean((actual >= low) & (actual <= high))) if len(actual) else float("nan")


def calibrate_levels(
    purchases: np.ndarray,
    spend: np.ndarray,
    expected_purchases: np.ndarray,
    p_alive: np.ndarray,
    frequency: np.ndarray,
    order_value: np.ndarray,
    params: Mapping[str, float],
    rate_multiplier: float = 1.0,
) -> dict[str, float]:
    """Central levels whose intervals cover each nominal level's share of the given (inner holdout) customers.

    Keys are `<quantity>_<percent>` (e.g. `spend_90`); the coverage grows with the level, so each is
    found by bisection within (0.5, 0.999). `rate_multiplier` scales the expected purchases to the
    window's realised shop-wide rate (`window_rate_multiplier`), so the levels fit the customers' spread.
    """
    expected_purchases = np.asarray(expected_purchases, dtype=float) * rate_multiplier
    levels: dict[str, float] = {}
    for quantity in INTERVAL_QUANTITIES:
        actual = purchases if quantity == "purchases" else spend

        def quantile(u: float, quantity: str = quantity) -> np.ndarray:
            if quantity == "purchases":
                return purchase_quantiles(expected_purchases, p_alive, frequency, params["r"], u)
            return spend_quantiles(expected_purchases, p_alive, frequency, order_value, params, u)

        for nominal in INTERVAL_LEVELS:
            lo, hi = _CALIBRATION_RANGE
            for _ in range(_BISECTION_STEPS):
                mid = (lo + hi) / 2.0
                low_u, high_u = _bounds(mid)
                if covered(actual, quantile(low_u), quantile(high_u)) < nominal:
                    lo = mid
                else:
                    hi = mid
            levels[f"{quantity}_{round(nominal * 100)}"] = hi
    return levels


def window_rate_multiplier(purchases: np.ndarray, expected_purchases: np.ndarray) -> float:
    """A window's realised shop-wide rate against the model's: total actual / total expected purchases (1 if none)."""
    expected = float(np.sum(expected_purchases))
    actual = float(np.sum(purchases))
    return actual / expected if expected > 0 and actual > 0 else 1.0


def prediction_intervals(
    outputs: Mapping[str, np.ndarray],
    frequency: np.ndarray,
    params: Mapping[str, float],
    levels: Mapping[str, float] | None = None,
) -> dict[str, np.ndarray]:
    """The interval columns (`core.scores.INTERVAL_SCORE_COLUMNS`) from the scorer's BTYD outputs.

    `outputs` holds `p_alive`, `expected_purchases_churn_horizon`, `expected_purchases_clv_horizon`,
    `expected_order_value` and `clv`; `levels` the calibrated central levels (nominal ones if None) and
    the calendar-time shock's log-sd under `RATE_SD_KEY` (0 if absent; the CLV horizon uses the same).
    """
    levels = dict(levels or {})
    rate_sd = float(levels.get(RATE_SD_KEY, 0.0))
    p_alive = outputs["p_alive"]
    order_value = outputs["expected_order_value"]
    clv = np.asarray(outputs["clv"], dtype=float)
    clv_purchases = outputs["expected_purchases_clv_horizon"]
    expected_clv_spend = np.asarray(clv_purchases, dtype=float) * np.maximum(order_value, 0.0)
    clv_per_spend = np.divide(clv, expected_clv_spend, out=np.zeros_like(clv), where=expected_clv_spend > 0)
    horizon_purchases = outputs["expected_purchases_churn_horizon"]
    spend_moments = _spend_moments(horizon_purchases, p_alive, frequency, order_value, params, rate_sd)
    clv_moments = _spend_moments(clv_purchases, p_alive, frequency, order_value, params, rate_sd)
    columns: dict[str, np.ndarray] = {}
    for nominal in INTERVAL_LEVELS:
        tag = round(nominal * 100)
        for quantity in ("purchases", "spend", "clv"):
            level = levels.get(f"{'purchases' if quantity == 'purchases' else 'spend'}_{tag}", nominal)
            bounds = _bounds(level)
            if quantity == "purchases":
                low, high = (
                    purchase_quantiles(horizon_purchases, p_alive, frequency, params["r"], u, rate_sd) for u in bounds
                )
            elif quantity == "spend":
                low, high = (_spend_quantile(spend_moments, u) for u in bounds)
            else:
                low, high = (clv_per_spend * _spend_quantile(clv_moments, u) for u in bounds)
            low_name, high_name = interval_column_names(quantity, nominal)
            columns[low_name], columns[high_name] = low, high
    return columns


def pit_coverage(
    outputs: Mapping[str, np.ndarray],
    frequency: np.ndarray,
    params: Mapping[str, float],
    purchases: np.ndarray,
    spend: np.ndarray,
    rate_sd: float = 0.0,
) -> dict[str, float]:
    """Randomized PIT coverage of the predictive distributions at the nominal levels (`interval_pit_coverage_*`).

    Why beside the plain coverage: a count's interval holds whole atoms, so when most customers buy
    nothing any interval holding 0 covers them, and no level reaches an exact share (CDNOW's 80%
    intervals cover 92% at the lowest level). The randomized PIT -- uniform on [F(y-1), F(y)] for a
    count y, F(y) for a positive spend -- is uniform when the distribution is right, whatever its
    atoms; each customer counts with the share of that range inside the central [(1-l)/2, (1+l)/2].
    So this reads whether the model's distributions are calibrated, the plain metric whether the
    published (calibrated-level) intervals cover.
    """
    horizon = outputs["expected_purchases_churn_horizon"]
    shape, success, alive = purchase_distribution(horizon, outputs["p_alive"], frequency, params["r"], rate_sd)
    y = np.maximum(np.asarray(purchases, dtype=float), 0.0)
    count_cdf = (1.0 - alive) + alive * special.betainc(shape, y + 1.0, success)
    below = np.where(y > 0, (1.0 - alive) + alive * special.betainc(shape, np.maximum(y, 1.0), success), 0.0)
    p_zero, mean, variance = _spend_moments(horizon, outputs["p_alive"], frequency, outputs["expected_order_value"], params, rate_sd)
    amount = np.maximum(np.asarray(spend, dtype=float), 0.0)
    gamma_shape = np.maximum(mean**2 / variance, 1e-6)
    gamma_cdf = special.gammainc(gamma_shape, amount * mean / variance)
    spend_cdf = np.where(amount > 0, p_zero + (1.0 - p_zero) * gamma_cdf, p_zero)
    spend_below = np.where(amount > 0, spend_cdf, 0.0)
    metrics: dict[str, float] = {}
    for quantity, (low_cdf, high_cdf) in (("purchases", (below, count_cdf)), ("spend", (spend_below, spend_cdf))):
        width = high_cdf - low_cdf
        for level in INTERVAL_LEVELS:
            a, b = _bounds(level)
            overlap = np.clip(np.minimum(high_cdf, b) - np.maximum(low_cdf, a), 0.0, None)
            point = ((high_cdf >= a) & (high_cdf <= b)).astype(float)
            share = np.where(width > 1e-12, overlap / np.maximum(width, 1e-12), point)
            metrics[pit_metric_name(quantity, level)] = float(np.mean(share)) if len(share) else float("nan")
    return metrics


def interval_coverage(
    intervals: Mapping[str, np.ndarray], purchases: np.ndarray, spend: np.ndarray
) -> dict[str, float]:
    """Holdout coverage metrics (`interval_coverage_purchases_90`, ...) of the intervals of `prediction_intervals`."""
    metrics: dict[str, float] = {}
    for quantity, actual in (("purchases", purchases), ("spend", spend)):
        for level in INTERVAL_LEVELS:
            low, high = interval_column_names(quantity, level)
            metrics[coverage_metric_name(quantity, level)] = covered(actual, intervals[low], intervals[high])
    return metrics
