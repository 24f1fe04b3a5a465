"""Campaign selection: whom to contact under a money budget, maximising expected incremental profit.

Spend of a contact (what the budget pays for) is its expected cost:

    spend = contact_costs[channel] + P(redeem | contacted) * incentive      (targeting/winback.py)

the same costs `winback_profit` already nets out, so `expected_profit` is profit after spend and
`expected_roi = expected_profit / spend`.

Selection is the 0/1 knapsack "maximise the sum of winback_profit subject to the sum of spend <= budget"
over the candidates (not excluded, positive profit), solved greedily: by profit per unit of spend, and an
item that does not fit is skipped while smaller ones that still fit are taken. Two cheap repairs follow:
the 16 items around the first one that does not fit (the knapsack's "core", where greedy and optimum
differ) are re-chosen exactly by enumerating their 65,536 subsets at once, and the single most profitable
affordable contact is tried alone (which bounds the worst case at half the optimum); the best answer wins.
On generated cases of 30-200 items the result stays within 1% of the exact optimum (scipy milp) -- see
tests/targeting/test_campaign_selection.py and benchmarks/RESULTS.md, which also give plain greedy's gap.

Every customer is accounted for: the selected ones, plus the `excluded` table counting the others by
reason: the decisions' `exclude_reason` (`negative_net_value`, `recent_purchase`, `no_positive_profit`,
and contact timing's `within_repurchase_cycle`, `below_offer_price`: `targeting.timing`), `over_budget`
for candidates the budget did not reach, and `unspecified` for rows marked excluded with a reason this
version does not know. All seven rows are always listed.

Control group: every campaign holds back `control_share` of its selected customers (targeting/control.py:
stratified by value tier x lifecycle stage, reproducible for a campaign id and customer id). The knapsack
is filled to `budget / (1 - control_share)`, the control group is drawn among the picks, and the treatment
group is trimmed (last picks first) until its spend fits the budget: the budget is spent on the treatment
group only. Control rows are listed with `group == "control"`, action and channel "none", no incentive,
spend 0 and expected profit 0, and are counted in the summary's `control` column; the campaign report
(targeting/campaign_report.py) compares the two groups after the send date.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from targeting.control import CONTROL, TREATMENT, control_mask
from targeting.decide import EXCLUDE_REASONS, NO_POSITIVE_PROFIT, customer_ids
from targeting.lifecycle import STAGE_NAMES
from targeting.policy import STAGES, TIERS, TargetingPolicy, codes_of, labels, labels_from_arrow
from targeting.tiers import TIER_NAMES
from targeting.timing import TIMING_REASONS
from targeting.winback import (
    NO_ACTION,
    NO_CHANNEL,
    contact_spend,
    email_uplift,
    retained_value,
    retention_part,
)

OVER_BUDGET = "over_budget"
UNSPECIFIED = "unspecified"
CAMPAIGN_INPUT_COLUMNS = (
    "value_tier",
    "lifecycle_stage",
    "exclude_from_spend",
    "exclude_reason",
    "winback_profit",
    "action",
    "channel",
    "incentive",
)
SELECTED_COLUMNS = [
    "customer_id",
    "action",
    "channel",
    "incentive",
    "expected_profit",
    "reason",
    "spend",
    "value_tier",
    "lifecycle_stage",
    "campaign_id",
    "group",
    "expected_window_profit",
]
SUMMARY_COLUMNS = [
    "value_tier",
    "lifecycle_stage",
    "candidates",
    "customers",
    "control",
    "spend",
    "expected_incremental_profit",
    "expected_roi",
]


@dataclass(frozen=True)
class CampaignResult:
    """A selected campaign.

    Parameters
    ----------
    selected : DataFrame
        One row per contacted customer, best profit per spend first: `customer_id, action, channel,
        incentive, expected_profit, reason, spend, value_tier, lifecycle_stage`.
    summary : DataFrame
        One row per value tier x lifecycle stage: `candidates` (positive-profit, not excluded),
        `customers` (selected), `spend`, `expected_incremental_profit`, `expected_roi`.
    excluded : DataFrame
        `reason, customers`: every customer not selected, counted by reason.
    budget : float
        The budget the campaign was selected under.
    expected_profit_range : (float, float) or None
        The treatment's expected incremental profit with every contacted customer's retained value at
        the low and at the high end of their 90% CLV interval (`_profit_range`); None when the decisions
        carry no CLV interval.
    """

    selected: pd.DataFrame
    summary: pd.DataFrame
    excluded: pd.DataFrame
    budget: float
    campaign_id: str = ""
    control_share: float = 0.0
    expected_profit_range: tuple[float, float] | None = None

    @property
    def treatment(self) -> pd.DataFrame:
        """The contacted customers."""
        return self.selected[self.selected["group"] == TREATMENT]

    @property
    def control(self) -> pd.DataFrame:
        """The customers held back, not contacted."""
        return self.selected[self.selected["group"] == CONTROL]

    @property
    def spend(self) -> float:
        """Total expected spend of the selected contacts."""
        return float(math.fsum(self.selected["spend"]))

    @property
    def expected_profit(self) -> float:
        """Total expected incremental profit of the selected contacts."""
        return float(math.fsum(self.selected["expected_profit"]))

    def expected_profit_text(self) -> str:
        """"expected incremental profit X (range L to H ...)", as the campaign summaries print it."""
        text = f"expected incremental profit {self.expected_profit:,.2f}"
        if self.expected_profit_range is None:
            return text
        low, high = self.expected_profit_range
        return f"{text} (range {low:,.2f} to {high:,.2f} with every contacted customer's CLV at its 90% interval's low / high end)"


def _fill(order: np.ndarray, cost: np.ndarray, budget: float) -> np.ndarray:
    """Item-by-item greedy over `order` (take each item that still fits), in vectorised rounds."""
    picks: list[np.ndarray] = []
    remaining = float(budget)
    pending = order
    # Each round takes the longest run of still-affordable items that fits; the item that breaks the run
    # no longer fits and is skipped, and anything costlier than what remains can never fit again. Same
    # result as the item-by-item loop. Rounds end at each skipped item: few in practice (the remaining
    # budget drops below the skipped item's cost each time), at worst one per item.
    while pending.size:
        pending = pending[cost[pending] <= remaining]
        if not pending.size:
            break
        total = np.cumsum(cost[pending])
        k = int(np.searchsorted(total, remaining, side="right"))
        if k == 0:
            break
        picks.append(pending[:k])
        remaining -= float(total[k - 1])
        pending = pending[k:]
    return np.concatenate(picks) if picks else np.array([], dtype=np.int64)


@functools.lru_cache(maxsize=4)
def _subsets(size: int) -> np.ndarray:
    """Every subset of `size` items as a read-only 0/1 float matrix (2**size rows), for BLAS products."""
    bits = ((np.arange(2**size)[:, None] >> np.arange(size)[None, :]) & 1).astype(float)
    bits.setflags(write=False)
    return bits


def _core_repair(order: np.ndarray, profit: np.ndarray, cost: np.ndarray, budget: float, core_size: int) -> np.ndarray | None:
    """Greedy with the `core_size` items around the first one that does not fit re-chosen exactly.

    The items before the core are taken, the best subset of the core (all 2**core_size of them, as one
    matrix) is added, and the rest is filled greedily: the classic "core" of the knapsack problem
    (Pisinger 1995), where greedy and optimum usually differ.
    """
    n = order.size
    running = np.cumsum(cost[order])
    breaks = int(np.searchsorted(running, budget, side="right"))
    if breaks >= n or core_size <= 0:
        return None  # everything fits: greedy is optimal
    lo = max(0, breaks - core_size // 2)
    hi = min(n, lo + core_size)
    fixed, core = order[:lo], order[lo:hi]
    remaining = budget - math.fsum(cost[fixed])
    bits = _subsets(core.size)
    subset_cost = bits @ cost[core]
    subset_profit = np.where(subset_cost <= remaining, bits @ profit[core], -np.inf)
    best = core[bits[int(np.argmax(subset_profit))] > 0]
    taken = np.concatenate([fixed, best])
    rest = _fill(order[hi:], cost, budget - math.fsum(cost[taken]))
    return np.concatenate([taken, rest])


def greedy_knapsack(profit: np.ndarray, cost: np.ndarray, budget: float, core_size: int = 16) -> np.ndarray:
    """Positions chosen (in pick order) to maximise total profit with total cost <= budget.

    Greedy by profit per unit cost (skipping items that no longer fit and taking later smaller ones),
    improved by an exact choice among the `core_size` items around the break item, and compared with the
    best single affordable item; the best of the three is returned. Items need cost >= 0.
    """
    profit = np.asarray(profit, dtype=float)
    cost = np.asarray(cost, dtype=float)
    if profit.shape != cost.shape or profit.ndim != 1:
        raise ValueError("profit and cost must be 1-d arrays of the same length")
    if not (np.isfinite(profit).all() and np.isfinite(cost).all()) or (cost < 0).any():
        raise ValueError("profit and cost must be finite, cost >= 0")
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite amount >= 0, got {budget}")
    if not 0 <= core_size <= 20:
        raise ValueError("core_size must lie in [0, 20] (2**core_size subsets are enumerated)")
    with np.errstate(over="ignore"):  # a huge profit over a tiny cost is simply first in line
        ratio = np.divide(profit, cost, out=np.full(profit.shape, np.inf), where=cost > 0)
    order = np.lexsort((-profit, -ratio))  # by ratio, then by profit; stable for full ties
    options = [_fill(order, cost, budget), _core_repair(order, profit, cost, budget, core_size)]
    affordable = np.flatnonzero(cost <= budget)
    if affordable.size:
        options.append(affordable[[int(np.argmax(profit[affordable]))]])
    chosen = np.array([], dtype=np.int64)
    best_profit = 0.0
    for option in options:  # at most three candidate answers
        if option is None:
            continue
        # floating drift of running sums: drop the last picks until the exactly rounded sum fits
        while option.size and math.fsum(cost[option]) > budget:
            option = option[:-1]
        total = math.fsum(profit[option])
        if total > best_profit:
            chosen, best_profit = option, total
    return chosen.astype(np.int64)


def _check(decisions: pd.DataFrame, budget: float) -> None:
    if not isinstance(decisions, pd.DataFrame):
        raise DataError(f"decisions must be a pandas DataFrame, got {type(decisions).__name__}")
    try:
        budget = float(budget)
    except (TypeError, ValueError):
        raise ValueError(f"budget must be a number, got {budget!r}") from None
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"budget must be a finite amount >= 0, got {budget}")
    missing = [c for c in CAMPAIGN_INPUT_COLUMNS if c not in decisions.columns]
    if missing:
        raise DataError(f"the decisions lack columns {missing}; run targeting.decide.decide on the scores first")
    if "customer_id" not in decisions.columns and decisions.index.name != "customer_id":
        raise DataError("the decisions need a customer_id column (or index)")


def _flags(column: pd.Series) -> np.ndarray:
    """A boolean column, also when read back from text ("True"/"False", "1"/"0")."""
    if column.dtype == bool:
        return column.to_numpy()
    text = column.astype(str).str.strip().str.lower()
    unknown = sorted(set(text.unique()) - {"true", "false", "1", "0", "1.0", "0.0"})
    if unknown:
        raise DataError(f"exclude_from_spend must be true/false, found {unknown[:5]}")
    return text.isin(["true", "1", "1.0"]).to_numpy()


def _reason_text(stage: np.ndarray, tier: np.ndarray, profit: np.ndarray, spend: np.ndarray, churn: np.ndarray | None) -> Any:
    """Why each selected customer is contacted, as one readable phrase (built in Arrow, no per-row Python)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def money(values: np.ndarray) -> pa.Array:
        return pc.cast(pc.round(pa.array(values, type=pa.float64()), 2), pa.string())

    prefixes = pa.array([f"{s} {t} customer: expected profit " for t in TIERS for s in STAGES])
    cell = pa.array(tier.astype(np.int64) * len(STAGES) + stage)
    parts: list[Any] = [pc.take(prefixes, cell), money(profit), " for spend ", money(spend)]
    if churn is not None:
        percent = pc.cast(pa.array(np.rint(100 * churn).astype(np.int64)), pa.string())
        parts += [", P(churn) ", percent, "%"]
    text = pc.binary_join_element_wise(*parts, "")
    return labels_from_arrow(text)


