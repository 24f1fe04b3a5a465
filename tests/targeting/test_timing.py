"""Contact timing: recommended dates and the exclusions that feed campaign selection."""

from __future__ import annotations

import numpy as np
import pandas as pd

from targeting.campaign import select_campaign
from targeting.decide import decide
from targeting.policy import TargetingPolicy
from targeting.timing import (
    BELOW_OFFER_PRICE,
    WITHIN_REPURCHASE_CYCLE,
    add_transaction_signals,
    exclude_below_offer_price,
    recommended_contact_offsets,
)

POLICY = TargetingPolicy()


def test_first_buyers_get_a_follow_up_and_repeat_buyers_a_reminder_when_overdue():
    frequency = np.array([0.0, 0.0, 0.0, 3.0, 3.0])
    days_since = np.array([5.0, 40.0, 120.0, 10.0, 100.0])
    usual_gap = np.array([np.nan, np.nan, np.nan, 20.0, 20.0])
    offsets = recommended_contact_offsets(frequency, days_since, usual_gap, 50.0, POLICY)
    # 21 days after the first purchase; past it: now; a first buyer gone 120 days: 1.5 x the shop's gap
    assert offsets[0] == POLICY.first_follow_up_days - 5 and offsets[1] == 0.0 and offsets[2] == 0.0
    # 1.5 x 20 days after the last purchase: 20 more days; long overdue: now
    assert offsets[3] == 20.0 and offsets[4] == 0.0


def _scores(n: int = 6) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i}" for i in range(n)],
            "clv": np.linspace(50, 300, n),
            "value_score": np.linspace(50, 300, n),
            "p_alive": np.full(n, 0.8),
            "churn_probability": np.full(n, 0.6),
            "expected_purchases_clv_horizon": np.full(n, 3.0),
            "expected_order_value": np.array([10.0, 20.0, 90.0, 100.0, 120.0, 150.0])[:n],
            "days_since_last": np.full(n, 120.0),
            "frequency": np.full(n, 3.0),
            "tags": [""] * n,
        }
    )
    return decide(frame, POLICY)


def test_offer_price_leaves_out_customers_whose_orders_are_far_below_it():
    scores = _scores()
    out = exclude_below_offer_price(scores, 150.0, POLICY)
    low = out["customer_id"].isin(["c0", "c1"]).to_numpy()  # 10 and 20 < 150 / 3
    assert (out.loc[low, "exclude_reason"] == BELOW_OFFER_PRICE).all()
    assert (out.loc[low, "action"] == "none").all() and (out.loc[low, "incentive"] == 0).all()
    assert not (out.loc[~low, "exclude_reason"] == BELOW_OFFER_PRICE).any()
    result = select_campaign(out, 1e6, POLICY)
    counted = result.excluded.set_index("reason")["customers"]
    assert counted[BELOW_OFFER_PRICE] == 2 and counted[WITHIN_REPURCHASE_CYCLE] == 0
    assert counted.sum() + len(result.selected) == len(out)


def test_a_customer_inside_their_categorys_cycle_is_left_out():
    scores = _scores(2)
    tx = pd.DataFrame(
        {
            "customer_id": ["c0", "c0", "c1", "c1", "x", "x"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-03-01", "2024-01-01", "2024-01-21", "2024-01-01", "2024-01-31"]),
            "amount": 10.0,
            "is_return": False,
            "category": ["tea", "tea", "cups", "cups", "tea", "tea"],
        }
    )
    out = add_transaction_signals(scores, tx, "2024-03-10", POLICY)
    # tea's cycle: gaps 60 and 30 days, median 45; c0 bought tea 9 days ago -> inside it
    # cups' cycle: 20 days; c1 bought cups 49 days ago -> due again
    reason = out.set_index("customer_id")["exclude_reason"]
    assert reason["c0"] == WITHIN_REPURCHASE_CYCLE and reason["c1"] != WITHIN_REPURCHASE_CYCLE
