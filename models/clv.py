"""Customer lifetime value: a BTYD purchase model times Gamma-Gamma spend per order.

The purchase models are fitted with lifetimes (BG/NBD, MBG/NBD, Pareto/NBD) and the spend model with
its GammaGammaFitter; predictions use our own vectorised closed forms (`models.btyd_math`), which
stay finite for every customer and price a whole CLV horizon in one pass over months.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from sklearn.base import BaseEstimator

from core import defaults
from core.errors import ModelError, NotFittedError
from core.units import DAYS_PER_MONTH
from features.rfm import RFM_COLUMNS
from models.btyd_math import (
    beta_geo_alive_purchases,
    beta_geo_p_alive,
    gamma_gamma_order_value,
    modified_beta_geo_p_alive,
    pareto_alive_purchases,
    pareto_p_alive,
)

logger = logging.getLogger(__name__)

MENU = ("bgnbd", "mbgnbd", "pareto")
"""Purchase models in fallback order."""
PENALIZER_LADDER = (0.001, 0.01, 0.1)
"""Penalizers tried, in turn, after the configured one fails."""
PARAM_RANGE = (1e-8, 1e8)
"""An estimate outside this range means the optimiser ran off to the boundary of the parameter space
(the likelihood has no interior maximum, e.g. a -> 0 and b -> inf on a ridge); predictions from such
a fit are rounding noise, so it counts as a failed fit."""
MIN_Q = 1.0 + 1e-6
"""Gamma-Gamma's population mean spend v p / (q - 1) is infinite (negative) for q <= 1."""
PREDICTION_COLUMNS = ("p_alive", "expected_purchases", "expected_order_value", "clv")
PURCHASE_COUNT_COLUMNS = ("frequency", "recency", "T", "customers")
"""The purchase models' sufficient data: each distinct (frequency, recency, T) row and its customers."""
_FORMAT = "patron.CLVModel/1"
_LEARNED = (
    "params_",
    "model_",
    "fallbacks_",
    "freq_monetary_corr_",
    "purchase_penalizer_",
    "spend_penalizer_",
    "n_customers_",
    "n_purchase_rows_",
)
_PURCHASE_PARAMS = {
    "bgnbd": ("r", "alpha", "a", "b"),
    "mbgnbd": ("r", "alpha", "a", "b"),
    "pareto": ("r", "alpha", "s", "beta"),
}


class _FitFailure(Exception):
    """One fit attempt failed; the message says why."""


class _Degenerate(_FitFailure):
    """Finite estimates at the boundary of the parameter space; kept as a last resort."""

    def __init__(self, message: str, params: dict[str, float]) -> None:
        super().__init__(message)
        self.params = params


