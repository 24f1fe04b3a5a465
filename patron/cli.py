"""Patron's command line: a thin Typer shell that wires settings to library calls."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from patron.settings import Settings, get_settings

if TYPE_CHECKING:
    from pathlib import Path

    from features.validate import LoadResult
    from jobs.load import LoadOptions
    from targeting.policy import TargetingPolicy

app = typer.Typer(
    name="patron",
    help="Customer value and churn service for online retailers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def quiet_libraries() -> None:
    """Customer value and churn service for online retailers."""
    # MLflow's per-file download bars would bury the command's own tables (set it to true to see them).
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


MapOption = Annotated[
    list[str] | None,
    typer.Option("--map", help="Column mapping field=SourceColumn, repeatable (e.g. --map customer_id=CustomerID)."),
]
SepOption = Annotated[str | None, typer.Option("--sep", help="Field separator (e.g. '\\s+' for whitespace).")]
DateFormatOption = Annotated[str | None, typer.Option("--date-format", help="strftime format of timestamps, e.g. %Y%m%d.")]
EncodingOption = Annotated[
    str | None, typer.Option("--encoding", help="Text encoding of the file, e.g. latin-1 (default: UTF-8 or its byte-order mark).")
]
EngineOption = Annotated[
    str | None,
    typer.Option("--engine", help="local (one process) or spark (partitioned by customer; default: settings engine)."),
]
SparkMasterOption = Annotated[
    str | None,
    typer.Option(
        "--spark-master",
        help="Spark master for --engine spark: local[N], spark://host:7077, yarn or sc://host:15002 (default: settings).",
    ),
]


def chosen_engine(engine: str | None, settings: Settings) -> str:
    """The engine of a command: the option, else the setting; only `local` and `spark` exist."""
    chosen = (engine or settings.engine).strip().lower()
    if chosen not in ("local", "spark"):
        raise typer.BadParameter(f"--engine must be local or spark, got {chosen!r}")
    return chosen


def spark_for(master: str | None, settings: Settings):  # noqa: ANN201 - pyspark is imported lazily
    """A Spark session on the option's master, else the setting's."""
    from jobs.spark.session import spark_session

    return spark_session(master or settings.spark_master)


def parse_mapping(pairs: list[str] | None, settings: Settings) -> dict[str, str]:
    """Merge `--map field=Column` options over the settings' column map."""
    mapping = dict(settings.column_map)
    for pair in pairs or []:
        key, sep, source = pair.partition("=")
        if not sep or not key.strip() or not source.strip():
            raise typer.BadParameter(f"--map {pair!r} is not of the form field=Column")
        mapping[key.strip()] = source.strip()
    return mapping


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Turn expected failures into one readable line and exit code 1, never a traceback."""
    from core.errors import PatronError

    try:
        yield
    except typer.Exit:
        raise
    except (PatronError, ValueError, FileNotFoundError, PermissionError, OSError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from None
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        raise typer.Exit(code=130) from None


def echo(text: str = "") -> None:
    """Print one line of command output."""
    typer.echo(text)


# --- commands: each parses options and calls one library function -----------------------------


def load_options(
    settings: Settings,
    mapping: list[str] | None,
    sep: str | None,
    date_format: str | None,
    keep_duplicates: bool = False,
    header: bool | None = None,
    encoding: str | None = None,
) -> LoadOptions:
    """How to read a log: the command's options over the settings."""
    from jobs.load import LoadOptions

    return LoadOptions(
        mapping=parse_mapping(mapping, settings),
        sep=sep if sep is not None else settings.sep,
        date_format=date_format if date_format is not None else settings.date_format,
        keep_duplicates=keep_duplicates or settings.keep_duplicates,
        header=header,
        encoding=encoding or settings.encoding,
    )


def echo_load_result(loaded: LoadResult, rejects_path: Path | None) -> None:
    """Print what a load read, kept and rejected, by reason, and where the rejected rows went."""
    from jobs.load import data_summary_lines

    for line in data_summary_lines(loaded.summary):
        echo(line)
    if rejects_path is not None:
        echo(f"rejects: {len(loaded.rejects):,} rows with their reason -> {rejects_path}")


