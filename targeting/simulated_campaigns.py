"""Past campaigns on a generated log: random control groups and known, heterogeneous effects.

No randomized retail campaign data can be had, so `simulate_campaigns` runs K campaigns on a
`features.synthetic` log. Campaign k has a send date (spread over the log, each window ending before the
log ends) and its own customers (a random share of everyone who bought before the send date; a customer
is in at most one campaign, so effects never overlap). Each customer's stage and tier at the send date
come from its purchases before it, with the targeting policy's thresholds and tier shares. A random
`control_share` of each campaign (stratified by tier x stage, targeting/control.py) is held back.

Every customer has a type and an effect on the treated. The type depends on traits the log shows (real
shops' responsiveness does: customers who buy on promotion respond to offers, long-gone ones do not,
frequent full-price buyers are the ones a promotion annoys). With `a` the share of the customer's orders
before the send date bought on promotion (the features' `promo_share` shows it as a share of spend), `d` the days since its last purchase
and `n` its purchases before the send date, the type is drawn from a softmax over

| type | logit (`TYPE_LOGITS`) | effect of the contact on a treated customer |
|---|---|---|
| `sure_thing` | `0.5 + 1.0 ln n - d / 90` | none: buys (or not) as it would anyway |
| `lost_cause` | `-1.0 + d / 90 - 10 (a - 0.2)` | none |
| `persuadable` | `0.5 + 12 (a - 0.2)` | if it would not have bought in the window, buys once with probability `persuasion` ~ Beta(6 + 20 a, 12) |
| `sleeping_dog` | `-2.8 + 0.5 ln n - 8 (a - 0.2)` | with probability `annoyance` ~ Beta(4, 4) leaves: every purchase after the send date is dropped |

The assignment file carries the truth: `customer_type`, `true_uplift` and `expected_uplift` (the uplift
expected from the traits alone, over the type and strength draws: the ceiling of any learner that sees
the traits perfectly).

`b` = P(purchase within the window without contact) is known from the generator's truth: 0 for a customer
that had dropped out before the send date, else `1 - exp(-lambda * window_days)` (the first purchase after
the send date comes before any further dropout). The assignment file's `true_uplift` is then exactly the
increase in P(purchase within the window) the contact causes: `(1 - b) * persuasion` for persuadables,
`-b * annoyance` for sleeping dogs, 0 otherwise (for control customers too: what contact would have done).
Even-numbered campaigns (sim-02, sim-04, ...) carry a coupon of `COUPON_SHARE` of the customer's past average order, redeemed by
every treated buyer in the window; the others are plain notices.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core import defaults
from features.synthetic import CATEGORIES, NS_PER_DAY, GeneratorParams, SyntheticData
from targeting.control import CONTROL, TREATMENT, control_mask
from targeting.lifecycle import stage_codes
from targeting.policy import STAGES, TIERS, TargetingPolicy, labels
from targeting.tiers import tier_codes
from targeting.winback import NO_ACTION, NO_CHANNEL, NOTICE, caused_and_redeemed

CUSTOMER_TYPES = ("sure_thing", "lost_cause", "persuadable", "sleeping_dog")
# rows: the types in CUSTOMER_TYPES order; columns: coefficients of 1, ln n, d / 90 and a - 0.2 in the type's logit
TYPE_LOGITS = np.array(
    [
        [0.5, 1.0, -1.0, 0.0],
        [-1.0, 0.0, 1.0, -10.0],
        [0.5, 0.0, 0.0, 12.0],
        [-2.8, 0.5, 0.0, -8.0],
    ]
)
PERSUASION_BETA = (6.0, 20.0, 12.0)
"""persuasion ~ Beta(PERSUASION_BETA[0] + PERSUASION_BETA[1] * a, PERSUASION_BETA[2])."""
ANNOYANCE_BETA = (4.0, 4.0)
CAMPAIGN_SHARE = 0.8
"""Share of the customers who bought before a send date that its campaign reaches, split over campaigns."""
COUPON_SHARE = 0.10
ASSIGNMENT_COLUMNS = (
    "campaign_id",
    "send_date",
    "customer_id",
    "group",
    "value_tier",
    "lifecycle_stage",
    "action",
    "channel",
    "incentive",
    "spend",
    "expected_profit",
    "expected_window_profit",
    "true_uplift",
    "expected_uplift",
    "customer_type",
)


@dataclass
class SimulatedCampaigns:
    """The log with the campaigns' effects applied, and one assignment row per campaign customer."""

    transactions: pd.DataFrame
    assignments: pd.DataFrame


