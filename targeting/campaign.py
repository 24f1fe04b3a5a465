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
reason (the decisions' `exclude_reason`, and `over_budget` for candidates the budget did not reach).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.errors import DataError
from targeting.decide import EXCLUDE_REASONS, NO_POSITIVE_PROFIT, customer_ids
from targeting.policy import STAGES, TIERS, TargetingPolicy
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


def _reason_text(frame: pd.DataFrame) -> pd.Series:
    """Why each selected customer is contacted, as one readable phrase."""
    stage = frame["lifecycle_stage"].astype(str)
    tier = frame["value_tier"].astype(str)
    profit = np.char.mod("%.2f", frame["expected_profit"].to_numpy(dtype=float))
    spend = np.char.mod("%.2f", frame["spend"].to_numpy(dtype=float))
    text = stage + " " + tier + " customer: expected profit " + profit + " for spend " + spend
    if "churn_probability" in frame.columns:
        churn = np.char.mod("%.0f", 100 * pd.to_numeric(frame["churn_probability"], errors="coerce").fillna(0).to_numpy())
        text = text + ", P(churn) " + churn + "%"
    return text


def _summary(frame: pd.DataFrame, candidate: np.ndarray, chosen: np.ndarray) -> pd.DataFrame:
    """Candidates, selected customers, spend, profit and ROI per value tier x lifecycle stage."""
    keys = ["value_tier", "lifecycle_stage"]
    parts = pd.DataFrame(
        {
            "value_tier": frame["value_tier"].astype(str).to_numpy(),
            "lifecycle_stage": frame["lifecycle_stage"].astype(str).to_numpy(),
            "candidates": candidate.astype(np.int64),
            "customers": chosen.astype(np.int64),
            "spend": np.where(chosen, frame["spend"].to_numpy(dtype=float), 0.0),
            "expected_incremental_profit": np.where(chosen, frame["expected_profit"].to_numpy(dtype=float), 0.0),
        }
    )
    grouped = parts.groupby(keys, sort=False)[
        ["candidates", "customers", "spend", "expected_incremental_profit"]
    ].sum()
    seen = [t for t in grouped.index.get_level_values(0).unique() if t not in TIERS]
    seen_stages = [s for s in grouped.index.get_level_values(1).unique() if s not in STAGES]
    full = pd.MultiIndex.from_product([[*TIERS, *seen], [*STAGES, *seen_stages]], names=keys)
    table = grouped.reindex(full, fill_value=0).reset_index()
    table[["candidates", "customers"]] = table[["candidates", "customers"]].astype(np.int64)
    spend = table["spend"].to_numpy(dtype=float)
    gain = table["expected_incremental_profit"].to_numpy(dtype=float)
    table["expected_roi"] = np.divide(gain, spend, out=np.zeros_like(gain), where=spend > 0)
    return table[SUMMARY_COLUMNS]


def _excluded(reason: np.ndarray) -> pd.DataFrame:
    """Customers not selected, counted by reason (every known reason listed, zero or not)."""
    counts = pd.Series(reason[reason != ""]).value_counts()
    names = [*EXCLUDE_REASONS, OVER_BUDGET, *[r for r in counts.index if r not in (*EXCLUDE_REASONS, OVER_BUDGET)]]
    return pd.DataFrame(
        {"reason": names, "customers": [int(counts.get(name, 0)) for name in names]}  # loop over reasons
    )


def select_campaign(
    decisions: pd.DataFrame,
    budget: float,
    policy: TargetingPolicy | None = None,
) -> CampaignResult:
    """Choose the customers to contact under `budget` (policy: the costs and response rates; default policy
    when None -- pass the model's policy so spend matches the costs the decisions were made with)."""
    _check(decisions, budget)
    budget = float(budget)
    policy = policy or TargetingPolicy()
    frame = pd.DataFrame(
        {
            "customer_id": customer_ids(decisions),
            "value_tier": decisions["value_tier"].astype(str).to_numpy(),
            "lifecycle_stage": decisions["lifecycle_stage"].astype(str).to_numpy(),
            "action": decisions["action"].astype(str).to_numpy(),
            "channel": decisions["channel"].astype(str).to_numpy(),
            "incentive": pd.to_numeric(decisions["incentive"], errors="coerce").fillna(0.0).to_numpy(dtype=float),
            "expected_profit": pd.to_numeric(decisions["winback_profit"], errors="coerce").to_numpy(dtype=float),
        }
    )
    if "churn_probability" in decisions.columns:
        frame["churn_probability"] = decisions["churn_probability"].to_numpy()
    excluded_flag = _flags(decisions["exclude_from_spend"])
    reason = decisions["exclude_reason"].fillna("").astype(str).to_numpy(dtype=object)
    reason = np.where(excluded_flag & (reason == ""), UNSPECIFIED, np.where(excluded_flag, reason, ""))
    contactable = ~excluded_flag & (frame["channel"].to_numpy() != NO_CHANNEL)
    spend = np.zeros(len(frame))
    spend[contactable] = contact_spend(
        frame["lifecycle_stage"].to_numpy()[contactable],
        frame["channel"].to_numpy()[contactable],
        frame["incentive"].to_numpy()[contactable],
        policy.response_rates,
        policy.contact_costs,
        policy.channel_response_lift,
    )
    frame["spend"] = spend
    profit = frame["expected_profit"].to_numpy()
    candidate = contactable & np.isfinite(profit) & (profit > 0)
    reason = np.where(~excluded_flag & ~candidate, NO_POSITIVE_PROFIT, reason).astype(object)

    positions = np.flatnonzero(candidate)
    picked = positions[greedy_knapsack(profit[positions], spend[positions], budget)]
    chosen = np.zeros(len(frame), dtype=bool)
    chosen[picked] = True
    reason = np.where(candidate & ~chosen, OVER_BUDGET, reason).astype(object)

    selected = frame.iloc[picked].reset_index(drop=True)
    selected["reason"] = _reason_text(selected).to_numpy(dtype=object) if len(selected) else []
    return CampaignResult(
        selected=selected[SELECTED_COLUMNS],
        summary=_summary(frame, candidate, chosen),
        excluded=_excluded(reason),
        budget=budget,
    )
