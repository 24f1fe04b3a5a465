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

import numpy as np

NO_ACTION = "none"
NO_CHANNEL = "none"


def choose_actions(stage: np.ndarray, tier: np.ndarray, perk_tiers: Sequence[str] = ("diamond", "gold")) -> np.ndarray:
    """The recommended action per customer from its lifecycle stage and value tier."""
    stage = np.asarray(stage, dtype=object)
    perk = np.isin(np.asarray(tier, dtype=object), list(perk_tiers))
    return np.select(
        [
            (stage == "sleeping") & perk,
            stage == "sleeping",
            (stage == "at_risk") & perk,
            stage == "at_risk",
            (stage == "lost") & perk,
            stage == "lost",
        ],
        [
            "event_notice_free_shipping",
            "event_notice_coupon",
            "reminder_free_shipping",
            "reminder_coupon",
            "promotion_free_shipping_coupon",
            "promotion_coupon",
        ],
        default="new_arrival_notice",
    ).astype(object)


def _lookup(keys: np.ndarray, mapping: Mapping[str, float], default: float = 0.0) -> np.ndarray:
    """mapping[key] per element, vectorised over the few distinct keys."""
    keys = np.asarray(keys, dtype=object)
    out = np.full(keys.shape, default, dtype=float)
    for key, value in mapping.items():  # loops over stages / tiers / channels, not customers
        out[keys == key] = value
    return out


def size_incentives(
    stage: np.ndarray,
    tier: np.ndarray,
    avg_order_value: np.ndarray,
    coupon_shares: Mapping[str, float],
    tier_incentive_multipliers: Mapping[str, float],
    free_shipping_cost: float = 4.0,
    perk_tiers: Sequence[str] = ("diamond", "gold"),
    max_incentive_share: float = 0.20,
) -> np.ndarray:
    """Incentive money per customer (coupon or perk by stage and tier), capped by a share of the AOV."""
    stage = np.asarray(stage, dtype=object)
    aov = np.maximum(np.nan_to_num(np.asarray(avg_order_value, dtype=float)), 0.0)
    coupon = _lookup(stage, coupon_shares) * _lookup(tier, tier_incentive_multipliers, 1.0) * aov
    perk = np.isin(np.asarray(tier, dtype=object), list(perk_tiers))
    winback = np.isin(stage, ["sleeping", "at_risk", "lost"])
    incentive = np.select(
        [perk & (stage == "lost"), perk & winback],
        [free_shipping_cost + coupon, np.full(stage.shape, float(free_shipping_cost))],
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


def best_channel(profits: np.ndarray, channels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """The most profitable channel per row and its profit (first channel wins ties: list cheapest first)."""
    if profits.shape[0] == 0:
        return np.array([], dtype=object), np.array([], dtype=float)
    best = np.argmax(profits, axis=1)
    names = np.asarray(list(channels), dtype=object)[best]
    return names, profits[np.arange(profits.shape[0]), best]


def response_probability(
    stage: np.ndarray,
    channel: np.ndarray,
    response_rates: Mapping[str, float],
    channel_response_lift: Mapping[str, float],
) -> np.ndarray:
    """P(response) of each customer's stage on its channel: min(1, rate * lift); 0 when no channel."""
    lift = _lookup(channel, channel_response_lift, 1.0)
    rate = np.minimum(_lookup(stage, response_rates) * lift, 1.0)
    return np.where(np.asarray(channel, dtype=object) == NO_CHANNEL, 0.0, rate)


def contact_spend(
    stage: np.ndarray,
    channel: np.ndarray,
    incentive: np.ndarray,
    response_rates: Mapping[str, float],
    contact_costs: Mapping[str, float],
    channel_response_lift: Mapping[str, float],
) -> np.ndarray:
    """Expected money spent on a contact: contact cost + P(response) * incentive (0 with no channel)."""
    channel = np.asarray(channel, dtype=object)
    unknown = sorted(set(np.unique(channel.astype(str))) - set(contact_costs) - {NO_CHANNEL})
    if unknown:
        raise ValueError(f"channels {unknown} have no contact cost; known channels: {sorted(contact_costs)}")
    responds = response_probability(stage, channel, response_rates, channel_response_lift)
    return _lookup(channel, contact_costs) + responds * np.asarray(incentive, dtype=float)
