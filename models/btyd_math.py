"""Closed forms of the BTYD models in numpy, finite for every customer.

Why not lifetimes' own methods: they evaluate the Gauss hypergeometric function 2F1 in the form
printed in the papers (Fader, Hardie & Lee 2005, eq. 10), whose value overflows for customers with
many purchases or a long horizon, so `conditional_expected_number_of_purchases_up_to_time` returns
NaN or inf for e.g. 1000 repeat purchases; Pareto/NBD's P(alive) takes the log of a difference that
overflows as well. Here every quantity is

- written in a transformed form whose terms stay bounded (Euler's and Pfaff's transformations), in
  log space where a product of powers could overflow;
- checked against bounds that hold exactly and that we prove below; a value outside them (or one
  whose rounding error is too large, as when `1 - 2F1` cancels) is recomputed with the next form,
  then with a direct series, and as a last resort clipped into the bounds.

Notation: frequency `x`, recency `t_x`, age `T`, all in the same time unit; horizon `t`.

The expected purchases of a BG/NBD (or MBG/NBD) customer alive now, over the next `t`, are
``E[(1 - (1 + p u)^-A) / p]`` with ``u = t / (alpha + T)``, ``A = r + x`` and ``p`` following the
posterior ``Beta(a, b')`` (``b' = b + x`` for BG/NBD, ``b + x + 1`` for MBG/NBD). The integrand
``h(p) = (1 - (1 + p u)^-A) / p`` is positive, decreasing and convex in ``p`` (it is the integral
over ``v`` in ``(0, u)`` of ``A (1 + p v)^-(A + 1)``, convex in ``p``), so
``h(E[p]) <= E[h(p)] <= min(A u, E[1/p])``: Jensen's lower bound and the no-dropout upper bound.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, hyp2f1

_EPS = np.finfo(float).eps
# Accept a closed-form value only if its estimated rounding error is below this relative size.
_REL_ERR = 1e-9
# Slack when comparing with the exact bounds (they can be attained up to rounding).
_BOUND_SLACK = 1e-7
# a - 1 divides 1 - 2F1, which cancels as a -> 1 (2F1's own error is ~1e-14, not one ulp); within
# this distance of 1 the expectation (analytic in a) is interpolated linearly between a = 1 -/+ it,
# an error of order its square.
_NEAR_ONE = 1e-4
# Values per block of the vectorised evaluation.
_BLOCK = 1 << 15


def beta_geo_p_alive(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive) under BG/NBD: 1 for customers with no repeat purchase (Fader, Hardie & Lee 2005)."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    # log of the odds of being dead, computed as a sum of logs so that large x never overflows.
    log_odds = (
        (r + x) * np.log1p((T - t_x) / (alpha + t_x))
        + np.log(a)
        - np.log(b + np.maximum(x, 1.0) - 1.0)
    )
    return np.where(x > 0, expit(-log_odds), 1.0)


def modified_beta_geo_p_alive(
    r: float, alpha: float, a: float, b: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive) under MBG/NBD, where a customer may also drop out right after the first purchase."""
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    log_odds = (r + x) * np.log1p((T - t_x) / (alpha + t_x)) + np.log(a) - np.log(b + x)
    return expit(-log_odds)


