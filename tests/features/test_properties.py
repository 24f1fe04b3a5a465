"""Property tests: invariants of point-in-time features and labels on arbitrary logs."""

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from features import build_features

AS_OF = pd.Timestamp("2024-03-31")


@st.composite
def logs(draw):
    n = draw(st.integers(1, 60))
    customers = draw(st.lists(st.sampled_from(list("abcdefgh")), min_size=n, max_size=n))
    offsets = draw(st.lists(st.integers(-200, 120), min_size=n, max_size=n))
    hours = draw(st.lists(st.integers(0, 23), min_size=n, max_size=n))
    amounts = draw(st.lists(st.floats(0.5, 500, allow_nan=False), min_size=n, max_size=n))
    returns = draw(st.lists(st.booleans(), min_size=n, max_size=n))
    timestamps = AS_OF + pd.to_timedelta(offsets, unit="D") + pd.to_timedelta(hours, unit="h")
    # A purchase long after as_of by someone else marks how far the data reaches (labels need it).
    customers, timestamps = customers + ["later"], timestamps.append(pd.DatetimeIndex([AS_OF + pd.Timedelta(days=300)]))
    amounts, returns = amounts + [1.0], returns + [False]
    return pd.DataFrame(
        {
            "customer_id": customers,
            "timestamp": timestamps.astype("datetime64[ns]"),
            "amount": np.where(returns, -np.array(amounts), amounts),
            "is_return": returns,
        }
    )


def _features(tx, horizon=None):
    bought = tx.loc[~tx["is_return"] & (tx["timestamp"] < AS_OF + pd.Timedelta(days=1))]
    if bought.empty:
        return None
    return build_features(tx, AS_OF, horizon_days=horizon)


@settings(max_examples=150, deadline=None)
@given(logs())
def test_invariants(tx):
    features = _features(tx)
    if features is None:
        return
    assert (features["frequency"] <= features["order_count"] - 1).all()
    assert (features["recency"] <= features["T"]).all()
    assert (features["days_since_last"] >= 0).all()
    assert np.isfinite(features.to_numpy(dtype=float)).all()
    assert "later" not in features.index
    past_buyers = set(tx.loc[~tx["is_return"] & (tx["timestamp"] < AS_OF + pd.Timedelta(days=1)), "customer_id"])
    assert set(features.index) == past_buyers


@settings(max_examples=100, deadline=None)
@given(logs(), st.integers(-30, 30))
def test_rows_after_as_of_change_only_labels(tx, shift):
    features = _features(tx, horizon=120)
    if features is None:
        return
    future = tx["timestamp"] >= AS_OF + pd.Timedelta(days=1)
    changed = tx.copy()
    changed.loc[future, "amount"] = changed.loc[future, "amount"] * 2
    changed.loc[future, "timestamp"] = changed.loc[future, "timestamp"] + pd.Timedelta(days=abs(shift) % 5)
    again = build_features(changed, AS_OF, horizon_days=120)
    label_columns = ["churned", "holdout_purchases", "holdout_net_spend"]
    pd.testing.assert_frame_equal(features.drop(columns=label_columns), again.drop(columns=label_columns))


@settings(max_examples=100, deadline=None)
@given(logs())
def test_labels_use_only_the_window(tx):
    features = _features(tx, horizon=120)
    if features is None:
        return
    window = (tx["timestamp"] >= AS_OF + pd.Timedelta(days=1)) & (tx["timestamp"] < AS_OF + pd.Timedelta(days=121))
    in_window = tx.loc[window]
    days = in_window.loc[~in_window["is_return"]].assign(day=lambda f: f["timestamp"].dt.normalize())
    expected = days.groupby("customer_id")["day"].nunique().reindex(features.index, fill_value=0)
    np.testing.assert_array_equal(features["holdout_purchases"].to_numpy(), expected.to_numpy())
    assert ((features["holdout_purchases"] == 0) == (features["churned"] == 1)).all()
    spend = in_window.groupby("customer_id")["amount"].sum().reindex(features.index, fill_value=0.0)
    np.testing.assert_allclose(features["holdout_net_spend"].to_numpy(), spend.to_numpy(), atol=1e-9)
