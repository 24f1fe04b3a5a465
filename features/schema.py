"""The transaction data contract: field names, their meaning and the pandera schema of a validated log."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

# pandera imports pyspark.pandas when pyspark is installed (the Spark engine's dependency), and pyspark
# warns about pandas 3 on import. Patron converts Arrow to pandas with pyarrow, not pyspark (tests in
# tests/jobs check the conversions), so the warning says nothing about Patron's results.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
import pandera.pandas as pa  # noqa: E402

REQUIRED_FIELDS = ("customer_id", "timestamp")
"""Always needed; `amount` is needed too, or `quantity` and `unit_price` to derive it."""
OPTIONAL_FIELDS = (
    "amount",
    "order_id",
    "quantity",
    "unit_price",
    "category",
    "discount",
    "is_return",
    "channel",
    "cost",
    "promo",
    "product_id",
)
CONTRACT_FIELDS = REQUIRED_FIELDS + OPTIONAL_FIELDS
NUMERIC_FIELDS = ("quantity", "unit_price", "discount", "cost")
TEXT_FIELDS = ("order_id", "category", "channel", "product_id")
FLAG_FIELDS = ("is_return", "promo")

REJECT_REASONS = ("missing_customer_id", "bad_timestamp", "bad_amount", "zero_amount", "duplicate")
"""Why a row can be rejected, in the order they are checked: a row carries the first that applies."""


def _finite(values: pd.Series) -> pd.Series:
    return pd.Series(np.isfinite(values.to_numpy(dtype=float)), index=values.index)


TRANSACTIONS_SCHEMA = pa.DataFrameSchema(
    {
        "customer_id": pa.Column(str, nullable=False, checks=pa.Check.str_length(min_value=1)),
        "timestamp": pa.Column("datetime64[ns]", nullable=False),
        "amount": pa.Column(float, nullable=False, checks=pa.Check(_finite, error="amount is not finite")),
        "is_return": pa.Column(bool, nullable=False),
        "order_id": pa.Column(str, nullable=True, required=False),
        "quantity": pa.Column(float, nullable=True, required=False),
        "unit_price": pa.Column(float, nullable=True, required=False),
        "category": pa.Column(str, nullable=True, required=False),
        "discount": pa.Column(float, nullable=False, required=False, checks=pa.Check.ge(0)),
        "channel": pa.Column(str, nullable=True, required=False),
        "cost": pa.Column(float, nullable=True, required=False),
        "promo": pa.Column(bool, nullable=False, required=False),
        "product_id": pa.Column(str, nullable=True, required=False),
    },
    checks=[
        pa.Check(lambda df: (df["amount"] > 0) | df["is_return"], error="a purchase with an amount <= 0"),
        pa.Check(lambda df: (df["amount"] <= 0) | ~df["is_return"], error="a return with a positive amount"),
    ],
    strict=True,
    coerce=False,
    name="transactions",
)
"""A validated transaction log: signed amounts (returns negative), no unusable rows."""
