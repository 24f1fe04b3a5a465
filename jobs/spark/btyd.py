"""Every customer's BTYD purchase rows from a Spark source, for `patron train --engine spark`.

The purchase models' likelihood (BG/NBD, MBG/NBD, Pareto/NBD) is a sum over customers of a function of
(frequency, recency, T) alone, so the distinct triples with their customer counts are all a fit needs
(`models.clv.CLVModel.fit(..., purchase_counts=...)`, lifetimes' `weights`). Each partition computes its
customers' triples at the run's as-of dates with Patron's feature code (`features.rfm_summary`) and
counts them; Spark sums the counts per distinct triple (integers: exact); the driver receives one row
per distinct triple and date. That number is bounded by the log's span of days and purchase counts, not
by its customers, but in days the bound is loose: CDNOW has 11,102 rows for 23,502 customers at its last
day, a generated 2-year log 616,812 for 1M customers (benchmarks/bench_btyd_counts.py), so the driver's
table grows more slowly than the population, not much more slowly.

Gamma-Gamma stays on the sample: its likelihood depends on each repeat customer's (frequency,
monetary_value) pair, and mean spend is continuous, so the distinct pairs are about as many as the
customers and would bring the whole population to the driver.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence

import pandas as pd

from features.customer_rows import as_of_day
from jobs.spark import partition
from jobs.spark.sample import TrainingSource
from models.clv import PURCHASE_COUNT_COLUMNS


def purchase_counts_with_spark(
    source: TrainingSource, as_of_dates: Sequence[pd.Timestamp], time_unit_days: int
) -> Mapping[pd.Timestamp, pd.DataFrame]:
    """Every customer's distinct (frequency, recency, T) rows at each of `as_of_dates`, with their
    customers (`models.clv.PURCHASE_COUNT_COLUMNS`, sorted), summed exactly over all partitions."""
    from pyspark.sql import functions as F

    dates = {as_of_day(d): pd.Timestamp(d).normalize() for d in as_of_dates}
    count = functools.partial(
        partition.purchase_count_rows,
        options=source.validation.as_kwargs(),
        as_of_dates=sorted(dates.values()),
        time_unit_days=time_unit_days,
    )
    rows = source.keyed.run(count, partition.PURCHASE_COUNT_SCHEMA)
    summed = rows.groupBy("as_of_day", "frequency", "recency", "T").agg(F.sum("customers").alias("customers"))
    frame = summed.toArrow().to_pandas()
    frame = frame.sort_values(["as_of_day", *PURCHASE_COUNT_COLUMNS[:3]], kind="stable")
    frame["customers"] = frame["customers"].astype("int64")
    by_day = dict(iter(frame.groupby("as_of_day", sort=False)))
    empty = frame.iloc[:0]
    return {
        stamp: by_day.get(day, empty)[list(PURCHASE_COUNT_COLUMNS)].reset_index(drop=True) for day, stamp in dates.items()
    }
