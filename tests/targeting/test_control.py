"""Control groups: stratified by tier x stage, reproducible, never contacted, budget spent on treatment."""

import math

import numpy as np
import pandas as pd
import pytest

from targeting.campaign import select_campaign
from targeting.control import control_mask, uniform_draws
from targeting.decide import decide
from targeting.policy import TargetingPolicy

POLICY = TargetingPolicy(uplift={s: 0.05 for s in ("new", "active", "sleeping", "at_risk", "lost")})


@pytest.fixture(scope="module")
def decisions(scores_factory):
    return decide(scores_factory(3000, seed=3), POLICY)


def test_draws_are_uniform_and_depend_on_campaign_and_customer():
    ids = [f"c{i}" for i in range(20_000)]
    a, b = uniform_draws("spring", ids), uniform_draws("autumn", ids)
    assert 0 <= a.min() and a.max() < 1
    assert abs(a.mean() - 0.5) < 0.01  # sd of the mean of 20,000 uniforms: 0.002
    assert np.array_equal(a, uniform_draws("spring", ids))
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.03


def test_every_stratum_holds_back_its_share():
    stratum = np.repeat(np.arange(4), [1000, 200, 50, 7])
    ids = np.arange(stratum.size).astype(str)
    mask = control_mask("c1", ids, stratum, 0.1)
    per = np.bincount(stratum, weights=mask)
    sizes = np.bincount(stratum)
    assert (per >= np.floor(0.1 * sizes)).all() and (per <= np.ceil(0.1 * sizes)).all()


def test_groups_do_not_depend_on_row_order():
    stratum = np.repeat([0, 1], 500)
    ids = np.arange(1000).astype(str)
    order = np.random.default_rng(0).permutation(1000)
    mask = control_mask("c1", ids, stratum, 0.2)
    shuffled = control_mask("c1", ids[order], stratum[order], 0.2)
    assert set(ids[mask]) == set(ids[order][shuffled])


def test_a_campaign_holds_back_control_and_spends_the_budget_on_treatment(decisions):
    result = select_campaign(decisions, 50.0, POLICY, campaign_id="spring", control_share=0.2)
    selected = result.selected
    control, treatment = result.control, result.treatment
    assert len(control) > 0 and len(treatment) > 0
    assert (selected["campaign_id"] == "spring").all()
    assert set(selected["group"]) == {"treatment", "control"}
    # control customers are not contacted and cost nothing
    assert (control["channel"] == "none").all() and (control["action"] == "none").all()
    assert (control["spend"] == 0).all() and (control["incentive"] == 0).all() and (control["expected_profit"] == 0).all()
    assert math.fsum(treatment["spend"]) <= 50.0
    assert result.spend == pytest.approx(math.fsum(treatment["spend"]))
    # counted in the summary, and about a fifth of the selected customers
    assert result.summary["control"].sum() == len(control)
    assert result.summary["customers"].sum() == len(treatment)
    assert 0.1 < len(control) / len(selected) < 0.3


def test_stratified_by_tier_and_stage(decisions):
    selected = select_campaign(decisions, 1e9, POLICY, campaign_id="all-in", control_share=0.25).selected
    counts = selected.groupby(["value_tier", "lifecycle_stage"])["group"].agg(
        control=lambda g: int((g == "control").sum()), size="size"
    )
    assert (counts["control"] >= np.floor(0.25 * counts["size"])).all()
    assert (counts["control"] <= np.ceil(0.25 * counts["size"])).all()


def test_a_rerun_gives_the_same_groups(decisions):
    first = select_campaign(decisions, 40.0, POLICY, campaign_id="x")
    again = select_campaign(decisions.sample(frac=1.0, random_state=1), 40.0, POLICY, campaign_id="x")
    key = ["customer_id", "group"]
    pd.testing.assert_frame_equal(
        first.selected[key].sort_values(key).reset_index(drop=True), again.selected[key].sort_values(key).reset_index(drop=True)
    )
    # without an id, the id comes from the content: the same scores give the same campaign
    assert select_campaign(decisions, 40.0, POLICY).campaign_id == select_campaign(decisions, 40.0, POLICY).campaign_id


def test_default_control_share_is_the_policy_s(decisions):
    result = select_campaign(decisions, 1e9, POLICY)
    assert result.control_share == POLICY.control_share == 0.1
    assert len(result.control) / len(result.selected) == pytest.approx(0.1, abs=0.02)


def test_no_control_when_the_share_is_zero(decisions):
    assert select_campaign(decisions, 40.0, POLICY, control_share=0.0).control.empty


@pytest.mark.parametrize("share", [1.0, -0.1, 1.5])
def test_bad_control_share_is_refused(decisions, share):
    with pytest.raises(ValueError, match="control share"):
        select_campaign(decisions, 40.0, POLICY, control_share=share)
