"""decide: the rules every decision row obeys."""

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from targeting.campaign import select_campaign
from targeting.decide import DECISION_COLUMNS, EXCLUDE_REASONS, decide, ensure_decisions
from targeting.policy import TargetingPolicy
from targeting.tiers import tier_cut_points

POLICY = TargetingPolicy()


def test_adds_the_decision_columns_and_keeps_rows(scores):
    decisions = decide(scores, POLICY)
    assert list(decisions.columns) == list(scores.columns) + list(DECISION_COLUMNS)
    assert decisions.index.equals(scores.index)
    assert decisions["customer_id"].tolist() == scores["customer_id"].tolist()
    numeric = decisions[["net_value", "winback_profit", "incentive"]].to_numpy()
    assert np.isfinite(numeric).all()
    assert decisions["exclude_from_spend"].dtype == bool
    # the input is not modified
    assert "value_tier" not in scores.columns


def test_every_decision_is_taken_somewhere(scores_factory):
    decisions = decide(scores_factory(3000, seed=1), POLICY)
    assert set(decisions["lifecycle_stage"]) == {"new", "active", "sleeping", "at_risk", "lost"}
    assert set(EXCLUDE_REASONS) <= set(decisions["exclude_reason"])
    assert set(decisions["channel"]) - {"none"}


def test_negative_net_value_customers_never_get_an_incentive(scores_factory):
    decisions = decide(scores_factory(3000, seed=2), POLICY)
    negative = decisions["net_value"] < 0
    assert negative.sum() > 20
    assert (decisions.loc[negative, "incentive"] == 0).all()
    assert (decisions.loc[negative, "exclude_reason"] == "negative_net_value").all()
    assert decisions.loc[negative, "exclude_from_spend"].all()


def test_serial_returner_is_excluded_even_when_valuable(scores):
    frame = scores.head(3).copy()
    frame["clv"] = 2000.0
    frame["expected_purchases_clv_horizon"] = 100.0
    frame["return_rate"] = 1.0
    frame["return_value_share"] = 0.9
    frame["order_count"] = 20.0  # a history of returns, not one unlucky order
    decisions = decide(frame, POLICY)
    assert (decisions["exclude_reason"] == "negative_net_value").all()
    assert (decisions["action"] == "none").all()


def test_customer_who_bought_yesterday_is_never_contacted(scores):
    frame = scores.copy()
    frame["days_since_last"] = 1.0
    frame["churn_probability"] = 1.0  # even when the model is sure they churn
    decisions = decide(frame, POLICY)
    eligible = decisions["net_value"] >= 0
    assert (decisions.loc[eligible, "exclude_reason"] == "recent_purchase").all()
    assert (decisions["action"] == "none").all()
    assert (decisions["incentive"] == 0).all()
    campaign = select_campaign(decisions, budget=1e9, policy=POLICY)
    assert campaign.selected.empty


def test_recent_purchase_window_boundary(scores):
    frame = scores.head(4).copy()
    frame["clv"], frame["value_score"], frame["churn_probability"] = 500.0, 500.0, 0.9
    frame["days_since_last"] = [0.0, 2.0, 3.0, 10.0]  # recent_purchase_days = 2: days 0..2 are blocked
    decisions = decide(frame, POLICY)
    assert decisions["exclude_reason"].tolist() == ["recent_purchase", "recent_purchase", "", ""]


def test_excluded_rows_have_no_action_and_reasons_are_exclusive(scores):
    decisions = decide(scores, POLICY)
    excluded = decisions["exclude_from_spend"]
    assert ((decisions["exclude_reason"] != "") == excluded).all()
    assert (decisions.loc[excluded, ["action", "channel"]] == "none").all().all()
    assert (decisions.loc[~excluded, "winback_profit"] > 0).all()
    assert (decisions.loc[~excluded, "action"] != "none").all()


def test_customer_id_in_the_index_gives_the_same_decisions(scores):
    by_column = decide(scores, POLICY)
    by_index = decide(scores.set_index("customer_id"), POLICY)
    pd.testing.assert_frame_equal(
        by_column.set_index("customer_id")[list(DECISION_COLUMNS)], by_index[list(DECISION_COLUMNS)]
    )


def test_cut_points_make_single_customer_scoring_agree_with_batch(scores):
    cuts = tier_cut_points(scores["value_score"], POLICY.tier_shares)
    batch = decide(scores, POLICY, cut_points=cuts)
    alone = pd.concat([decide(scores.iloc[[i]], POLICY, cut_points=cuts) for i in range(0, 500, 50)])
    pd.testing.assert_frame_equal(alone, batch.iloc[::50])


def test_optional_columns_default_to_no_returns(scores):
    bare = scores.drop(columns=["avg_order_value", "return_rate", "return_value_share", "order_count"])
    decisions = decide(bare, TargetingPolicy(return_prior_orders=0))
    clv = bare["clv"].clip(lower=0)
    orders = np.maximum(bare["expected_purchases_clv_horizon"], clv / (0.30 * bare["expected_order_value"]))
    expected = clv - orders * 1.0  # no returns: margin kept is the CLV, one unit of service cost per order
    np.testing.assert_allclose(decisions["net_value"], expected)
    # incentives then scale with the expected order value
    assert (decisions["incentive"] <= 0.2 * bare["expected_order_value"] + 1e-9).all()


def test_missing_or_bad_columns_name_the_problem(scores):
    with pytest.raises(DataError, match="churn_probability"):
        decide(scores.drop(columns=["churn_probability"]), POLICY)
    frame = scores.copy()
    frame.loc[3, "clv"] = np.nan
    with pytest.raises(DataError, match="clv"):
        decide(frame, POLICY)


def test_empty_scores_give_empty_decisions(scores):
    decisions = decide(scores.iloc[:0], POLICY)
    assert decisions.empty
    assert set(DECISION_COLUMNS) <= set(decisions.columns)


def test_ensure_decisions_decides_only_when_needed(scores):
    decided = decide(scores, POLICY)
    assert ensure_decisions(decided, TargetingPolicy(active_days=10)) is decided
    assert set(DECISION_COLUMNS) <= set(ensure_decisions(scores, POLICY).columns)


def test_return_rates_of_few_orders_are_shrunk(scores):
    frame = scores.head(2).copy()
    frame["clv"], frame["expected_purchases_clv_horizon"], frame["expected_order_value"] = 30.0, 2.0, 50.0
    frame["return_rate"], frame["return_value_share"] = 1.0, 0.5
    frame["order_count"] = [1.0, 100.0]
    raw = decide(frame, TargetingPolicy(return_prior_orders=0))["net_value"].to_numpy()
    shrunk = decide(frame, TargetingPolicy(return_rate_prior=0.1, return_prior_orders=1))["net_value"].to_numpy()
    # one order: rates halfway to the prior (0.55 and 0.30); a hundred orders: barely moved
    assert raw[0] == raw[1] == pytest.approx(30 * 0.5 - 2 * (1 + 5))
    assert shrunk[0] == pytest.approx(30 * 0.7 - 2 * (1 + 0.55 * 5))
    assert shrunk[1] == pytest.approx(30 * (1 - 50.1 / 101) - 2 * (1 + 100.1 / 101 * 5))
