"""The campaign report on generated campaigns: figures against the known truth, and the one-line refusals."""

import numpy as np
import pandas as pd
import pytest

from core.errors import DataError
from targeting.campaign_report import (
    ALL,
    REPORT_COLUMNS,
    read_assignments,
    report_campaigns,
    report_lines,
)
from targeting.policy import TargetingPolicy

POLICY = TargetingPolicy()
CONTRACT = (
    "campaign_id",
    "value_tier",
    "lifecycle_stage",
    "incremental_conversion",
    "incremental_conversion_low",
    "incremental_conversion_high",
    "incremental_profit",
    "incremental_profit_low",
    "incremental_profit_high",
    "expected_incremental_profit",
)


def report(assignments, transactions, **kwargs):
    return report_campaigns(
        read_assignments(assignments), transactions, margin_rate=POLICY.margin_rate, contact_costs=POLICY.contact_costs, **kwargs
    )


@pytest.fixture(scope="module")
def full(shop):
    return report(shop.assignments, shop.transactions)


def test_report_has_the_contract_columns_and_an_overall_row_per_campaign(full, shop):
    assert set(CONTRACT) <= set(REPORT_COLUMNS) == set(full.table.columns)
    overall = full.table[full.table["value_tier"] == ALL]
    assert (overall["lifecycle_stage"] == ALL).all()
    assert sorted(overall["campaign_id"]) == sorted(shop.assignments["campaign_id"].unique())
    assert not full.problems


def test_counts_add_up(full, shop):
    overall = full.table[full.table["value_tier"] == ALL].set_index("campaign_id")
    truth = shop.assignments.groupby(["campaign_id", "group"]).size().unstack()
    assert overall["customers_treatment"].to_dict() == truth["treatment"].to_dict()
    assert overall["customers_control"].to_dict() == truth["control"].to_dict()
    cells = full.table[full.table["value_tier"] != ALL].groupby("campaign_id")[["customers_treatment", "customers_control"]].sum()
    pd.testing.assert_frame_equal(cells, overall[["customers_treatment", "customers_control"]], check_dtype=False)


def test_conversion_is_measured_from_the_window(full, shop):
    # recount buyers of one campaign by hand: a purchase row in (send, send + 30 days]
    one = shop.assignments[shop.assignments["campaign_id"] == "sim-1"]
    send = pd.Timestamp(one["send_date"].iloc[0])
    log = shop.transactions
    window = log[(log["timestamp"] > send) & (log["timestamp"] <= send + pd.Timedelta(days=30)) & ~log["is_return"]]
    buyers = set(window["customer_id"]) & set(one.loc[one["group"] == "treatment", "customer_id"])
    row = full.table[(full.table["campaign_id"] == "sim-1") & (full.table["value_tier"] == ALL)].iloc[0]
    assert row["buyers_treatment"] == len(buyers)


def test_intervals_cover_the_true_mean_uplift(full, shop):
    overall = full.table[full.table["value_tier"] == ALL].set_index("campaign_id")
    true = shop.assignments[shop.assignments["group"] == "treatment"].groupby("campaign_id")["true_uplift"].mean()
    low, high = overall["incremental_conversion_low"], overall["incremental_conversion_high"]
    assert (low <= high).all()
    # three 90% intervals: all three cover with probability 0.73; at least two with 0.97
    assert ((low <= true) & (true <= high)).sum() >= 2
    assert (overall["incremental_conversion"] > 0).all()  # persuadables outnumber sleeping dogs


def test_window_not_ended_is_one_line(shop):
    late = shop.transactions[shop.transactions["timestamp"] < pd.Timestamp(shop.assignments["send_date"].max()) + pd.Timedelta(days=10)]
    result = report(shop.assignments, late)
    assert any("window ends" in p and "after the log's last transaction" in p for p in result.problems)
    with pytest.raises(DataError, match="window ends"):
        report_lines(report(shop.assignments[shop.assignments["send_date"] == shop.assignments["send_date"].max()], late))


def test_no_control_is_one_line(shop):
    treated = shop.assignments[(shop.assignments["campaign_id"] == "sim-1") & (shop.assignments["group"] == "treatment")]
    result = report(treated, shop.transactions)
    assert result.table.empty
    assert result.problems == ["campaign sim-1: no control customers, so its effect cannot be measured"]
    with pytest.raises(DataError, match="no control customers"):
        report_lines(result)


def test_no_buyers_is_one_line(shop):
    one = shop.assignments[shop.assignments["campaign_id"] == "sim-1"]
    quiet = shop.transactions[~shop.transactions["customer_id"].isin(one["customer_id"])]
    result = report(one, quiet)
    assert result.problems == ["campaign sim-1: no customer bought within the 30-day window, so there is no effect to measure"]


def test_incentive_is_paid_by_every_treated_buyer(shop, full):
    coupon = shop.assignments[(shop.assignments["campaign_id"] == "sim-2")]
    row = full.table[(full.table["campaign_id"] == "sim-2") & (full.table["value_tier"] == ALL)].iloc[0]
    assert row["incentive_cost"] > 0
    assert row["contact_cost"] == pytest.approx(0.05 * (coupon["group"] == "treatment").sum())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a.drop(columns=["group"]), "lacks columns"),
        (lambda a: a.assign(group="maybe"), "treatment or control"),
        (lambda a: a.assign(send_date="soon"), "send_date must be a date"),
    ],
)
def test_bad_assignment_files_are_refused(shop, change, message):
    with pytest.raises(DataError, match=message):
        read_assignments(change(shop.assignments))


def test_report_is_reproducible(shop):
    one = shop.assignments[shop.assignments["campaign_id"] == "sim-3"]
    a, b = report(one, shop.transactions), report(one, shop.transactions)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert np.isfinite(a.table.loc[0, ["incremental_profit_low", "incremental_profit_high"]].to_numpy(dtype=float)).all()
