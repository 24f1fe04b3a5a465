"""Loading and validating transaction logs: every row is accepted or rejected with a reason."""

import pandas as pd
import pytest

from core.errors import DataError
from features import load_transactions, validate_transactions


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


def test_zero_amount_is_a_reject_only_on_a_purchase():
    raw = _raw(
        customer_id=["1", "1", "1"],
        timestamp=["2024-01-01", "2024-01-02", "2024-01-03"],
        amount=[5.0, 0.0, 0.0],
        is_return=[False, False, True],
    )
    result = validate_transactions(raw)
    assert result.rejects["reason"].tolist() == ["zero_amount"]
    assert result.rejects["row"].tolist() == [1]
    assert result.transactions["is_return"].tolist() == [False, True]


def test_missing_amount_is_filled_from_quantity_and_price():
    raw = _raw(
        customer_id=["1", "1", "2"],
        timestamp=["2024-01-01", "2024-01-02", "2024-01-03"],
        amount=[5.0, None, None],
        quantity=[1.0, 3.0, None],
        unit_price=[5.0, 2.0, None],
    )
    result = validate_transactions(raw)
    assert result.transactions["amount"].tolist() == [5.0, 6.0]
    assert result.rejects["reason"].tolist() == ["bad_amount"]


def test_ids_timestamps_and_money_in_the_forms_exports_use():
    raw = _raw(
        customer_id=[" 00042 ", "17850.0", "17850", "abc"],
        timestamp=["2024-01-01T10:00:00+02:00", "2024-01-02", "01/03/2024 08:00", "2024-01-04 23:59:59"],
        amount=["$1,234.50", "12", "-3.5", "1,5"],
    )
    result = validate_transactions(raw)
    tx = result.transactions
    assert tx["customer_id"].tolist() == ["00042", "17850", "17850"]
    assert tx["timestamp"].tolist() == [
        pd.Timestamp("2024-01-01 08:00"),  # offsets are converted to UTC
        pd.Timestamp("2024-01-02"),
        pd.Timestamp("2024-01-03 08:00"),
    ]
    assert tx["amount"].tolist() == [1234.5, 12.0, -3.5]
    # "1,5" could be 1.5 or 15: rejected rather than guessed.
    assert result.rejects.set_index("row")["reason"].to_dict() == {3: "bad_amount"}


def test_validated_frame_is_sorted_and_rejects_point_at_input_positions():
    raw = _raw(
        customer_id=["b", "a", "b", None, "a"],
        timestamp=["2024-03-01", "2024-02-01", "2024-01-01", "2024-01-01", "2024-01-01"],
        amount=[1.0, 2.0, 3.0, 4.0, 5.0],
    )
    raw.index = [10, 11, 12, 13, 14]  # the caller's index does not matter: rows are positions
    result = validate_transactions(raw)
    tx = result.transactions
    assert list(zip(tx["customer_id"], tx["amount"], strict=True)) == [("a", 5.0), ("a", 2.0), ("b", 3.0), ("b", 1.0)]
    assert result.rejects["row"].tolist() == [3]
    assert pd.api.types.is_string_dtype(tx["customer_id"])
    assert tx["timestamp"].dtype == "datetime64[ns]"


def test_duplicates_are_exact_copies_of_an_earlier_row_in_every_column():
    raw = _raw(
        customer_id=["1", "1", "2", "1", "1"],
        timestamp=["2024-01-01 10:00"] * 5,
        amount=[5.0, 5.0, 5.0, 5.0, 5.0],
        StockCode=["A", "B", "A", "A", "B"],  # an unmapped column still tells lines apart
    )
    result = validate_transactions(raw)
    assert result.rejects.set_index("row")["reason"].to_dict() == {3: "duplicate", 4: "duplicate"}
    assert result.rejects["StockCode"].tolist() == ["A", "B"]


def test_optional_fields_are_typed():
    raw = _raw(
        customer_id=["1", "1"],
        timestamp=["2024-01-01", "2024-01-02"],
        amount=["10", "20"],
        order_id=[1001.0, None],
        category=["books", " "],
        discount=["-2", ""],
        promo=["yes", "0"],
        cost=["6", "inf"],
    )
    tx = validate_transactions(raw).transactions
    assert tx["order_id"].iloc[0] == "1001" and pd.isna(tx["order_id"].iloc[1])
    assert tx["category"].iloc[0] == "books" and pd.isna(tx["category"].iloc[1])
    assert tx["discount"].tolist() == [2.0, 0.0]
    assert tx["promo"].tolist() == [True, False]
    assert tx["cost"].iloc[0] == 6.0 and pd.isna(tx["cost"].iloc[1])


def test_mapping_by_column_number_works_with_a_header_too():
    raw = _raw(CustomerID=["7"], When=["2024-01-01"], Money=["3"])
    tx = validate_transactions(raw, mapping={"customer_id": "0", "timestamp": "1", "amount": "2"}).transactions
    assert tx["customer_id"].tolist() == ["7"]


def test_unknown_field_in_the_mapping_is_named():
    raw = _raw(customer_id=["1"], timestamp=["2024-01-01"], amount=["1"])
    with pytest.raises(DataError, match="unknown contract field.*customer"):
        validate_transactions(raw, mapping={"customer": "customer_id"})


def test_cdnow_sample_without_header_loads_by_column_number(cdnow_master_path):
    sample = cdnow_master_path.with_name("CDNOW_sample.txt")
    result = load_transactions(sample, mapping={"customer_id": "0", "timestamp": "2", "amount": "4"}, date_format="%Y%m%d")
    assert result.summary["rows_read"] == 6_919  # no header row was swallowed
    assert result.summary["customers"] == 2_349


def test_timestamps_keep_nanoseconds_and_out_of_range_dates_are_rejected():
    raw = _raw(
        customer_id=["1", "1", "1"],
        timestamp=["2024-01-01 10:00:00.123456789", "3000-01-01", "1500-01-01"],
        amount=[1.0, 2.0, 3.0],
    )
    result = validate_transactions(raw)
    assert result.transactions["timestamp"].tolist() == [pd.Timestamp("2024-01-01 10:00:00.123456789")]
    assert result.rejects["reason"].tolist() == ["bad_timestamp", "bad_timestamp"]


def test_skipping_the_schema_recheck_changes_nothing_but_time():
    """The API skips the pandera re-check of rows pydantic typed; the output is the same either way."""
    raw = _raw(
        customer_id=["b", "a", "a", " c", "b"],
        timestamp=["2024-01-02", "2024-01-01", "2024-01-03", "2024-01-01", "2024-01-02"],
        amount=[5.0, 7.0, -2.0, 3.0, 5.0],
        category=["x", None, "y", "x", "x"],
        discount=[0.0, 1.0, None, 0.5, 0.0],
    )
    checked, unchecked = validate_transactions(raw), validate_transactions(raw, check_schema=False)
    pd.testing.assert_frame_equal(unchecked.transactions, checked.transactions)
    pd.testing.assert_frame_equal(unchecked.rejects, checked.rejects)
