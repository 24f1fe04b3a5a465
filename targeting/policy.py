"""TargetingPolicy: every number the targeting layer uses, frozen, saved with the model as JSON."""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd

from core import defaults
from core.tier_shares import validate_tier_shares

logger = logging.getLogger(__name__)

TIERS = ("diamond", "gold", "silver", "regular")
STAGES = ("new", "active", "sleeping", "at_risk", "lost")
EMAIL = "email"
MEASURED = "measured"
DEFAULT = "default"
STAGE = "stage"
TIER_SEPARATOR = ":"

def codes_of(values: Any, vocabulary: Sequence[str]) -> np.ndarray:
    """Positions of `values` in `vocabulary` (-1 where not in it); integer arrays are taken as codes already."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return values.astype(np.int64)
    series = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values, dtype=object))
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    position = {name: i for i, name in enumerate(vocabulary)}
    # one lookup per distinct value (stages, tiers, channels), then a gather over customers
    table = np.array([position.get(str(u), -1) for u in uniques] + [-1], dtype=np.int64)
    return table[codes]


@functools.cache
def _strings_in_arrow() -> bool:
    """True when pandas stores text in Arrow by default (pandas >= 3 with pyarrow installed)."""
    return getattr(pd.Series(["x"]).dtype, "storage", None) == "pyarrow"


def labels(codes: np.ndarray, names: Sequence[str]) -> Any:
    """`names[codes]` as a column of strings, built in Arrow when pandas stores strings in Arrow (one
    Python string per row would cost more than all of targeting's arithmetic)."""
    codes = np.asarray(codes, dtype=np.int64)
    if not _strings_in_arrow():
        return np.asarray(list(names), dtype=object)[codes]
    import pyarrow as pa

    return labels_from_arrow(_arrow_names(tuple(names)).take(pa.array(codes)))


@functools.lru_cache(maxsize=64)
def _arrow_names(names: tuple[str, ...]) -> Any:
    """The label names as one Arrow array, built once per name list (five lists per scoring call)."""
    import pyarrow as pa

    return pa.array(list(names), type=pa.large_string())


def labels_from_arrow(strings: Any) -> Any:
    """An Arrow string array as pandas' default string column (object strings before pandas 3)."""
    import pyarrow as pa

    if not _strings_in_arrow():
        return strings.to_numpy(zero_copy_only=False).astype(object)
    return pd.array(strings.cast(pa.large_string()), dtype="str")


def _frozen(mapping: Mapping[str, float], defaults: Mapping[str, float] | None = None) -> Mapping[str, float]:
    """A read-only float mapping, with `defaults` filling the keys `mapping` leaves out."""
    merged = {**(defaults or {}), **{str(k): float(v) for k, v in mapping.items()}}
    return MappingProxyType(merged)


_SHARE_FIELDS = (
    "promo_sensitive_share",
    "full_price_max_share",
    "high_end_top_share",
    "serial_returner_top_share",
    "event_day_promo_share",
    "event_buyer_share",
    "new_arrival_share",
    "offer_min_aov_share",
)
_COUNT_FIELDS = (
    "serial_returner_min_returns",
    "new_arrival_days",
    "overdue_gap_factor",
    "first_follow_up_days",
    "own_gap_prior_orders",
)


@dataclass(frozen=True)
class TargetingPolicy:
    """The numbers behind tiers, lifecycle stages, net value, win-back actions and campaigns.

    Parameters
    ----------
    tier_shares : tuple of 4 floats
        Shares of diamond, gold, silver, regular (top to bottom of `value_score`), summing to 1.
    tier_basis : "expected" | "lower_bound"
        With `lower_bound` the scorer's `value_score` (what tiers rank) is taken at the low end of the
        customer's 90% CLV interval (`targeting.tiers.lower_bound_value`): a conservative diamond tier.
    active_days, sleeping_days, at_risk_days : int
        Lifecycle thresholds on days since the last purchase: active `< active_days`, sleeping
        `active_days..sleeping_days`, at_risk `(sleeping_days, at_risk_days]`, lost `> at_risk_days`.
    margin_rate : float
        Margin share of spend the CLV was computed with (turns the CLV back into spend and orders) when
        the scores carry no per-customer `margin_rate`.
    service_cost_per_order, return_handling_cost : float
        Cost to serve one order and to handle one returned order.
    uplift : mapping stage -> float
        Increase in the probability of a purchase within the campaign window that an email contact causes,
        by stage (incremental response, not the response rate); defaults and their source in the README.
    base_conversion : mapping stage -> float
        Probability of a purchase within the window without contact, by stage: customers who buy anyway
        still redeem the incentive they hold.
    measured_uplift : tuple of str
        Stages whose `uplift` was measured on past campaigns (`patron train --campaigns`); the others
        are defaults.
    tier_uplift : mapping "stage:tier" -> float
        Uplift of the value tiers within a stage measured on past campaigns (shrunk toward the stage's,
        `training.campaign_learning`); a stage x tier cell not in it takes its stage's `uplift`.
    control_share : float
        Share of each campaign's selected customers held back, uncontacted, as a control group.
    contact_costs : mapping channel -> float
        Cost of one contact per channel; the cheapest is the default channel.
    channel_response_lift : mapping channel -> float
        Uplift of a channel relative to email (missing channels: 1.0, so they never pay).
    coupon_shares : mapping stage -> float
        Coupon as a share of the customer's average order value, by stage.
    tier_incentive_multipliers : mapping tier -> float
        Scales coupons by value tier (higher tiers get more).
    free_shipping_cost : float
        Cost of the free-shipping perk that `perk_tiers` get before (or with) coupons.
    perk_tiers : tuple of str
        Tiers offered service perks before coupons.
    max_incentive_share : float
        An incentive never exceeds this share of the customer's average order value.
    recent_purchase_days : int
        No promotional contact when `days_since_last <= recent_purchase_days`.
    p_alive_floor : float
        Floor of P(alive) when scaling net value to the value of a retained customer.
    return_rate_prior, return_prior_orders : float
        Observed return rates and return value shares are shrunk towards `return_rate_prior` as if
        `return_prior_orders` more orders had shown it (0: use the observed rates as they are).
    campaign_budget : float
        Default money budget of a campaign.
    promo_sensitive_share, full_price_max_share, high_end_top_share, serial_returner_top_share,
    serial_returner_min_returns, event_day_promo_share, event_buyer_share, new_arrival_days,
    new_arrival_share : float
        Thresholds of the behaviour tags (`features.tags`); the top shares are relative to the shop's
        own customers.
    overdue_gap_factor, first_follow_up_days, own_gap_prior_orders, offer_min_aov_share : float
        Contact timing, the next-order date's shrinkage to the shop's median gap and the offer-price exclusion
        (`targeting.timing`, `models.next_order`).

    Notes
    -----
    Mappings given without some stages, tiers or channels are completed from the defaults above, so a
    partial `PATRON_UPLIFT={"lost": 0.01}` changes only the lost stage.
    """

    tier_shares: tuple[float, ...] = defaults.TIER_SHARES
    tier_basis: str = defaults.TIER_BASIS
    active_days: int = defaults.ACTIVE_DAYS
    sleeping_days: int = defaults.SLEEPING_DAYS
    at_risk_days: int = defaults.AT_RISK_DAYS
    margin_rate: float = defaults.MARGIN_RATE
    service_cost_per_order: float = defaults.SERVICE_COST_PER_ORDER
    return_handling_cost: float = defaults.RETURN_HANDLING_COST
    uplift: Mapping[str, float] = field(default_factory=lambda: dict(defaults.UPLIFT))
    base_conversion: Mapping[str, float] = field(default_factory=lambda: dict(defaults.BASE_CONVERSION))
    measured_uplift: tuple[str, ...] = ()
    tier_uplift: Mapping[str, float] = field(default_factory=dict)
    control_share: float = defaults.CONTROL_SHARE
    contact_costs: Mapping[str, float] = field(default_factory=lambda: dict(defaults.CONTACT_COSTS))
    channel_response_lift: Mapping[str, float] = field(
        default_factory=lambda: dict(defaults.CHANNEL_RESPONSE_LIFT)
    )
    coupon_shares: Mapping[str, float] = field(default_factory=lambda: dict(defaults.COUPON_SHARES))
    tier_incentive_multipliers: Mapping[str, float] = field(
        default_factory=lambda: dict(defaults.TIER_INCENTIVE_MULTIPLIERS)
    )
    free_shipping_cost: float = defaults.FREE_SHIPPING_COST
    perk_tiers: tuple[str, ...] = ("diamond", "gold")
    max_incentive_share: float = defaults.MAX_INCENTIVE_SHARE
    recent_purchase_days: int = defaults.RECENT_PURCHASE_DAYS
    p_alive_floor: float = defaults.P_ALIVE_FLOOR
    return_rate_prior: float = defaults.RETURN_RATE_PRIOR
    return_prior_orders: float = defaults.RETURN_PRIOR_ORDERS
    campaign_budget: float = defaults.CAMPAIGN_BUDGET
    promo_sensitive_share: float = defaults.PROMO_SENSITIVE_SHARE
    full_price_max_share: float = defaults.FULL_PRICE_MAX_SHARE
    high_end_top_share: float = defaults.HIGH_END_TOP_SHARE
    serial_returner_top_share: float = defaults.SERIAL_RETURNER_TOP_SHARE
    serial_returner_min_returns: float = defaults.SERIAL_RETURNER_MIN_RETURNS
    event_day_promo_share: float = defaults.EVENT_DAY_PROMO_SHARE
    event_buyer_share: float = defaults.EVENT_BUYER_SHARE
    new_arrival_days: float = defaults.NEW_ARRIVAL_DAYS
    new_arrival_share: float = defaults.NEW_ARRIVAL_SHARE
    overdue_gap_factor: float = defaults.OVERDUE_GAP_FACTOR
    first_follow_up_days: float = defaults.FIRST_FOLLOW_UP_DAYS
    own_gap_prior_orders: float = defaults.OWN_GAP_PRIOR_ORDERS
    offer_min_aov_share: float = defaults.OFFER_MIN_AOV_SHARE

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: normalise in place once
        set_(self, "tier_shares", validate_tier_shares(self.tier_shares))
        set_(self, "perk_tiers", tuple(str(t) for t in self.perk_tiers))
        set_(self, "measured_uplift", tuple(str(s) for s in self.measured_uplift))
        set_(self, "uplift", _frozen(self.uplift, defaults.UPLIFT))
        set_(self, "base_conversion", _frozen(self.base_conversion, defaults.BASE_CONVERSION))
        set_(self, "tier_uplift", _frozen(self.tier_uplift))
        set_(self, "coupon_shares", _frozen(self.coupon_shares, defaults.COUPON_SHARES))
        set_(self, "contact_costs", _frozen(self.contact_costs))
        set_(self, "channel_response_lift", _frozen(self.channel_response_lift, {c: 1.0 for c in self.contact_costs}))
        set_(
            self,
            "tier_incentive_multipliers",
            _frozen(self.tier_incentive_multipliers, defaults.TIER_INCENTIVE_MULTIPLIERS),
        )
        self._validate()

    def _validate(self) -> None:
        if not 0 < self.active_days <= self.sleeping_days <= self.at_risk_days:
            raise ValueError(
                "lifecycle thresholds must satisfy 0 < active_days <= sleeping_days <= at_risk_days, got "
                f"{self.active_days}, {self.sleeping_days}, {self.at_risk_days}"
            )
        if not self.contact_costs:
            raise ValueError("contact_costs needs at least one channel, e.g. {'email': 0.05}")
        numbers = {
            "margin_rate": self.margin_rate,
            "service_cost_per_order": self.service_cost_per_order,
            "return_handling_cost": self.return_handling_cost,
            "free_shipping_cost": self.free_shipping_cost,
            "max_incentive_share": self.max_incentive_share,
            "recent_purchase_days": self.recent_purchase_days,
            "p_alive_floor": self.p_alive_floor,
            "return_rate_prior": self.return_rate_prior,
            "return_prior_orders": self.return_prior_orders,
            "campaign_budget": self.campaign_budget,
            **{f"contact_costs[{k}]": v for k, v in self.contact_costs.items()},
            **{f"channel_response_lift[{k}]": v for k, v in self.channel_response_lift.items()},
            **{f"coupon_shares[{k}]": v for k, v in self.coupon_shares.items()},
            **{f"tier_incentive_multipliers[{k}]": v for k, v in self.tier_incentive_multipliers.items()},
        }
        bad = [name for name, value in numbers.items() if not (math.isfinite(value) and value >= 0)]
        if bad:
            raise ValueError(f"targeting settings must be finite and >= 0: {bad}")
        rates = [
            f"{name}[{k}]"
            for name, mapping in (("uplift", self.uplift), ("base_conversion", self.base_conversion), ("tier_uplift", self.tier_uplift))
            for k, v in mapping.items()
            if not (math.isfinite(v) and -1 <= v <= 1)
        ]
        if rates:
            raise ValueError(f"uplift and base_conversion must lie in [-1, 1]: {rates}")
        cells = {f"{s}{TIER_SEPARATOR}{t}" for s in STAGES for t in TIERS}
        strange = sorted(set(self.tier_uplift) - cells)
        if strange:
            raise ValueError(f"tier_uplift keys must be 'stage{TIER_SEPARATOR}tier' (e.g. 'active:diamond'), got {strange[:5]}")
        if self.tier_basis not in defaults.TIER_BASES:
            raise ValueError(f"tier_basis must be one of {list(defaults.TIER_BASES)}, got {self.tier_basis!r}")
        if not 0 <= self.control_share < 1:
            raise ValueError(f"control_share must lie in [0, 1), got {self.control_share}")
        if not 0 < self.p_alive_floor <= 1 or not 0 < self.margin_rate <= 1:
            raise ValueError("p_alive_floor and margin_rate must lie in (0, 1]")
        shares = {name: getattr(self, name) for name in _SHARE_FIELDS}
        outside = [name for name, value in shares.items() if not (math.isfinite(value) and 0 <= value <= 1)]
        if outside:
            raise ValueError(f"tag and timing shares must lie in [0, 1]: {outside}")
        counts = {name: getattr(self, name) for name in _COUNT_FIELDS}
        negative = [name for name, value in counts.items() if not (math.isfinite(value) and value >= 0)]
        if negative or self.overdue_gap_factor <= 0:
            raise ValueError(f"tag and timing settings must be finite and > 0: {negative or ['overdue_gap_factor']}")
        if self.max_incentive_share > 1 or self.return_rate_prior > 1:
            raise ValueError("max_incentive_share and return_rate_prior must lie in [0, 1]")
        unknown = [t for t in self.perk_tiers if t not in TIERS]
        if unknown:
            raise ValueError(f"perk_tiers must be among {list(TIERS)}, got {unknown}")

    def __hash__(self) -> int:
        return hash(json.dumps(self.to_dict(), sort_keys=True))

    @property
    def channels(self) -> list[str]:
        """The channels, cheapest first (ties by name), so the first is the default."""
        return sorted(self.contact_costs, key=lambda c: (self.contact_costs[c], c))

    def uplift_table(self) -> np.ndarray:
        """Email uplift per stage (rows, STAGES order, then a row for unknown stages: 0) x tier (columns,
        TIERS order, then a column for unknown tiers: the stage's)."""
        table = np.zeros((len(STAGES) + 1, len(TIERS) + 1))
        for i, stage in enumerate(STAGES):
            table[i, :] = self.uplift[stage]
            for j, tier in enumerate(TIERS):
                table[i, j] = self.tier_uplift.get(f"{stage}{TIER_SEPARATOR}{tier}", self.uplift[stage])
        return table

    def uplift_sources(self) -> dict[str, dict[str, Any]]:
        """Uplift per stage and per tier within it, each with its source: `measured` on past campaigns,
        or `default` (a tier without its own measure shows its stage's figure and source `stage`)."""
        out: dict[str, dict[str, Any]] = {}
        for stage in STAGES:
            tiers = {}
            for tier in TIERS:
                key = f"{stage}{TIER_SEPARATOR}{tier}"
                measured = key in self.tier_uplift
                tiers[tier] = {"uplift": self.tier_uplift.get(key, self.uplift[stage]), "source": MEASURED if measured else STAGE}
            source = MEASURED if stage in self.measured_uplift else DEFAULT
            out[stage] = {"uplift": self.uplift[stage], "source": source, "tiers": tiers}
        return out

    @classmethod
    def from_settings(cls, settings: Any) -> TargetingPolicy:
        """The policy of a `patron.settings.Settings` (fields it lacks keep the defaults)."""
        names = [f.name for f in dataclasses.fields(cls)]
        values = {name: getattr(settings, name) for name in names if hasattr(settings, name)}
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready values (lists and dicts)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Mapping):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TargetingPolicy:
        """The policy saved by `to_dict`; keys it does not know are ignored, missing ones take defaults."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            logger.warning("ignoring unknown targeting policy keys %s", unknown)
        return cls(**{k: v for k, v in data.items() if k in names})