@app.command("features")
def features_command(
    transactions: Annotated[str, typer.Option(help="Transaction log (CSV, TSV, whitespace text, Parquet, ...).")],
    as_of: Annotated[str, typer.Option(help="Last observed day, YYYY-MM-DD (inclusive).")],
    out: Annotated[str, typer.Option(help="Features file to write (.parquet or .csv).")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    encoding: EncodingOption = None,
    keep_duplicates: Annotated[bool, typer.Option(help="Keep exact duplicate rows instead of rejecting them.")] = False,
    time_unit_days: Annotated[
        int | None, typer.Option(help="Time unit of recency and T: 1 (days) or 7 (weeks).")
    ] = None,
    horizon_days: Annotated[
        int | None, typer.Option(help="Also write labels for this many days after --as-of.")
    ] = None,
    rejects: Annotated[
        str | None, typer.Option(help="Rejected rows file (default: <out stem>.rejects.csv).")
    ] = None,
    header: Annotated[
        bool | None,
        typer.Option(
            "--header/--no-header",
            help="Whether a text file has a header row (default: detected; with --no-header map columns by number, "
            "e.g. --map customer_id=0).",
        ),
    ] = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Validate a transaction log and write point-in-time RFM and behaviour features."""
    with user_errors():
        from jobs.features import write_features

        settings = get_settings()
        options = load_options(settings, mapping, sep, date_format, keep_duplicates, header, encoding)
        if chosen_engine(engine, settings) == "spark":
            from jobs.spark.jobs import features_with_spark

            written = features_with_spark(
                spark_for(spark_master, settings),
                transactions,
                out,
                as_of,
                options=options,
                time_unit_days=time_unit_days or settings.time_unit_days,
                horizon_days=horizon_days,
                partition_rows=settings.spark_partition_rows,
                rejects_out=rejects,
            )
            echo(f"features: {written.n_customers:,} customers -> {written.out_path} (Parquet folder)")
            if written.rejects_path is not None:
                echo(f"rejects: {written.n_rejected:,} rows with their reason -> {written.rejects_path}")
            return
        result = write_features(
            transactions,
            as_of,
            out,
            options,
            time_unit_days=time_unit_days or settings.time_unit_days,
            horizon_days=horizon_days,
            rejects_out=rejects,
        )
        echo_load_result(result.loaded, result.rejects_path)
        echo(f"features: {result.n_customers:,} customers x {result.n_columns} columns -> {result.features_path}")


@app.command("generate")
def generate_command(
    customers: Annotated[int, typer.Option(help="Number of customers to generate.", min=1)],
    out: Annotated[str, typer.Option(help="Transaction log to write (.parquet or .csv).")],
    seed: Annotated[int | None, typer.Option(help="Random seed (default: settings seed).")] = None,
    start: Annotated[str, typer.Option(help="First day of the log.")] = "2022-01-01",
    end: Annotated[str, typer.Option(help="Last day of the log.")] = "2023-12-31",
    truth: Annotated[
        str | None, typer.Option(help="Ground-truth customer table (default: <out stem>.truth.parquet).")
    ] = None,
    campaigns: Annotated[int, typer.Option(help="Also simulate this many past campaigns with control groups.", min=0)] = 0,
    campaigns_out: Annotated[
        str | None, typer.Option(help="Assignment file of the simulated campaigns, with true_uplift (CSV or Parquet).")
    ] = None,
    window_days: Annotated[
        int | None, typer.Option(help="Campaign window in days (default: settings campaign_window_days, 30).", min=1)
    ] = None,
    control_share: Annotated[
        float | None, typer.Option(help="Control share of the simulated campaigns (default: settings control_share).", min=0, max=0.99)
    ] = None,
) -> None:
    """Write a synthetic transaction log from the BG/NBD + Gamma-Gamma process, with its ground truth."""
    with user_errors():
        from jobs.generate import write_synthetic

        if (campaigns > 0) != (campaigns_out is not None):
            raise typer.BadParameter("--campaigns K and --campaigns-out FILE go together")
        settings = get_settings()
        written = write_synthetic(
            customers,
            out,
            seed=settings.seed if seed is None else seed,
            start=start,
            end=end,
            truth_out=truth,
            campaigns=campaigns,
            campaigns_out=campaigns_out,
            window_days=window_days or settings.campaign_window_days,
            control_share=settings.control_share if control_share is None else control_share,
            policy=_policy(settings),
        )
        echo(f"transactions: {len(written.transactions):,} rows -> {written.log_path}")
        echo(f"ground truth: {len(written.data.customers):,} customers -> {written.truth_path}")
        echo(f"unprofitable customers (truth): {written.data.customers['unprofitable'].mean():.1%}")
        if written.assignments is not None:
            groups = written.assignments["group"].value_counts()
            echo(
                f"campaigns: {campaigns} past campaigns, {groups.get('treatment', 0):,} treated and "
                f"{groups.get('control', 0):,} control customers, true uplift "
                f"{written.assignments['true_uplift'].mean():.4f} on average -> {written.assignments_path}"
            )


def _policy(settings: Settings) -> TargetingPolicy:
    """The targeting policy of the settings."""
    from targeting.policy import TargetingPolicy

    return TargetingPolicy.from_settings(settings)


@app.command("score")
def score_command(
    transactions: Annotated[str, typer.Option(help="Transaction log to score (CSV, Parquet, ...).")],
    as_of: Annotated[str, typer.Option(help="Last observed day, YYYY-MM-DD (inclusive).")],
    out: Annotated[str, typer.Option(help="Scores file to write (Parquet); rejects go beside it.")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    encoding: EncodingOption = None,
    model_uri: Annotated[
        str | None, typer.Option(help="Model to score with (default: settings model_uri, models:/patron@champion).")
    ] = None,
    campaign_budget: Annotated[
        float | None, typer.Option(help="Also select a campaign under this money budget.")
    ] = None,
    campaign_out: Annotated[
        str | None, typer.Option(help="Where to write the campaign list (CSV or Parquet by extension).")
    ] = None,
    chunk_size: Annotated[
        int | None, typer.Option(help="Customers per chunk (default: settings batch_chunk_size).")
    ] = None,
    engine: EngineOption = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Score every customer of a transaction log with the champion model into a Parquet file."""
    with user_errors():
        from serving.batch import run_batch

        settings = get_settings()
        if campaign_out is not None and campaign_budget is None:
            raise typer.BadParameter("--campaign-out needs --campaign-budget")
        if chosen_engine(engine, settings) == "spark":
            from jobs.spark.jobs import ValidationOptions, score_with_spark

            result = score_with_spark(
                spark_for(spark_master, settings),
                transactions,
                out,
                as_of,
                model_uri=model_uri or settings.model_uri,
                tracking_uri=settings.resolved_tracking_uri(),
                options=ValidationOptions.from_load_options(load_options(settings, mapping, sep, date_format)),
                sep=sep if sep is not None else settings.sep,
                partition_rows=settings.spark_partition_rows,
                campaign_budget=campaign_budget,
                campaign_out=campaign_out,
            )
        else:
            result = run_batch(
                transactions,
                out,
                as_of,
                model_uri=model_uri or settings.model_uri,
                tracking_uri=settings.resolved_tracking_uri(),
                mapping=parse_mapping(mapping, settings),
                sep=sep if sep is not None else settings.sep,
                encoding=encoding or settings.encoding,
                date_format=date_format if date_format is not None else settings.date_format,
                keep_duplicates=settings.keep_duplicates,
                chunk_size=chunk_size or settings.batch_chunk_size,
                campaign_budget=campaign_budget,
                campaign_out=campaign_out,
            )
        echo(
            f"scored {result.n_customers} customers from {result.n_transactions} transactions "
            f"with {result.model_name} version {result.model_version} -> {result.out_path}"
        )
        echo(f"rejected rows: {result.n_rejected} -> {result.rejects_path}")
        if result.campaign is not None:
            echo(result.campaign.summary.to_string(index=False))
            if result.campaign_path is not None:
                echo(f"campaign: {len(result.campaign.selected)} customers -> {result.campaign_path}")


@app.command("serve")
def serve_command(
    host: Annotated[str, typer.Option(help="Interface to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    workers: Annotated[
        int | None, typer.Option(help="Worker processes, each loading the model (default: settings workers).", min=1)
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the prediction API (model from settings model_uri; see PATRON_* for keys and limits)."""
    with user_errors():
        import uvicorn

        from serving.metrics import shared_metrics_dir

        n_workers = workers or get_settings().workers
        # uvicorn kills a worker that does not answer its supervisor's ping within 5 s; a worker busy
        # importing libraries and loading the model on a loaded machine can take longer.
        with shared_metrics_dir(n_workers):
            uvicorn.run(
                "serving.app:app", host=host, port=port, workers=n_workers,
                log_level=log_level, timeout_worker_healthcheck=60,
            )


@app.command("campaign")
def campaign_command(
    scores: Annotated[str, typer.Option(help="Batch scores file from `patron score` (Parquet or CSV).")],
    out: Annotated[str, typer.Option(help="Campaign list to write (CSV or Parquet by extension).")],
    budget: Annotated[
        float | None, typer.Option(help="Money budget of the campaign (default: settings campaign_budget).")
    ] = None,
    campaign_id: Annotated[str | None, typer.Option(help="Campaign id (default: from the scores and budget).")] = None,
    control_share: Annotated[
        float | None, typer.Option(help="Share held back as control group (default: settings control_share, 0.1).", min=0, max=0.99)
    ] = None,
    send_date: Annotated[str | None, typer.Option(help="Send date, YYYY-MM-DD (default: today).")] = None,
    offer_price: Annotated[
        float | None,
        typer.Option(help="Price of the offer: customers whose average order is below offer_min_aov_share of it are left out."),
    ] = None,
) -> None:
    """Choose whom to contact under a budget, hold back a control group, record the campaign in the ledger."""
    with user_errors():
        from jobs.campaigns import run_campaign

        settings = get_settings()
        budget = settings.campaign_budget if budget is None else budget
        planned = run_campaign(
            scores,
            out,
            budget,
            _policy(settings),
            tracking_uri=settings.resolved_tracking_uri(),
            experiment=settings.campaign_experiment_name,
            campaign_id=campaign_id,
            control_share=control_share,
            send_date=send_date,
            offer_price=offer_price,
        )
        result = planned.result
        echo(result.summary.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
        echo()
        echo(result.excluded.to_string(index=False))
        echo()
        echo(
            f"campaign {result.campaign_id}: {len(result.treatment)} customers contacted, {len(result.control)} held back "
            f"as control, spend {result.spend:,.2f} of {budget:,.2f}, {result.expected_profit_text()} "
            f"-> {planned.path} (ledger run {planned.run_id})"
        )


@app.command("campaigns")
def campaigns_command() -> None:
    """List the recorded campaigns (the ledger: MLflow experiment patron-campaigns), newest first."""
    with user_errors():
        from jobs.campaign_ledger import list_campaigns

        settings = get_settings()
        ledger = list_campaigns(settings.resolved_tracking_uri(), settings.campaign_experiment_name)
        if ledger.empty:
            echo("no campaigns recorded yet: `patron campaign` records each campaign it plans")
            return
        echo(ledger.drop(columns=["run_id"]).to_string(index=False, float_format=lambda v: f"{v:,.2f}"))


@app.command("campaign-report")
def campaign_report_command(
    transactions: Annotated[str, typer.Option(help="Transaction log covering the campaign window (CSV, Parquet, ...).")],
    assignments: Annotated[str | None, typer.Option(help="Campaign list with campaign_id, group, send_date.")] = None,
    campaign: Annotated[str | None, typer.Option(help="A campaign id from the ledger (`patron campaigns`).")] = None,
    window_days: Annotated[
        int | None, typer.Option(help="Days after the send date counted (default: settings campaign_window_days, 30).", min=1)
    ] = None,
    out: Annotated[str | None, typer.Option(help="Write the report as CSV (or Parquet) here.")] = None,
    send_date: Annotated[
        str | None, typer.Option(help="Send date, YYYY-MM-DD, for lists without a send_date column (`patron score`, the API).")
    ] = None,
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
) -> None:
    """Measure campaigns against their control groups: incremental conversion and profit with 90% intervals."""
    with user_errors():
        from jobs.campaigns import run_report
        from jobs.load import load_log
        from targeting.campaign_report import report_lines

        settings = get_settings()
        if (assignments is None) == (campaign is None):
            raise typer.BadParameter("give exactly one of --assignments FILE or --campaign ID")
        loaded = load_log(transactions, load_options(settings, mapping, sep, date_format))
        echo_load_result(loaded, None)
        report = run_report(
            loaded.transactions,
            _policy(settings),
            tracking_uri=settings.resolved_tracking_uri(),
            experiment=settings.campaign_experiment_name,
            window_days=window_days or settings.campaign_window_days,
            assignments=assignments,
            campaign_id=campaign,
            out=out,
            send_date=send_date,
            seed=settings.seed,
        )
        for line in report_lines(report):
            echo(line)
        if out is not None:
            echo(f"report -> {out}")


@app.command("train")
def train_command(
    transactions: Annotated[str, typer.Option(help="Transaction log to learn from (CSV, TSV, whitespace text, Parquet, ...).")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
    encoding: EncodingOption = None,
    as_of: Annotated[
        str | None, typer.Option(help="Last day of data to use, YYYY-MM-DD (default: the last transaction).")
    ] = None,
    churn_horizon_days: Annotated[
        int | None, typer.Option(help="Churn horizon H in days (default: settings, 90).", min=1)
    ] = None,
    experiment: Annotated[str | None, typer.Option(help="MLflow experiment (default: settings, patron).")] = None,
    force_promote: Annotated[
        bool, typer.Option("--force-promote", help="Make the new model champion even if the gate says no.")
    ] = False,
    rejects: Annotated[str, typer.Option(help="Where to write the rejected rows with their reason.")] = "train.rejects.csv",
    campaigns: Annotated[
        list[str] | None,
        typer.Option(help="Assignment files of past campaigns (repeat the option), or `ledger`: learn uplift from them."),
    ] = None,
    engine: Annotated[
        str | None,
        typer.Option("--engine", help="local (one process) or spark (reads the source with Spark, fits the BTYD "
                     "purchase models on every customer and the rest on at most PATRON_SPARK_TRAIN_CUSTOMERS customers "
                     "sampled by hash; default: settings engine)."),
    ] = None,
    spark_master: SparkMasterOption = None,
) -> None:
    """Train, evaluate out of time against baselines, log to MLflow, register and gate a new model."""
    with user_errors():
        from jobs.train import run_training
        from training.report import format_report
        from training.tracking import store_errors

        settings = get_settings()
        with store_errors(settings.resolved_tracking_uri()):  # one line, not MLflow's traceback
            result = run_training(
                transactions,
                load_options(settings, mapping, sep, date_format, encoding=encoding),
                settings,
                rejects_out=rejects,
                campaigns=campaigns or (),
                as_of=as_of,
                churn_horizon_days=churn_horizon_days,
                experiment=experiment,
                force_promote=force_promote,
                engine=chosen_engine(engine, settings),
                spark_master=spark_master,
                on_loaded=echo_load_result,
                on_sampled=lambda sample: echo("\n".join(sample.lines())),
                on_learned=lambda learned: echo("\n".join(learned.lines())),
            )
        for line in result.btyd_lines():
            echo(line)
        echo()
        echo(format_report(result.trained))


@app.command("report")
def report_command(
    scores: Annotated[str, typer.Option(help="Scores file from `patron score` or `patron demo` (Parquet or CSV).")],
    out: Annotated[str, typer.Option(help="The HTML file to write (one self-contained page).")],
    campaign: Annotated[str | None, typer.Option(help="Campaign list from `patron campaign` (CSV or Parquet).")] = None,
    campaign_report: Annotated[
        str | None, typer.Option(help="The campaign's measured result (CSV or Parquet), shown as given.")
    ] = None,
    cycles: Annotated[
        str | None, typer.Option(help="Repurchase cycles by category (CSV from `patron demo` or features.repurchase).")
    ] = None,
) -> None:
    """Write the marketer's report: tiers x stages, CLV, churn risk and reasons, tags, timing, campaign."""
    with user_errors():
        from jobs.report import write_report

        path = write_report(scores, out, campaign_path=campaign, campaign_report_path=campaign_report, cycles_path=cycles)
        echo(f"report: {path}")


@app.command("demo")
def demo_command(
    out_dir: Annotated[str, typer.Option(help="Directory for the scores, rejects and campaign files.")] = "demo_output",
    budget: Annotated[
        float | None, typer.Option(help="Campaign budget (default: settings campaign_budget).", min=0)
    ] = None,
) -> None:
    """Run the main job end to end on CDNOW (inside lifetimes): load, train, gate, batch-score, campaign."""
    with user_errors():
        from jobs.demo import run_demo

        run_demo(get_settings(), out_dir, echo=echo, budget=budget)


def main() -> None:  # pragma: no cover - console entry point
    """Run the command line."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
