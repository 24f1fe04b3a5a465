"""The one settings object: every tunable of Patron, read from `PATRON_*` environment variables."""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core import defaults
from core.tier_shares import validate_tier_shares


def _split_csv(value: object) -> object:
    """Accept `a,b,c` as well as a JSON list for list-valued environment variables."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            import json

            return json.loads(text)
        return [part.strip() for part in text.split(",") if part.strip()]
    return value


def _split_mapping(value: object) -> object:
    """Accept `customer_id=CustomerID,timestamp=InvoiceDate` as well as a JSON object."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("{"):
            import json

            return json.loads(text)
        pairs = [part.strip() for part in text.split(",") if part.strip()]
        mapping: dict[str, str] = {}
        for pair in pairs:
            key, sep, source = pair.partition("=")
            if not sep or not key.strip() or not source.strip():
                raise ValueError(f"column mapping entry {pair!r} is not of the form field=Column")
            mapping[key.strip()] = source.strip()
        return mapping
    return value


class Settings(BaseSettings):
    """All of Patron's settings; each field is the environment variable `PATRON_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="PATRON_", extra="ignore", validate_default=True)

    # --- reproducibility -------------------------------------------------------------------
    seed: int = Field(defaults.SEED, description="Random seed for every stochastic step (LightGBM, splits, generator).")
    n_threads: int = Field(defaults.N_THREADS, ge=1, description="Threads for LightGBM and numeric libraries.")

    # --- data contract ---------------------------------------------------------------------
    column_map: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict,
        description="Contract field -> source column, e.g. `customer_id=CustomerID,timestamp=InvoiceDate`.",
    )
    sep: str | None = Field(None, description="Field separator of text inputs (None: sniff; `\\s+` for whitespace).")
    date_format: str | None = Field(None, description="strftime format of the timestamp column (None: infer).")
    encoding: str | None = Field(
        defaults.ENCODING, description="Text encoding of inputs, e.g. latin-1 (None: UTF-8 or the byte-order mark; never replaced)."
    )
    keep_duplicates: bool = Field(False, description="Keep exact duplicate rows instead of rejecting them.")

    # --- features --------------------------------------------------------------------------
    time_unit_days: int = Field(defaults.TIME_UNIT_DAYS, description="Time unit of recency and T: 1 (days) or 7 (weeks).")

    # --- horizons and money ----------------------------------------------------------------
    churn_horizon_days: int = Field(defaults.CHURN_HORIZON_DAYS, ge=1, description="Churn = no purchase within this many days.")
    clv_horizon_days: int = Field(defaults.CLV_HORIZON_DAYS, ge=1, description="Horizon of the customer lifetime value.")
    monthly_discount_rate: float = Field(defaults.MONTHLY_DISCOUNT_RATE, ge=0, description="Monthly discount rate for CLV.")
    margin_rate: float = Field(defaults.MARGIN_RATE, gt=0, le=1, description="Net margin share of revenue when the data has no `cost`.")

    # --- models ----------------------------------------------------------------------------
    btyd_model: Literal["auto", "bgnbd", "mbgnbd", "pareto"] = Field(
        defaults.BTYD_MODEL, description="Purchase model: auto picks the best holdout fit among the menu."
    )
    penalizer_coef: float = Field(defaults.PENALIZER_COEF, ge=0, description="L2 penalizer of the BTYD fits (raised on non-convergence).")
    churn_snapshots: int = Field(defaults.CHURN_SNAPSHOTS, ge=1, description="Training snapshots stacked for the churn model.")
    snapshot_step_days: int = Field(defaults.SNAPSHOT_STEP_DAYS, ge=1, description="Days between stacked training snapshots.")

    # --- tracking and registry -------------------------------------------------------------
    tracking_uri: str | None = Field(
        None, description=f"MLflow tracking URI (default: MLFLOW_TRACKING_URI, else {defaults.TRACKING_URI})."
    )
    experiment_name: str = Field(defaults.EXPERIMENT_NAME, description="MLflow experiment of training runs.")
    registered_model_name: str = Field(defaults.REGISTERED_MODEL_NAME, description="Name of the model in the MLflow registry.")
    promotion_tolerance: float = Field(
        defaults.PROMOTION_TOLERANCE, ge=0, description="A candidate may trail the champion by this much churn AUC and still be promoted."
    )

    # --- targeting -------------------------------------------------------------------------
    tier_shares: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: list(defaults.TIER_SHARES),
        description="Shares of diamond, gold, silver, regular (top to bottom).",
    )
    tier_basis: Literal["expected", "lower_bound"] = Field(
        defaults.TIER_BASIS,
        description="Rank tiers by the value score (expected) or by its low end of the 90% CLV interval (lower_bound).",
    )
    active_days: int = Field(defaults.ACTIVE_DAYS, description="Active: last purchase fewer than this many days ago.")
    sleeping_days: int = Field(defaults.SLEEPING_DAYS, description="Sleeping: up to this many days since last purchase.")
    at_risk_days: int = Field(defaults.AT_RISK_DAYS, description="At risk: up to this many days; beyond is lost.")
    return_handling_cost: float = Field(defaults.RETURN_HANDLING_COST, ge=0, description="Handling cost per returned order.")
    service_cost_per_order: float = Field(defaults.SERVICE_COST_PER_ORDER, ge=0, description="Service cost per order.")
    uplift: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.UPLIFT),
        description="Increase in P(purchase within the campaign window) an email contact causes, by lifecycle stage.",
    )
    base_conversion: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.BASE_CONVERSION),
        description="P(purchase within the campaign window) without contact, by lifecycle stage.",
    )
    control_share: float = Field(
        defaults.CONTROL_SHARE, ge=0, lt=1, description="Share of a campaign's selected customers held back as a control group."
    )
    campaign_window_days: int = Field(
        defaults.CAMPAIGN_WINDOW_DAYS, ge=1, description="Days after the send date a campaign's purchases are counted."
    )
    campaign_experiment_name: str = Field(
        defaults.CAMPAIGN_EXPERIMENT_NAME, description="MLflow experiment of the campaign ledger."
    )
    contact_costs: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.CONTACT_COSTS),
        description="Cost of one contact by channel.",
    )
    coupon_shares: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.COUPON_SHARES),
        description="Coupon as a share of the customer's average order value, by stage.",
    )
    max_incentive_share: float = Field(defaults.MAX_INCENTIVE_SHARE, ge=0, le=1, description="An incentive never exceeds this share of AOV.")
    recent_purchase_days: int = Field(defaults.RECENT_PURCHASE_DAYS, ge=0, description="No promotional contact within this many days of a purchase.")
    campaign_budget: float = Field(defaults.CAMPAIGN_BUDGET, ge=0, description="Default money budget of a campaign.")
    channel_response_lift: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.CHANNEL_RESPONSE_LIFT),
        description="Response of a channel relative to email; a costlier channel is chosen only when its lift pays.",
    )
    tier_incentive_multipliers: Annotated[dict[str, float], NoDecode] = Field(
        default_factory=lambda: dict(defaults.TIER_INCENTIVE_MULTIPLIERS),
        description="Coupon size multiplier by value tier (coupon = coupon share x multiplier x AOV).",
    )
    free_shipping_cost: float = Field(
        defaults.FREE_SHIPPING_COST, ge=0, description="Cost of the free-shipping perk diamond and gold customers get before coupons."
    )
    p_alive_floor: float = Field(
        defaults.P_ALIVE_FLOOR, gt=0, le=1, description="P(alive) floor when scaling net value to a retained customer's value."
    )
    return_rate_prior: float = Field(
        defaults.RETURN_RATE_PRIOR, ge=0, le=1, description="Return rate (and value share) that observed return rates are shrunk towards."
    )
    return_prior_orders: float = Field(
        defaults.RETURN_PRIOR_ORDERS, ge=0, description="Weight of that prior in orders (0: observed return rates as they are)."
    )

    # --- behaviour tags, rhythm and contact timing ------------------------------------------
    promo_sensitive_share: float = Field(defaults.PROMO_SENSITIVE_SHARE, ge=0, le=1, description="promo_sensitive: at least this share of spend on promotion or discount.")
    full_price_max_share: float = Field(defaults.FULL_PRICE_MAX_SHARE, ge=0, le=1, description="full_price_loyal: a repeat buyer with at most this share of spend on promotion or discount.")
    high_end_top_share: float = Field(defaults.HIGH_END_TOP_SHARE, ge=0, le=1, description="high_end: average order value in the shop's top share of customers.")
    serial_returner_top_share: float = Field(defaults.SERIAL_RETURNER_TOP_SHARE, ge=0, le=1, description="serial_returner: return rate in the shop's top share of customers.")
    serial_returner_min_returns: float = Field(defaults.SERIAL_RETURNER_MIN_RETURNS, ge=0, description="serial_returner: at least this many returned orders.")
    event_day_promo_share: float = Field(defaults.EVENT_DAY_PROMO_SHARE, ge=0, le=1, description="An event day: at least this share of the day's orders on promotion.")
    event_buyer_share: float = Field(defaults.EVENT_BUYER_SHARE, ge=0, le=1, description="event_buyer: a repeat buyer with at least this share of orders on event days.")
    new_arrival_days: float = Field(defaults.NEW_ARRIVAL_DAYS, ge=0, description="A product is a new arrival this many days after its first sale.")
    new_arrival_share: float = Field(defaults.NEW_ARRIVAL_SHARE, ge=0, le=1, description="new_arrival_buyer: at least this share of purchase lines are new arrivals.")
    overdue_gap_factor: float = Field(defaults.OVERDUE_GAP_FACTOR, gt=0, description="Reminder when away this many times the customer's usual gap.")
    first_follow_up_days: float = Field(defaults.FIRST_FOLLOW_UP_DAYS, ge=0, description="Follow-up this many days after a first purchase.")
    own_gap_prior_orders: float = Field(defaults.OWN_GAP_PRIOR_ORDERS, ge=0, description="Gaps of the shop's median the customer's usual gap is shrunk with in the next-order date.")
    offer_min_aov_share: float = Field(defaults.OFFER_MIN_AOV_SHARE, ge=0, le=1, description="No offer to a customer whose average order value is below this share of its price.")

    # --- serving ---------------------------------------------------------------------------
    model_uri: str = Field(defaults.MODEL_URI, description="Model the API and batch job load.")
    workers: int = Field(defaults.WORKERS, ge=1, description="API worker processes of `patron serve`; each loads the model.")
    scores_path: str | None = Field(None, description="Batch scores file behind GET /v1/customers/{id}.")
    api_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Comma-separated API keys; when set, /v1 and /admin need X-API-Key."
    )
    max_body_bytes: int = Field(defaults.MAX_BODY_BYTES, ge=1, description="Largest request body accepted (413 above).")
    max_customers_per_request: int = Field(defaults.MAX_CUSTOMERS_PER_REQUEST, ge=1, description="Most customers in one request (413 above).")
    max_transactions_per_customer: int = Field(defaults.MAX_TRANSACTIONS_PER_CUSTOMER, ge=1, description="Most transactions per customer (413 above).")
    reload_interval_seconds: float = Field(defaults.RELOAD_INTERVAL_SECONDS, ge=0, description="Poll the registry for a new champion (0: off).")
    score_coalesce_ms: float = Field(
        defaults.SCORE_COALESCE_MS, ge=0, le=100, description="Longest wait of a /v1/score pass for parallel callers' requests (0: off)."
    )
    batch_chunk_size: int = Field(defaults.BATCH_CHUNK_SIZE, ge=1, description="Customers scored per chunk in batch scoring.")

    # --- engines ---------------------------------------------------------------------------
    engine: Literal["local", "spark"] = Field(
        defaults.ENGINE, description="Engine of `patron score`, `features` and `train`: local (one process) or spark."
    )
    spark_master: str = Field(
        defaults.SPARK_MASTER, description="Spark master: local[N], spark://host:7077, yarn, or a Spark Connect sc://host:15002."
    )
    spark_partition_rows: int = Field(
        defaults.SPARK_PARTITION_ROWS, ge=1, description="Transaction rows per Spark partition (bounds each executor's memory)."
    )
    spark_train_customers: int = Field(
        defaults.SPARK_TRAIN_CUSTOMERS, ge=1,
        description="Most customers `patron train --engine spark` samples (by a hash of customer_id) to train on.",
    )

    @field_validator("tier_shares", "api_keys", mode="before")
    @classmethod
    def _lists_from_csv(cls, value: object) -> object:
        return _split_csv(value)

    @field_validator("column_map", mode="before")
    @classmethod
    def _mapping_from_pairs(cls, value: object) -> object:
        return _split_mapping(value)

    @field_validator(
        "uplift",
        "base_conversion",
        "contact_costs",
        "coupon_shares",
        "channel_response_lift",
        "tier_incentive_multipliers",
        mode="before",
    )
    @classmethod
    def _floats_from_pairs(cls, value: object) -> object:
        parsed = _split_mapping(value)
        if isinstance(parsed, dict):
            return {key: float(val) for key, val in parsed.items()}
        return parsed

    @field_validator("time_unit_days")
    @classmethod
    def _unit_is_day_or_week(cls, value: int) -> int:
        if value not in (1, 7):
            raise ValueError("time_unit_days must be 1 (days) or 7 (weeks)")
        return value

    @field_validator("tier_shares")
    @classmethod
    def _shares_sum_to_one(cls, value: list[float]) -> list[float]:
        return list(validate_tier_shares(value))

    def resolved_tracking_uri(self) -> str:
        """The MLflow tracking URI: the setting, else MLFLOW_TRACKING_URI, else the local sqlite store."""
        return self.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or defaults.TRACKING_URI


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once from the environment."""
    return Settings()
