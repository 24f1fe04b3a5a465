"""RFM equals lifetimes' summary_data_from_transaction_data, on CDNOW and on generated data."""

import numpy as np
import pandas as pd
import pytest
from lifetimes.utils import summary_data_from_transaction_data
from realdata import CDNOW_MAP

from features import build_features, load_transactions
from features.synthetic import generate_transactions

RFM = ["frequency", "recency", "T", "monetary_value"]


def _lifetimes_rfm(tx: pd.DataFrame, as_of: str) -> pd.DataFrame:
    purchases = tx.loc[~tx["is_return"], ["customer_id", "timestamp", "amount"]]
    reference = summary_data_from_transaction_data(
        purchases, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end=as_of, freq="D"
    )
    reference.index = reference.index.astype(str)
    return reference.sort_index()


@pytest.fixture(scope="module")
def cdnow_tx(cdnow_master_path):
    return load_transactions(cdnow_master_path, mapping=CDNOW_MAP, date_format="%Y%m%d").transactions


@pytest.mark.parametrize("as_of", ["1997-03-31", "1997-09-30", "1998-06-30"])
def test_cdnow_rfm_in_days_equals_lifetimes(cdnow_tx, as_of):
    ours = build_features(cdnow_tx, as_of)
    reference = _lifetimes_rfm(cdnow_tx, as_of)
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours[RFM].to_numpy(), reference[RFM].to_numpy(), rtol=1e-12, atol=1e-9)


def test_cdnow_rfm_in_weeks_is_days_over_seven(cdnow_tx):
    ours = build_features(cdnow_tx, "1997-09-30", time_unit_days=7)
    reference = _lifetimes_rfm(cdnow_tx, "1997-09-30")
    for column in ("recency", "T"):
        np.testing.assert_allclose(ours[column].to_numpy(), reference[column].to_numpy() / 7, rtol=1e-12)
    np.testing.assert_array_equal(ours["frequency"].to_numpy(), reference["frequency"].to_numpy())
    assert (ours["recency"] <= ours["T"]).all()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_generated_rfm_equals_lifetimes(seed):
    tx = generate_transactions(3000, seed=seed).transactions
    ours = build_features(tx, "2023-06-30")
    reference = _lifetimes_rfm(tx, "2023-06-30")
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours[RFM].to_numpy(), reference[RFM].to_numpy(), rtol=1e-12, atol=1e-9)


def test_returns_never_count_as_purchase_days():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "a", "a"],
            "timestamp": pd.to_datetime(["2024-01-01", "2024-01-10", "2024-01-20"]),
            "amount": [50.0, -20.0, 30.0],
            "is_return": [False, True, False],
        }
    )
    row = build_features(tx, "2024-01-31").loc["a"]
    assert row["frequency"] == 1 and row["recency"] == 19 and row["T"] == 30
    assert row["monetary_value"] == 30
    assert row["gross_spend"] == 80 and row["net_spend"] == 60
    assert row["return_count"] == 1 and row["return_amount"] == 20
    assert row["return_rate"] == pytest.approx(0.5)


def test_rfm_summary_alone_equals_lifetimes_in_weeks(cdnow_tx):
    from features import rfm_summary

    ours = rfm_summary(cdnow_tx, "1998-06-30", time_unit_days=7)
    reference = _lifetimes_rfm(cdnow_tx, "1998-06-30")
    reference[["recency", "T"]] /= 7
    assert list(ours.index) == list(reference.index)
    np.testing.assert_allclose(ours[RFM].to_numpy(), reference[RFM].to_numpy(), rtol=1e-12, atol=1e-9)


def test_cdnow_raw_file_equals_lifetimes_on_the_rows_the_contract_accepts(cdnow_master_path, cdnow_tx):
    """The loader drops only $0 rows and exact duplicate lines; on the rest RFM is lifetimes' own."""
    raw = pd.read_csv(cdnow_master_path, sep=r"\s+", dtype={"customer_id": str, "date": str})
    raw = raw.loc[raw["dollar_value"] > 0].drop_duplicates()
    raw = raw.assign(timestamp=pd.to_datetime(raw["date"], format="%Y%m%d"), amount=raw["dollar_value"])
    reference = summary_data_from_transaction_data(
        raw, "customer_id", "timestamp", monetary_value_col="amount", observation_period_end="1997-09-30", freq="D"
    ).sort_index()
    ours = build_features(cdnow_tx, "1997-09-30")
    assert len(ours) == len(reference) == 23_500
    np.testing.assert_allclose(ours[RFM].to_numpy(), reference[RFM].to_numpy(), rtol=1e-12, atol=1e-9)
