"""The campaign ledger: each campaign an MLflow run in the experiment `patron-campaigns`.

A run holds the campaign id (run name and tag `campaign_id`), its send date, budget, control share,
policy (`policy.json`), the model that scored its customers (name and version) and its assignment file
(path as a tag, copy as an artifact), so campaigns sit beside the models that chose them in `mlflow ui`.
`patron campaign-report` logs the measured effects on the same run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import DataError
from targeting.campaign import CampaignResult
from targeting.policy import TargetingPolicy
from training.tracking import configure_tracking, ensure_experiment

LEDGER_COLUMNS = (
    "campaign_id",
    "send_date",
    "budget",
    "control_share",
    "customers",
    "control",
    "spend",
    "expected_incremental_profit",
    "incremental_profit",
    "model_name",
    "model_version",
    "assignments",
    "run_id",
)


@dataclass(frozen=True)
class LedgerEntry:
    """One recorded campaign."""

    campaign_id: str
    send_date: str
    assignments: str
    run_id: str


def record_campaign(
    result: CampaignResult,
    assignments: str | Path,
    send_date: str,
    policy: TargetingPolicy,
    *,
    tracking_uri: str,
    experiment: str,
    model_name: str = "",
    model_version: str = "",
) -> str:
    """Log a planned campaign as a run of `experiment`; its run id."""
    import mlflow

    tracking_uri = configure_tracking(tracking_uri)
    experiment_id = ensure_experiment(experiment, tracking_uri)
    path = Path(assignments).resolve()
    with mlflow.start_run(experiment_id=experiment_id, run_name=result.campaign_id) as run:
        mlflow.set_tags(
            {
                "campaign_id": result.campaign_id,
                "send_date": send_date,
                "assignments": str(path),
                "model_name": model_name,
                "model_version": model_version,
            }
        )
        mlflow.log_params({"budget": result.budget, "control_share": result.control_share})
        mlflow.log_metrics(
            {
                "customers": float(len(result.treatment)),
                "control": float(len(result.control)),
                "spend": result.spend,
                "expected_incremental_profit": result.expected_profit,
            }
        )
        mlflow.log_dict(policy.to_dict(), "policy.json")
        mlflow.log_artifact(str(path), "assignments")
        return run.info.run_id


def _runs(tracking_uri: str, experiment: str) -> list[Any]:
    """The ledger's runs, newest first (none when the experiment does not exist yet)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=configure_tracking(tracking_uri))
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return list(client.search_runs([found.experiment_id], order_by=["attributes.start_time DESC"], max_results=10_000))


def list_campaigns(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """Every recorded campaign, newest first, in LEDGER_COLUMNS."""
    rows = []
    for run in _runs(tracking_uri, experiment):
        tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
        rows.append(
            {
                "campaign_id": tags.get("campaign_id", ""),
                "send_date": tags.get("send_date", ""),
                "budget": float(params.get("budget", "nan")),
                "control_share": float(params.get("control_share", "nan")),
                "customers": metrics.get("customers"),
                "control": metrics.get("control"),
                "spend": metrics.get("spend"),
                "expected_incremental_profit": metrics.get("expected_incremental_profit"),
                "incremental_profit": metrics.get("incremental_profit"),
                "model_name": tags.get("model_name", ""),
                "model_version": tags.get("model_version", ""),
                "assignments": tags.get("assignments", ""),
                "run_id": run.info.run_id,
            }
        )
    return pd.DataFrame(rows, columns=list(LEDGER_COLUMNS))


def find_campaign(campaign_id: str, tracking_uri: str, experiment: str) -> LedgerEntry:
    """The ledger entry of `campaign_id`; DataError when the ledger has no such campaign."""
    for run in _runs(tracking_uri, experiment):
        tags = run.data.tags
        if tags.get("campaign_id") == campaign_id:
            return LedgerEntry(campaign_id, tags.get("send_date", ""), tags.get("assignments", ""), run.info.run_id)
    raise DataError(f"unknown campaign id {campaign_id!r}: `patron campaigns` lists the recorded campaigns")


def log_report(run_id: str, overall: dict[str, float], tracking_uri: str) -> None:
    """Log a campaign report's overall figures as metrics of the campaign's run (non-finite ones skipped)."""
    import math

    import mlflow

    client = mlflow.MlflowClient(tracking_uri=configure_tracking(tracking_uri))
    for name, value in overall.items():
        if isinstance(value, int | float) and math.isfinite(value):
            client.log_metric(run_id, name, float(value))

