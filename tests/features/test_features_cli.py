"""`patron features` and `patron generate` on real and generated files, and on bad input."""

import pandas as pd
import pytest
from realdata import ONLINE_RETAIL_MAP
from typer.testing import CliRunner

from patron.cli import app

runner = CliRunner()


def test_features_on_cdnow_master(cdnow_master_path, tmp_path):
    out = tmp_path / "f.parquet"
    result = runner.invoke(
        app,
        [
            "features", "--transactions", str(cdnow_master_path),
            "--map", "timestamp=date", "--map", "amount=dollar_value", "--map", "quantity=number_of_cds",
            "--date-format", "%Y%m%d", "--as-of", "1997-09-30", "--out", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "rows read" in result.output and "duplicate" in result.output
    features = pd.read_parquet(out)
    assert features.index.name == "customer_id"
    assert {"frequency", "recency", "T", "monetary_value", "overdue_ratio"} <= set(features.columns)
    rejects = pd.read_csv(tmp_path / "f.rejects.csv")
    assert set(rejects["reason"]) <= {"zero_amount", "duplicate"}


def test_bad_rows_are_reported_and_written(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("cust,when,value\n1,2024-01-01,10\n,2024-01-02,5\n2,yesterday,3\n3,2024-01-03,abc\n3,2024-01-04,7\n")
    out = tmp_path / "f.csv"
    result = runner.invoke(
        app,
        ["features", "--transactions", str(log), "--map", "customer_id=cust", "--map", "timestamp=when",
         "--map", "amount=value", "--as-of", "2024-01-31", "--out", str(out), "--rejects", str(tmp_path / "bad.csv")],
    )
    assert result.exit_code == 0, result.output
    assert "missing_customer_id" in result.output and "bad_timestamp" in result.output and "bad_amount" in result.output
    assert len(pd.read_csv(tmp_path / "bad.csv")) == 3
    assert len(pd.read_csv(out)) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--transactions", "/no/such/file.csv"], "no such file"),
        (["--transactions", "{log}", "--map", "amount=Nope"], "not in the file"),
        (["--transactions", "{log}", "--map", "bogus"], "field=Column"),
        (["--transactions", "{log}", "--time-unit-days", "3"], "time_unit_days"),
    ],
)
def test_bad_input_is_one_line_and_exit_1(tmp_path, args, message):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,timestamp,amount\n1,2024-01-01,10\n")
    args = [a.replace("{log}", str(log)) for a in args]
    result = runner.invoke(app, ["features", *args, "--as-of", "2024-01-31", "--out", str(tmp_path / "f.parquet")])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


@pytest.mark.slow
@pytest.mark.realdata
def test_features_on_online_retail_with_only_map_options(online_retail_path, tmp_path):
    out = tmp_path / "retail.parquet"
    maps = [arg for field, column in ONLINE_RETAIL_MAP.items() for arg in ("--map", f"{field}={column}")]
    result = runner.invoke(
        app, ["features", "--transactions", str(online_retail_path), *maps, "--as-of", "2011-09-30", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "135,080" in result.output
    features = pd.read_parquet(out)
    assert len(features) > 3_000
    assert (features["return_count"] > 0).sum() > 500


def test_generate_writes_log_and_truth(tmp_path):
    out = tmp_path / "shop.parquet"
    result = runner.invoke(app, ["generate", "--customers", "300", "--out", str(out), "--seed", "7"])
    assert result.exit_code == 0, result.output
    log = pd.read_parquet(out)
    truth = pd.read_parquet(tmp_path / "shop.truth.parquet")
    assert set(log["customer_id"]) == set(truth.index)
    assert {"unprofitable", "lambda_", "p_dropout", "return_propensity"} <= set(truth.columns)


def test_cdnow_with_explicit_whitespace_separator_and_weeks(cdnow_master_path, tmp_path):
    out = tmp_path / "weeks.csv"
    result = runner.invoke(
        app,
        [
            "features", "--transactions", str(cdnow_master_path), "--sep", r"\s+",
            "--map", "timestamp=date", "--map", "amount=dollar_value", "--date-format", "%Y%m%d",
            "--as-of", "1997-09-30", "--time-unit-days", "7", "--horizon-days", "180", "--out", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    features = pd.read_csv(out, dtype={"customer_id": str}).set_index("customer_id")
    assert features.index[0] == "00001"  # ids keep their leading zeros
    assert (features["T"] <= 273 / 7).all() and (features["recency"] <= features["T"]).all()
    assert set(features["churned"].unique()) == {0, 1}


def test_headerless_file_mapped_by_column_number(cdnow_master_path, tmp_path):
    sample = cdnow_master_path.with_name("CDNOW_sample.txt")
    out = tmp_path / "sample.parquet"
    result = runner.invoke(
        app,
        [
            "features", "--transactions", str(sample), "--no-header", "--map", "customer_id=0",
            "--map", "timestamp=2", "--map", "amount=4", "--date-format", "%Y%m%d",
            "--as-of", "1997-09-30", "--out", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "6,919" in result.output  # every line is data
    assert len(pd.read_parquet(out)) == 2_349


def test_as_of_before_any_purchase_is_one_error_line(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,timestamp,amount\n1,2024-01-01,10\n")
    result = runner.invoke(
        app, ["features", "--transactions", str(log), "--as-of", "2023-01-01", "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1].startswith("error: no customer has a purchase on or before")
    assert not (tmp_path / "f.parquet").exists()


def test_a_file_with_no_usable_row_is_one_error_line(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer_id,timestamp,amount\n,2024-01-01,10\n2,never,3\n")
    result = runner.invoke(
        app, ["features", "--transactions", str(log), "--as-of", "2024-01-31", "--out", str(tmp_path / "f.parquet")]
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert lines == ["error: no usable rows: all 2 rows were rejected (missing_customer_id: 1, bad_timestamp: 1)"]