def _summary(
    tier: np.ndarray, stage: np.ndarray, candidate: np.ndarray, chosen: np.ndarray, held: np.ndarray, spend: np.ndarray, profit: np.ndarray
) -> pd.DataFrame:
    """Candidates, contacted and control customers, spend, profit and ROI per value tier x lifecycle stage."""
    cell = tier.astype(np.int64) * len(STAGES) + stage
    size = len(TIERS) * len(STAGES)

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(cell, weights=weights, minlength=size)

    spent = total(np.where(chosen, spend, 0.0))
    gained = total(np.where(chosen, profit, 0.0))
    return pd.DataFrame(
        {
            "value_tier": np.repeat(TIER_NAMES, len(STAGES)),
            "lifecycle_stage": np.tile(STAGE_NAMES, len(TIERS)),
            "candidates": total(candidate.astype(float)).astype(np.int64),
            "customers": total(chosen.astype(float)).astype(np.int64),
            "control": total(held.astype(float)).astype(np.int64),
            "spend": spent,
            "expected_incremental_profit": gained,
            "expected_roi": np.divide(gained, spent, out=np.zeros(size), where=spent > 0),
        }
    )[SUMMARY_COLUMNS]


def _vocabulary_codes(column: pd.Series, vocabulary: tuple[str, ...], name: str) -> np.ndarray:
    """Codes of a tier or stage column; DataError naming values outside the vocabulary."""
    codes = codes_of(column.astype(str), vocabulary)
    if (codes < 0).any():
        unknown = sorted(set(column[codes < 0].astype(str).unique()))[:5]
        raise DataError(f"{name} has unknown values {unknown}; expected one of {list(vocabulary)}")
    return codes


