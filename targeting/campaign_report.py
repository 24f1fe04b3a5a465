"""patron campaign-report: what each campaign really earned, treatment against its control group.

Window: the purchases of a campaign's customers after its send date, `send_date < timestamp <=
send_date + window_days` (returns in the window net out of revenue; a buyer has at least one purchase
row). A window that has not ended by the log's last transaction, a campaign with no control customers
and one where no customer bought are reported as one line each, not as numbers.

Per customer: `margin = margin_rate * revenue`; a treated customer also costs its channel's contact cost
and, when it bought, its incentive (everyone who buys while holding it redeems it). Per campaign, overall
(tier and stage `all`) and per value tier x lifecycle stage, with 90% intervals (targeting/uplift.py):

- `incremental_conversion` = conversion(treatment) - conversion(control), Newcombe's interval;
- `incremental_revenue`, `incremental_profit` = treatment customers x difference of the mean revenue /
  profit per customer, profit with a Poisson bootstrap interval;
- `realized_roi` = incremental_profit / (contact cost + incentive cost);
- `expected_incremental_profit`: the planner's in-window claim for the treatment group
  (`expected_window_profit` of the list), beside the realized one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import defaults
from core.errors import DataError
from targeting.control import CONTROL, GROUPS, TREATMENT
from targeting.uplift import bootstrap_mean_difference, difference_of_proportions
from targeting.winback import NO_CHANNEL

ALL = "all"
ASSIGNMENT_REQUIRED = ("campaign_id", "send_date", "customer_id", "group", "value_tier", "lifecycle_stage", "channel", "incentive")
REPORT_COLUMNS = (
    "campaign_id",
    "value_tier",
    "lifecycle_stage",
    "send_date",
    "window_end",
    "customers_treatment",
    "customers_control",
    "buyers_treatment",
    "buyers_control",
    "conversion_treatment",
    "conversion_control",
    "revenue_per_customer_treatment",
    "revenue_per_customer_control",
    "margin_per_customer_treatment",
    "margin_per_customer_control",
    "contact_cost",
    "incentive_cost",
    "incremental_conversion",
    "incremental_conversion_low",
    "incremental_conversion_high",
    "incremental_revenue",
    "incremental_profit",
    "incremental_profit_low",
    "incremental_profit_high",
    "realized_roi",
    "expected_incremental_profit",
    "note",
)


@dataclass
class CampaignReport:
    """Report rows (REPORT_COLUMNS) and one line per campaign that could not be measured."""

    table: pd.DataFrame
    problems: list[str] = field(default_factory=list)


def read_assignments(frame: pd.DataFrame, send_date: str | None = None) -> pd.DataFrame:
    """An assignment file validated: required columns, known groups, one send date per campaign
    (`send_date` given: that date for every row)."""
    frame = frame.copy()
    if send_date is not None:
        frame["send_date"] = send_date
    missing = [c for c in ASSIGNMENT_REQUIRED if c not in frame.columns]
    if missing:
        raise DataError(f"the assignment file lacks columns {missing}; write it with `patron campaign`")
    frame["group"] = frame["group"].astype(str).str.strip().str.lower()
    bad = sorted(set(frame["group"]) - set(GROUPS))
    if bad:
        raise DataError(f"group must be treatment or control, found {bad[:5]}")
    frame["customer_id"] = frame["customer_id"].astype(str)
    frame["campaign_id"] = frame["campaign_id"].astype(str)
    dates = pd.to_datetime(frame["send_date"], errors="coerce")
    if dates.isna().any():
        raise DataError(f"send_date must be a date (YYYY-MM-DD), found {frame.loc[dates.isna(), 'send_date'].astype(str).unique()[:3].tolist()}")
    frame["send_ts"] = dates.dt.normalize()
    several = frame.groupby("campaign_id")["send_ts"].nunique()
    if (several > 1).any():
        raise DataError(f"campaigns {several[several > 1].index.tolist()[:5]} have more than one send_date")
    frame["incentive"] = pd.to_numeric(frame["incentive"], errors="coerce").fillna(0.0)
    expected = "expected_window_profit" if "expected_window_profit" in frame.columns else "expected_profit"
    frame["expected"] = pd.to_numeric(frame[expected], errors="coerce").fillna(0.0) if expected in frame.columns else np.nan
    return frame


def campaign_outcomes(assignments: pd.DataFrame, transactions: pd.DataFrame, window_days: int) -> pd.DataFrame:
    """Per assignment row: revenue and whether the customer bought within its campaign's window."""
    rows = transactions[["customer_id", "timestamp", "amount", "is_return"]].merge(
        assignments[["campaign_id", "customer_id", "send_ts"]], on="customer_id"
    )
    end = rows["send_ts"] + pd.Timedelta(days=window_days)
    rows = rows[(rows["timestamp"] > rows["send_ts"]) & (rows["timestamp"] <= end)]
    per = rows.assign(purchase=~rows["is_return"]).groupby(["campaign_id", "customer_id"]).agg(
        revenue=("amount", "sum"), bought=("purchase", "any")
    )
    out = assignments.join(per, on=["campaign_id", "customer_id"])
    return out.assign(revenue=out["revenue"].fillna(0.0), bought=out["bought"].fillna(False).astype(bool))


