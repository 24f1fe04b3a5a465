"""`patron score --engine spark` equals the local engine, row for row, on generated data and on CDNOW."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from spark_champion import Champion

from core.scores import DAY_SCORE_COLUMNS, SCORE_COLUMNS, TEXT_SCORE_COLUMNS
from features.io import rejects_path_for

pytestmark = pytest.mark.spark

N_CUSTOMERS = 1200
AS_OF = "2023-09-30"


def read_scores(path: Path) -> pd.DataFrame:
    """A scores file or folder sorted by customer_id, days as datetime64[ns] (Spark stores microseconds)."""
    frame = pd.read_parquet(path)
    for column in DAY_SCORE_COLUMNS:
        frame[column] = frame[column].astype("datetime64[ns]")
    return frame.sort_values("customer_id", kind="stable").reset_index(drop=True)


def read_rejects(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def assert_same_scores(local: pd.DataFrame, spark: pd.DataFrame) -> None:
    """Every column equal: text, flags and days exactly, floats to 1e-9 relative."""
    assert list(spark.columns) == list(SCORE_COLUMNS)
    assert len(spark) == len(local) > 0
    for column in SCORE_COLUMNS:
        if column in TEXT_SCORE_COLUMNS or column in (*DAY_SCORE_COLUMNS, "exclude_from_spend"):
            pd.testing.assert_series_equal(spark[column], local[column], check_names=False, obj=column)
        else:
            np.testing.assert_allclose(spark[column].to_numpy(float), local[column].to_numpy(float), rtol=1e-9, atol=0, err_msg=column)


@pytest.fixture(scope="module")
def messy_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated log with bad rows, written as three Parquet files whose customers' rows are spread over all three."""
    from features.synthetic import generate_transactions

    rows = generate_transactions(N_CUSTOMERS, seed=7, start="2022-01-01", end="2023-12-31").transactions
    rows = rows.sample(frac=1.0, random_state=3).reset_index(drop=True)  # a customer's rows in every file
    rows["customer_id"] = rows["customer_id"].astype(str)
    bad = rows.iloc[:4].copy()
    bad.loc[bad.index[0], "customer_id"] = " "  # missing_customer_id
    bad.loc[bad.index[1], "amount"] = np.inf  # bad_amount
    bad.loc[bad.index[2], "amount"] = 0.0  # zero_amount
    log = pd.concat([rows.iloc[:500], bad, rows.iloc[500:], rows.iloc[[10]]], ignore_index=True)  # last: a duplicate
    folder = tmp_path_factory.mktemp("messy") / "log"
    folder.mkdir()
    for number, part in enumerate(np.array_split(np.arange(len(log)), 3)):
        log.iloc[part].to_parquet(folder / f"part-{number}.parquet", index=False)
    return folder


def run_both(spark: Any, champion: Champion, log: Path, folder: Path, model_uri: str, **read: Any) -> tuple[Path, Path]:
    """Score `log` with the local engine and the Spark engine; the two outputs."""
    from jobs.spark.jobs import ValidationOptions, score_with_spark
    from serving.batch import load_model, score_file

    local_out = folder / "local.parquet"
    spark_out = folder / "spark"
    options = ValidationOptions(mapping=read.get("mapping", {}))
    score_file(log, local_out, load_model(model_uri, champion.tracking_uri), AS_OF, mapping=options.mapping, progress=False)
    score_with_spark(
        spark, str(log), str(spark_out), AS_OF, model_uri=model_uri, tracking_uri=champion.tracking_uri,
        options=options, partition_rows=read.get("partition_rows", 2000),
    )
    return local_out, spark_out


def test_spark_scores_equal_local_on_a_generated_log(spark: Any, champion: Champion, messy_log: Path, tmp_path: Path) -> None:
    local_out, spark_out = run_both(spark, champion, messy_log, tmp_path, champion.model_uri)
    assert_same_scores(read_scores(local_out), read_scores(spark_out))
    local_rejects, spark_rejects = read_rejects(rejects_path_for(local_out)), read_rejects(rejects_path_for(spark_out))
    assert {"bad_amount", "zero_amount", "duplicate"} <= set(spark_rejects["reason"])
    pd.testing.assert_frame_equal(spark_rejects, local_rejects)
    # each reject's row number is its position in the three-file log
    log = pd.read_parquet(messy_log)
    rows = spark_rejects["row"].astype(int).to_numpy()
    assert spark_rejects["amount"].tolist() == log["amount"].iloc[rows].astype(str).tolist()
    assert spark_rejects["order_id"].tolist() == log["order_id"].iloc[rows].astype(str).tolist()