class CLVModel(BaseEstimator):
    """BG/NBD (or MBG/NBD, Pareto/NBD) purchases times Gamma-Gamma spend: CLV per customer.

    Assumptions (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"; Batislam et al.
    2007 for MBG/NBD; Schmittlein, Morrison & Colombo 1987 for Pareto/NBD): while alive, a customer
    buys as a Poisson process whose rate varies across customers as a Gamma(r, alpha); the customer
    drops out after a purchase with a probability distributed Beta(a, b) across customers (MBG/NBD:
    also right after the first purchase; Pareto/NBD: at an exponential time, rate ~ Gamma(s, beta)).
    Spend per order is Gamma-Gamma (Fader, Hardie & Lee 2005b, p, q, v), independent of the purchase
    process; `freq_monetary_corr_` reports how far the data are from that independence.

    A scikit-learn estimator: `get_params`, `set_params`, `clone` and repr come from `BaseEstimator`.

    Parameters
    ----------
    model : "auto" | "bgnbd" | "mbgnbd" | "pareto"
        Purchase model tried first; "auto" is "bgnbd". On failure the others follow in `MENU` order.
    penalizer_coef : float
        lifetimes' L2 penalizer of the first attempt; larger ones from `PENALIZER_LADDER` follow.
    time_unit_days : int
        Length in days of the unit of `recency` and `T` (1 or 7).
    clv_horizon_days : int
        Horizon of the CLV, split into whole months of equal length (360 days = 12 months of 30).
    monthly_discount_rate : float
        Each month's cash flow is discounted by ``(1 + rate) ** month``, as lifetimes does.
    margin_rate : float
        Margin share of spend when the features have no `margin_rate` column (or it is missing).

    Attributes
    ----------
    params_ : dict[str, float]
        r, alpha, a, b, p, q, v (a and b are NaN for Pareto/NBD, which adds s and beta).
    model_ : str
        The purchase model actually fitted.
    fallbacks_ : list[str]
        Every retry or fallback, and why.
    freq_monetary_corr_ : float
        Pearson correlation of frequency and monetary_value among repeat customers (NaN if undefined).
    purchase_penalizer_, spend_penalizer_ : float
        Penalizers of the fits kept.
    n_customers_ : int
        Customers in the purchase model's fit (those of `purchase_counts` when given).
    n_purchase_rows_ : int
        Distinct (frequency, recency, T) rows the purchase model was fitted on.
    """

    def __init__(
        self,
        model: str = defaults.BTYD_MODEL,
        penalizer_coef: float = defaults.PENALIZER_COEF,
        time_unit_days: int = defaults.TIME_UNIT_DAYS,
        clv_horizon_days: int = defaults.CLV_HORIZON_DAYS,
        monthly_discount_rate: float = defaults.MONTHLY_DISCOUNT_RATE,
        margin_rate: float = defaults.MARGIN_RATE,
    ) -> None:
        self.model = model
        self.penalizer_coef = penalizer_coef
        self.time_unit_days = time_unit_days
        self.clv_horizon_days = clv_horizon_days
        self.monthly_discount_rate = monthly_discount_rate
        self.margin_rate = margin_rate

    # --- fitting ------------------------------------------------------------------------------

    def fit(self, features: pd.DataFrame, purchase_counts: pd.DataFrame | None = None) -> CLVModel:
        """Fit the purchase and spend models on one row per customer (RFM in time units).

        `purchase_counts` (columns `PURCHASE_COUNT_COLUMNS`, e.g. every customer of a source too large
        for one machine, aggregated by Spark) replaces `features` for the purchase model: its
        likelihood is a sum over customers of a function of (frequency, recency, T) only, so the
        distinct rows with their customer counts are all it needs, and the fit equals the one on the
        customers themselves. Gamma-Gamma is fitted on `features` either way.
        """
        self._check_hyperparameters()
        for name in _LEARNED:  # a failed refit must not leave the previous fit in place
            self.__dict__.pop(name, None)
        x, t_x, T, m = _rfm_arrays(features)
        if len(x) == 0:
            raise ModelError("CLVModel.fit got no customers: the features frame is empty")
        rows = _unique_rows(x, t_x, T) if purchase_counts is None else _count_rows(purchase_counts)
        (_, _, uT), weights = rows
        if len(weights) == 0:
            raise ModelError("CLVModel.fit got no purchase counts: the purchase_counts frame is empty")
        if uT.max() <= 0:
            raise ModelError(
                "CLVModel.fit needs at least one customer with T > 0 (all first purchases are on the as-of date)"
            )
        self.fallbacks_: list[str] = []
        self.model_, self.purchase_penalizer_, purchase = self._fit_purchases(*rows)
        self.spend_penalizer_, spend = self._fit_spend(x, m)
        params = {"r": math.nan, "alpha": math.nan, "a": math.nan, "b": math.nan}
        params.update(purchase)
        params.update(spend)
        self.params_ = params
        self.freq_monetary_corr_ = _repeat_correlation(x, m)
        self.n_customers_ = int(weights.sum())
        self.n_purchase_rows_ = len(weights)
        logger.info(
            "CLV model %s fitted on %d customers (%d distinct purchase rows): %s; corr(frequency, monetary_value) = "
            "%.3f among repeat customers",
            self.model_,
            self.n_customers_,
            self.n_purchase_rows_,
            _fmt_params(self.params_),
            self.freq_monetary_corr_,
        )
        return self

    def _check_hyperparameters(self) -> None:
        if self.model not in ("auto", *MENU):
            raise ModelError(
                f"unknown CLV model {self.model!r}: use one of auto, {', '.join(MENU)}"
            )
        if not (self.penalizer_coef >= 0):
            raise ModelError(f"penalizer_coef must be >= 0, got {self.penalizer_coef}")
        if self.time_unit_days <= 0 or self.clv_horizon_days <= 0:
            raise ModelError("time_unit_days and clv_horizon_days must be positive")
        if not (self.monthly_discount_rate > -1):
            raise ModelError(
                f"monthly_discount_rate must be > -1, got {self.monthly_discount_rate}"
            )

    def _penalizers(self) -> list[float]:
        return [float(self.penalizer_coef)] + [
            p for p in PENALIZER_LADDER if p > self.penalizer_coef
        ]

    def _record(self, message: str) -> None:
        self.fallbacks_.append(message)
        logger.warning("CLV fit: %s", message)

    def _fit_purchases(
        self, unique: tuple[np.ndarray, ...], weights: np.ndarray
    ) -> tuple[str, float, dict[str, float]]:
        """Try each purchase model of the menu at each penalizer until one gives a usable fit."""
        first = "bgnbd" if self.model == "auto" else self.model
        order = [first] + [name for name in MENU if name != first]
        ux, ut_x, uT = unique
        n_customers = int(weights.sum())
        failures: list[str] = []
        boundary: tuple[str, float, dict[str, float]] | None = None
        for position, name in enumerate(order):
            for penalizer in self._penalizers():
                try:
                    params = _fit_purchase_model(name, penalizer, ux, ut_x, uT, weights, n_customers)
                except _FitFailure as exc:
                    failures.append(f"{name} (penalizer {penalizer:g}): {exc}")
                    self._record(failures[-1])
                    if isinstance(exc, _Degenerate) and boundary is None:
                        boundary = (name, penalizer, exc.params)
                    continue
                if failures:
                    self._record(f"using {name} with penalizer {penalizer:g}")
                return name, penalizer, params
            if position + 1 < len(order):
                self._record(
                    f"{name} failed at every penalizer; falling back to {order[position + 1]}"
                )
        if boundary is not None:
            # Every model puts its maximum at the boundary: the data show no dropout the models can
            # estimate. The first such fit is the no-dropout limit of that model; its predictions
            # stay finite and inside the exact bounds of models.btyd_math, so training goes on.
            name, penalizer, params = boundary
            self._record(
                f"every fit was degenerate; keeping {name} with penalizer {penalizer:g} ({_fmt_params(params)}), "
                "the no-dropout limit: treat its P(alive) with caution"
            )
            return name, penalizer, params
        raise ModelError(
            "no purchase model could be fitted; tried "
            + "; ".join(failures)
            + ". Check frequency/recency/T (in time units) or set a larger penalizer_coef."
        )

    def _fit_spend(self, x: np.ndarray, m: np.ndarray) -> tuple[float, dict[str, float]]:
        """Gamma-Gamma with q > 1 on repeat customers with positive spend, with a penalizer ladder."""
        repeat = (x > 0) & np.isfinite(m) & (m > 0)
        if repeat.sum() < 3:
            raise ModelError(
                f"Gamma-Gamma needs repeat customers with monetary_value > 0; found {int(repeat.sum())} "
                "(at least 3 needed): use a longer history"
            )
        (ux, um), weights = _unique_rows(x[repeat], m[repeat])
        failures: list[str] = []
        boundary: tuple[float, dict[str, float]] | None = None
        for penalizer in self._penalizers():
            try:
                params = _fit_gamma_gamma(penalizer, ux, um, weights)
            except _FitFailure as exc:
                failures.append(f"gamma-gamma (penalizer {penalizer:g}): {exc}")
                self._record(failures[-1])
                if isinstance(exc, _Degenerate) and boundary is None:
                    boundary = (penalizer, exc.params)
                continue
            if failures:
                self._record(f"using gamma-gamma with penalizer {penalizer:g}")
            return penalizer, params
        if boundary is not None:
            penalizer, params = boundary
            self._record(
                f"every Gamma-Gamma fit was degenerate; keeping penalizer {penalizer:g} ({_fmt_params(params)})"
            )
            return penalizer, params
        raise ModelError(
            "the Gamma-Gamma spend model could not be fitted; tried "
            + "; ".join(failures)
            + ". Check monetary_value (mean spend per repeat order, > 0) or set a larger penalizer_coef."
        )

    # --- predicting ---------------------------------------------------------------------------

    def predict(self, features: pd.DataFrame, horizon_days: int) -> pd.DataFrame:
        """P(alive), expected purchases over `horizon_days`, expected order value and CLV per customer.

        `clv` is the margin on the expected spend over `clv_horizon_days`, month by month, each month
        discounted by ``(1 + monthly_discount_rate) ** month``; the margin is `features["margin_rate"]`
        per row when present (missing values: `margin_rate`).
        """
        out = self.predict_horizons(features, (horizon_days,))
        return out.rename(columns={f"expected_purchases_{horizon_days}d": "expected_purchases"})

    def predict_horizons(self, features: pd.DataFrame, horizons_days: Sequence[int]) -> pd.DataFrame:
        """`predict` for several horizons in one pass: `expected_purchases_<h>d` per horizon h."""
        self._check_fitted()
        x, t_x, T, m = _rfm_arrays(features)
        margin = features["margin_rate"] if "margin_rate" in features.columns else None
        margin_values = None if margin is None else pd.to_numeric(margin, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
        out = self.predict_horizon_arrays(x, t_x, T, m, horizons_days, margin_values)
        return pd.DataFrame(out, index=features.index)

    def predict_horizon_arrays(
        self,
        x: np.ndarray,
        t_x: np.ndarray,
        T: np.ndarray,
        m: np.ndarray,
        horizons_days: Sequence[int],
        margin_rate: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        """`predict_horizons` on the RFM columns as float arrays (frequency, recency, T, monetary_value)
        and the per-row margin share (NaN or None: `margin_rate`), in its column order.

        The scorer reads every feature in one float block: this form spares a single API request
        building a frame only to read it back (4 of the ~100 ms a profiled one-customer pass took).
        """
        self._check_fitted()
        horizons = list(dict.fromkeys(horizons_days))
        if not horizons or not all(h >= 0 for h in horizons):
            raise ModelError(f"horizons must be >= 0 days, got {list(horizons_days)}")
        p = self.params_
        n_months = max(1, round(self.clv_horizon_days / DAYS_PER_MONTH))
        month = self.clv_horizon_days / n_months / self.time_unit_days
        times = np.concatenate(
            [np.asarray(horizons, dtype=float) / self.time_unit_days, month * np.arange(1, n_months + 1)]
        )
        discount = (1.0 + self.monthly_discount_rate) ** -np.arange(1, n_months + 1)

        with np.errstate(all="ignore"):
            p_alive = self._p_alive(x, t_x, T)
            # The expectations of an alive customer depend on (x, T) only: evaluate them once per
            # distinct pair (real RFM in days has few), for the horizons and every month end at once.
            (ux, uT), codes = _unique_codes(x, T)
            alive = self._alive_purchases(ux[:, None], uT[:, None], times[None, :])
            # Row-wise sum, not a matrix product: BLAS blocking would make a row's rounding depend on
            # how many rows share the call, and the API must equal the batch job bit for bit.
            monthly = alive[:, len(horizons) :]
            discounted_alive = (np.diff(monthly, axis=1, prepend=0.0) * discount).sum(axis=1)
            order_value = gamma_gamma_order_value(p["p"], p["q"], p["v"], x, m)
            margin = _margin(margin_rate, self.margin_rate, len(x))
            expected = {
                f"expected_purchases_{h}d": np.maximum(p_alive * alive[codes, k], 0.0) for k, h in enumerate(horizons)
            }
            clv = margin * order_value * p_alive * discounted_alive[codes]
        out = {"p_alive": np.clip(p_alive, 0.0, 1.0), **expected, "expected_order_value": order_value, "clv": clv}
        bad = ~np.logical_and.reduce([np.isfinite(values) for values in out.values()])
        if bad.any():  # pragma: no cover - the closed forms are bounded; this guards the contract
            raise ModelError(
                f"CLV predictions are not finite for {int(bad.sum())} customers, e.g. rows {np.flatnonzero(bad)[:3].tolist()}"
            )
        return out

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        p = self.params_
        if self.model_ == "bgnbd":
            return beta_geo_p_alive(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)
        if self.model_ == "mbgnbd":
            return modified_beta_geo_p_alive(p["r"], p["alpha"], p["a"], p["b"], x, t_x, T)
        return pareto_p_alive(p["r"], p["alpha"], p["s"], p["beta"], x, t_x, T)

    def _alive_purchases(self, x: np.ndarray, T: np.ndarray, t: np.ndarray) -> np.ndarray:
        p = self.params_
        if self.model_ == "pareto":
            return pareto_alive_purchases(p["r"], p["alpha"], p["s"], p["beta"], x, T, t)
        shift = -1.0 if self.model_ == "bgnbd" else 0.0
        A = p["r"] + x
        c = p["a"] + p["b"] + x + shift
        return beta_geo_alive_purchases(A, p["a"], c, t / (p["alpha"] + T))

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                "this CLVModel is not fitted yet: call fit(features) or CLVModel.from_dict(...) first"
            )

    def __sklearn_is_fitted__(self) -> bool:
        """True once `fit` or `from_dict` has set the learned attributes."""
        return hasattr(self, "params_")

    # --- serialisation ------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (hyperparameters and a handful of fitted numbers); NaN becomes None."""
        self._check_fitted()
        return {
            "format": _FORMAT,
            "hyperparameters": {key: _json_scalar(value) for key, value in self.get_params(deep=False).items()},
            "model_": self.model_,
            "params_": {key: _json_float(value) for key, value in self.params_.items()},
            "fallbacks_": list(self.fallbacks_),
            "freq_monetary_corr_": _json_float(self.freq_monetary_corr_),
            "purchase_penalizer_": self.purchase_penalizer_,
            "spend_penalizer_": self.spend_penalizer_,
            "n_customers_": self.n_customers_,
            "n_purchase_rows_": self.n_purchase_rows_,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CLVModel:
        """Rebuild a fitted model from `to_dict` output."""
        if d.get("format") != _FORMAT:
            raise ModelError(
                f"not a CLVModel description (format {d.get('format')!r}, expected {_FORMAT!r})"
            )
        model = cls(**d["hyperparameters"])
        if d["model_"] not in MENU:
            raise ModelError(f"unknown purchase model {d['model_']!r} in the CLVModel description")
        needed = set(_PURCHASE_PARAMS[d["model_"]]) | {"p", "q", "v"}
        missing = needed - {key for key, value in d["params_"].items() if value is not None}
        if missing:
            raise ModelError(f"the CLVModel description lacks parameters {sorted(missing)}")
        model.model_ = d["model_"]
        model.params_ = {
            key: math.nan if value is None else float(value) for key, value in d["params_"].items()
        }
        model.fallbacks_ = list(d.get("fallbacks_", []))
        corr = d.get("freq_monetary_corr_")
        model.freq_monetary_corr_ = math.nan if corr is None else float(corr)
        model.purchase_penalizer_ = float(d.get("purchase_penalizer_", model.penalizer_coef))
        model.spend_penalizer_ = float(d.get("spend_penalizer_", model.penalizer_coef))
        model.n_customers_ = int(d.get("n_customers_", 0))
        model.n_purchase_rows_ = int(d.get("n_purchase_rows_", 0))
        return model


# --- helpers ------------------------------------------------------------------------------------


def _rfm_arrays(features: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Check the RFM columns and return them as float arrays (x, t_x, T, m)."""
    if not isinstance(features, pd.DataFrame):
        raise ModelError(
            f"CLVModel expects a pandas DataFrame of features, got {type(features).__name__}"
        )
    missing = [col for col in RFM_COLUMNS if col not in features.columns]
    if missing:
        raise ModelError(
            f"features lack the RFM columns {missing} (expected {list(RFM_COLUMNS)}, as from build_features)"
        )
    arrays = []
    for col in RFM_COLUMNS:
        try:
            arrays.append(features[col].to_numpy(dtype=float, na_value=np.nan))
        except (TypeError, ValueError) as exc:
            raise ModelError(f"features column {col!r} is not numeric: {exc}") from None
    x, t_x, T, m = arrays
    for name, values in (("frequency", x), ("recency", t_x), ("T", T)):
        if not np.isfinite(values).all():
            raise ModelError(
                f"features column {name!r} has {int((~np.isfinite(values)).sum())} missing or infinite values"
            )
    if np.isinf(m).any():
        raise ModelError("features column 'monetary_value' has infinite values")
    _check_purchase_columns(x, t_x, T)
    return x, np.minimum(t_x, T), T, m


def _check_purchase_columns(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> None:
    """Raise a ModelError unless frequency, recency and T follow lifetimes' definitions."""
    problems = []
    if (x < 0).any() or (x != np.round(x)).any():
        problems.append("frequency must be a whole number >= 0 (repeat purchase periods)")
    if (T < 0).any():
        problems.append("T must be >= 0")
    if (t_x < 0).any():
        problems.append("recency must be >= 0")
    if (t_x > T * (1 + 1e-9) + 1e-9).any():
        problems.append(f"recency must not exceed T ({int((t_x > T).sum())} rows do)")
    if ((x == 0) & (t_x != 0)).any():
        problems.append("recency must be 0 when frequency is 0 (lifetimes' definition)")
    if problems:
        raise ModelError("invalid RFM features: " + "; ".join(problems))


def purchase_counts(features: pd.DataFrame) -> pd.DataFrame:
    """The distinct (frequency, recency, T) rows of `features` and their customers (`PURCHASE_COUNT_COLUMNS`), sorted."""
    x, t_x, T, _ = _rfm_arrays(features)
    (ux, ut_x, uT), weights = _unique_rows(x, t_x, T)
    return pd.DataFrame(dict(zip(PURCHASE_COUNT_COLUMNS, (ux, ut_x, uT, weights.astype(np.int64)), strict=True)))


def _count_rows(counts: pd.DataFrame) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """`purchase_counts` checked like features and in `_unique_rows`' form (sorted, one entry per distinct row)."""
    if not isinstance(counts, pd.DataFrame) or any(c not in counts.columns for c in PURCHASE_COUNT_COLUMNS):
        raise ModelError(f"purchase_counts must be a DataFrame with the columns {list(PURCHASE_COUNT_COLUMNS)}")
    x, t_x, T, weights = (counts[c].to_numpy(dtype=float, na_value=np.nan) for c in PURCHASE_COUNT_COLUMNS)
    if not np.isfinite(np.concatenate([x, t_x, T, weights])).all():
        raise ModelError("purchase_counts has missing or infinite values")
    if (weights < 1).any() or (weights != np.round(weights)).any():
        raise ModelError("purchase_counts' customers must be whole numbers >= 1")
    _check_purchase_columns(x, t_x, T)
    frame = pd.DataFrame({"0": x, "1": np.minimum(t_x, T), "2": T, "w": weights})
    summed = frame.groupby(["0", "1", "2"], sort=True)["w"].sum()
    uniques = tuple(summed.index.get_level_values(i).to_numpy(dtype=float) for i in range(3))
    return uniques, summed.to_numpy(dtype=float)


def _unique_rows(*columns: np.ndarray) -> tuple[tuple[np.ndarray, ...], np.ndarray]:
    """Distinct rows of the columns and how many customers share each (lifetimes' `weights`)."""
    frame = pd.DataFrame({str(i): col for i, col in enumerate(columns)})
    counts = frame.groupby(list(frame.columns), sort=True).size()
    uniques = tuple(
        counts.index.get_level_values(i).to_numpy(dtype=float) for i in range(len(columns))
    )
    return uniques, counts.to_numpy(dtype=float)


def _unique_codes(x: np.ndarray, T: np.ndarray) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """Distinct (x, T) pairs and each row's position among them."""
    codes, uniques = pd.factorize(x + 1j * T)
    uniques = np.asarray(uniques)
    return (uniques.real.copy(), uniques.imag.copy()), codes


@contextlib.contextmanager
def _quiet() -> Iterator[io.StringIO]:
    """Silence lifetimes: it prints the optimizer's report before raising, and autograd warns."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer), warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield buffer


def _attempt(fit: Callable[[], Any]) -> tuple[Any, str]:
    """Run one lifetimes fit; any exception becomes a _FitFailure with the optimizer's message."""
    with _quiet() as buffer:
        try:
            return fit(), buffer.getvalue()
        except Exception as exc:  # lifetimes raises ConvergenceError, LinAlgError, ValueError, ...
            report = re.search(r"message:\s*(.+)", buffer.getvalue())
            detail = (
                report.group(1).strip()
                if report
                else str(exc).strip().splitlines()[0]
                if str(exc).strip()
                else ""
            )
            raise _FitFailure(
                f"{type(exc).__name__}" + (f" ({detail})" if detail else "")
            ) from None


def _check_estimates(params: dict[str, float]) -> dict[str, float]:
    """Reject non-finite estimates and ones that ran off to the boundary (see PARAM_RANGE)."""
    low, high = PARAM_RANGE
    for key, value in params.items():
        if not np.isfinite(value):
            raise _FitFailure(f"estimate {key}={value} is not finite")
        if not low <= value <= high:
            raise _Degenerate(
                f"degenerate estimate {key}={value:.3g} (outside [{low:g}, {high:g}]: the likelihood has no "
                f"interior maximum), estimates {_fmt_params(params)}",
                params,
            )
    return params


def _fit_purchase_model(
    name: str,
    penalizer: float,
    x: np.ndarray,
    t_x: np.ndarray,
    T: np.ndarray,
    weights: np.ndarray,
    n_customers: int,
) -> dict[str, float]:
    """Fit one purchase model on distinct (x, t_x, T) rows with weights; the estimates as floats."""
    if name == "pareto":
        # lifetimes' Pareto/NBD objective is a weighted sum divided by the *mean* weight, i.e. the
        # per-customer sum scaled by n_unique / n. Scaling the penalizer and the function tolerance
        # by the same factor makes Nelder-Mead take exactly the steps of the per-customer fit; a
        # fixed start keeps it deterministic (lifetimes otherwise draws one at random).
        scale = len(x) / n_customers
        fitter = ParetoNBDFitter(penalizer_coef=penalizer * scale)
        tol = 1e-4

        def fit() -> Any:
            return fitter.fit(
                x,
                t_x,
                T,
                weights=weights,
                initial_params=np.ones(4),
                tol=tol,
                xatol=tol,
                fatol=tol * scale,
            )
    else:
        cls = BetaGeoFitter if name == "bgnbd" else ModifiedBetaGeoFitter
        fitter = cls(penalizer_coef=penalizer)

        def fit() -> Any:
            return fitter.fit(x, t_x, T, weights=weights)

    fitted, _ = _attempt(fit)
    params = {key: float(fitted.params_[key]) for key in _PURCHASE_PARAMS[name]}
    if not np.isfinite(getattr(fitted, "_negative_log_likelihood_", np.nan)):
        raise _FitFailure(
            f"the log-likelihood at the estimates {_fmt_params(params)} is not finite"
        )
    return _check_estimates(params)


def _fit_gamma_gamma(
    penalizer: float, x: np.ndarray, m: np.ndarray, weights: np.ndarray
) -> dict[str, float]:
    """Fit Gamma-Gamma with lifetimes' q_constraint (q >= 1) and reject q at its bound."""
    fitter = GammaGammaFitter(penalizer_coef=penalizer)
    fitted, _ = _attempt(lambda: fitter.fit(x, m, weights=weights, q_constraint=True))
    params = {key: float(fitted.params_[key]) for key in ("p", "q", "v")}
    # q at its bound comes first: such a fit is unusable even as a last resort.
    if not params["q"] >= MIN_Q:
        raise _FitFailure(
            f"q={params['q']:.6g} at its bound 1 (the population mean spend would be infinite)"
        )
    return _check_estimates(params)


def _repeat_correlation(x: np.ndarray, m: np.ndarray) -> float:
    """Pearson correlation of frequency and monetary value among repeat customers with spend > 0."""
    repeat = (x > 0) & np.isfinite(m) & (m > 0)
    if repeat.sum() < 2 or np.ptp(x[repeat]) == 0 or np.ptp(m[repeat]) == 0:
        return math.nan
    return float(np.corrcoef(x[repeat], m[repeat])[0, 1])


def _margin(margin_rate: np.ndarray | None, default: float, n: int) -> np.ndarray:
    """Per-row margin share: `margin_rate` where present and finite, else the default."""
    if margin_rate is None:
        return np.full(n, float(default))
    return np.where(np.isfinite(margin_rate), margin_rate, float(default))


def _json_scalar(value: Any) -> Any:
    """A hyperparameter as a plain Python value (numpy scalars from a settings frame become int/float/str)."""
    return value.item() if isinstance(value, np.generic) else value


def _json_float(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else float(value)


def _fmt_params(params: dict[str, float]) -> str:
    return ", ".join(f"{key}={value:.4g}" for key, value in params.items() if np.isfinite(value))
