"""Campaign jobs behind the CLI: plan and record a campaign, report campaigns, learn their uplift."""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataError
from features.io import read_table, write_table
from jobs.campaign_ledger import (
    LedgerEntry,
    find_campaign,
    list_campaigns,
    log_report,
    record_campaign,
)
from targeting.campaign import CampaignResult, select_campaign
from targeting.campaign_report import (
    CampaignReport,
    overall_metrics,
    read_assignments,
    report_campaigns,
)
from targeting.decide import ensure_decisions
from targeting.policy import TargetingPolicy
from targeting.timing import exclude_below_offer_price
from training.campaign_learning import LearnedUplift, learn_uplift

LEDGER = "ledger"
"""`--campaigns ledger`: every campaign recorded in the ledger."""


@dataclass(frozen=True)
class PlannedCampaign:
    """A selected campaign, where its list was written and its ledger run."""

    result: CampaignResult
    path: Path
    run_id: str


def _model_of(decisions: pd.DataFrame) -> tuple[str, str]:
    """(model name, version) the scores were made with, when the scores say."""
    if {"model_name", "model_version"} <= set(decisions.columns) and len(decisions):
        return str(decisions["model_name"].iloc[0]), str(decisions["model_version"].iloc[0])
    return "", ""


def plan_campaign(
    decisions: pd.DataFrame,
    budget: float,
    policy: TargetingPolicy,
    out: str | Path,
    *,
    tracking_uri: str,
    experiment: str,
    campaign_id: str | None = None,
    control_share: float | None = None,
    send_date: str | None = None,
) -> PlannedCampaign:
    """Select a campaign with its control group, write the list (with `send_date`) and record it in the ledger."""
    send_date = send_date or dt.date.today().isoformat()
    try:
        send_date = dt.date.fromisoformat(send_date).isoformat()
    except ValueError:
        raise DataError(f"--send-date must be YYYY-MM-DD, got {send_date!r}") from None
    result = select_campaign(decisions, budget, policy, campaign_id=campaign_id, control_share=control_share)
    path = write_table(result.selected.assign(send_date=send_date), out)
    name, version = _model_of(decisions)
    run_id = record_campaign(
        result, path, send_date, policy, tracking_uri=tracking_uri, experiment=experiment, model_name=name, model_version=version
    )
    return PlannedCampaign(result=result, path=path, run_id=run_id)


def load_assignments(sources: Sequence[str], *, tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Assignment files, or `ledger` for every campaign the ledger recorded, as one validated frame."""
    paths: list[str] = []
    for source in sources:
        if source == LEDGER:
            paths += [p for p in list_campaigns(tracking_uri, experiment)["assignments"] if p]
        else:
            paths.append(source)
    if not paths:
        raise DataError("no assignment files: give --assignments FILE, --campaign ID, or record campaigns first")
    missing = [p for p in paths if not Path(p).exists()]
    if missing:
        raise DataError(f"assignment files not found: {missing[:3]}")
    return pd.concat([read_assignments(read_table(p)) for p in paths], ignore_index=True)


def run_report(
    transactions: pd.DataFrame,
    policy: TargetingPolicy,
    *,
    tracking_uri: str,
    experiment: str,
    window_days: int,
    assignments: str | None = None,
    campaign_id: str | None = None,
    out: str | Path | None = None,
    send_date: str | None = None,
    seed: int,
) -> CampaignReport:
    """The report of an assignment file or a ledger campaign; written to `out`, logged on the ledger run."""
    if (assignments is None) == (campaign_id is None):
        raise DataError("give exactly one of --assignments FILE or --campaign ID")
    entry = find_campaign(campaign_id, tracking_uri, experiment) if campaign_id is not None else None
    path = entry.assignments if entry is not None else assignments
    if not path or not Path(path).exists():
        raise DataError(f"assignment file not found: {path!r}")
    frame = read_assignments(read_table(path), send_date=send_date)
    if entry is not None:
        frame = frame[frame["campaign_id"] == entry.campaign_id]
    report = report_campaigns(
        frame, transactions, margin_rate=policy.margin_rate, contact_costs=policy.contact_costs, window_days=window_days, seed=seed
    )
    if out is not None and not report.table.empty:
        write_table(report.table, out)
    for measured in report.table["campaign_id"].unique():
        run = entry if entry is not None and entry.campaign_id == measured else _entry_or_none(str(measured), tracking_uri, experiment)
        if run is not None:
            log_report(run.run_id, overall_metrics(report, str(measured)), tracking_uri)
    return report


def _entry_or_none(campaign_id: str, tracking_uri: str, experiment: str) -> LedgerEntry | None:
    """The ledger entry of a campaign, None for campaigns the ledger never recorded (generated ones)."""
    try:
        return find_campaign(campaign_id, tracking_uri, experiment)
    except DataError:
        return None


def learn_from_campaigns(sources: Sequence[str], transactions: pd.DataFrame, settings: Any) -> LearnedUplift:
    """Uplift per stage learned from assignment files (or `ledger`) on the training log."""
    policy = TargetingPolicy.from_settings(settings)
    tracking_uri = settings.resolved_tracking_uri()
    assignments = load_assignments(sources, tracking_uri=tracking_uri, experiment=settings.campaign_experiment_name)
    return learn_uplift(assignments, transactions, policy, window_days=settings.campaign_window_days)


def read_scores_table(path: str) -> pd.DataFrame:
    """A scores file (Parquet, CSV, ...) as a frame with a customer_id column of strings."""
    frame = read_table(path)
    if "customer_id" not in frame.columns:
        raise DataError(f"scores file {path} has no customer_id column; write it with `patron score`")
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


def run_campaign(
    scores: str,
    out: str,
    budget: float,
    policy: TargetingPolicy,
    *,
    tracking_uri: str,
    experiment: str,
    campaign_id: str | None = None,
    control_share: float | None = None,
    send_date: str | None = None,
    offer_price: float | None = None,
) -> PlannedCampaign:
    """Select a campaign under `budget` from a scores file, hold back its control group, write the
    assignment list to `out` and record the campaign in the ledger. With `offer_price`, customers whose
    average order is far below the offer's price are left out (`below_offer_price`)."""
    if not (math.isfinite(budget) and budget >= 0):
        raise ValueError(f"--budget must be a finite amount >= 0, got {budget}")
    # scores from `patron score` carry the decisions; a bare model output gets them here
    decisions = ensure_decisions(read_scores_table(scores), policy)
    if offer_price is not None:
        decisions = exclude_below_offer_price(decisions, offer_price, policy)
    return plan_campaign(
        decisions,
        budget,
        policy,
        out,
        tracking_uri=tracking_uri,
        experiment=experiment,
        campaign_id=campaign_id,
        control_share=control_share,
        send_date=send_date,
    )
