"""Exact tier boundaries of a population spread over Spark partitions.

`targeting.tiers.tier_boundaries` needs the key (value_score, customer_id) of the customer at rank
`boundary_counts(n, shares)` in the order value_score descending, customer_id ascending. Approximate
quantiles cannot split ties the way the local engine does, so the population is sorted by Spark
(strings compare by UTF-8 bytes, which is Python's code-point order), each sorted partition's size is
counted, and the three rows at those ranks are picked by partition and position: three small jobs
over the persisted (customer_id, value_score) pairs, never the population on the driver.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from targeting.tiers import BoundaryKey, boundary_counts

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

_POSITION_BITS = 33  # monotonically_increasing_id: partition index above bit 33, position below


def exact_tier_boundaries(values: DataFrame, shares: Sequence[float]) -> list[BoundaryKey | None]:
    """The diamond, gold and silver boundary keys of the customers in `values` (customer_id, value_score)."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    values = values.persist(StorageLevel.MEMORY_AND_DISK)  # the sort samples its input, then reads it again
    ranked = (
        values.orderBy(F.col("value_score").desc(), F.col("customer_id").asc())
        .withColumn("id", F.monotonically_increasing_id())
        .select(
            "customer_id",
            "value_score",
            F.shiftright("id", _POSITION_BITS).alias("part"),
            F.col("id").bitwiseAND((1 << _POSITION_BITS) - 1).alias("position"),
        )
        .persist(StorageLevel.MEMORY_AND_DISK)
    )
    try:
        sizes = pd.DataFrame(ranked.groupBy("part").count().toPandas()).sort_values("part")
        n = int(sizes["count"].sum())
        starts = dict(zip(sizes["part"].astype(int), (sizes["count"].cumsum() - sizes["count"]).astype(int), strict=True))
        parts = sizes["part"].to_numpy(dtype=np.int64)
        ends = np.cumsum(sizes["count"].to_numpy(dtype=np.int64))
        wanted: dict[int, tuple[int, int]] = {}
        for count in boundary_counts(n, shares):
            if count > 0:
                part = int(parts[np.searchsorted(ends, count - 1, side="right")])
                wanted[int(count)] = (part, int(count - 1 - starts[part]))
        condition = F.lit(False)
        for part, position in wanted.values():
            condition = condition | ((F.col("part") == part) & (F.col("position") == position))
        picked = {(int(r["part"]), int(r["position"])): (float(r["value_score"]), str(r["customer_id"]))
                  for r in ranked.filter(condition).collect()}
    finally:
        ranked.unpersist()
        values.unpersist()
    return [None if count <= 0 else picked[wanted[int(count)]] for count in boundary_counts(n, shares)]