def _campaign_inputs(decisions: pd.DataFrame, policy: TargetingPolicy) -> dict[str, np.ndarray]:
    """Codes, money and flags per customer that selection works on (validated)."""
    tier = _vocabulary_codes(decisions["value_tier"], TIERS, "value_tier")
    stage = _vocabulary_codes(decisions["lifecycle_stage"], STAGES, "lifecycle_stage")
    incentive = np.nan_to_num(_floats(decisions, "incentive", 0.0))
    profit = _floats(decisions, "winback_profit", np.nan)
    excluded = _flags(decisions["exclude_from_spend"])
    channel = decisions["channel"].astype(str)
    contactable = ~excluded & (channel != NO_CHANNEL).to_numpy()
    # the scores' own uplift (a per-customer model's, or the table's when scored), else the policy's table
    uplift = email_uplift(stage, tier, policy, _floats(decisions, "uplift", np.nan) if "uplift" in decisions.columns else None)
    spend = np.zeros(len(decisions))
    if contactable.any():
        spend[contactable] = contact_spend(stage[contactable], channel[contactable], incentive[contactable], policy, uplift=uplift[contactable])
    return {
        "tier": tier,
        "stage": stage,
        "uplift": uplift,
        "incentive": incentive,
        "profit": profit,
        "excluded": excluded,
        "channel": channel.to_numpy(dtype=object),
        "spend": spend,
        "candidate": contactable & np.isfinite(profit) & (profit > 0),
    }