def _problem(campaign_id: str, group: pd.DataFrame, last: pd.Timestamp, window_days: int) -> str | None:
    """Why a campaign cannot be measured yet, or None."""
    send = group["send_ts"].iloc[0]
    window_end = send + pd.Timedelta(days=window_days)
    if window_end > last:
        return (
            f"campaign {campaign_id}: its {window_days}-day window ends {window_end.date()}, after the log's last "
            f"transaction ({last.date()}); report it once the window has ended"
        )
    if not (group["group"] == CONTROL).any():
        return f"campaign {campaign_id}: no control customers, so its effect cannot be measured"
    if not (group["group"] == TREATMENT).any():
        return f"campaign {campaign_id}: no treatment customers, nothing was sent"
    if not group["bought"].any():
        return f"campaign {campaign_id}: no customer bought within the {window_days}-day window, so there is no effect to measure"
    return None


def _row(group: pd.DataFrame, confidence: float, seed: int) -> dict[str, float | str]:
    """The report figures of one set of customers (a campaign, or one of its cells)."""
    t, c = group[group["group"] == TREATMENT], group[group["group"] == CONTROL]
    n_t, n_c = len(t), len(c)
    base: dict[str, float | str] = {
        "customers_treatment": n_t,
        "customers_control": n_c,
        "buyers_treatment": int(t["bought"].sum()),
        "buyers_control": int(c["bought"].sum()),
        "contact_cost": float(t["contact_cost"].sum()),
        "incentive_cost": float(t["incentive_paid"].sum()),
        "expected_incremental_profit": float(t["expected"].sum()),
        "note": "",
    }
    if n_t == 0 or n_c == 0:
        return {**base, "note": "no control customers" if n_c == 0 else "no treatment customers"}
    diff, low, high = difference_of_proportions(t["bought"].sum(), n_t, c["bought"].sum(), n_c, confidence)
    profit, p_low, p_high = bootstrap_mean_difference(t["profit"].to_numpy(), c["profit"].to_numpy(), confidence, seed=seed)
    incremental_profit = n_t * profit
    spent = float(base["contact_cost"]) + float(base["incentive_cost"])
    return {
        **base,
        "conversion_treatment": t["bought"].mean(),
        "conversion_control": c["bought"].mean(),
        "revenue_per_customer_treatment": t["revenue"].mean(),
        "revenue_per_customer_control": c["revenue"].mean(),
        "margin_per_customer_treatment": t["margin"].mean(),
        "margin_per_customer_control": c["margin"].mean(),
        "incremental_conversion": diff,
        "incremental_conversion_low": low,
        "incremental_conversion_high": high,
        "incremental_revenue": n_t * (t["revenue"].mean() - c["revenue"].mean()),
        "incremental_profit": incremental_profit,
        "incremental_profit_low": n_t * p_low,
        "incremental_profit_high": n_t * p_high,
        "realized_roi": incremental_profit / spent if spent > 0 else np.nan,
    }


