"""Behaviour features on a hand-made log whose answers are known."""

import pandas as pd
import pytest

from features import build_features
from features.errors import DataError


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
    assert a["orders_30d"] == 1 and a["orders_90d"] == 2 and a["orders_365d"] == 3
    assert a["discount_share"] == pytest.approx(10 / 110)
    assert a["promo_share"] == pytest.approx(0.5)
    assert a["n_categories"] == 2 and a["top_category_share"] == pytest.approx(0.9)
    assert a["margin_rate"] == pytest.approx(0.5)
    b = f.loc["b"]
    assert b["frequency"] == 0 and b["gap_mean"] == 0
    # One purchase 1 day before as_of: its own tenure stands in for the unobserved gap.
    assert b["overdue_ratio"] == 1.0 and b["gap_trend"] == 1.0 and b["gap_std"] == 0


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
