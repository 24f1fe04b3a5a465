"""Patron's command line: a thin Typer shell that wires settings to library calls."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated

import typer

from patron.settings import Settings, get_settings

if TYPE_CHECKING:
    import pandas as pd

    from features.validate import LoadResult

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


def print_load_summary(summary: dict) -> None:
    """Print what a load read, kept and rejected, by reason."""
    table = [("rows read", summary["rows_read"]), ("rows accepted", summary["rows_accepted"])]
    table.append(("rows rejected", summary["rows_rejected"]))
    table += [(f"  {reason}", count) for reason, count in summary["rejected_by_reason"].items()]
    table += [("customers", summary["customers"]), ("returns", summary.get("returns", 0))]
    for label, count in table:
        echo(f"{label:<24}{count:>12,}")
    echo(f"{'date range':<24}{summary['first_timestamp']} .. {summary['last_timestamp']}")


@app.command("features")
def features_command(
    transactions: Annotated[str, typer.Option(help="Transaction log (CSV, TSV, whitespace text, Parquet, ...).")],
    as_of: Annotated[str, typer.Option(help="Last observed day, YYYY-MM-DD (inclusive).")],
    out: Annotated[str, typer.Option(help="Features file to write (.parquet or .csv).")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
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
        from features import build_features
        from features.io import rejects_path_for, write_table

        settings = get_settings()
        if chosen_engine(engine, settings) == "spark":
            _spark_features(transactions, as_of, out, settings, spark_master, mapping, sep, date_format,
                            keep_duplicates, time_unit_days, horizon_days, rejects, header)
            return
        loaded = load_and_report(transactions, settings, mapping, sep, date_format, keep_duplicates, header)
        features = build_features(
            loaded.transactions,
            as_of=as_of,
            time_unit_days=time_unit_days or settings.time_unit_days,
            horizon_days=horizon_days,
        )
        if features.empty:
            from core.errors import DataError

            raise DataError(f"no customer has a purchase on or before {as_of}; choose a later --as-of")
        written = write_table(features, out, index=True)
        echo(f"features: {len(features):,} customers x {features.shape[1]} columns -> {written}")
        if len(loaded.rejects):
            rejects_path = write_table(loaded.rejects, rejects or rejects_path_for(out))
            echo(f"rejects: {len(loaded.rejects):,} rows with their reason -> {rejects_path}")


def _spark_features(
    transactions: str,
    as_of: str,
    out: str,
    settings: Settings,
    spark_master: str | None,
    mapping: list[str] | None,
    sep: str | None,
    date_format: str | None,
    keep_duplicates: bool,
    time_unit_days: int | None,
    horizon_days: int | None,
    rejects: str | None,
    header: bool | None,
) -> None:
    """`patron features --engine spark`: the same features as a Parquet folder, rejects beside it."""
    from jobs.spark.jobs import ValidationOptions, features_with_spark

    if horizon_days is not None:
        raise typer.BadParameter("--horizon-days is not available with --engine spark yet; use --engine local")
    options = ValidationOptions(
        mapping=parse_mapping(mapping, settings),
        date_format=date_format if date_format is not None else settings.date_format,
        keep_duplicates=keep_duplicates or settings.keep_duplicates,
    )
    customers, rejected, rejects_path = features_with_spark(
        spark_for(spark_master, settings),
        transactions,
        out,
        as_of,
        options=options,
        time_unit_days=time_unit_days or settings.time_unit_days,
        sep=sep if sep is not None else settings.sep,
        header=header,
        partition_rows=settings.spark_partition_rows,
        rejects=rejects,
    )
    echo(f"features: {customers:,} customers -> {out} (Parquet folder)")
    echo(f"rejects: {rejected:,} rows with their reason -> {rejects_path}")


def load_and_report(
    transactions: str,
    settings: Settings,
    mapping: list[str] | None,
    sep: str | None,
    date_format: str | None,
    keep_duplicates: bool = False,
    header: bool | None = None,
) -> LoadResult:
    """Load and validate a transaction log with options over settings; print what was read and rejected."""
    from features import load_transactions

    loaded = load_transactions(
        transactions,
        mapping=parse_mapping(mapping, settings),
        sep=sep if sep is not None else settings.sep,
        date_format=date_format if date_format is not None else settings.date_format,
        keep_duplicates=keep_duplicates or settings.keep_duplicates,
        header=header,
    )
    print_load_summary(loaded.summary)
    return loaded


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
) -> None:
    """Write a synthetic transaction log from the BG/NBD + Gamma-Gamma process, with its ground truth."""
    with user_errors():
        from pathlib import Path

        from features.io import write_table
        from features.synthetic import generate_transactions

        data = generate_transactions(customers, seed=get_settings().seed if seed is None else seed, start=start, end=end)
        log_path = write_table(data.transactions, out)
        path = Path(out)
        truth_path = write_table(
            data.customers, truth or path.with_name(f"{path.name.split('.')[0]}.truth.parquet"), index=True
        )
        echo(f"transactions: {len(data.transactions):,} rows -> {log_path}")
        echo(f"ground truth: {len(data.customers):,} customers -> {truth_path}")
        echo(f"unprofitable customers (truth): {data.customers['unprofitable'].mean():.1%}")


@app.command("score")
def score_command(
    transactions: Annotated[str, typer.Option(help="Transaction log to score (CSV, Parquet, ...).")],
    as_of: Annotated[str, typer.Option(help="Last observed day, YYYY-MM-DD (inclusive).")],
    out: Annotated[str, typer.Option(help="Scores file to write (Parquet); rejects go beside it.")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
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
                options=ValidationOptions(
                    mapping=parse_mapping(mapping, settings),
                    date_format=date_format if date_format is not None else settings.date_format,
                    keep_duplicates=settings.keep_duplicates,
                ),
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
    workers: Annotated[int, typer.Option(help="Worker processes (each loads the model).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the prediction API (model from settings model_uri; see PATRON_* for keys and limits)."""
    with user_errors():
        import uvicorn

        uvicorn.run("serving.app:app", host=host, port=port, workers=workers, log_level=log_level)


