"""Win-back: action table, incentive caps, channel choice and the profit formula."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.policy import STAGES, TIERS, TargetingPolicy
from targeting.winback import (
    ACTION_NAMES,
    action_codes,
    best_channel,
    channel_profits,
    contact_spend,
    email_uplift,
    retained_value,
    retention_part,
    size_incentives,
)

POLICY = TargetingPolicy()


def _incentives(stage, tier, aov, policy=POLICY):
    return size_incentives(
        np.asarray(stage),
        np.asarray(tier),
        np.array(aov, dtype=float),
        policy.coupon_shares,
        policy.tier_incentive_multipliers,
        free_shipping_cost=policy.free_shipping_cost,
        perk_tiers=policy.perk_tiers,
        max_incentive_share=policy.max_incentive_share,
    )


def test_action_table():
    stages = ["active", "new", "sleeping", "sleeping", "at_risk", "at_risk", "lost", "lost"]
    tiers = ["diamond", "regular", "gold", "silver", "diamond", "regular", "gold", "regular"]
    assert [ACTION_NAMES[c] for c in action_codes(np.array(stages, dtype=object), np.array(tiers, dtype=object))] == [
        "new_arrival_notice",
        "new_arrival_notice",
        "event_notice_free_shipping",
        "event_notice_coupon",
        "reminder_free_shipping",
        "reminder_coupon",
        "promotion_free_shipping_coupon",
        "promotion_coupon",
    ]


def test_incentives_by_stage_and_tier():
    aov = 100.0
    got = _incentives(
        ["active", "sleeping", "at_risk", "lost", "sleeping", "lost"],
        ["regular", "regular", "silver", "regular", "gold", "diamond"],
        [aov] * 6,
    )
    # active: nothing; coupons 5% x 0.75, 10% x 1.0, 15% x 0.75 of AOV; perk tiers: free shipping first,
    # then free shipping plus the (tier-scaled) coupon, capped at 20% of AOV
    assert got.tolist() == pytest.approx([0.0, 3.75, 10.0, 11.25, 4.0, 20.0])


@settings(max_examples=200, deadline=None)
@given(
    stage=st.sampled_from(STAGES),
    tier=st.sampled_from(TIERS),
    aov=st.floats(0, 1e6),
    share=st.floats(0, 1),
)
def test_incentive_never_exceeds_the_share_of_aov(stage, tier, aov, share):
    policy = TargetingPolicy(max_incentive_share=share, free_shipping_cost=50.0, coupon_shares={s: 0.9 for s in STAGES})
    incentive = _incentives([stage], [tier], [aov], policy)[0]
    assert 0.0 <= incentive <= share * aov + 1e-9


def test_retained_value_scales_by_p_alive_with_a_floor():
    assert retained_value(np.array([10.0, 10.0, 10.0]), np.array([1.0, 0.5, 0.01]), 0.2).tolist() == [10.0, 20.0, 50.0]


def test_profit_formula_on_uplift_and_email_by_default():
    # lost stage: uplift 0.2, base conversion 0.1; P(churn) 0.5, retained 16, order margin 6, coupon 5:
    # email 0.2 * (6 + 0.5 * 16) - 0.05 - (0.1 + 0.2) * 5 = 1.25; sms 0.22 * 14 - 0.15 - 0.32 * 5 = 1.33
    policy = TargetingPolicy(uplift={"lost": 0.2}, base_conversion={"lost": 0.1}, channel_response_lift={"sms": 1.1, "mail": 1.0})
    channels = policy.channels
    profits = channel_profits(np.array([0.5]), np.array([16.0]), np.array([6.0]), np.array(["lost"], dtype=object), np.array([5.0]), policy)
    assert profits[0, channels.index("email")] == pytest.approx(1.25)
    assert profits[0, channels.index("sms")] == pytest.approx(1.33)
    best, profit = best_channel(profits)
    assert [channels[i] for i in best] == ["sms"]
    assert profit.tolist() == pytest.approx([1.33])


def test_buyers_anyway_pay_the_incentive_so_a_coupon_to_sure_buyers_loses_money():
    # base conversion 0.9, no uplift: every contact only gives the coupon away
    policy = TargetingPolicy(uplift={"active": 0.0}, base_conversion={"active": 0.9})
    profits = channel_profits(np.array([0.0]), np.array([100.0]), np.array([10.0]), np.array(["active"], dtype=object), np.array([4.0]), policy)
    assert profits[0, policy.channels.index("email")] == pytest.approx(-0.05 - 0.9 * 4.0)


def test_default_uplift_promises_a_fraction_of_the_old_response_rate_profit():
    # the case: an active diamond customer, no incentive, P(churn) 0.2, retained value 500:
    # the old rule (response 0.65) promised 0.65 * 0.2 * 500 = 65; one point of uplift promises about 1
    profits = channel_profits(np.array([0.2]), np.array([500.0]), np.array([15.0]), np.array(["active"], dtype=object), np.array([0.0]), POLICY)
    assert profits[0, 0] == pytest.approx(0.01 * (15.0 + 100.0) - 0.05)


def test_retention_part_is_what_the_window_cannot_show():
    stage = np.array(["lost", "lost"], dtype=object)
    later = retention_part(stage, np.array(["email", "none"], dtype=object), np.array([0.5, 0.5]), np.array([16.0, 16.0]), POLICY)
    assert later.tolist() == pytest.approx([POLICY.uplift["lost"] * 0.5 * 16.0, 0.0])


def test_costlier_channel_only_when_it_pays():
    channels = POLICY.channels
    policy = TargetingPolicy(uplift={"lost": 0.2}, base_conversion={"lost": 0.0})
    gain = np.array([1.0, 10.0, 100.0])  # P(churn) x retained value: sms pays above 5, mail above 26.25
    stage = np.array(["lost"] * 3, dtype=object)
    profits = channel_profits(np.ones(3), gain, np.zeros(3), stage, np.zeros(3), policy)
    chosen, _ = best_channel(profits)
    assert [channels[i] for i in chosen] == ["email", "sms", "mail"]
    # equal lift: the cheapest channel wins every time
    flat = TargetingPolicy(uplift={"lost": 0.2}, channel_response_lift={c: 1.0 for c in channels})
    chosen_flat, _ = best_channel(channel_profits(np.ones(3), gain, np.zeros(3), stage, np.zeros(3), flat))
    assert [channels[i] for i in chosen_flat] == ["email"] * 3


def test_contact_spend_is_contact_cost_plus_expected_redeemed_incentive():
    spend = contact_spend(
        np.array(["lost", "active"], dtype=object), np.array(["email", "none"], dtype=object), np.array([10.0, 0.0]), POLICY
    )
    redeem = POLICY.base_conversion["lost"] + POLICY.uplift["lost"]
    assert spend.tolist() == pytest.approx([0.05 + redeem * 10.0, 0.0])


def test_unknown_channel_is_an_error():
    with pytest.raises(ValueError, match="fax"):
        contact_spend(np.array(["lost"], dtype=object), np.array(["fax"], dtype=object), np.array([1.0]), POLICY)


def test_names_and_codes_give_the_same_answers():
    stages = np.array(["new", "sleeping", "lost", "at_risk"], dtype=object)
    tiers = np.array(["gold", "regular", "diamond", "silver"], dtype=object)
    stage_codes = np.array([STAGES.index(s) for s in stages])
    tier_codes = np.array([TIERS.index(t) for t in tiers])
    assert action_codes(stages, tiers).tolist() == action_codes(stage_codes, tier_codes).tolist()
    aov = np.full(4, 80.0)
    np.testing.assert_array_equal(_incentives(stages, tiers, aov), _incentives(stage_codes, tier_codes, aov))


def test_email_uplift_takes_the_tier_then_the_stage_then_a_customers_own():
    policy = TargetingPolicy(uplift={"active": 0.02}, tier_uplift={"active:diamond": 0.05})
    stage = np.array(["active", "active", "lost", "unknown"], dtype=object)
    tier = np.array(["diamond", "regular", "diamond", "gold"], dtype=object)
    assert email_uplift(stage, tier, policy).tolist() == pytest.approx([0.05, 0.02, policy.uplift["lost"], 0.0])
    assert email_uplift(stage, None, policy).tolist() == pytest.approx([0.02, 0.02, policy.uplift["lost"], 0.0])
    own = np.array([0.3, np.nan, -0.1, 0.2])
    assert email_uplift(stage, tier, policy, own).tolist() == pytest.approx([0.3, 0.02, -0.1, 0.2])


def test_a_measured_tier_changes_its_customers_profit_only():
    policy = TargetingPolicy(tier_uplift={"active:diamond": 0.2})
    stage = np.array(["active", "active"], dtype=object)
    tier = np.array(["diamond", "gold"], dtype=object)
    profits = channel_profits(np.zeros(2), np.zeros(2), np.full(2, 10.0), stage, np.zeros(2), policy, tier=tier)
    assert profits[0, 0] == pytest.approx(0.2 * 10 - policy.contact_costs["email"])
    assert profits[1, 0] == pytest.approx(policy.uplift["active"] * 10 - policy.contact_costs["email"])


def test_tier_uplift_keys_are_checked():
    with pytest.raises(ValueError, match="stage:tier"):
        TargetingPolicy(tier_uplift={"active-diamond": 0.1})
