"""Behaviour features on a hand-made log whose answers are known."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import DataError
from features import build_features


@pytest.fixture
def log():
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "a", "a", "b"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-01", "2024-02-01", "2024-03-02", "2024-03-30"]),
            "amount": [40.0, 10.0, 30.0, 20.0, 99.0],
            "is_return": [False] * 5,
            "order_id": ["o1", "o1", "o2", "o3", "o4"],
            "category": ["x", "y", "x", "x", "z"],
            "discount": [10.0, 0.0, 0.0, 0.0, 0.0],
            "promo": [True, True, False, False, False],
            "cost": [20.0, 5.0, 15.0, 10.0, 90.0],
        }
    )


def test_known_values(log):
    f = build_features(log, "2024-03-31")
    a = f.loc["a"]
    assert a["order_count"] == 3 and a["gross_spend"] == 100
    assert a["first_order_value"] == 50 and a["max_order_value"] == 50
    assert a["avg_order_value"] == pytest.approx(100 / 3)
    assert a["gap_mean"] == pytest.approx(30.5) and a["gap_std"] == pytest.approx(0.5)
    assert a["days_since_last"] == 29 and a["tenure_days"] == 90
    assert a["overdue_ratio"] == pytest.approx(29 / 30.5)
    assert a["gap_trend"] == pytest.approx(30 / 30.5)
    assert a["gap_last"] == 30 and a["gap_previous"] == 31
    assert a["overdue_longest_ratio"] == pytest.approx(29 / 31)
    assert a["orders_30d"] == 1 and a["orders_90d"] == 2 and a["orders_365d"] == 3
    assert a["discount_share"] == pytest.approx(10 / 110)
    assert a["promo_share"] == pytest.approx(0.5)
    assert a["n_categories"] == 2 and a["top_category_share"] == pytest.approx(0.9)
    assert a["margin_rate"] == pytest.approx(0.5)
    b = f.loc["b"]
    assert b["frequency"] == 0 and b["gap_mean"] == 0
    # One purchase 1 day before as_of: its own tenure stands in for the unobserved gap.
    assert b["overdue_ratio"] == 1.0 and b["gap_trend"] == 1.0 and b["gap_std"] == 0


def test_gap_features_by_hand():
    # c buys on days 0, 10, 40 and 45 (twice on day 10: one purchase day); d on 0 and 20; e once.
    days = {"c": [0, 10, 10, 40, 45], "d": [0, 20], "e": [50]}
    rows = [(c, pd.Timestamp("2024-01-01") + pd.Timedelta(days=d)) for c, ds in days.items() for d in ds]
    log = pd.DataFrame(rows, columns=["customer_id", "timestamp"]).assign(amount=5.0, is_return=False)
    # A return is not a purchase day: it neither closes a gap nor shortens the wait.
    log.loc[len(log)] = ["c", pd.Timestamp("2024-01-01") + pd.Timedelta(days=55), -5.0, True]
    f = build_features(log, pd.Timestamp("2024-01-01") + pd.Timedelta(days=60))
    c, d, e = f.loc["c"], f.loc["d"], f.loc["e"]
    assert c["gap_last"] == 5 and c["gap_previous"] == 30
    assert c["overdue_longest_ratio"] == pytest.approx(15 / 30)
    # Two purchase days: one gap, none before it.
    assert d["gap_last"] == 20 and d["gap_previous"] == 0
    assert d["overdue_longest_ratio"] == pytest.approx(40 / 20)
    # One purchase day: no gap observed; the tenure stands in for the longest gap, as for overdue_ratio.
    assert e["gap_last"] == 0 and e["gap_previous"] == 0
    assert e["overdue_longest_ratio"] == 1.0 == e["overdue_ratio"]
    # The waits count the current one (15, 40 and 10 days) as a gap.
    assert (c["recent_wait_days"], c["longest_wait_days"], c["avg_wait_days"]) == (15, 30, 60 / 4)
    assert (d["recent_wait_days"], d["longest_wait_days"], d["avg_wait_days"]) == (40, 40, 60 / 2)
    assert (e["recent_wait_days"], e["longest_wait_days"], e["avg_wait_days"]) == (10, 10, 10)


def test_gap_features_are_point_in_time():
    log = pd.DataFrame(
        {
            "customer_id": ["a"] * 4,
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-11", "2024-02-10", "2024-03-01"]),
            "amount": [1.0] * 4,
            "is_return": [False] * 4,
        }
    )
    a = build_features(log, "2024-02-15").loc["a"]
    # The purchase on 2024-03-01 is after as_of: gaps 10 and 30, away 5 days of a longest 30.
    assert a["gap_last"] == 30 and a["gap_previous"] == 10
    assert a["overdue_longest_ratio"] == pytest.approx(5 / 30)
    first_day = build_features(log, "2024-01-01").loc["a"]
    assert first_day["gap_last"] == 0 and first_day["overdue_longest_ratio"] == 0


def test_absent_columns_mean_absent_features(log):
    f = build_features(log[["customer_id", "timestamp", "amount", "is_return"]], "2024-03-31")
    for column in ("discount_share", "promo_share", "n_categories", "top_category_share", "margin_rate"):
        assert column not in f.columns
    # Without order ids an order is one timestamp: a's two rows on 2024-01-01 are one order.
    assert f.loc["a", "order_count"] == 3


def test_labels_need_data_covering_the_horizon(log):
    with pytest.raises(DataError, match="need data through"):
        build_features(log, "2024-03-31", horizon_days=90)


def test_no_purchase_before_as_of_gives_an_empty_frame_with_every_column(log):
    empty = build_features(log, "2023-01-01", horizon_days=30)
    assert empty.empty and empty.index.name == "customer_id"
    assert list(empty.columns) == list(build_features(log, "2024-02-15", horizon_days=30).columns)


AS_OF = pd.Timestamp("2024-03-31")


@st.composite
def purchase_logs(draw):
    """Purchases (some after as_of, some returns) of a few customers on a few dozen days."""
    n = draw(st.integers(1, 40))
    customers = draw(st.lists(st.sampled_from(list("abcde")), min_size=n, max_size=n))
    offsets = draw(st.lists(st.integers(-120, 30), min_size=n, max_size=n))
    returns = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    hours = draw(st.lists(st.integers(0, 23), min_size=n, max_size=n))
    timestamps = AS_OF + pd.to_timedelta(offsets, unit="D") + pd.to_timedelta(hours, unit="h")
    return pd.DataFrame(
        {
            "customer_id": customers,
            "timestamp": timestamps.astype("datetime64[ns]"),
            "amount": np.where(returns, -3.0, 3.0),
            "is_return": returns,
        }
    )


@settings(max_examples=100, deadline=None)
@given(purchase_logs())
def test_gap_features_match_a_groupby_reference(log):
    past = log.loc[~log["is_return"] & (log["timestamp"] < AS_OF + pd.Timedelta(days=1))]
    if past.empty:
        return
    f = build_features(log, AS_OF)
    days = past.assign(day=past["timestamp"].dt.normalize())[["customer_id", "day"]].drop_duplicates()
    days = days.sort_values(["customer_id", "day"])
    gaps = days.groupby("customer_id")["day"].diff().dt.days
    by = days.assign(gap=gaps).groupby("customer_id")["gap"]
    last = by.nth(-1).groupby(days["customer_id"]).first().reindex(f.index).fillna(0)
    previous = by.nth(-2).groupby(days["customer_id"]).first().reindex(f.index).fillna(0)
    longest = by.max().reindex(f.index).fillna(f["tenure_days"])
    np.testing.assert_array_equal(f["gap_last"].to_numpy(), last.to_numpy(dtype=float))
    np.testing.assert_array_equal(f["gap_previous"].to_numpy(), previous.to_numpy(dtype=float))
    expected = np.divide(f["days_since_last"], longest, out=np.zeros(len(f)), where=longest.to_numpy() > 0)
    np.testing.assert_allclose(f["overdue_longest_ratio"].to_numpy(), expected)
    # The longest gap is at least the mean one: away for longer than the longest is rarer.
    assert (f["overdue_longest_ratio"] <= f["overdue_ratio"] + 1e-12).all()
    assert ((f["gap_previous"] == 0) | (f["frequency"] >= 2)).all()
