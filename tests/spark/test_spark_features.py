"""`patron features --engine spark` writes the local engine's features, row for row."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

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


def test_features_cli_spark_refuses_an_unknown_engine_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["features", "--transactions", str(tmp_path / "x.csv"), "--as-of", "2020-01-01",
                                      "--out", str(tmp_path / "f"), "--engine", "flink"])
    assert result.exit_code != 0
    assert "--engine must be local or spark" in result.output
    assert "Traceback" not in result.output
