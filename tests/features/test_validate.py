"""Loading and validating transaction logs: every row is accepted or rejected with a reason."""

import pandas as pd
import pytest

from features import load_transactions, validate_transactions
from features.errors import DataError


def _raw(**columns):
    return pd.DataFrame(columns)


def test_each_bad_row_is_rejected_with_its_reason():
    raw = _raw(
        cust=["1", "", "3", "4", "5", "6", "6", "7.0"],
        when=["2024-01-01", "2024-01-02", "not a date", "2024-01-04", "2024-01-05", "2024-01-06", "2024-01-06", "2024-01-07"],
        value=["10", "5", "5", "abc", "0", "7.5", "7.5", "-3"],
    )
    result = validate_transactions(raw, mapping={"customer_id": "cust", "timestamp": "when", "amount": "value"})
    reasons = dict(zip(result.rejects["row"], result.rejects["reason"], strict=True))
    assert reasons == {1: "missing_customer_id", 2: "bad_timestamp", 3: "bad_amount", 4: "zero_amount", 6: "duplicate"}
    summary = result.summary
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"] == 8
    tx = result.transactions
    assert list(tx["customer_id"]) == ["1", "6", "7"]
    assert tx.loc[tx.customer_id == "7", "is_return"].item()
    assert tx.loc[tx.customer_id == "7", "amount"].item() == -3.0


def test_duplicates_can_be_kept():
    raw = _raw(customer_id=["1", "1"], timestamp=["2024-01-01", "2024-01-01"], amount=[5.0, 5.0])
    assert len(validate_transactions(raw, keep_duplicates=True).transactions) == 2
    assert len(validate_transactions(raw).transactions) == 1


def test_amount_from_quantity_and_price_and_return_flag():
    raw = _raw(
        customer_id=[17850.0, 17850.0],
        timestamp=["2024-01-01 10:00", "2024-01-03"],
        quantity=["2", "1"],
        unit_price=["3.5", "4"],
        is_return=["no", "yes"],
    )
    tx = validate_transactions(raw).transactions
    assert list(tx["customer_id"]) == ["17850", "17850"]
    assert list(tx["amount"]) == [7.0, -4.0]
    assert list(tx["is_return"]) == [False, True]


def test_missing_required_column_names_it():
    raw = _raw(customer_id=["1"], timestamp=["2024-01-01"])
    with pytest.raises(DataError, match="amount"):
        validate_transactions(raw)


def test_mapping_to_absent_column_is_clear():
    raw = _raw(customer_id=["1"], timestamp=["2024-01-01"], amount=["1"])
    with pytest.raises(DataError, match="Amount"):
        validate_transactions(raw, mapping={"amount": "Amount"})


def test_no_usable_rows_is_an_error():
    raw = _raw(customer_id=["", ""], timestamp=["2024-01-01", "x"], amount=["1", "2"])
    with pytest.raises(DataError, match="no usable rows"):
        validate_transactions(raw)


def test_unreadable_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_transactions(tmp_path / "absent.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError):
        load_transactions(empty)


def test_headerless_file_by_column_number(tmp_path):
    path = tmp_path / "log.txt"
    path.write_text("a 20240101 2 10.5\nb 20240102 1 3.0\n")
    result = load_transactions(path, mapping={"customer_id": "0", "timestamp": "1", "amount": "3"}, date_format="%Y%m%d")
    assert result.summary["rows_accepted"] == 2
    assert result.transactions["timestamp"].dt.day.tolist() == [1, 2]


def test_cdnow_master_loads_with_a_mapping(cdnow_master_path):
    result = load_transactions(cdnow_master_path, mapping={"timestamp": "date", "amount": "dollar_value"}, date_format="%Y%m%d")
    summary = result.summary
    assert summary["rows_read"] == 69_659
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"]
    assert set(summary["rejected_by_reason"]) <= {"zero_amount", "duplicate"}
    assert summary["first_timestamp"].startswith("1997-01-01")
    assert summary["last_timestamp"].startswith("1998-06-30")


@pytest.mark.slow
@pytest.mark.realdata
def test_online_retail_rejects_are_accounted(online_retail_path):
    from realdata import ONLINE_RETAIL_MAP

    result = load_transactions(online_retail_path, mapping=ONLINE_RETAIL_MAP)
    summary = result.summary
    assert summary["rows_read"] == 541_909
    assert summary["rows_read"] == summary["rows_accepted"] + summary["rows_rejected"]
    assert summary["rejected_by_reason"]["missing_customer_id"] == 135_080
    assert len(result.rejects) == summary["rows_rejected"]
    assert (result.rejects["reason"] == "missing_customer_id").sum() == 135_080
    # Cancellations (C invoices) and negative quantities are kept as returns, not dropped.
    tx = result.transactions
    assert tx["is_return"].sum() > 8_000
    assert (tx.loc[tx["is_return"], "amount"] < 0).all()
    assert tx["customer_id"].str.fullmatch(r"\d{5}").all()
