"""Request and response models of the prediction API: the edge where every input is validated."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# pandas holds timestamps as datetime64[ns], which spans 1677-2262; anything outside is refused
# at the edge (422) instead of overflowing deep inside the feature pipeline (500).
EARLIEST = dt.datetime(1900, 1, 1)
LATEST = dt.datetime(2200, 1, 1)
MONEY_LIMIT = 1e12  # larger amounts are typos, and their sums would lose float precision


def _check_range(value: dt.datetime | dt.date, what: str) -> None:
    naive = value.replace(tzinfo=None) if isinstance(value, dt.datetime) else value
    if isinstance(naive, dt.datetime):
        inside = EARLIEST <= naive < LATEST
    else:
        inside = EARLIEST.date() <= naive < LATEST.date()
    if not inside:
        raise ValueError(f"{what} must lie between {EARLIEST.date()} and {LATEST.date()}")


class TransactionIn(BaseModel):
    """One order line or order of a customer, in the transaction contract's field names."""

    model_config = ConfigDict(extra="forbid")

    timestamp: dt.datetime = Field(
        description="When the purchase or return happened (ISO date or date-time; offsets are converted to UTC)."
    )
    amount: float | None = Field(
        default=None,
        allow_inf_nan=False,
        ge=-MONEY_LIMIT,
        le=MONEY_LIMIT,
        description="Money of the row; negative for a return. Required unless quantity and unit_price are given.",
    )
    is_return: bool | None = Field(default=None, description="The row is a return or cancellation.")
    order_id: str | None = Field(default=None, max_length=256, description="Order (invoice) identifier.")
    quantity: float | None = Field(default=None, allow_inf_nan=False, ge=-1e9, le=1e9, description="Units.")
    unit_price: float | None = Field(
        default=None, allow_inf_nan=False, ge=-MONEY_LIMIT, le=MONEY_LIMIT, description="Price per unit."
    )
    category: str | None = Field(default=None, max_length=256, description="Product category.")
    channel: str | None = Field(default=None, max_length=256, description="Sales channel or region.")
    discount: float | None = Field(
        default=None, allow_inf_nan=False, ge=0, le=MONEY_LIMIT, description="Money given off (>= 0)."
    )
    cost: float | None = Field(
        default=None, allow_inf_nan=False, ge=-MONEY_LIMIT, le=MONEY_LIMIT, description="Cost of goods of the row."
    )
    promo: bool | None = Field(default=None, description="Bought in a promotion or flash sale.")

    @field_validator("timestamp")
    @classmethod
    def _timestamp_in_range(cls, value: dt.datetime) -> dt.datetime:
        if value.tzinfo is not None:
            value = value.astimezone(dt.timezone.utc).replace(tzinfo=None)
        _check_range(value, "timestamp")
        return value

    @model_validator(mode="after")
    def _has_money(self) -> TransactionIn:
        if self.amount is None and (self.quantity is None or self.unit_price is None):
            raise ValueError("amount is required (or both quantity and unit_price)")
        return self


class CustomerIn(BaseModel):
    """A customer and their transaction history up to (and possibly after) `as_of`."""

    model_config = ConfigDict(extra="forbid")

    customer_id: str = Field(min_length=1, max_length=256, pattern=r"\S", description="Customer identifier.")
    transactions: list[TransactionIn] = Field(min_length=1, description="The customer's transactions.")


class ScoreRequest(BaseModel):
    """Customers to score at one as-of date."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2011-12-09",
                    "customers": [
                        {
                            "customer_id": "17850",
                            "transactions": [
                                {"timestamp": "2011-03-01T10:15:00", "amount": 120.5, "order_id": "536365"},
                                {"timestamp": "2011-09-14", "amount": 80.0},
                            ],
                        }
                    ],
                }
            ]
        },
    )

    as_of: dt.date = Field(description="Last observed day, inclusive: later transactions are ignored.")
    customers: list[CustomerIn] = Field(min_length=1, description="Customers to score (ids must be unique).")

    @field_validator("as_of")
    @classmethod
    def _as_of_in_range(cls, value: dt.date) -> dt.date:
        _check_range(value, "as_of")
        return value


class CustomerScore(BaseModel):
    """One row of the scores table: the batch file's row, field for field."""

    # Scores are finite (core/scores.py); posted to /v1/campaign, a NaN or Infinity literal (which
    # Python's JSON parser accepts) is refused naming the field instead of quietly dropping the row.
    model_config = ConfigDict(extra="allow", protected_namespaces=(), allow_inf_nan=False)

    customer_id: str
    as_of: dt.date
    frequency: float
    recency: float
    T: float
    monetary_value: float
    p_alive: float
    expected_purchases_churn_horizon: float
    expected_purchases_clv_horizon: float
    expected_order_value: float
    clv: float
    value_score: float
    churn_probability: float
    churn_reason_1: str | None = None
    churn_reason_2: str | None = None
    churn_reason_3: str | None = None
    value_tier: Literal["diamond", "gold", "silver", "regular"]
    lifecycle_stage: Literal["new", "active", "sleeping", "at_risk", "lost"]
    days_since_last: float
    net_value: float
    exclude_from_spend: bool
    exclude_reason: str
    winback_profit: float
    uplift: float | None = Field(None, description="Email uplift of the customer the profit was computed with (per-customer model or stage x tier table).")
    action: str
    channel: str | None = None
    incentive: float | None = None
    tags: str = Field("", description="Behaviour tags joined by ',' (README: Behaviour tags); '' for none.")
    avg_days_between_orders: float | None = Field(None, description="Mean days between purchase days; null without a repeat purchase.")
    expected_next_order_date: dt.date | None = Field(None, description="Median predicted day of the next purchase; null when P(alive) is too low.")
    recommended_contact_date: dt.date | None = Field(None, description="When to contact (follow-up or overdue reminder); null when nobody to contact.")
    model_name: str
    model_version: str


