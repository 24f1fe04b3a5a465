"""`patron features --engine spark` writes the local engine's features, row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from features.io import rejects_path_for
from patron.cli import app

pytestmark = pytest.mark.spark


@pytest.mark.realdata
def test_features_cli_spark_equals_local_on_cdnow(spark: Any, cdnow_csv: Path, tmp_path: Path) -> None:
    common = ["features", "--transactions", str(cdnow_csv), "--as-of", "1997-09-30", "--date-format", "%Y%m%d",
              "--map", "timestamp=date", "--map", "amount=dollar_value", "--map", "quantity=number_of_cds"]
    runner = CliRunner()
    local = runner.invoke(app, [*common, "--out", str(tmp_path / "local.parquet")])
    assert local.exit_code == 0, local.output
    spark_run = runner.invoke(app, [*common, "--out", str(tmp_path / "spark"), "--engine", "spark", "--spark-master", "local[2]"])
    assert spark_run.exit_code == 0, spark_run.output
    assert "Parquet folder" in spark_run.output
    expected = pd.read_parquet(tmp_path / "local.parquet")
    got = pd.read_parquet(tmp_path / "spark").set_index("customer_id").sort_index()
    assert len(got) == len(expected) > 20_000
    assert got.index.tolist() == expected.index.tolist()
    assert list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-9, atol=0)
    # CDNOW's rejected rows (duplicates), the same file from both engines
    spark_rejects = pd.read_csv(rejects_path_for(tmp_path / "spark"), dtype=str, keep_default_na=False)
    local_rejects = pd.read_csv(rejects_path_for(tmp_path / "local.parquet"), dtype=str, keep_default_na=False)
    assert len(spark_rejects) > 0
    pd.testing.assert_frame_equal(spark_rejects, local_rejects)


def test_features_cli_spark_refuses_an_unknown_engine_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["features", "--transactions", str(tmp_path / "x.csv"), "--as-of", "2020-01-01",
                                      "--out", str(tmp_path / "f"), "--engine", "flink"])
    assert result.exit_code != 0
    assert "--engine must be local or spark" in result.output
    assert "Traceback" not in result.output


def test_features_with_labels_spark_equals_local_when_partitions_end_early(spark: Any, tmp_path: Path) -> None:
    """Labels need the rows after as_of: every partition but one ends before as_of + H, yet only the whole log counts."""
    from features.synthetic import generate_transactions

    rows = generate_transactions(300, seed=11, start="2022-01-01", end="2023-06-30").transactions
    rows = rows[["customer_id", "timestamp", "amount", "order_id"]]
    late = pd.DataFrame({"customer_id": ["late"], "timestamp": [pd.Timestamp("2023-07-31")], "amount": [10.0],
                         "order_id": ["late-1"]})
    log = tmp_path / "log.csv"
    pd.concat([rows, late], ignore_index=True).to_csv(log, index=False)
    runner = CliRunner()

    def features(as_of: str, out: str, *engine: str) -> Any:
        return runner.invoke(app, ["features", "--transactions", str(log), "--as-of", as_of, "--horizon-days", "60",
                                   "--out", str(tmp_path / out), *engine])

    spark_engine = ("--engine", "spark", "--spark-master", "local[2]")
    local = features("2023-06-01", "local.parquet")  # the log's last day is as_of + 60 exactly: the "late" row
    assert local.exit_code == 0, local.output
    spark_run = features("2023-06-01", "spark", *spark_engine)
    assert spark_run.exit_code == 0, spark_run.output
    expected = pd.read_parquet(tmp_path / "local.parquet")
    got = pd.read_parquet(tmp_path / "spark").set_index("customer_id").sort_index()
    assert got.index.tolist() == expected.index.tolist() and len(got) > 250
    assert list(got.columns) == list(expected.columns) and got["churned"].dtype == expected["churned"].dtype
    assert 0 < expected["churned"].sum() < len(expected)
    np.testing.assert_allclose(got.to_numpy(float), expected.to_numpy(float), rtol=1e-9, atol=0)
    # no row rejected: neither engine writes a rejects file or a rejects line
    assert not rejects_path_for(tmp_path / "local.parquet").exists() and not rejects_path_for(tmp_path / "spark").exists()
    assert "rejects" not in local.output and "rejects" not in spark_run.output
    # one day later the log no longer covers the horizon: both engines refuse with the same line
    refused = [features("2023-06-02", name, *engine) for name, engine in (("l.parquet", ()), ("s", spark_engine))]
    assert [r.exit_code for r in refused] == [1, 1]
    assert refused[0].output == refused[1].output and "need data through 2023-08-01" in refused[0].output
