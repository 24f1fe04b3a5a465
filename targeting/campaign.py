"""Campaign selection: whom to contact under a money budget, maximising expected incremental profit.

Spend of a contact (what the budget pays for) is its expected cost:

    spend = contact_costs[channel] + P(response) * incentive,   P(response) = min(1, rate[stage] * lift[channel])

the same costs `winback_profit` already nets out, so `expected_profit` is profit after spend and
`expected_roi = expected_profit / spend`.

Selection is the 0/1 knapsack "maximise the sum of winback_profit subject to the sum of spend <= budget"
over the candidates (not excluded, positive profit), solved greedily: by profit per unit of spend, and an
item that does not fit is skipped while smaller ones that still fit are taken. Two cheap repairs follow:
the 16 items around the first one that does not fit (the knapsack's "core", where greedy and optimum
differ) are re-chosen exactly by enumerating their 65,536 subsets at once, and the single most profitable
affordable contact is tried alone (which bounds the worst case at half the optimum); the best answer wins.
On generated cases of 30-200 items the result stays within 1% of the exact optimum (scipy milp) -- see
tests/targeting/test_campaign.py and benchmarks/RESULTS.md, which also give plain greedy's gap.

Every customer is accounted for: the selected ones, plus the `excluded` table counting the others by
reason: the decisions' `exclude_reason` (`negative_net_value`, `recent_purchase`, `no_positive_profit`,
and contact timing's `within_repurchase_cycle`, `below_offer_price`: `targeting.timing`), `over_budget`
for candidates the budget did not reach, and `unspecified` for rows marked excluded with a reason this
version does not know. All seven rows are always listed.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from targeting.decide import EXCLUDE_REASONS, NO_POSITIVE_PROFIT, customer_ids
from targeting.lifecycle import STAGE_NAMES
from targeting.policy import STAGES, TIERS, TargetingPolicy, codes_of, labels, labels_from_arrow
from targeting.tiers import TIER_NAMES
from targeting.timing import TIMING_REASONS
from targeting.winback import NO_CHANNEL, contact_spend

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
]
SUMMARY_COLUMNS = [
    "value_tier",
    "lifecycle_stage",
    "candidates",
    "customers",
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
    """

    selected: pd.DataFrame
    summary: pd.DataFrame
    excluded: pd.DataFrame
    budget: float

    @property
    def spend(self) -> float:
        """Total expected spend of the selected contacts."""
        return float(math.fsum(self.selected["spend"]))

    @property
    def expected_profit(self) -> float:
        """Total expected incremental profit of the selected contacts."""
        return float(math.fsum(self.selected["expected_profit"]))


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


def _summary(tier: np.ndarray, stage: np.ndarray, candidate: np.ndarray, chosen: np.ndarray, spend: np.ndarray, profit: np.ndarray) -> pd.DataFrame:
    """Candidates, selected customers, spend, profit and ROI per value tier x lifecycle stage."""
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


def select_campaign(
    decisions: pd.DataFrame,
    budget: float,
    policy: TargetingPolicy | None = None,
) -> CampaignResult:
    """Choose the customers to contact under `budget`.

    `policy` gives the contact costs and response rates behind each contact's spend; default
    `TargetingPolicy()`. Pass the policy the decisions were made with (the model's) so spend matches.
    """
    _check(decisions, budget)
    budget = float(budget)
    policy = policy or TargetingPolicy()
    tier = _vocabulary_codes(decisions["value_tier"], TIERS, "value_tier")
    stage = _vocabulary_codes(decisions["lifecycle_stage"], STAGES, "lifecycle_stage")
    incentive = pd.to_numeric(decisions["incentive"], errors="coerce").to_numpy(dtype=float, na_value=0.0)
    incentive = np.nan_to_num(incentive)
    profit = pd.to_numeric(decisions["winback_profit"], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    excluded = _flags(decisions["exclude_from_spend"])
    channel = decisions["channel"].astype(str)
    contactable = ~excluded & (channel != NO_CHANNEL).to_numpy()
    spend = np.zeros(len(decisions))
    if contactable.any():
        spend[contactable] = contact_spend(
            stage[contactable],
            channel[contactable],
            incentive[contactable],
            policy.response_rates,
            policy.contact_costs,
            policy.channel_response_lift,
        )
    candidate = contactable & np.isfinite(profit) & (profit > 0)

    positions = np.flatnonzero(candidate)
    picked = positions[greedy_knapsack(profit[positions], spend[positions], budget)]
    chosen = np.zeros(len(decisions), dtype=bool)
    chosen[picked] = True

    # why the others were left out: the decision's reason, else no profit, else the budget
    vocabulary = (*EXCLUDE_REASONS, *TIMING_REASONS, UNSPECIFIED)
    given = codes_of(decisions["exclude_reason"].fillna("").astype(str), vocabulary)
    reason = np.select(
        [chosen, excluded, ~candidate],
        [-1, np.where(given < 0, len(vocabulary) - 1, given), EXCLUDE_REASONS.index(NO_POSITIVE_PROFIT)],
        default=len(vocabulary),  # over budget
    )
    names = [*vocabulary, OVER_BUDGET]
    counts = np.bincount(reason[reason >= 0], minlength=len(names))
    excluded_table = pd.DataFrame({"reason": names, "customers": counts.astype(np.int64)})
    order = [*EXCLUDE_REASONS, *TIMING_REASONS, OVER_BUDGET, UNSPECIFIED]
    excluded_table = excluded_table.set_index("reason").loc[order].reset_index()

    ids = customer_ids(decisions)
    churn = None
    if "churn_probability" in decisions.columns:
        churn = np.nan_to_num(pd.to_numeric(decisions["churn_probability"], errors="coerce").to_numpy(dtype=float, na_value=0.0)[picked])
    def pick(column: pd.Series) -> pd.Series:
        return column.iloc[picked].reset_index(drop=True)

    selected = pd.DataFrame(
        {
            "customer_id": pick(ids),
            "action": pick(decisions["action"].astype(str)),
            "channel": pick(channel),
            "incentive": incentive[picked],
            "expected_profit": profit[picked],
            "reason": _reason_text(stage[picked], tier[picked], profit[picked], spend[picked], churn),
            "spend": spend[picked],
            "value_tier": labels(tier[picked], TIERS),
            "lifecycle_stage": labels(stage[picked], STAGES),
        }
    )
    return CampaignResult(
        selected=selected[SELECTED_COLUMNS],
        summary=_summary(tier, stage, candidate, chosen, spend, profit),
        excluded=excluded_table,
        budget=budget,
    )