def simulate_campaigns(
    data: SyntheticData,
    n_campaigns: int,
    *,
    window_days: int = defaults.CAMPAIGN_WINDOW_DAYS,
    control_share: float = 0.5,
    seed: int = defaults.SEED,
    policy: TargetingPolicy | None = None,
    params: GeneratorParams | None = None,
) -> SimulatedCampaigns:
    """Run `n_campaigns` past campaigns on a generated log (see the module docstring)."""
    if n_campaigns < 1:
        raise ValueError(f"n_campaigns must be at least 1, got {n_campaigns}")
    if window_days < 1:
        raise ValueError(f"window_days must be at least 1, got {window_days}")
    policy = policy or TargetingPolicy()
    params = params or GeneratorParams()
    rng = np.random.default_rng([seed, 11])
    log = data.transactions
    send = _send_dates(log, n_campaigns, window_days, rng)
    members = _members(data, send, rng)
    members = _history(log, members, policy)
    members = _effects(data, members, window_days, rng)
    members = _groups(members, control_share)
    members = _plan(members, policy)
    transactions = _apply(log, data, members, window_days, params, rng)
    return SimulatedCampaigns(transactions=transactions, assignments=members[list(ASSIGNMENT_COLUMNS)].reset_index(drop=True))


def _send_dates(log: pd.DataFrame, k: int, window_days: int, rng: np.random.Generator) -> np.ndarray:
    """K send dates (midnight), evenly spread over the second half of the log, windows inside the log."""
    first, last = log["timestamp"].min().normalize(), log["timestamp"].max().normalize()
    latest = last - pd.Timedelta(days=window_days)
    earliest = (first + (last - first) / 2).normalize()  # midnight, as the report reads the send date
    if latest <= earliest:
        raise ValueError(f"the log ({first.date()} .. {last.date()}) is too short for {window_days}-day campaign windows")
    offsets = np.sort(rng.random(k)) * (latest - earliest).days
    return (earliest + pd.to_timedelta(np.floor(offsets), unit="D")).to_numpy(dtype="datetime64[ns]")


def _members(data: SyntheticData, send: np.ndarray, rng: np.random.Generator) -> pd.DataFrame:
    """Each customer in at most one campaign: a random campaign, kept if it bought before the send date."""
    customers = data.customers
    k = send.size
    campaign = rng.integers(0, k, len(customers))
    reached = rng.random(len(customers)) < CAMPAIGN_SHARE
    frame = pd.DataFrame(
        {
            "customer_id": customers.index.to_numpy(dtype=object),
            "campaign": campaign,
            "send_date": send[campaign],
        }
    )
    eligible = reached & (customers["first_purchase"].to_numpy() < send[campaign])
    frame = frame[eligible].reset_index(drop=True)
    width = len(str(k))
    frame["campaign_id"] = "sim-" + pd.Series(frame["campaign"] + 1).astype(str).str.zfill(width).to_numpy()
    return frame