def _floats(decisions: pd.DataFrame, column: str, missing: float) -> np.ndarray:
    """A numeric column as floats, `missing` where not a number."""
    return pd.to_numeric(decisions[column], errors="coerce").to_numpy(dtype=float, na_value=missing)


def _window_profit(decisions: pd.DataFrame, x: dict[str, np.ndarray], policy: TargetingPolicy) -> np.ndarray:
    """The in-window part of each expected profit (without the retained customer's later value); the
    whole profit when the decisions lack `net_value`, `p_alive` or `churn_probability`."""
    if not all(c in decisions.columns for c in ("net_value", "p_alive", "churn_probability")):
        return x["profit"]
    retained = retained_value(
        np.nan_to_num(_floats(decisions, "net_value", 0.0)), np.nan_to_num(_floats(decisions, "p_alive", 1.0)), policy.p_alive_floor
    )
    churn = np.nan_to_num(_floats(decisions, "churn_probability", 0.0))
    later = retention_part(x["stage"], x["channel"], churn, retained, policy, uplift=x["uplift"])
    return x["profit"] - later


INTERVAL_INPUTS = ("clv", "clv_low", "clv_high")


def _profit_range(
    decisions: pd.DataFrame, x: dict[str, np.ndarray], window: np.ndarray, treatment: np.ndarray
) -> tuple[float, float] | None:
    """Total expected profit of `treatment` with each retained value at its CLV interval's low / high end.

    Only the part earned after the window (u x P(churn) x retained value) depends on the customer's
    future value; it is scaled by clv_low / clv and clv_high / clv (retained value is net value over
    P(alive), and net value moves with the CLV). Summing per-customer ends gives the range if every
    contacted customer came in at the same end of their own interval: wider than an interval of the
    total, which independent customers would narrow, and so the cautious reading for a budget decision.
    """
    if not all(c in decisions.columns for c in INTERVAL_INPUTS):
        return None
    clv, low, high = (np.nan_to_num(_floats(decisions, c, 0.0)[treatment]) for c in INTERVAL_INPUTS)
    later = (x["profit"] - window)[treatment]
    positive = clv > 0
    low_ratio = np.divide(low, clv, out=np.ones(len(clv)), where=positive)
    high_ratio = np.divide(high, clv, out=np.ones(len(clv)), where=positive)
    profit = x["profit"][treatment]
    return math.fsum(profit + later * (low_ratio - 1.0)), math.fsum(profit + later * (high_ratio - 1.0))


