"""The scores contract: the columns of the scores table (batch file, API body, pyfunc output), in order.

Written once here; the scorer, the batch file's Arrow schema, the API and targeting refer to it.
"""

from __future__ import annotations

import pyarrow as pa

INTERVAL_SCORE_COLUMNS: tuple[str, ...] = (
    "expected_purchases_low_80",
    "expected_purchases_high_80",
    "expected_purchases_low",
    "expected_purchases_high",
    "expected_spend_low_80",
    "expected_spend_high_80",
    "expected_spend_low",
    "expected_spend_high",
    "clv_low_80",
    "clv_high_80",
    "clv_low",
    "clv_high",
)
"""Prediction intervals (`models.intervals`): purchases and spend over the churn horizon, CLV over its
horizon; the plain names are the 90% interval, `_80` the 80% one."""
SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "as_of",
    "frequency",
    "recency",
    "T",
    "monetary_value",
    "p_alive",
    "expected_purchases_churn_horizon",
    "expected_purchases_clv_horizon",
    "expected_order_value",
    "clv",
    *INTERVAL_SCORE_COLUMNS,
    "value_score",
    "churn_probability",
    "churn_reason_1",
    "churn_reason_2",
    "churn_reason_3",
    "value_tier",
    "lifecycle_stage",
    "days_since_last",
    "net_value",
    "exclude_from_spend",
    "exclude_reason",
    "winback_profit",
    "uplift",
    "action",
    "channel",
    "incentive",
    "tags",
    "avg_days_between_orders",
    "expected_next_order_date",
    "recommended_contact_date",
    "model_name",
    "model_version",
)
TEXT_SCORE_COLUMNS: tuple[str, ...] = (
    "customer_id",
    "churn_reason_1",
    "churn_reason_2",
    "churn_reason_3",
    "value_tier",
    "lifecycle_stage",
    "exclude_reason",
    "action",
    "channel",
    "tags",
    "model_name",
    "model_version",
)
"""Columns holding text; `as_of` and the dates are days, `exclude_from_spend` a flag, every other column
a float. `tags` is one string of tag names joined by "," (see features.tags): a list column would need a
list type in Arrow, an array in the API and an encoding in CSV campaign files; one string is the same
value in all three."""
FLAG_SCORE_COLUMNS: tuple[str, ...] = ("exclude_from_spend",)
DAY_SCORE_COLUMNS: tuple[str, ...] = ("as_of", "expected_next_order_date", "recommended_contact_date")
EMPTY_WHEN_UNKNOWN_COLUMNS: tuple[str, ...] = (
    "avg_days_between_orders",
    "expected_next_order_date",
    "recommended_contact_date",
)
"""The only columns that may be empty (null, NaN/NaT in pandas), and only when there is nothing to show:
no repeat purchase yet, no next order to expect, nobody to contact. Every other number is finite."""
"""Days; the two dates are empty (null) where there is no next order to expect or nobody to contact."""


def scores_schema() -> pa.Schema:
    """The scores table's Arrow schema: fixed types, so a file's bytes depend on its values only."""
    fields = []
    for name in SCORE_COLUMNS:
        if name in TEXT_SCORE_COLUMNS:
            kind = pa.string()
        elif name in DAY_SCORE_COLUMNS:
            kind = pa.timestamp("ns")
        elif name in FLAG_SCORE_COLUMNS:
            kind = pa.bool_()
        else:
            kind = pa.float64()
        fields.append(pa.field(name, kind, nullable=name not in ("customer_id", "as_of")))
    return pa.schema(fields)