def _read_scores_table(path: str) -> pd.DataFrame:
    """A scores file (Parquet, CSV, ...) as a frame with a customer_id column of strings."""
    from core.errors import DataError
    from features.io import read_table

    frame = read_table(path)
    if "customer_id" not in frame.columns:
        raise DataError(f"scores file {path} has no customer_id column; write it with `patron score`")
    frame["customer_id"] = frame["customer_id"].astype(str)
    return frame


@app.command("campaign")
def campaign_command(
    scores: Annotated[str, typer.Option(help="Batch scores file from `patron score` (Parquet or CSV).")],
    out: Annotated[str, typer.Option(help="Campaign list to write (CSV or Parquet by extension).")],
    budget: Annotated[
        float | None, typer.Option(help="Money budget of the campaign (default: settings campaign_budget).")
    ] = None,
) -> None:
    """Choose whom to contact under a budget; print the summary by tier and stage and the exclusions."""
    with user_errors():
        import math

        from features.io import write_table
        from targeting.campaign import select_campaign
        from targeting.decide import ensure_decisions
        from targeting.policy import TargetingPolicy

        settings = get_settings()
        budget = settings.campaign_budget if budget is None else budget
        if not (math.isfinite(budget) and budget >= 0):
            raise ValueError(f"--budget must be a finite amount >= 0, got {budget}")
        policy = TargetingPolicy.from_settings(settings)
        # scores from `patron score` carry the decisions; a bare model output gets them here
        decisions = ensure_decisions(_read_scores_table(scores), policy)
        result = select_campaign(decisions, budget, policy)
        write_table(result.selected, out)
        echo(result.summary.to_string(index=False, float_format=lambda v: f"{v:,.2f}"))
        echo()
        echo(result.excluded.to_string(index=False))
        echo()
        echo(
            f"campaign: {len(result.selected)} customers, spend {result.spend:,.2f} of {budget:,.2f}, "
            f"expected incremental profit {result.expected_profit:,.2f} -> {out}"
        )


@app.command("train")
def train_command(
    transactions: Annotated[str, typer.Option(help="Transaction log to learn from (CSV, TSV, whitespace text, Parquet, ...).")],
    mapping: MapOption = None,
    sep: SepOption = None,
    date_format: DateFormatOption = None,
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
) -> None:
    """Train, evaluate out of time against baselines, log to MLflow, register and gate a new model."""
    with user_errors():
        from features.io import write_table
        from training.report import format_report
        from training.train import train

        settings = get_settings()
        loaded = load_and_report(transactions, settings, mapping, sep, date_format)
        if len(loaded.rejects):
            written = write_table(loaded.rejects, rejects)
            echo(f"rejects: {len(loaded.rejects):,} rows with their reason -> {written}")
        result = train(
            loaded.transactions,
            settings=settings,
            as_of=as_of,
            churn_horizon_days=churn_horizon_days,
            experiment=experiment,
            force_promote=force_promote,
        )
        echo()
        echo(format_report(result))


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
    sys.exit(main())