def _choose(x: dict[str, np.ndarray], budget: float, control_share: float) -> np.ndarray:
    """Positions of the customers selected (treatment and control), in pick order.

    The knapsack is filled up to `budget / (1 - control_share)`, so that once the control group is held
    back the treatment group spends about `budget`; `_hold_back` then trims the treatment to fit.
    """
    positions = np.flatnonzero(x["candidate"])
    gross = budget / (1.0 - control_share)
    return positions[greedy_knapsack(x["profit"][positions], x["spend"][positions], gross)]


def _hold_back(picked: np.ndarray, x: dict[str, np.ndarray], ids: pd.Series, budget: float, campaign_id: str, share: float) -> tuple[np.ndarray, np.ndarray]:
    """(treatment, control) positions: the control group drawn among `picked` by tier x stage, then the
    treatment trimmed, last picks first, until its spend fits `budget`."""
    stratum = x["tier"][picked] * len(STAGES) + x["stage"][picked]
    control = control_mask(campaign_id, ids.iloc[picked].to_numpy(dtype=object), stratum, share)
    treatment = picked[~control]
    fits = np.cumsum(x["spend"][treatment]) <= budget
    treatment = treatment[: int(np.argmin(fits)) if not fits.all() else treatment.size]
    while treatment.size and math.fsum(x["spend"][treatment]) > budget:  # rounding drift of cumsum
        treatment = treatment[:-1]
    return treatment, picked[control]


def _exclusions(decisions: pd.DataFrame, x: dict[str, np.ndarray], chosen: np.ndarray) -> pd.DataFrame:
    """Every customer not selected, counted by reason: the decision's reason, else no profit, else budget."""
    vocabulary = (*EXCLUDE_REASONS, *TIMING_REASONS, UNSPECIFIED)
    given = codes_of(decisions["exclude_reason"].fillna("").astype(str), vocabulary)
    reason = np.select(
        [chosen, x["excluded"], ~x["candidate"]],
        [-1, np.where(given < 0, len(vocabulary) - 1, given), EXCLUDE_REASONS.index(NO_POSITIVE_PROFIT)],
        default=len(vocabulary),  # over budget
    )
    names = [*vocabulary, OVER_BUDGET]
    counts = np.bincount(reason[reason >= 0], minlength=len(names))
    table = pd.DataFrame({"reason": names, "customers": counts.astype(np.int64)})
    order = [*EXCLUDE_REASONS, *TIMING_REASONS, OVER_BUDGET, UNSPECIFIED]
    return table.set_index("reason").loc[order].reset_index()