def _history(log: pd.DataFrame, members: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """Stage and tier at the send date, from the purchases before it (tiers by past spend per campaign)."""
    orders = log.loc[~log["is_return"], ["customer_id", "timestamp", "amount", "promo"]].merge(
        members[["customer_id", "send_date"]], on="customer_id"
    )
    orders = orders[orders["timestamp"] < orders["send_date"]]
    past = orders.groupby("customer_id", sort=False).agg(
        last=("timestamp", "max"), orders=("amount", "size"), spend=("amount", "sum"), promo_share=("promo", "mean")
    )
    members = members.join(past, on="customer_id")
    days = (members["send_date"] - members["last"]).dt.total_seconds().to_numpy() / 86_400
    stage = stage_codes(days, members["orders"].to_numpy() - 1, policy.active_days, policy.sleeping_days, policy.at_risk_days)
    tier = np.empty(len(members), dtype=np.int8)
    for _, rows in members.groupby("campaign", sort=True).indices.items():  # one ranking per campaign (K loops)
        tier[rows] = tier_codes(members["spend"].to_numpy()[rows], shares=policy.tier_shares, ids=members["customer_id"].to_numpy()[rows])
    members["stage"] = stage
    members["tier"] = tier
    members["avg_order"] = members["spend"] / members["orders"]
    return members


def type_odds(orders: np.ndarray, days: np.ndarray, affinity: np.ndarray) -> np.ndarray:
    """P(type) per customer (rows; columns in CUSTOMER_TYPES order) from its purchases before the send
    date, days since the last one and promotion affinity (module docstring)."""
    x = np.column_stack([np.ones(len(orders)), np.log(np.maximum(orders, 1)), np.asarray(days, dtype=float) / 90.0, affinity - 0.2])
    logits = x @ TYPE_LOGITS.T
    odds = np.exp(logits - logits.max(axis=1, keepdims=True))
    return odds / odds.sum(axis=1, keepdims=True)


def _effects(data: SyntheticData, members: pd.DataFrame, window_days: int, rng: np.random.Generator) -> pd.DataFrame:
    """Customer type, base conversion b, strength of the effect, the true and the expected uplift per member."""
    truth = data.customers.loc[members["customer_id"]]
    dropout = truth["dropout_time"].to_numpy()
    alive = np.isnat(dropout) | (dropout >= members["send_date"].to_numpy())
    base = np.where(alive, 1.0 - np.exp(-truth["lambda_"].to_numpy() * window_days), 0.0)
    affinity = members["promo_share"].to_numpy(dtype=float)
    days = (members["send_date"] - members["last"]).dt.total_seconds().to_numpy() / 86_400
    odds = type_odds(members["orders"].to_numpy(dtype=float), days, affinity)
    kind = (rng.random(len(members))[:, None] > np.cumsum(odds, axis=1)).sum(axis=1)
    kind = np.minimum(kind, len(CUSTOMER_TYPES) - 1)  # rounding of the cumulative sum
    shape_a = PERSUASION_BETA[0] + PERSUASION_BETA[1] * affinity
    persuadable, dog = CUSTOMER_TYPES.index("persuadable"), CUSTOMER_TYPES.index("sleeping_dog")
    strength = np.where(kind == persuadable, rng.beta(shape_a, PERSUASION_BETA[2]), rng.beta(*ANNOYANCE_BETA, len(members)))
    uplift = np.select([kind == persuadable, kind == dog], [(1.0 - base) * strength, -base * strength], default=0.0)
    mean_persuasion = shape_a / (shape_a + PERSUASION_BETA[2])
    mean_annoyance = ANNOYANCE_BETA[0] / sum(ANNOYANCE_BETA)
    expected = odds[:, persuadable] * (1.0 - base) * mean_persuasion - odds[:, dog] * base * mean_annoyance
    return members.assign(
        base=base, kind=kind, strength=strength, true_uplift=uplift, expected_uplift=expected, customer_type=labels(kind, CUSTOMER_TYPES)
    )


def _groups(members: pd.DataFrame, control_share: float) -> pd.DataFrame:
    """Treatment or control per member: the production control rule, per campaign."""
    control = np.zeros(len(members), dtype=bool)
    stratum = members["tier"].to_numpy(dtype=np.int64) * len(STAGES) + members["stage"].to_numpy(dtype=np.int64)
    for campaign_id, rows in members.groupby("campaign_id", sort=True).indices.items():  # K loops
        control[rows] = control_mask(campaign_id, members["customer_id"].to_numpy()[rows], stratum[rows], control_share)
    return members.assign(group=np.where(control, CONTROL, TREATMENT), treated=~control)


def _plan(members: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """What a planner with the policy's uplift would have written on the list: email, incentive, spend,
    expected (in-window) profit; control rows are not contacted."""
    coupon = members["campaign"].to_numpy() % 2 == 1  # sim-2, sim-4, ... carry a coupon
    treated = members["treated"].to_numpy()
    incentive = np.where(coupon & treated, np.round(COUPON_SHARE * members["avg_order"].to_numpy(), 2), 0.0)
    cost = policy.contact_costs[policy.channels[0]]
    caused, redeem = caused_and_redeemed(members["stage"].to_numpy(), np.where(treated, 1.0, 0.0), policy, members["tier"].to_numpy())
    margin = policy.margin_rate * members["avg_order"].to_numpy()
    window = np.where(treated, caused * margin - cost - redeem * incentive, 0.0)
    return members.assign(
        value_tier=labels(members["tier"].to_numpy(), TIERS),
        lifecycle_stage=labels(members["stage"].to_numpy(), STAGES),
        action=np.where(treated, NOTICE, NO_ACTION),
        channel=np.where(treated, policy.channels[0], NO_CHANNEL),
        incentive=incentive,
        spend=np.where(treated, cost + redeem * incentive, 0.0),
        expected_profit=window,
        expected_window_profit=window,
        send_date=members["send_date"].dt.strftime("%Y-%m-%d"),
        send_ts=members["send_date"],
    )


def _apply(
    log: pd.DataFrame, data: SyntheticData, members: pd.DataFrame, window_days: int, params: GeneratorParams, rng: np.random.Generator
) -> pd.DataFrame:
    """The log with treated sleeping dogs' later purchases dropped and persuaded purchases added."""
    window = pd.Timedelta(days=window_days)
    send = members.set_index("customer_id")["send_ts"]
    row_send = log["customer_id"].map(send).to_numpy(dtype="datetime64[ns]")
    in_window = (log["timestamp"].to_numpy() > row_send) & (log["timestamp"].to_numpy() <= row_send + window) & ~log["is_return"].to_numpy()
    bought = pd.Series(in_window).groupby(log["customer_id"].to_numpy()).any()
    would_buy = bought.reindex(members["customer_id"]).fillna(False).to_numpy(dtype=bool)
    treated = members["treated"].to_numpy()
    kind = members["kind"].to_numpy()
    draw = rng.random(len(members))
    leaves = treated & (kind == CUSTOMER_TYPES.index("sleeping_dog")) & (draw < members["strength"].to_numpy())
    persuaded = treated & (kind == CUSTOMER_TYPES.index("persuadable")) & ~would_buy & (draw < members["strength"].to_numpy())

    gone = set(members.loc[leaves, "customer_id"])
    after = log["timestamp"].to_numpy() > row_send
    kept = log[~(log["customer_id"].isin(gone).to_numpy() & after)]

    extra = members[persuaded]
    truth = data.customers.loc[extra["customer_id"]]
    n = len(extra)
    when = extra["send_ts"].to_numpy() + (rng.random(n) * window_days * NS_PER_DAY).astype("timedelta64[ns]")
    value = np.round(np.maximum(rng.gamma(params.p, 1.0 / truth["nu"].to_numpy()), 0.5), 2)
    discount = extra["incentive"].to_numpy()
    added = pd.DataFrame(
        {
            "customer_id": pd.array(extra["customer_id"].to_numpy(dtype=str), dtype="str"),
            "timestamp": pd.to_datetime(when).floor("s"),
            "amount": value,
            "is_return": False,
            "order_id": pd.array((extra["customer_id"] + "-" + extra["campaign_id"]).to_numpy(dtype=str), dtype="str"),
            "quantity": 1.0,
            "unit_price": value,
            "category": pd.array(np.asarray(CATEGORIES, dtype=object)[rng.integers(0, len(CATEGORIES), n)].astype(str), dtype="str"),
            "channel": pd.array(truth["channel"].to_numpy(dtype=str), dtype="str"),
            "discount": discount,
            "cost": np.round(value * (1.0 - params.margin_rate), 2),
            "promo": discount > 0,
        }
    )
    out = pd.concat([kept, added[kept.columns]], ignore_index=True)
    return out.sort_values(["customer_id", "timestamp"], kind="stable").reset_index(drop=True)
