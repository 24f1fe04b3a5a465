"""Win-back: the action and incentive per stage and tier, the channel, and the expected incremental profit.

Economics on incremental response. A contact on channel c *causes* a purchase within the campaign window
with probability u_c (the uplift), while a customer buys anyway with probability b (base conversion):

    u_c     = min(1, uplift * channel_response_lift[c])                         # caused purchases
    redeem  = min(1, base_conversion[stage] + u_c)                            # P(redeem | contacted)
    window  = u_c * order_margin - contact_costs[c] - redeem * incentive      # checkable in the window
    profit  = window + u_c * P(churn) * retained_value                        # + the customer kept

`uplift` is the email uplift of the customer (`email_uplift`): a per-customer model's estimate where
the scores carry one (the `uplift` column), else the policy's stage x tier table (`tier_uplift`, falling
back to the stage's `uplift`). `order_margin` is the margin of the order a contact causes (margin rate x average order value);
`retained_value = net_value / max(p_alive, p_alive_floor)` is the net value of a customer who stays,
earned when a caused purchase wins back a customer who would have churned. The incentive is paid by
every customer who buys while holding it, including those who would have bought anyway, so it costs
`redeem * incentive`. `window` is the part a campaign report can check within its window (the
`expected_window_profit` of a campaign list); `profit` adds the longer-term value of a retained customer.
The channel is the one with the highest profit; ties go to the cheaper channel.

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

from targeting.policy import STAGES, TIERS, TargetingPolicy, codes_of

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


def email_uplift(stage: Any, tier: Any, policy: TargetingPolicy, uplift: np.ndarray | None = None) -> np.ndarray:
    """Uplift of an email contact per customer: `uplift` where given and finite (a per-customer model's),
    else the policy's stage x tier table (tier None: the stage's figure)."""
    code = codes_of(stage, STAGES)
    table = policy.uplift_table()
    tier_code = np.full(code.shape, len(TIERS), dtype=np.int64) if tier is None else codes_of(tier, TIERS)
    from_table = table[code, tier_code]
    if uplift is None:
        return from_table
    given = np.asarray(uplift, dtype=float)
    return np.where(np.isfinite(given), given, from_table)


def caused_and_redeemed(
    stage: Any, lift: np.ndarray, policy: TargetingPolicy, tier: Any = None, uplift: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """P(purchase caused by the contact) and P(incentive redeemed | contacted), per customer (rows) and
    channel lift (`lift` of shape (n,) or (n, channels)); uplift as `email_uplift`."""
    code = codes_of(stage, STAGES)
    lift = np.asarray(lift, dtype=float)
    rows = (slice(None),) + (None,) * (lift.ndim - 1)
    caused = np.clip(email_uplift(code, tier, policy, uplift)[rows] * lift, -1.0, 1.0)
    redeem = np.clip(lookup(code, STAGES, policy.base_conversion)[rows] + caused, 0.0, 1.0)
    return caused, redeem


def channel_profits(
    churn_probability: np.ndarray,
    retained: np.ndarray,
    order_margin: np.ndarray,
    stage: Any,
    incentive: np.ndarray,
    policy: TargetingPolicy,
    tier: Any = None,
    uplift: np.ndarray | None = None,
) -> np.ndarray:
    """Expected incremental profit per customer (rows) and channel (columns, in `policy.channels` order)."""
    channels = policy.channels
    lift = np.array([policy.channel_response_lift.get(c, 1.0) for c in channels], dtype=float)
    cost = np.array([policy.contact_costs[c] for c in channels], dtype=float)
    incentive = np.asarray(incentive, dtype=float)
    caused, redeem = caused_and_redeemed(stage, np.broadcast_to(lift, (incentive.size, lift.size)), policy, tier, uplift)
    kept = np.clip(np.asarray(churn_probability, dtype=float), 0.0, 1.0) * np.asarray(retained, dtype=float)
    gain = np.asarray(order_margin, dtype=float) + kept
    return caused * gain[:, None] - cost[None, :] - redeem * incentive[:, None]


def retention_part(
    stage: Any,
    channel: Any,
    churn_probability: np.ndarray,
    retained: np.ndarray,
    policy: TargetingPolicy,
    tier: Any = None,
    uplift: np.ndarray | None = None,
) -> np.ndarray:
    """The part of the expected profit earned after the window: u_c * P(churn) * retained value."""
    caused, _ = caused_and_redeemed(stage, _channel_lift(channel, policy), policy, tier, uplift)
    return caused * np.clip(np.asarray(churn_probability, dtype=float), 0.0, 1.0) * np.asarray(retained, dtype=float)


def best_channel(profits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column of the most profitable channel per row and its profit (the first column wins ties, so list
    channels cheapest first)."""
    if profits.shape[0] == 0:
        return np.array([], dtype=np.int64), np.array([], dtype=float)
    best = np.argmax(profits, axis=1)
    return best, profits[np.arange(profits.shape[0]), best]


def _channel_codes(channel: Any, policy: TargetingPolicy) -> tuple[np.ndarray, list[str]]:
    """Codes of `channel` in the policy's channels plus "none"; ValueError naming unpriced channels."""
    vocabulary = [*policy.contact_costs, NO_CHANNEL]
    code = codes_of(channel, vocabulary)
    if (code < 0).any():
        unknown = sorted({str(c) for c in np.asarray(channel, dtype=object)[code < 0][:1000]})
        raise ValueError(f"channels {unknown[:5]} have no contact cost; known channels: {sorted(policy.contact_costs)}")
    return code, vocabulary


def _channel_lift(channel: Any, policy: TargetingPolicy) -> np.ndarray:
    """Uplift multiplier per contact's channel (0 for "none": no contact, no effect)."""
    code, vocabulary = _channel_codes(channel, policy)
    return np.where(code == len(vocabulary) - 1, 0.0, lookup(code, vocabulary, policy.channel_response_lift, 1.0))


def contact_spend(
    stage: Any, channel: Any, incentive: np.ndarray, policy: TargetingPolicy, tier: Any = None, uplift: np.ndarray | None = None
) -> np.ndarray:
    """Expected money spent on a contact: contact cost + P(redeem | contacted) * incentive (0 with no channel)."""
    code, vocabulary = _channel_codes(channel, policy)
    _, redeem = caused_and_redeemed(stage, _channel_lift(channel, policy), policy, tier, uplift)
    spend = lookup(code, vocabulary, policy.contact_costs) + redeem * np.asarray(incentive, dtype=float)
    return np.where(code == len(vocabulary) - 1, 0.0, spend)
