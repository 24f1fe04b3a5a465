"""Every default value of Patron, written once.

`patron.settings.Settings` exposes each as a `PATRON_*` variable; library objects (`TargetingPolicy`,
`TrainingConfig`, `PatronScorer`, `CLVModel`, ...) and function signatures refer to these names
instead of repeating the numbers.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

SEED = 42
N_THREADS = 2

TIME_UNIT_DAYS = 1
CHURN_HORIZON_DAYS = 90
CLV_HORIZON_DAYS = 365
MONTHLY_DISCOUNT_RATE = 0.01
MARGIN_RATE = 0.30

BTYD_MODEL: Final = "auto"  # Final keeps the literal type Settings.btyd_model checks against
PENALIZER_COEF = 0.0
CHURN_SNAPSHOTS = 4
SNAPSHOT_STEP_DAYS = 30

TRACKING_URI = "sqlite:///mlruns/mlflow.db"
EXPERIMENT_NAME = "patron"
REGISTERED_MODEL_NAME = "patron"
PROMOTION_TOLERANCE = 0.005

TIER_SHARES = (0.10, 0.15, 0.25, 0.50)
TIER_BASES = ("expected", "lower_bound")
TIER_BASIS: Final = "expected"
"""What tiers rank: the value score (`expected`) or its conservative version at the low end of the 90%
CLV interval (`lower_bound`, `targeting.tiers.lower_bound_value`)."""
ACTIVE_DAYS = 90
SLEEPING_DAYS = 180
AT_RISK_DAYS = 365
RETURN_HANDLING_COST = 5.0
SERVICE_COST_PER_ORDER = 1.0
# Uplift: the increase in P(purchase within the campaign window) a contact causes, by stage (email).
# Conservative, anchored on the MineThatData e-mail experiment (Hillstrom 2008: 64,000 customers who
# bought in the last 12 months; two-week conversion 0.57% without e-mail, 1.25% / 0.88% with the men's /
# women's e-mail, i.e. +0.68 / +0.31 points): about one point over a 30-day window, less for lapsed stages.
UPLIFT = MappingProxyType({"new": 0.010, "active": 0.010, "sleeping": 0.008, "at_risk": 0.006, "lost": 0.003})
# P(purchase within the window without any contact), by stage: who redeems an incentive anyway.
BASE_CONVERSION = MappingProxyType({"new": 0.10, "active": 0.15, "sleeping": 0.05, "at_risk": 0.02, "lost": 0.005})
CONTROL_SHARE = 0.10
CAMPAIGN_WINDOW_DAYS = 30
CAMPAIGN_CONFIDENCE = 0.90
CAMPAIGN_EXPERIMENT_NAME = "patron-campaigns"
CONTACT_COSTS = MappingProxyType({"email": 0.05, "sms": 0.15, "mail": 1.20})
COUPON_SHARES = MappingProxyType({"new": 0.0, "active": 0.0, "sleeping": 0.05, "at_risk": 0.10, "lost": 0.15})
MAX_INCENTIVE_SHARE = 0.20
RECENT_PURCHASE_DAYS = 2
CAMPAIGN_BUDGET = 5000.0
CHANNEL_RESPONSE_LIFT = MappingProxyType({"email": 1.0, "sms": 1.1, "mail": 1.3})
TIER_INCENTIVE_MULTIPLIERS = MappingProxyType({"diamond": 1.5, "gold": 1.25, "silver": 1.0, "regular": 0.75})
FREE_SHIPPING_COST = 4.0
P_ALIVE_FLOOR = 0.2
RETURN_RATE_PRIOR = 0.10
RETURN_PRIOR_ORDERS = 1.0

ENCODING = None  # text inputs: UTF-8, or what a byte-order mark says

MODEL_URI = "models:/patron@champion"
WORKERS = 1
MAX_BODY_BYTES = 5_000_000
MAX_CUSTOMERS_PER_REQUEST = 1000
MAX_TRANSACTIONS_PER_CUSTOMER = 10_000
RELOAD_INTERVAL_SECONDS = 0.0
SCORE_COALESCE_MS = 5.0
BATCH_CHUNK_SIZE = 250_000

# --- what marketers see: behaviour tags, rhythm and contact timing ----------------------------
PROMO_SENSITIVE_SHARE = 0.5
"""`promo_sensitive`: at least this share of the customer's spend bought on promotion or discount."""
FULL_PRICE_MAX_SHARE = 0.05
"""`full_price_loyal`: a repeat buyer with at most this share of spend on promotion or discount."""
HIGH_END_TOP_SHARE = 0.10
"""`high_end`: average order value in the shop's top share of customers."""
SERIAL_RETURNER_TOP_SHARE = 0.10
"""`serial_returner`: return rate in the shop's top share of customers (and at least the minimum returns)."""
SERIAL_RETURNER_MIN_RETURNS = 2
EVENT_DAY_PROMO_SHARE = 0.5
"""An event day of the shop: at least this share of the day's orders carries a promotion."""
EVENT_BUYER_SHARE = 0.5
"""`event_buyer`: a repeat buyer with at least this share of their orders on the shop's event days."""
NEW_ARRIVAL_DAYS = 30
"""A product is a new arrival for this many days after its first sale in the shop."""
NEW_ARRIVAL_SHARE = 0.5
"""`new_arrival_buyer`: at least this share of the customer's purchase lines are new arrivals."""
OVERDUE_GAP_FACTOR = 1.5
"""A reminder is due when the customer has been away this many times their usual gap."""
FIRST_FOLLOW_UP_DAYS = 21
"""Days after a first purchase for the follow-up (inside the 30 days when repeat rates are highest)."""
OWN_GAP_PRIOR_ORDERS = 3.0
"""Gaps of the shop's median gap the customer's usual gap is shrunk with, in the next-order date."""
OFFER_MIN_AOV_SHARE = 0.33
"""No promotional offer to a customer whose average order value is below this share of the offer's price."""

# --- engines --------------------------------------------------------------------------------
ENGINE: Final = "local"  # Final keeps the literal type Settings.engine checks against
SPARK_MASTER = "local[*]"
SPARK_PARTITION_ROWS = 1_000_000
SPARK_TRAIN_CUSTOMERS = 500_000
"""Most customers `patron train --engine spark` samples for training (the local engine holds 1M customers
in about 3 GB when scoring; training holds several feature snapshots of each)."""
