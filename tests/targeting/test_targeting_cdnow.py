"""Targeting on real customers: CDNOW scored by a BG/NBD + Gamma-Gamma fit (lifetimes, as the models do)."""

import importlib.resources
import math

import numpy as np
import pandas as pd
import pytest

from targeting.campaign import select_campaign
from targeting.decide import decide
from targeting.policy import TIERS, TargetingPolicy
from targeting.tiers import tier_cut_points

pytestmark = pytest.mark.slow

AS_OF = pd.Timestamp("1998-06-30")


@pytest.fixture(scope="module")
def cdnow_scores() -> pd.DataFrame:
    """One scores row per CDNOW customer (23,570), shaped like the models' output."""
    from lifetimes import BetaGeoFitter, GammaGammaFitter
    from lifetimes.utils import summary_data_from_transaction_data

    path = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_master.txt"
    tx = pd.read_csv(
        str(path), sep=r"\s+", header=0, names=["customer_id", "date", "cds", "amount"], dtype={"customer_id": str}
    )
    tx["date"] = pd.to_datetime(tx["date"].astype(str), format="%Y%m%d")
    rfm = summary_data_from_transaction_data(
        tx, "customer_id", "date", monetary_value_col="amount", observation_period_end=AS_OF, freq="D"
    )
    bgf = BetaGeoFitter(penalizer_coef=0.001).fit(rfm["frequency"], rfm["recency"], rfm["T"])
    repeat = rfm[(rfm["frequency"] > 0) & (rfm["monetary_value"] > 0)]
    ggf = GammaGammaFitter(penalizer_coef=0.001).fit(repeat["frequency"], repeat["monetary_value"])
    # a few repeat buyers have zero spend; Gamma-Gamma needs positive values: give them the population mean
    money = rfm["monetary_value"].where(rfm["monetary_value"] > 0, repeat["monetary_value"].mean())
    eov = ggf.conditional_expected_average_profit(rfm["frequency"], money)
    # lifetimes' CLV is discounted spend; Patron's CLV is the margin on it (models.clv, 30% by default)
    clv = 0.30 * ggf.customer_lifetime_value(
        bgf, rfm["frequency"], rfm["recency"], rfm["T"], money, time=12, discount_rate=0.01, freq="D"
    )
    p_alive = bgf.conditional_probability_alive(rfm["frequency"], rfm["recency"], rfm["T"])
    purchases = bgf.conditional_expected_number_of_purchases_up_to_time(365, rfm["frequency"], rfm["recency"], rfm["T"])
    purchases_90 = bgf.conditional_expected_number_of_purchases_up_to_time(90, rfm["frequency"], rfm["recency"], rfm["T"])
    spend = tx.groupby("customer_id")["amount"].agg(["sum", "count"])
    return pd.DataFrame(
        {
            "customer_id": rfm.index.astype(str),
            "frequency": rfm["frequency"].to_numpy(),
            "clv": clv.to_numpy(),
            "value_score": clv.to_numpy(),
            "p_alive": np.asarray(p_alive),
            # P(no purchase in 90 days) under the Poisson purchase process, a stand-in for the churn model
            "churn_probability": np.exp(-np.asarray(purchases_90)),
            "expected_purchases_clv_horizon": np.asarray(purchases),
            "expected_order_value": eov.to_numpy(),
            "days_since_last": (rfm["T"] - rfm["recency"]).to_numpy(),
            "avg_order_value": (spend["sum"] / spend["count"]).reindex(rfm.index).to_numpy(),
        }
    )


def test_real_customers_get_valid_decisions(cdnow_scores):
    policy = TargetingPolicy()
    decisions = decide(cdnow_scores, policy)
    n = len(decisions)
    assert n == 23570
    counts = decisions["value_tier"].value_counts().reindex(list(TIERS)).to_numpy()
    assert np.all(np.abs(counts - n * np.array(policy.tier_shares)) <= 1)
    assert np.isfinite(decisions[["net_value", "winback_profit", "incentive"]].to_numpy()).all()
    # CDNOW at mid-1998 is mostly customers who bought once in early 1997 and never came back
    assert (decisions["lifecycle_stage"] == "lost").mean() > 0.5
    # value is concentrated: diamonds hold far more net value than regulars
    by_tier = decisions.groupby("value_tier")["net_value"].mean()
    assert by_tier["diamond"] > 10 * max(by_tier["regular"], 1e-9)
    # no incentive above 20% of the average order, none for excluded customers
    assert (decisions["incentive"] <= 0.2 * decisions["avg_order_value"] + 1e-9).all()
    assert (decisions.loc[decisions["exclude_from_spend"], "incentive"] == 0).all()


def test_real_campaign_respects_the_budget_and_counts_everyone(cdnow_scores):
    policy = TargetingPolicy()
    decisions = decide(cdnow_scores, policy)
    candidates = decisions[~decisions["exclude_from_spend"]]
    budget = 100.0  # binding: contacting every candidate would cost more
    result = select_campaign(decisions, budget, policy)
    assert math.fsum(result.selected["spend"]) <= budget
    assert len(result.selected) + result.excluded["customers"].sum() == len(decisions)
    # the budget goes where it pays most: not every candidate fits, and the selection returns its cost
    assert len(result.selected) < len(candidates)
    assert result.expected_profit / result.spend > 1.0


def test_cut_points_differ_from_ranks_only_on_tied_scores(cdnow_scores):
    # one-time buyers of the same day share one CLV, so real ties straddle tier boundaries: ranks split
    # them by customer id, a cut-point cannot and puts them all in the better tier
    policy = TargetingPolicy()
    values = cdnow_scores["value_score"].to_numpy()
    cuts = tier_cut_points(values, policy.tier_shares)
    by_rank = decide(cdnow_scores, policy)["value_tier"].to_numpy()
    by_cuts = decide(cdnow_scores, policy, cut_points=cuts)["value_tier"].to_numpy()
    differ = by_rank != by_cuts
    assert differ.mean() < 0.01
    order = {tier: i for i, tier in enumerate(TIERS)}
    for value in np.unique(values[differ]):  # a handful of tied values, not customers
        tied = values == value
        assert tied.sum() > 1
        assert len(set(by_cuts[tied])) == 1  # all tied customers in one tier ...
        assert order[by_cuts[tied][0]] == min(order[t] for t in by_rank[tied])  # ... the best of their ranks