def test_a_customer_read_from_several_input_partitions_is_scored_once(spark: Any, champion: Champion, messy_log: Path, tmp_path: Path) -> None:
    files = {path.name: pd.read_parquet(path)["customer_id"] for path in sorted(messy_log.glob("*.parquet"))}
    in_every_file = set.intersection(*(set(ids) for ids in files.values()))
    assert in_every_file, "the fixture must spread some customer over every file"
    customer = sorted(in_every_file)[0]
    spark.conf.set("spark.sql.files.maxPartitionBytes", "16k")  # many input splits
    try:
        local_out, spark_out = run_both(spark, champion, messy_log, tmp_path, champion.model_uri)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    local, scored = read_scores(local_out), read_scores(spark_out)
    assert (scored["customer_id"] == customer).sum() == 1
    assert_same_scores(local, scored)


def test_exact_tiers_over_partitions_equal_the_whole_populations(spark: Any, champion: Champion, messy_log: Path, tmp_path: Path) -> None:
    """Tiers rank the whole population: Spark's global boundaries over small partitions equal one whole-log pass."""
    from models.prediction import score_transactions

    _, spark_out = run_both(spark, champion, messy_log, tmp_path, champion.model_uri, partition_rows=1500)
    whole = score_transactions(pd.read_parquet(messy_log), champion.scorer, AS_OF).scores
    for column in DAY_SCORE_COLUMNS:
        whole[column] = whole[column].astype("datetime64[ns]")
    scored = read_scores(spark_out)
    assert scored["value_tier"].value_counts().to_dict() == whole["value_tier"].value_counts().to_dict()
    assert_same_scores(whole, scored)


def test_a_partition_whose_rows_are_all_rejected(spark: Any, champion: Champion, tmp_path: Path) -> None:
    """Partitions holding only bad rows give no scores and lose no reject; the others are scored."""
    from jobs.spark.jobs import ValidationOptions, keyed_rows
    from jobs.spark.source import KEY

    good = champion.transactions.iloc[:60][["customer_id", "timestamp", "amount"]].astype(str)
    bad = pd.DataFrame({"customer_id": [f"bad-{i}" for i in range(40)], "timestamp": "not a date", "amount": "1.0"})
    log = tmp_path / "log.csv"
    pd.concat([good, bad], ignore_index=True).to_csv(log, index=False)
    keyed = keyed_rows(spark, str(log), ValidationOptions(mapping={}), partition_rows=10)
    parts = keyed.frame.selectExpr(KEY, "spark_partition_id() AS part").toPandas()
    only_bad = parts.groupby("part")[KEY].agg(lambda keys: keys.str.startswith("bad-").all())
    assert only_bad.any() and not only_bad.all(), "the log must give partitions of bad rows only"
    local_out, spark_out = run_both(spark, champion, log, tmp_path, champion.model_uri, partition_rows=10)
    assert_same_scores(read_scores(local_out), read_scores(spark_out))
    rejects = read_rejects(rejects_path_for(spark_out))
    assert rejects["reason"].eq("bad_timestamp").sum() == 40
    pd.testing.assert_frame_equal(rejects, read_rejects(rejects_path_for(local_out)))


def test_no_rejected_row_gives_the_local_engines_rejects_file(spark: Any, champion: Champion, tmp_path: Path) -> None:
    """`patron score` publishes the rejects file with the scores, header only when nothing is rejected: Spark too."""
    log = tmp_path / "clean.csv"
    champion.transactions.iloc[:300][["customer_id", "timestamp", "amount"]].to_csv(log, index=False)
    local_out, spark_out = run_both(spark, champion, log, tmp_path, champion.model_uri)
    local_rejects, spark_rejects = rejects_path_for(local_out), rejects_path_for(spark_out)
    assert read_rejects(local_rejects).empty
    assert spark_rejects.read_bytes() == local_rejects.read_bytes() == b"row,customer_id,timestamp,amount,reason\n"


@pytest.mark.realdata
def test_spark_scores_equal_local_on_cdnow(spark: Any, champion: Champion, cdnow_csv: Path, tmp_path: Path) -> None:
    from features.datasets import CDNOW_DATE_FORMAT, CDNOW_MAPPING
    from jobs.spark.jobs import ValidationOptions, score_with_spark
    from serving.batch import score_file

    local_out, spark_out = tmp_path / "local.parquet", tmp_path / "spark"
    options = ValidationOptions(mapping={"customer_id": "customer_id", **CDNOW_MAPPING}, date_format=CDNOW_DATE_FORMAT)
    score_file(cdnow_csv, local_out, champion.scorer, "1998-06-30", progress=False, **options.as_kwargs())
    score_with_spark(spark, str(cdnow_csv), str(spark_out), "1998-06-30", model_uri=champion.model_uri,
                     tracking_uri=champion.tracking_uri, options=options, partition_rows=40_000)
    local = read_scores(local_out)
    assert len(local) > 23_000  # CDNOW's customers with a purchase by the as-of day
    assert_same_scores(local, read_scores(spark_out))
    pd.testing.assert_frame_equal(read_rejects(rejects_path_for(spark_out)), read_rejects(rejects_path_for(local_out)))
