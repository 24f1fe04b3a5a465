"""Out-of-time design: dates, snapshots, history guard rail."""

from __future__ import annotations

import pandas as pd
import pytest

from core.errors import DataError
from training.split import plan_out_of_time, required_history_days, restrict_to


def _log(start: str, end: str) -> pd.DataFrame:
    days = pd.date_range(start, end, freq="D")
    return pd.DataFrame(
        {"customer_id": ["a"] * len(days), "timestamp": days + pd.Timedelta(hours=10), "amount": 1.0}
    )


def test_plan_places_holdout_and_snapshots_one_and_two_horizons_back():
    plan = plan_out_of_time(_log("1997-01-01", "1998-06-30"), horizon_days=90, n_snapshots=4, step_days=30)
    assert plan.data_end == pd.Timestamp("1998-06-30")
    assert plan.holdout_as_of == pd.Timestamp("1998-04-01")
    assert plan.evaluation_snapshots[0] == pd.Timestamp("1998-01-01")
    assert [d.date().isoformat() for d in plan.evaluation_snapshots] == [
        "1998-01-01",
        "1997-12-02",
        "1997-11-02",
        "1997-10-03",
    ]
    assert plan.production_snapshots[0] == plan.holdout_as_of
    # no training label of the out-of-time model reaches past the holdout's as-of date
    assert all(d + pd.Timedelta(days=90) <= plan.holdout_as_of for d in plan.evaluation_snapshots)


def test_as_of_cuts_the_data_and_snapshots_with_too_little_history_are_dropped():
    tx = _log("2010-12-01", "2011-12-09")
    plan = plan_out_of_time(tx, horizon_days=90, n_snapshots=6, step_days=30, as_of="2011-11-30")
    assert plan.data_end == pd.Timestamp("2011-11-30")
    earliest = plan.data_start + pd.Timedelta(days=90)
    assert min(plan.evaluation_snapshots) >= earliest
    assert len(plan.evaluation_snapshots) < 6
    assert restrict_to(tx, plan.data_end)["timestamp"].max() < pd.Timestamp("2011-12-01")


def test_too_short_history_says_how_many_days_are_needed():
    with pytest.raises(DataError, match=r"at least 270 days .* spans 199 days"):
        plan_out_of_time(_log("2011-01-01", "2011-07-19"), horizon_days=90)
    assert required_history_days(30) == 90
