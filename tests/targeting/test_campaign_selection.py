"""Campaign selection: never over budget, near the exact knapsack optimum, every customer accounted for."""

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import Bounds, LinearConstraint, milp

from targeting.campaign import greedy_knapsack, select_campaign
from targeting.decide import decide
from targeting.policy import TargetingPolicy

POLICY = TargetingPolicy()


def knapsack_case(seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Campaign-like items: contact costs of the three channels plus expected coupons, skewed profits."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(30, 201))
    contact = rng.choice([0.05, 0.15, 1.2], n, p=[0.7, 0.2, 0.1])
    redeem = rng.choice([0.16, 0.11, 0.06, 0.026, 0.008], n)  # base conversion + uplift, by stage
    incentive = rng.uniform(0, 12, n) * (rng.uniform(size=n) < 0.7)
    cost = contact + redeem * incentive
    profit = rng.lognormal(0.5, 1.2, n)
    budget = float(rng.uniform(0.05, 0.6) * cost.sum())
    return profit, cost, budget


def exact_optimum(profit: np.ndarray, cost: np.ndarray, budget: float) -> float:
    """The 0/1 knapsack optimum by mixed-integer programming (HiGHS through scipy)."""
    result = milp(
        -profit,
        constraints=LinearConstraint(cost[None, :], -np.inf, budget),
        integrality=np.ones_like(profit),
        bounds=Bounds(0, 1),
        options={"mip_rel_gap": 1e-9},
    )
    assert result.success
    return -float(result.fun)


def reference_greedy(profit: np.ndarray, cost: np.ndarray, budget: float) -> list[int]:
    """The item-by-item greedy the vectorised rounds must reproduce (a loop is fine in a test)."""
    ratio = np.divide(profit, cost, out=np.full(profit.shape, np.inf), where=cost > 0)
    chosen, remaining = [], budget
    for i in np.lexsort((-profit, -ratio)):
        if cost[i] <= remaining:
            chosen.append(int(i))
            remaining -= cost[i]
    return chosen


def test_greedy_is_within_one_percent_of_the_exact_optimum():
    gaps = []
    for seed in range(100):  # 1000 cases in benchmarks/bench_targeting.py
        profit, cost, budget = knapsack_case(seed)
        chosen = greedy_knapsack(profit, cost, budget)
        assert math.fsum(cost[chosen]) <= budget
        optimum = exact_optimum(profit, cost, budget)
        gaps.append((optimum - profit[chosen].sum()) / optimum)
    worst = max(gaps)
    print(f"worst gap to the exact optimum over {len(gaps)} cases: {worst:.4%}")
    assert worst <= 0.01


def test_plain_greedy_rounds_match_the_item_by_item_loop():
    for seed in range(50):
        profit, cost, budget = knapsack_case(seed)
        plain = greedy_knapsack(profit, cost, budget, core_size=0)
        reference = reference_greedy(profit, cost, budget)
        # plain greedy, unless the single best item alone beats it
        if profit[plain].sum() > profit[reference].sum():
            assert len(plain) == 1
        else:
            assert plain.tolist() == reference


@settings(max_examples=300, deadline=None)
@given(
    items=st.lists(st.tuples(st.floats(0.0, 1e4), st.floats(0.0, 1e3)), min_size=0, max_size=60),
    budget=st.floats(0.0, 1e4),
)
def test_budget_is_never_exceeded(items, budget):
    profit = np.array([p for p, _ in items], dtype=float)
    cost = np.array([c for _, c in items], dtype=float)
    chosen = greedy_knapsack(profit, cost, budget)
    assert len(set(chosen.tolist())) == len(chosen)
    assert math.fsum(cost[chosen]) <= budget


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 10_000), budget=st.floats(0.0, 500.0))
def test_campaign_spend_is_never_over_budget(scores_factory, seed, budget):
    # scores_factory is a pure function, safe to share between hypothesis examples
    result = select_campaign(decide(scores_factory(300, seed), POLICY), budget, POLICY)
    assert math.fsum(result.selected["spend"]) <= budget


def test_every_customer_is_counted(scores):
    decisions = decide(scores, POLICY)
    result = select_campaign(decisions, budget=20.0, policy=POLICY)
    excluded = dict(zip(result.excluded["reason"], result.excluded["customers"], strict=True))
    assert len(result.selected) + sum(excluded.values()) == len(decisions)
    assert excluded["over_budget"] > 0
    for reason in ("negative_net_value", "recent_purchase", "no_positive_profit"):
        assert excluded[reason] == (decisions["exclude_reason"] == reason).sum()
    assert not set(result.selected["customer_id"]) & set(decisions.loc[decisions["exclude_from_spend"], "customer_id"])