def report_campaigns(
    assignments: pd.DataFrame,
    transactions: pd.DataFrame,
    *,
    margin_rate: float,
    contact_costs: Mapping[str, float],
    window_days: int = defaults.CAMPAIGN_WINDOW_DAYS,
    confidence: float = defaults.CAMPAIGN_CONFIDENCE,
    seed: int = defaults.SEED,
    detail: bool = True,
) -> CampaignReport:
    """The report of every campaign in `assignments` (validated by `read_assignments`) on a validated log;
    `detail=False` gives the overall rows only."""
    if window_days < 1:
        raise DataError(f"--window-days must be at least 1, got {window_days}")
    if transactions.empty:
        raise DataError("the transaction log is empty")
    unknown = sorted(set(assignments["channel"].astype(str)) - {*contact_costs, NO_CHANNEL})
    if unknown:
        raise DataError(f"channels {unknown[:5]} have no contact cost; known channels: {sorted(contact_costs)}")
    costs = {**contact_costs, NO_CHANNEL: 0.0}
    data = campaign_outcomes(assignments, transactions, window_days)
    treated = (data["group"] == TREATMENT).to_numpy()
    data["margin"] = margin_rate * data["revenue"]
    data["contact_cost"] = np.where(treated, data["channel"].astype(str).map(costs).to_numpy(dtype=float), 0.0)
    data["incentive_paid"] = np.where(treated & data["bought"].to_numpy(), data["incentive"].to_numpy(dtype=float), 0.0)
    data["profit"] = data["margin"] - data["contact_cost"] - data["incentive_paid"]
    last = transactions["timestamp"].max()
    rows, problems = [], []
    for campaign_id, group in data.groupby("campaign_id", sort=True):  # one pass per campaign, a handful of cells each
        problem = _problem(str(campaign_id), group, last, window_days)
        if problem is not None:
            problems.append(problem)
            continue
        send = group["send_ts"].iloc[0]
        where = {"campaign_id": campaign_id, "send_date": send.date().isoformat(), "window_end": (send + pd.Timedelta(days=window_days)).date().isoformat()}
        rows.append({**where, "value_tier": ALL, "lifecycle_stage": ALL, **_row(group, confidence, seed)})
        cells = group.groupby(["value_tier", "lifecycle_stage"], sort=True) if detail else []
        for (tier, stage), cell in cells:
            rows.append({**where, "value_tier": tier, "lifecycle_stage": stage, **_row(cell, confidence, seed)})
    table = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    return CampaignReport(table=table, problems=problems)


def overall_metrics(report: CampaignReport, campaign_id: str) -> dict[str, float]:
    """The overall row of one campaign as MLflow metrics (numbers only)."""
    table = report.table
    row = table[(table["campaign_id"] == campaign_id) & (table["value_tier"] == ALL)]
    if row.empty:
        return {}
    values = row.iloc[0].drop(["campaign_id", "value_tier", "lifecycle_stage", "send_date", "window_end", "note"])
    return {str(k): float(v) for k, v in values.items() if pd.notna(v)}


REPORT_SHOWN = (
    "campaign_id",
    "value_tier",
    "lifecycle_stage",
    "customers_treatment",
    "customers_control",
    "conversion_treatment",
    "conversion_control",
    "incremental_conversion",
    "incremental_conversion_low",
    "incremental_conversion_high",
    "incremental_profit",
    "expected_incremental_profit",
    "realized_roi",
)
"""Columns of the printed report (the CSV has all of REPORT_COLUMNS)."""


def report_lines(report: CampaignReport) -> list[str]:
    """The report as printed: the problems, the table, one line per campaign; DataError when nothing was measured."""
    if report.table.empty:
        raise DataError(report.problems[0] if len(report.problems) == 1 else "no campaign could be measured: " + "; ".join(report.problems))
    table = report.table[list(REPORT_SHOWN)].to_string(index=False, float_format=lambda v: f"{v:,.4f}")
    overall = report.table[report.table["value_tier"] == ALL]
    totals = [
        f"campaign {c}: incremental profit {p:,.2f} [{lo:,.2f}, {hi:,.2f}] (90%), planner expected {e:,.2f}"
        for c, p, lo, hi, e in zip(
            overall["campaign_id"],
            overall["incremental_profit"],
            overall["incremental_profit_low"],
            overall["incremental_profit_high"],
            overall["expected_incremental_profit"],
            strict=True,
        )
    ]
    return [*report.problems, table, *totals]
