"""Every default value of Patron, written once.

`patron.settings.Settings` exposes each as a `PATRON_*` variable; library objects (`TargetingPolicy`,
`TrainingConfig`, `PatronScorer`, `CLVModel`, ...) and function signatures refer to these names
instead of repeating the numbers.
"""

from __future__ import annotations

from types import MappingProxyType

SEED = 42
N_THREADS = 2

TIME_UNIT_DAYS = 1
CHURN_HORIZON_DAYS = 90
CLV_HORIZON_DAYS = 365
MONTHLY_DISCOUNT_RATE = 0.01
MARGIN_RATE = 0.30

BTYD_MODEL = "auto"
PENALIZER_COEF = 0.0
CHURN_SNAPSHOTS = 4
SNAPSHOT_STEP_DAYS = 30

TRACKING_URI = "sqlite:///mlruns/mlflow.db"
EXPERIMENT_NAME = "patron"
REGISTERED_MODEL_NAME = "patron"
PROMOTION_TOLERANCE = 0.005

TIER_SHARES = (0.10, 0.15, 0.25, 0.50)
ACTIVE_DAYS = 90
SLEEPING_DAYS = 180
AT_RISK_DAYS = 365
RETURN_HANDLING_COST = 5.0
SERVICE_COST_PER_ORDER = 1.0
RESPONSE_RATES = MappingProxyType({"new": 0.65, "active": 0.65, "sleeping": 0.30, "at_risk": 0.20, "lost": 0.08})
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

MODEL_URI = "models:/patron@champion"
MAX_BODY_BYTES = 5_000_000
MAX_CUSTOMERS_PER_REQUEST = 1000
MAX_TRANSACTIONS_PER_CUSTOMER = 10_000
RELOAD_INTERVAL_SECONDS = 0.0
SCORE_COALESCE_MS = 5.0
BATCH_CHUNK_SIZE = 250_000

ENGINE = "local"
SPARK_MASTER = "local[*]"
SPARK_PARTITION_ROWS = 1_000_000