def _selected_list(
    decisions: pd.DataFrame,
    x: dict[str, np.ndarray],
    window: np.ndarray,
    ids: pd.Series,
    treatment: np.ndarray,
    control: np.ndarray,
    campaign_id: str,
) -> pd.DataFrame:
    """The campaign list: treatment rows (best profit per spend first), then the control rows, which are
    not contacted (action and channel "none", no incentive, spend and expected profit 0)."""
    picked = np.concatenate([treatment, control])
    treated = np.arange(picked.size) < treatment.size
    stage, tier = x["stage"][picked], x["tier"][picked]

    def contacted(values: np.ndarray, otherwise: float) -> np.ndarray:
        return np.where(treated, values[picked], otherwise)

    churn = None
    if "churn_probability" in decisions.columns:
        churn = np.nan_to_num(_floats(decisions, "churn_probability", 0.0)[picked])
    profit, spend = contacted(x["profit"], 0.0), contacted(x["spend"], 0.0)
    reason = _reason_text(stage, tier, profit, spend, churn)
    action = decisions["action"].astype(str).to_numpy(dtype=object)[picked]
    frame = pd.DataFrame(
        {
            "customer_id": ids.iloc[picked].reset_index(drop=True),
            "action": np.where(treated, action, NO_ACTION),
            "channel": np.where(treated, x["channel"][picked], NO_CHANNEL),
            "incentive": contacted(x["incentive"], 0.0),
            "expected_profit": profit,
            "reason": reason,
            "spend": spend,
            "value_tier": labels(tier, TIERS),
            "lifecycle_stage": labels(stage, STAGES),
            "campaign_id": campaign_id,
            "group": np.where(treated, TREATMENT, CONTROL),
            "expected_window_profit": contacted(window, 0.0),
        }
    )
    frame.loc[~treated, "reason"] = "control group: held back, not contacted"
    return frame[SELECTED_COLUMNS]


def default_campaign_id(decisions: pd.DataFrame, budget: float) -> str:
    """A campaign id from the customer ids and the budget: a re-run on the same scores gives the same id."""
    digest = hashlib.sha256("\n".join(customer_ids(decisions)).encode())
    digest.update(repr(float(budget)).encode())
    return f"campaign-{digest.hexdigest()[:12]}"


def select_campaign(
    decisions: pd.DataFrame,
    budget: float,
    policy: TargetingPolicy | None = None,
    *,
    campaign_id: str | None = None,
    control_share: float | None = None,
) -> CampaignResult:
    """Choose the customers to contact under `budget`, holding back a control group among them.

    `policy` gives the contact costs and uplift behind each contact's spend and the default control
    share; default `TargetingPolicy()`. Pass the policy the decisions were made with (the model's) so
    spend matches. `campaign_id` seeds the control group (default: from the decisions and budget).
    """
    _check(decisions, budget)
    budget = float(budget)
    policy = policy or TargetingPolicy()
    share = policy.control_share if control_share is None else float(control_share)
    if not 0 <= share < 1:
        raise ValueError(f"control share must lie in [0, 1), got {share}")
    campaign_id = campaign_id or default_campaign_id(decisions, budget)
    x = _campaign_inputs(decisions, policy)
    ids = customer_ids(decisions)
    treatment, control = _hold_back(_choose(x, budget, share), x, ids, budget, campaign_id, share)
    chosen = np.zeros(len(decisions), dtype=bool)
    chosen[treatment] = True
    held = np.zeros(len(decisions), dtype=bool)
    held[control] = True
    window = _window_profit(decisions, x, policy)
    return CampaignResult(
        selected=_selected_list(decisions, x, window, ids, treatment, control, campaign_id),
        summary=_summary(x["tier"], x["stage"], x["candidate"], chosen, held, x["spend"], x["profit"]),
        excluded=_exclusions(decisions, x, chosen | held),
        budget=budget,
        campaign_id=campaign_id,
        control_share=share,
        expected_profit_range=_profit_range(decisions, x, window, treatment),
    )