def _alive_bounds(
    A: np.ndarray, a: float, c: np.ndarray, u: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Jensen's lower bound and the no-dropout upper bound of the alive customer's expectation."""
    p_mean = a / (c + 1.0)  # mean of Beta(a, b'), since a + b' = c + 1
    low = -np.expm1(-A * np.log1p(p_mean * u)) / p_mean
    high = A * u
    if a > 1.0:
        high = np.minimum(high, c / (a - 1.0))
    return low, high


def _accept(value: np.ndarray, err: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Finite, inside the exact bounds and precise enough."""
    with np.errstate(invalid="ignore"):
        return (
            np.isfinite(value)
            & (value >= low * (1 - _BOUND_SLACK))
            & (value <= high * (1 + _BOUND_SLACK))
            & (err <= _REL_ERR * np.abs(value))
        )


def _euler_closed_form(A, am1, c, u):
    """c/(a-1) [1 - (1-z)^(a-1) 2F1(c-A, a-1; c; z)], z = u/(1+u): scipy's 2F1 with bounded terms."""
    z = u / (1.0 + u)
    F = np.exp(am1 * -np.log1p(u)) * hyp2f1(c - A, am1, c, z)
    scale = c / am1
    return scale * (1.0 - F), 8 * _EPS * np.abs(scale) * (1.0 + np.abs(F))


def _pfaff_closed_form(A, am1, c, u):
    """c/(a-1) [1 - 2F1(A, a-1; c; -u)] (Pfaff's transformation of the same function)."""
    F = hyp2f1(A, am1, c, -u)
    scale = c / am1
    return scale * (1.0 - F), 8 * _EPS * np.abs(scale) * (1.0 + np.abs(F))


def _paper_closed_form(A, am1, c, u):
    """The papers' form, (1-z)^A 2F1(A, b'; c; z), with lifetimes' switch to Euler's form on overflow."""
    z = u / (1.0 + u)
    log1mz = -np.log1p(u)
    bprime = c - am1
    log_h = np.log(hyp2f1(A, bprime, c, z))
    log_h_alt = np.log(hyp2f1(c - A, c - bprime, c, z)) + (c - A - bprime) * log1mz
    log_h = np.where(np.isfinite(log_h), log_h, log_h_alt)
    F = np.exp(log_h + A * log1mz)
    scale = c / am1
    return scale * (1.0 - F), 8 * _EPS * np.abs(scale) * (1.0 + np.abs(F))


def _sum_series(
    first: np.ndarray, ratio, max_terms: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum a series term by term for all rows at once; returns (sum, sum of |terms|, converged)."""
    term = np.array(first, dtype=float)
    total = term.copy()
    total_abs = np.abs(term)
    active = np.ones(term.shape, dtype=bool)
    for k in range(max_terms):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        term[idx] = term[idx] * ratio(k, idx)
        total[idx] += term[idx]
        total_abs[idx] += np.abs(term[idx])
        done = ~np.isfinite(term[idx]) | (np.abs(term[idx]) <= 0.5 * _EPS * np.abs(total[idx]))
        active[idx[done]] = False
    converged = ~active & np.isfinite(total)
    return total, total_abs, converged


def _small_u_series(A, a, c, u, max_terms: int = 500):
    """A u sum_j (A+1)_j (a)_j / ((c+1)_j (j+1)!) (-u)^j: no division by a - 1, exact near a = 1."""

    def ratio(k, idx):
        return (A[idx] + 1 + k) * (a + k) / ((c[idx] + 1 + k) * (k + 2)) * -u[idx]

    total, total_abs, converged = _sum_series(np.ones_like(u), ratio, max_terms)
    value = A * u * total
    err = 8 * _EPS * A * u * total_abs
    return value, np.where(converged & (u < 1.0), err, np.inf)


def _euler_series(A, am1, c, u, max_terms: int = 5_000):
    """The Euler form summed directly; converges quickly when c is large (many repeat purchases)."""
    z = u / (1.0 + u)

    def ratio(k, idx):
        return (c[idx] - A[idx] + k) * (am1 + k) / ((c[idx] + k) * (k + 1)) * z[idx]

    total, total_abs, converged = _sum_series(np.ones_like(u), ratio, max_terms)
    F = np.exp(am1 * -np.log1p(u)) * total
    scale = c / am1
    err = 8 * _EPS * np.abs(scale) * (1.0 + np.exp(am1 * -np.log1p(u)) * total_abs)
    return scale * (1.0 - F), np.where(converged, err, np.inf)


def beta_geo_alive_purchases(A: np.ndarray, a: float, c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Expected purchases over the next t of a BG/NBD or MBG/NBD customer alive now.

    Parameters
    ----------
    A : r + x.
    a : the Beta dropout parameter a.
    c : a + b + x - 1 for BG/NBD, a + b + x for MBG/NBD.
    u : t / (alpha + T), the horizon relative to the posterior rate scale.

    Returns
    -------
    The expectation ``c/(a-1) [1 - 2F1(A, a-1; c; -u)]``, broadcast over the inputs; always finite,
    between Jensen's lower bound and the no-dropout bound ``A u`` (see the module docstring).
    """
    A, c, u = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in (A, c, u)))
    shape = A.shape
    if A.ndim == 0:
        A, c, u = (v.reshape(1) for v in (A, c, u))
    out = np.empty(A.shape)
    # Blocks of about _BLOCK values along the first axis: the dozen temporaries of the closed form
    # stay in cache, and broadcast inputs (one row per customer, one column per horizon) are only
    # expanded a block at a time.
    step = max(1, _BLOCK // max(1, A[:1].size))
    for start in range(0, A.shape[0], step):
        rows = slice(start, start + step)
        block = _alive_block(A[rows].ravel(), a, c[rows].ravel(), u[rows].ravel())
        out[rows] = block.reshape(out[rows].shape)
    return out.reshape(shape)


def _alive_block(A: np.ndarray, a: float, c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """beta_geo_alive_purchases on flat arrays: 0 at u = 0, interpolated next to a = 1."""
    out = np.zeros(A.shape)
    todo = np.flatnonzero(u > 0)
    if todo.size == 0:
        return out
    A, c, u = A[todo], c[todo], u[todo]
    if abs(a - 1.0) < _NEAR_ONE:
        below, above = 1.0 - _NEAR_ONE, 1.0 + _NEAR_ONE
        weight = (a - below) / (above - below)
        # c = a + b + x - 1 (+1) moves with a.
        out[todo] = (1 - weight) * _alive_purchases(
            A, below, c + below - a, u
        ) + weight * _alive_purchases(A, above, c + above - a, u)
    else:
        out[todo] = _alive_purchases(A, a, c, u)
    return out


def _alive_purchases(A: np.ndarray, a: float, c: np.ndarray, u: np.ndarray) -> np.ndarray:
    """beta_geo_alive_purchases for u > 0 and a away from 1."""
    am1 = a - 1.0
    low, high = _alive_bounds(A, a, c, u)
    with np.errstate(all="ignore"):
        value, err = _euler_closed_form(A, am1, c, u)
        in_bounds = _accept(value, np.zeros_like(value), low, high)
        ok = in_bounds & (err <= _REL_ERR * np.abs(value))
        best = np.where(in_bounds, value, np.nan)
        # Imprecise (1 - 2F1 cancels) or invalid rows over a short horizon: the series in -u, which
        # has no cancellation and converges geometrically for u < 1/2.
        _try(
            value,
            ok,
            best,
            low,
            high,
            ~ok & (u < 0.5),
            lambda i: _small_u_series(A[i], a, c[i], u[i]),
        )
        # Rows where scipy's 2F1 overflowed or left the bounds (rare): other forms, then the series.
        others = (
            lambda i: _pfaff_closed_form(A[i], am1, c[i], u[i]),
            lambda i: _paper_closed_form(A[i], am1, c[i], u[i]),
            lambda i: _euler_series(A[i], am1, c[i], u[i]),
        )
        for candidate in others:
            _try(value, ok, best, low, high, ~ok & ~np.isfinite(best), candidate)
        # Last resort for a value no form could give precisely: the best one inside the bounds,
        # or Jensen's lower bound when every form overflowed.
        value = np.where(ok, value, np.where(np.isfinite(best), best, low))
        return np.clip(value, low, high)


def _try(value, ok, best, low, high, rows: np.ndarray, candidate) -> None:
    """Evaluate `candidate` on `rows`; keep its values that pass `_accept`, remember in-bound ones."""
    idx = np.flatnonzero(rows)
    if idx.size == 0:
        return
    v, e = candidate(idx)
    good = _accept(v, e, low[idx], high[idx])
    value[idx[good]] = v[good]
    ok[idx[good]] = True
    usable = _accept(v, np.zeros_like(v), low[idx], high[idx]) & ~np.isfinite(best[idx])
    best[idx[usable]] = v[usable]


def _log_hyp2f1_pareto(a1: np.ndarray, b1: np.ndarray, z: np.ndarray) -> np.ndarray:
    """log 2F1(a1, b1; a1+1; z) via Euler: (1-z)^(1-b1) 2F1(1, a1+1-b1; a1+1; z), finite for z < 1."""
    log_f = (1.0 - b1) * np.log1p(-z) + np.log(hyp2f1(1.0, a1 + 1.0 - b1, a1 + 1.0, z))
    bad = ~np.isfinite(log_f)
    if bad.any():
        # 2F1(1, beta; gamma; z) = sum_k (beta)_k / (gamma)_k z^k, every term positive.
        beta_, gamma_, z_ = (a1 + 1.0 - b1)[bad], (a1 + 1.0)[bad], z[bad]

        def ratio(k, idx):
            return (beta_[idx] + k) / (gamma_[idx] + k) * z_[idx]

        total, _, _ = _sum_series(np.ones_like(z_), ratio, 100_000)
        log_f[bad] = (1.0 - b1[bad]) * np.log1p(-z_) + np.log(total)
    return log_f


def pareto_p_alive(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, t_x: np.ndarray, T: np.ndarray
) -> np.ndarray:
    """P(alive) under Pareto/NBD (Hardie's note 009, eqs. 18-20), in log space.

    ``odds(dead) = s/(r+s+x) (alpha+T)^(r+x) (beta+T)^s A0`` where A0 is the difference of two
    2F1 terms; each term is taken in log space (their powers overflow for large x) and the
    difference as ``L1 + log(1 - exp(L2 - L1))``. When ``t_x == T`` A0 is 0 and P(alive) is 1.
    """
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    a1 = r + s + x
    if alpha >= beta:
        m, b1, d = alpha, s + 1.0 + 0.0 * x, alpha - beta
    else:
        m, b1, d = beta, r + x, beta - alpha
    with np.errstate(all="ignore"):
        # log of each term of A0, with the prefactor (alpha+T)^(r+x) (beta+T)^s folded in.
        prefactor = (r + x) * np.log(alpha + T) + s * np.log(beta + T)
        l_recency = _log_hyp2f1_pareto(a1, b1, d / (m + t_x)) - a1 * np.log(m + t_x) + prefactor
        l_age = _log_hyp2f1_pareto(a1, b1, d / (m + T)) - a1 * np.log(m + T) + prefactor
        diff = l_age - l_recency
        log_a0 = np.where(diff < 0, l_recency + np.log(-np.expm1(np.minimum(diff, 0.0))), -np.inf)
        log_odds = np.log(s) - np.log(a1) + log_a0
        p_alive = expit(-log_odds)
    # A 2F1 that is still not finite leaves no information on dropout: report alive.
    return np.where(np.isfinite(p_alive), p_alive, 1.0)


def pareto_alive_purchases(
    r: float, alpha: float, s: float, beta: float, x: np.ndarray, T: np.ndarray, t: np.ndarray
) -> np.ndarray:
    """Expected purchases over the next t of a Pareto/NBD customer alive now (Hardie's eq. 41 / P(alive)).

    ``(r+x)/(alpha+T) (beta+T) [1 - ((beta+T)/(beta+T+t))^(s-1)] / (s-1)``, written with expm1 and
    log1p so that it stays exact as s -> 1 (limit ``(beta+T) log(1 + t/(beta+T))``).
    """
    x, T, t = (np.asarray(v, dtype=float) for v in np.broadcast_arrays(x, T, t))
    y = np.log1p(t / (beta + T))
    k = s - 1.0
    if abs(k) < 1e-12:
        span = y
    else:
        span = -np.expm1(-k * y) / k
    return np.maximum((r + x) / (alpha + T) * (beta + T) * span, 0.0)


def gamma_gamma_order_value(
    p: float, q: float, v: float, x: np.ndarray, m: np.ndarray
) -> np.ndarray:
    """Expected spend per order (Fader, Hardie & Lee 2005b, eq. 5; Hardie's note 025).

    A weighted average of the population mean ``v p / (q - 1)`` and the customer's own mean spend,
    weighted by ``p x / (p x + q - 1)``. Needs ``q > 1``; negative or missing own means count as 0.
    """
    x = np.asarray(x, dtype=float)
    m = np.nan_to_num(np.maximum(np.asarray(m, dtype=float), 0.0), nan=0.0)
    weight = p * x / (p * x + q - 1.0)
    population_mean = v * p / (q - 1.0)
    return (1.0 - weight) * population_mean + weight * m