class ModelRef(BaseModel):
    """Which model produced a response."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str


class RejectedTransaction(BaseModel):
    """A transaction the data contract rejected, or a customer left without a score, with the reason."""

    customer_index: int = Field(description="Position of the customer in the request's `customers`.")
    customer_id: str
    transaction_index: int | None = Field(
        description="Position of the transaction in the customer's `transactions`; null for a customer-level reason."
    )
    reason: str = Field(
        description="missing_customer_id, bad_timestamp, bad_amount, zero_amount, duplicate "
        "(as in the batch's rejects file), or no_purchase_by_as_of (the customer is not scored)."
    )


class ScoreResponse(BaseModel):
    """Scores of the requested customers that could be scored, in request order, and what was rejected."""

    as_of: dt.date
    model: ModelRef
    scores: list[CustomerScore]
    rejects: list[RejectedTransaction] = Field(
        default_factory=list, description="Rejected transactions and unscored customers, with their reasons."
    )


class CampaignRequest(BaseModel):
    """A campaign over given score rows, or over customers of the batch scores file."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"budget": 500.0, "customer_ids": ["17850", "13047"]}],
            "description": "Give exactly one of `scores` or `customer_ids` (422 otherwise).",
            "oneOf": [{"required": ["scores"]}, {"required": ["customer_ids"]}],
        },
    )

    budget: float = Field(ge=0, le=1e12, allow_inf_nan=False, description="Money budget of the campaign.")
    scores: list[CustomerScore] | None = Field(
        default=None, description="Score rows (as returned by /v1/score); or give customer_ids instead."
    )
    customer_ids: list[str] | None = Field(
        default=None, description="Customers to consider, looked up in the batch scores file."
    )
    campaign_id: str | None = Field(
        default=None, min_length=1, max_length=200, description="Campaign id; seeds the control group (default: from the rows and budget)."
    )
    control_share: float | None = Field(
        default=None, ge=0, lt=1, allow_inf_nan=False, description="Share of the selected held back as control (default: PATRON_CONTROL_SHARE)."
    )

    @model_validator(mode="after")
    def _one_source(self) -> CampaignRequest:
        if (self.scores is None) == (self.customer_ids is None):
            raise ValueError("give exactly one of scores or customer_ids")
        return self


class CampaignResponse(BaseModel):
    """The customers selected under the budget, the summary by tier and stage, the exclusions."""

    budget: float
    campaign_id: str = ""
    selected: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    excluded: list[dict[str, Any]]


class ModelInfo(BaseModel):
    """The model being served."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    version: str
    alias: str | None = None
    uri: str
    trained_at: str | None = None
    data_fingerprint: Any = None
    metrics: dict[str, float] = Field(default_factory=dict)
    uplift: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Uplift per lifecycle stage (and value tier within it) and its source: measured on past campaigns, or "
        "default; `learner` says whether the planner uses the stage x tier table or a per-customer model, with its held-out figures."
    )
    loaded_at: dt.datetime


class Health(BaseModel):
    """Liveness: the process answers."""

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """Readiness: a model is loaded; the last load failure, if any."""

    model_config = ConfigDict(protected_namespaces=())

    status: Literal["ready", "not_ready"]
    model_name: str | None = None
    model_version: str | None = None
    loaded_at: dt.datetime | None = None
    last_error: str | None = None
    last_error_at: dt.datetime | None = None


class ReloadResponse(BaseModel):
    """Outcome of a reload: a new model, the same one, or a failure (the previous model stays)."""

    model_config = ConfigDict(protected_namespaces=())

    status: Literal["reloaded", "unchanged", "failed"]
    model_version: str | None = None
    error: str | None = None


class ErrorResponse(BaseModel):
    """An error the client can act on; `limit` names the setting that refused a too-large request."""

    detail: str
    limit: str | None = None
    limit_value: int | None = None
