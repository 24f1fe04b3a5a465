"""Win-back: the action and incentive per stage and tier, the channel, and the expected incremental profit.

Expected incremental profit of contacting a customer on channel c:

    q_c     = min(1, response_rates[stage] * channel_response_lift[c])   # P(response)
    profit  = P(churn) * retained_value * q_c - contact_costs[c] - q_c * incentive

where `retained_value = net_value / max(p_alive, p_alive_floor)` is the net value of a customer who stays
(the CLV is an expectation over P(alive); a won-back customer is alive), and only responders redeem the
incentive, so its expected cost is `q_c * incentive`. The channel is the one with the highest profit;
ties go to the cheaper channel, so email (cheapest by default) is chosen unless a costlier channel's extra
response pays for its extra cost.

Actions and incentives (incentive money is capped at `max_incentive_share * avg_order_value`):

| stage         | diamond, gold (perk tiers)                    | silver, regular                  |
|---------------|-----------------------------------------------|----------------------------------|
| new, active   | new_arrival_notice, no incentive              | new_arrival_notice, no incentive |
| sleeping      | event_notice_free_shipping (perk)             | event_notice_coupon (small)      |
| at_risk       | reminder_free_shipping (perk)                 | reminder_coupon                  |
| lost          | promotion_free_shipping_coupon (perk + coupon)| promotion_coupon (larger)        |

with coupon = `coupon_shares[stage] * tier_incentive_multipliers[tier] * avg_order_value`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from targeting.policy import STAGES, TIERS, codes_of

NO_ACTION = "none"
NO_CHANNEL = "none"
NOTICE = "new_arrival_notice"
ACTION_NAMES = (
    NO_ACTION,
    NOTICE,
    "event_notice_coupon",
    "event_notice_free_shipping",
    "reminder_coupon",
    "reminder_free_shipping",
    "promotion_coupon",
    "promotion_free_shipping_coupon",
)
# ACTION_TABLE[stage, perk] -> position in ACTION_NAMES: rows in STAGES order (new, active, sleeping,
# at_risk, lost), then a row for unknown stages; column 1 for perk tiers
ACTION_TABLE = np.array([[1, 1], [1, 1], [2, 3], [4, 5], [6, 7], [1, 1]], dtype=np.int64)
WINBACK_STAGES = ("sleeping", "at_risk", "lost")


def lookup(codes: np.ndarray, vocabulary: Sequence[str], mapping: Mapping[str, float], default: float = 0.0) -> np.ndarray:
    """mapping[vocabulary[code]] per element (`default` for unknown keys and code -1)."""
    table = np.array([mapping.get(name, default) for name in vocabulary] + [default], dtype=float)
    return table[codes]


def _perk(tier: Any, perk_tiers: Sequence[str]) -> np.ndarray:
    """True where the tier gets service perks before coupons."""
    return np.isin(codes_of(tier, TIERS), [TIERS.index(t) for t in perk_tiers])


def action_codes(stage: Any, tier: Any, perk_tiers: Sequence[str] = ("diamond", "gold")) -> np.ndarray:
    """Position in `ACTION_NAMES` of each customer's recommended action (stage, tier: names or codes)."""
    return ACTION_TABLE[codes_of(stage, STAGES), _perk(tier, perk_tiers).astype(np.int64)]


def choose_actions(stage: Any, tier: Any, perk_tiers: Sequence[str] = ("diamond", "gold")) -> np.ndarray:
    """The recommended action per customer from its lifecycle stage and value tier (names or codes)."""
    return np.asarray(ACTION_NAMES, dtype=object)[action_codes(stage, tier, perk_tiers)]


def size_incentives(
    stage: Any,
    tier: Any,
    avg_order_value: np.ndarray,
    coupon_shares: Mapping[str, float],
    tier_incentive_multipliers: Mapping[str, float],
    free_shipping_cost: float = 4.0,
    perk_tiers: Sequence[str] = ("diamond", "gold"),
    max_incentive_share: float = 0.20,
) -> np.ndarray:
    """Incentive money per customer (coupon or perk by stage and tier), capped by a share of the AOV."""
    stage_code = codes_of(stage, STAGES)
    tier_code = codes_of(tier, TIERS)
    aov = np.maximum(np.nan_to_num(np.asarray(avg_order_value, dtype=float)), 0.0)
    coupon = lookup(stage_code, STAGES, coupon_shares) * lookup(tier_code, TIERS, tier_incentive_multipliers, 1.0) * aov
    perk = _perk(tier_code, perk_tiers)
    winback = np.isin(stage_code, [STAGES.index(s) for s in WINBACK_STAGES])
    incentive = np.select(
        [perk & (stage_code == STAGES.index("lost")), perk & winback],
        [free_shipping_cost + coupon, np.full(aov.shape, float(free_shipping_cost))],
        default=coupon,
    )
    return np.minimum(incentive, max_incentive_share * aov)


def retained_value(net_value: np.ndarray, p_alive: np.ndarray, p_alive_floor: float = 0.20) -> np.ndarray:
    """Net value of a customer who stays: net value over max(P(alive), floor)."""
    alive = np.maximum(np.clip(np.asarray(p_alive, dtype=float), 0.0, 1.0), p_alive_floor)
    return np.asarray(net_value, dtype=float) / alive


def channel_profits(
    churn_probability: np.ndarray,
    retained: np.ndarray,
    response_rate: np.ndarray,
    incentive: np.ndarray,
    contact_costs: Mapping[str, float],
    channel_response_lift: Mapping[str, float],
    channels: Sequence[str],
) -> np.ndarray:
    """Expected incremental profit per customer (rows) and channel (columns, in `channels` order)."""
    gain = np.clip(np.asarray(churn_probability, dtype=float), 0.0, 1.0) * np.asarray(retained, dtype=float)
    rate = np.asarray(response_rate, dtype=float)
    lift = np.array([channel_response_lift.get(c, 1.0) for c in channels], dtype=float)
    cost = np.array([contact_costs[c] for c in channels], dtype=float)
    responds = np.minimum(rate[:, None] * lift[None, :], 1.0)
    return responds * (gain - np.asarray(incentive, dtype=float))[:, None] - cost[None, :]


def best_channel(profits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column of the most profitable channel per row and its profit (the first column wins ties, so list
    channels cheapest first)."""
    if profits.shape[0] == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=float)
    best = np.argmax(profits, axis=1)
    return best, profits[np.arange(profits.shape[0]), best]


def contact_spend(
    stage: Any,
    channel: Any,
    incentive: np.ndarray,
    response_rates: Mapping[str, float],
    contact_costs: Mapping[str, float],
    channel_response_lift: Mapping[str, float],
) -> np.ndarray:
    """Expected money spent on a contact: contact cost + P(response) * incentive (0 with no channel).

    P(response) = min(1, response_rates[stage] * channel_response_lift[channel]).
    """
    vocabulary = [*contact_costs, NO_CHANNEL]
    channel_code = codes_of(channel, vocabulary)
    if (channel_code < 0).any():
        unknown = sorted({str(c) for c in np.asarray(channel, dtype=object)[channel_code < 0][:1000]})
        raise ValueError(f"channels {unknown[:5]} have no contact cost; known channels: {sorted(contact_costs)}")
    none = channel_code == len(vocabulary) - 1
    lift = lookup(channel_code, vocabulary, channel_response_lift, 1.0)
    responds = np.minimum(lookup(codes_of(stage, STAGES), STAGES, response_rates) * lift, 1.0)
    spend = lookup(channel_code, vocabulary, contact_costs) + responds * np.asarray(incentive, dtype=float)
    return np.where(none, 0.0, spend)
