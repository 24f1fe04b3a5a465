"""The BTYD purchase rows Spark counts over a whole source equal the local engine's, exactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from features.datasets import CDNOW_DATE_FORMAT, CDNOW_MAPPING
from jobs.load import LoadOptions, load_log

pytestmark = [pytest.mark.spark, pytest.mark.realdata]

DATES = (pd.Timestamp("1997-09-30"), pd.Timestamp("1998-03-31"), pd.Timestamp("1998-06-30"))


def test_spark_counts_cdnows_purchase_rows_as_the_local_engine(spark: Any, cdnow_csv: Path) -> None:
    """Every distinct (frequency, recency, T) row and its customers, at three dates, over four partitions."""
    from features import build_features
    from jobs.spark.btyd import purchase_counts_with_spark
    from jobs.spark.sample import open_training_source
    from models.clv import purchase_counts

    options = LoadOptions(mapping=dict(CDNOW_MAPPING), date_format=CDNOW_DATE_FORMAT)
    with open_training_source(spark, str(cdnow_csv), options, partition_rows=20_000) as source:
        assert source.keyed.n_partitions >= 4  # a row's counts are summed over partitions
        counted = purchase_counts_with_spark(source, DATES, 1)
    transactions = load_log(str(cdnow_csv), options).transactions
    assert list(counted) == list(DATES)
    for as_of in DATES:
        local = build_features(transactions, as_of=as_of)
        expected = purchase_counts(local)
        assert len(expected) < len(local)  # the rows do compress (11,102 for 23,502 customers at the last day)
        pd.testing.assert_frame_equal(counted[as_of], expected, check_exact=True, obj=str(as_of.date()))
        assert counted[as_of]["customers"].sum() == len(local)
