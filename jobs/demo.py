"""The end-to-end demo on real data: load CDNOW, train and gate a model, batch-score, pick a campaign.

`patron demo` (and `make demo`) runs it. It is the main job a shop would run, on the CDNOW file that
ships inside the lifetimes package, with MLflow's store wherever the settings point (by default
`sqlite:///mlruns/mlflow.db`), and prints each step's result as a table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from features.datasets import CDNOW_DATE_FORMAT, CDNOW_MAPPING, cdnow_master_path
from features.validate import LoadResult
from jobs.campaign_demo import show_campaign_loop
from jobs.load import LoadOptions, data_summary_lines, load_log
from jobs.report import write_report
from patron.settings import Settings
from serving.batch import BatchResult, load_model, score_file
from targeting.campaign import CampaignResult
from targeting.segments import tier_stage_matrix
from training.registry import champion_version
from training.report import format_report
from training.train import TrainResult, train

Echo = Callable[[str], None]


@dataclass(frozen=True)
class DemoResult:
    """What the demo produced: the training run, the model it scored with and the files it wrote."""

    run_id: str
    model_version: str
    promoted: bool
    scored_with: str
    scores_path: Path
    rejects_path: Path
    campaign_path: Path
    report_path: Path
    n_customers: int
    campaign_customers: int


def _show(echo: Echo, title: str, table: pd.DataFrame) -> None:
    echo("")
    echo(f"== {title}")
    echo(table.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


def run_demo(settings: Settings, out_dir: str | Path, *, echo: Echo = print, budget: float | None = None) -> DemoResult:
    """Run the main job end to end on CDNOW and print every step's result; outputs go to `out_dir`."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tracking_uri = settings.resolved_tracking_uri()
    budget = settings.campaign_budget if budget is None else budget
    loaded = load_cdnow(echo)
    trained = train_and_gate(loaded, settings, tracking_uri, echo)
    scored = score_everyone(trained, settings, tracking_uri, out_dir, budget, echo)
    show_campaign(scored.batch.campaign, budget, echo)
    show_campaign_loop(settings, out_dir, echo)
    report_path = write_report(scored.scores_path, out_dir / "report.html", campaign_path=scored.campaign_path)
    show_outputs(scored, trained, tracking_uri, report_path, echo)
    return DemoResult(
        run_id=trained.run_id,
        model_version=trained.model_version,
        promoted=trained.decision.promoted,
        scored_with=scored.model_uri,
        scores_path=scored.scores_path,
        rejects_path=scored.batch.rejects_path,
        campaign_path=scored.campaign_path,
        report_path=report_path,
        n_customers=scored.batch.n_customers,
        campaign_customers=len(scored.batch.campaign.selected),
    )


def load_cdnow(echo: Echo) -> LoadResult:
    """Load and validate the CDNOW master file inside lifetimes; print the load summary."""
    path = cdnow_master_path()
    echo(f"== data: {path}")
    loaded = load_log(str(path), LoadOptions(mapping=CDNOW_MAPPING, date_format=CDNOW_DATE_FORMAT))
    echo("")
    echo("== data summary")
    for line in data_summary_lines(loaded.summary):
        echo(line)
    return loaded


def train_and_gate(loaded: LoadResult, settings: Settings, tracking_uri: str, echo: Echo) -> TrainResult:
    """Train, evaluate, register and gate a model on the loaded log; print the training report."""
    echo("")
    echo(f"== training (MLflow at {tracking_uri})")
    trained = train(loaded.transactions, settings=settings, tracking_uri=tracking_uri)
    echo(format_report(trained))
    return trained


@dataclass(frozen=True)
class ScoredBatch:
    """The batch run of the demo: the model it used and the files it wrote."""

    model_uri: str
    batch: BatchResult
    scores_path: Path
    campaign_path: Path


def score_everyone(
    trained: TrainResult, settings: Settings, tracking_uri: str, out_dir: Path, budget: float, echo: Echo
) -> ScoredBatch:
    """Batch-score every CDNOW customer at the training date with the champion (else the new model)."""
    name = trained.model_name
    champion = champion_version(name, tracking_uri)
    model_uri = f"models:/{name}@champion" if champion else f"models:/{name}/{trained.model_version}"
    as_of = trained.plan.data_end
    echo("")
    echo(f"== batch scoring every customer at {as_of.date()} with {model_uri} (version {champion or trained.model_version})")
    scorer = load_model(model_uri, tracking_uri)  # checked: it scores its example before the batch
    scores_path = out_dir / "scores.parquet"
    campaign_path = out_dir / "campaign.csv"
    batch = score_file(
        cdnow_master_path(),
        scores_path,
        scorer,
        as_of,
        mapping=CDNOW_MAPPING,
        date_format=CDNOW_DATE_FORMAT,
        chunk_size=settings.batch_chunk_size,
        progress=False,
        campaign_budget=budget,
        campaign_out=campaign_path,
    )
    scores = pd.read_parquet(scores_path, columns=["value_tier", "lifecycle_stage", "clv", "churn_probability"])
    _show(echo, "value tier x lifecycle stage", tier_stage_matrix(scores))
    return ScoredBatch(model_uri, batch, scores_path, campaign_path)


def show_campaign(campaign: CampaignResult, budget: float, echo: Echo) -> None:
    """Print the campaign chosen under the budget, who was left out and why, and its expected return."""
    _show(echo, f"campaign under a budget of {budget:,.2f}", campaign.summary)
    _show(echo, "not contacted, by reason", campaign.excluded)
    roi = campaign.expected_profit / campaign.spend if campaign.spend > 0 else np.nan
    echo(
        f"campaign: {len(campaign.treatment):,} customers contacted, {len(campaign.control):,} held back as control, spend {campaign.spend:,.2f}, "
        f"{campaign.expected_profit_text()} (ROI {roi:.2f})"
    )



def show_outputs(scored: ScoredBatch, trained: TrainResult, tracking_uri: str, report_path: Path, echo: Echo) -> None:
    """Print where every output went and what to run next."""
    batch = scored.batch
    echo("")
    echo("== outputs")
    echo(f"scores         {scored.scores_path}  ({batch.n_customers:,} customers)")
    echo(f"rejected rows  {batch.rejects_path}  ({batch.n_rejected:,} rows)")
    echo(f"campaign list  {scored.campaign_path}  ({len(batch.campaign.selected):,} customers)")
    echo(f"report         {report_path.resolve()}  (open it in a browser)")
    echo(f"MLflow run     {trained.run_id} in {tracking_uri}")
    echo("")
    echo("next:")
    echo(f"  .venv/bin/mlflow ui --backend-store-uri {tracking_uri}     # runs, plots, registered versions")
    echo(f"  PATRON_SCORES_PATH={scored.scores_path} .venv/bin/patron serve    # the API on http://127.0.0.1:8000/docs")