def test_summary_adds_up_to_the_selected_list(scores):
    result = select_campaign(decide(scores, POLICY), budget=50.0, policy=POLICY)
    summary, selected = result.summary, result.selected
    assert len(summary) == 4 * 5
    assert summary["customers"].sum() == len(result.treatment)
    assert summary["control"].sum() == len(result.control) > 0
    assert summary["customers"].sum() + summary["control"].sum() == len(selected)
    assert summary["spend"].sum() == pytest.approx(selected["spend"].sum())
    assert summary["expected_incremental_profit"].sum() == pytest.approx(selected["expected_profit"].sum())
    active = summary[summary["spend"] > 0]
    np.testing.assert_allclose(active["expected_roi"], active["expected_incremental_profit"] / active["spend"])
    assert result.spend <= 50.0


def test_selected_list_columns_and_reason(scores):
    selected = select_campaign(decide(scores, POLICY), budget=10.0, policy=POLICY).selected
    assert list(selected.columns[:6]) == ["customer_id", "action", "channel", "incentive", "expected_profit", "reason"]
    assert len(selected) > 0
    treated = selected[selected["group"] == "treatment"]
    assert treated["reason"].str.contains("expected profit").all()
    assert (treated["expected_profit"] > 0).all()
    assert (treated["action"] != "none").all()


def test_bigger_budget_never_earns_less(scores):
    decisions = decide(scores, POLICY)
    # the knapsack alone: a control group drawn per campaign would make the treatment's profit jitter
    profits = [select_campaign(decisions, b, POLICY, control_share=0.0).expected_profit for b in (0, 5, 20, 100, 1e6)]
    assert profits[0] == 0
    assert all(later >= earlier - 1e-9 for earlier, later in zip(profits, profits[1:], strict=False))


def test_unlimited_budget_takes_every_candidate(scores):
    decisions = decide(scores, POLICY)
    result = select_campaign(decisions, 1e9, POLICY)
    assert len(result.selected) == (~decisions["exclude_from_spend"]).sum()
    assert result.excluded.set_index("reason").loc["over_budget", "customers"] == 0


@pytest.mark.parametrize("budget", [-1.0, float("nan"), float("inf")])
def test_bad_budget_is_rejected(scores, budget):
    with pytest.raises(ValueError, match="budget"):
        select_campaign(decide(scores, POLICY), budget, POLICY)


def test_decisions_without_decision_columns_are_rejected(scores):
    from core.errors import DataError

    with pytest.raises(DataError, match="decide"):
        select_campaign(scores, 10.0, POLICY)


def test_works_on_score_rows_without_feature_columns(scores):
    # the API passes only the scores table's columns: no avg_order_value, return_rate, ...
    decisions = decide(scores, POLICY).drop(columns=["avg_order_value", "return_rate", "return_value_share"])
    result = select_campaign(decisions, 25.0, POLICY)
    assert 0 < result.spend <= 25.0


def test_empty_decisions(scores):
    result = select_campaign(decide(scores, POLICY).iloc[:0], 100.0, POLICY)
    assert result.selected.empty
    assert result.excluded["customers"].sum() == 0
    assert isinstance(result.summary, pd.DataFrame)


def test_a_customers_own_uplift_prices_its_contact(scores):
    policy = TargetingPolicy()
    decisions = decide(scores, policy)
    own = decisions.assign(uplift=decisions["uplift"] + 0.3)  # e.g. a per-customer model's figures
    base, lifted = (select_campaign(d, 1e9, policy, control_share=0.0).selected.set_index("customer_id") for d in (decisions, own))
    both = base.index.intersection(lifted.index)
    paid = base.loc[both, "incentive"] > 0
    assert paid.any()
    # everyone holding an incentive redeems it more often when the contact causes more purchases
    assert (lifted.loc[both, "spend"][paid] > base.loc[both, "spend"][paid]).all()
    assert np.allclose(lifted.loc[both, "spend"][~paid], base.loc[both, "spend"][~paid])


def test_the_expected_profit_range_brackets_the_expectation_and_scales_with_the_clv_interval(scores):
    decisions = decide(scores, POLICY)
    assert select_campaign(decisions, budget=50.0, policy=POLICY).expected_profit_range is None  # no interval
    rng = np.random.default_rng(4)
    narrow = decisions.assign(clv_low=decisions["clv"], clv_high=decisions["clv"])
    result = select_campaign(narrow, budget=50.0, policy=POLICY)
    assert result.expected_profit_range == pytest.approx((result.expected_profit, result.expected_profit))
    wide = decisions.assign(
        clv_low=decisions["clv"] * rng.uniform(0.1, 0.9, len(decisions)),
        clv_high=decisions["clv"] * rng.uniform(1.5, 3.0, len(decisions)),
    )
    result = select_campaign(wide, budget=50.0, policy=POLICY)
    low, high = result.expected_profit_range
    assert low < result.expected_profit < high
    # doubling every high end doubles the part above the expectation (the range is linear in the ends)
    wider = wide.assign(clv_high=wide["clv"] + 2 * (wide["clv_high"] - wide["clv"]))
    _, high2 = select_campaign(wider, budget=50.0, policy=POLICY).expected_profit_range
    assert high2 - result.expected_profit == pytest.approx(2 * (high - result.expected_profit))
    assert "range" in result.expected_profit_text()
