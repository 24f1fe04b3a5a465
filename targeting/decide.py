"""decide: the scores frame in, the decisions frame out (tiers, stages, net value, exclusions, actions).

Input columns (the models' part of the scores table):

- required: `customer_id` (a column, or the index), `clv`, `value_score`, `p_alive`, `churn_probability`,
  `expected_purchases_clv_horizon`, `expected_order_value`, `days_since_last`, `frequency`;
- optional, from the features: `avg_order_value` (absent or missing: `expected_order_value`),
  `return_rate` and `return_value_share` (absent or missing: 0 observed returns, then shrunk towards the
  policy's prior like everyone's), `order_count` (orders behind those rates; absent: `frequency + 1`),
  `margin_rate` (absent or missing: the policy's margin rate), `uplift` (a per-customer model's email
  uplift; absent or missing: the policy's stage x tier table).

Columns added (replacing any present): `value_tier, lifecycle_stage, net_value, exclude_from_spend,
exclude_reason, winback_profit, uplift, action, channel, incentive` (`uplift`: the email uplift the
profit was computed with).

Exclusions: `exclude_from_spend` is true when no money may be spent on the customer, and
`exclude_reason` gives the first reason that applies, in this order:

1. `negative_net_value`: expected net value < 0 (the highest-cost customers);
2. `recent_purchase`: bought within `recent_purchase_days` (`days_since_last <= recent_purchase_days`),
   so no promotional contact;
3. `no_positive_profit`: the best contact's expected incremental profit is not positive.

Excluded customers get `action == channel == "none"` and `incentive == 0`; `winback_profit` still shows
what the stage's contact would be expected to earn. The reasons are exhaustive and exclusive, so
`decisions.exclude_reason.value_counts()` counts every excluded customer.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from targeting.lifecycle import stage_codes
from targeting.policy import STAGES, TIERS, TargetingPolicy, labels
from targeting.profitability import NEGATIVE_NET_VALUE, net_value, shrink_rate
from targeting.tiers import BoundaryKey, boundary_tier_codes, tier_codes
from targeting.winback import (
    ACTION_NAMES,
    NO_ACTION,
    NO_CHANNEL,
    action_codes,
    best_channel,
    channel_profits,
    email_uplift,
    retained_value,
    size_incentives,
)

RECENT_PURCHASE = "recent_purchase"
NO_POSITIVE_PROFIT = "no_positive_profit"
EXCLUDE_REASONS = (NEGATIVE_NET_VALUE, RECENT_PURCHASE, NO_POSITIVE_PROFIT)
REASON_NAMES = (*EXCLUDE_REASONS, "")

REQUIRED_COLUMNS = (
    "clv",
    "value_score",
    "p_alive",
    "churn_probability",
    "expected_purchases_clv_horizon",
    "expected_order_value",
    "days_since_last",
    "frequency",
)
DECISION_COLUMNS = (
    "value_tier",
    "lifecycle_stage",
    "net_value",
    "exclude_from_spend",
    "exclude_reason",
    "winback_profit",
    "uplift",
    "action",
    "channel",
    "incentive",
)


def customer_ids(scores: pd.DataFrame) -> pd.Series:
    """The customer ids of a scores frame, from its `customer_id` column or else its index, as strings."""
    source = scores["customer_id"] if "customer_id" in scores.columns else scores.index.to_series()
    return source.astype(str).reset_index(drop=True)


def _numeric(scores: pd.DataFrame, columns: Sequence[str]) -> dict[str, np.ndarray]:
    """Required numeric columns as float arrays; DataError naming the absent or non-finite ones."""
    missing = [c for c in columns if c not in scores.columns]
    if missing:
        raise DataError(f"the scores lack columns {missing} that targeting needs; score them with the model first")
    out = {c: pd.to_numeric(scores[c], errors="coerce").to_numpy(dtype=float, na_value=np.nan) for c in columns}
    bad = [c for c, values in out.items() if not np.isfinite(values).all()]
    if bad:
        raise DataError(f"the scores have missing, non-numeric or infinite values in {bad}")
    return out


def _optional(scores: pd.DataFrame, column: str, fallback: np.ndarray | float) -> np.ndarray:
    """An optional numeric column with `fallback` where it is absent or not finite."""
    return _or_fallback(_optional_values(scores, column), fallback, len(scores))


def _optional_values(scores: pd.DataFrame, column: str) -> np.ndarray | None:
    """An optional column as floats (NaN where not a number), or None when absent."""
    if column not in scores.columns:
        return None
    return pd.to_numeric(scores[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _or_fallback(values: np.ndarray | None, fallback: np.ndarray | float, n: int) -> np.ndarray:
    default = np.broadcast_to(np.asarray(fallback, dtype=float), (n,))
    if values is None:
        return default.copy()
    return np.where(np.isfinite(values), values, default)


OPTIONAL_COLUMNS = ("avg_order_value", "order_count", "return_rate", "return_value_share", "margin_rate", "uplift")
"""Columns `decide` uses when present (see the module docstring)."""


def decide(
    scores: pd.DataFrame,
    policy: TargetingPolicy,
    cut_points: Sequence[float] | None = None,
    tier_boundaries: Sequence[BoundaryKey | None] | None = None,
) -> pd.DataFrame:
    """The scores with the decision columns added (same rows, same order, same index)."""
    if not isinstance(scores, pd.DataFrame):
        raise DataError(f"scores must be a pandas DataFrame, got {type(scores).__name__}")
    values: dict[str, np.ndarray | None] = {**_numeric(scores, REQUIRED_COLUMNS)}
    values.update({column: _optional_values(scores, column) for column in OPTIONAL_COLUMNS})
    decisions = decision_columns(
        values, policy, cut_points=cut_points, ids=customer_ids(scores), tier_boundaries=tier_boundaries
    )
    out = scores.copy()
    for column, column_values in decisions.items():
        out[column] = column_values
    return out


def decision_columns(
    values: Mapping[str, np.ndarray | None],
    policy: TargetingPolicy,
    cut_points: Sequence[float] | None = None,
    ids: Sequence[object] | None = None,
    tier_boundaries: Sequence[BoundaryKey | None] | None = None,
) -> dict[str, Any]:
    """`decide`'s arithmetic on arrays: the decision columns, in DECISION_COLUMNS order.

    `values` maps each of REQUIRED_COLUMNS to finite floats and each of OPTIONAL_COLUMNS to floats
    (NaN where missing) or None (absent); `ids` are the customer ids that break value-score ties.
    Tiers: against `tier_boundaries` (`targeting.tiers.tier_boundaries` of a whole population) when
    given, else against `cut_points` when given, else ranked within these customers by the policy's shares.
    The frame-free form lets the scorer skip building frames it would throw away.
    """
    x = {column: values[column] for column in REQUIRED_COLUMNS}
    n = len(x["clv"])
    aov = _or_fallback(values.get("avg_order_value"), x["expected_order_value"], n)
    orders = _or_fallback(values.get("order_count"), x["frequency"] + 1.0, n)
    prior = (policy.return_rate_prior, policy.return_prior_orders)
    return_rate = shrink_rate(_or_fallback(values.get("return_rate"), 0.0, n), orders, *prior)
    return_share = shrink_rate(_or_fallback(values.get("return_value_share"), 0.0, n), orders, *prior)
    margin = _or_fallback(values.get("margin_rate"), policy.margin_rate, n)

    if tier_boundaries is not None:
        if ids is None:
            raise DataError("placing customers against tier boundaries needs their customer ids")
        tier = boundary_tier_codes(x["value_score"], ids, tier_boundaries)
    else:
        tier = tier_codes(x["value_score"], cut_points=cut_points, shares=policy.tier_shares, ids=ids)
    stage = stage_codes(
        x["days_since_last"], x["frequency"], policy.active_days, policy.sleeping_days, policy.at_risk_days
    )
    net = net_value(
        x["clv"],
        x["expected_purchases_clv_horizon"],
        x["expected_order_value"],
        return_rate,
        return_share,
        margin_rate=margin,
        service_cost_per_order=policy.service_cost_per_order,
        return_handling_cost=policy.return_handling_cost,
    )

    incentive = size_incentives(
        stage,
        tier,
        aov,
        policy.coupon_shares,
        policy.tier_incentive_multipliers,
        free_shipping_cost=policy.free_shipping_cost,
        perk_tiers=policy.perk_tiers,
        max_incentive_share=policy.max_incentive_share,
    )
    channels = policy.channels
    retained = retained_value(net, x["p_alive"], policy.p_alive_floor)
    uplift = email_uplift(stage, tier, policy, values.get("uplift"))
    profits = channel_profits(x["churn_probability"], retained, margin * aov, stage, incentive, policy, uplift=uplift)
    channel, profit = best_channel(profits)

    # first reason that applies, in EXCLUDE_REASONS order; index 3 is "" (not excluded)
    reason = np.select(
        [net < 0, x["days_since_last"] <= policy.recent_purchase_days, ~(profit > 0)], [0, 1, 2], default=3
    )
    excluded = reason < 3
    action = np.where(excluded, ACTION_NAMES.index(NO_ACTION), action_codes(stage, tier, policy.perk_tiers))
    return {
        "value_tier": labels(tier, TIERS),
        "lifecycle_stage": labels(stage, STAGES),
        "net_value": net,
        "exclude_from_spend": excluded,
        "exclude_reason": labels(reason, REASON_NAMES),
        "winback_profit": profit,
        "uplift": uplift,
        "action": labels(action, ACTION_NAMES),
        "channel": labels(np.where(excluded, len(channels), channel), [*channels, NO_CHANNEL]),
        "incentive": np.where(excluded, 0.0, incentive),
    }


def has_decisions(scores: pd.DataFrame) -> bool:
    """True when the frame already carries every decision column."""
    return all(c in scores.columns for c in DECISION_COLUMNS)


def ensure_decisions(
    scores: pd.DataFrame,
    policy: TargetingPolicy,
    cut_points: Sequence[float] | None = None,
) -> pd.DataFrame:
    """The frame as is when it has the decision columns, else `decide(scores, policy, cut_points)`."""
    return scores if has_decisions(scores) else decide(scores, policy, cut_points)
