"""Batch scoring: every customer of a transaction log scored in chunks into one parquet file."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from tqdm import tqdm

from core.errors import DataError
from core.scores import scores_schema
from serving.model_store import ScorerProtocol
from serving.scoring import as_of_timestamp, score_frame

logger = logging.getLogger(__name__)

# Fixed writer settings: the same scores give the same bytes (no timestamps are written, and
# row groups follow the customer chunks, which depend only on the data and the chunk size).
PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
}


@dataclass(frozen=True)
class BatchResult:
    """What a batch run wrote and counted."""

    out_path: Path
    rejects_path: Path
    n_customers: int
    n_transactions: int
    n_rejected: int
    model_name: str
    model_version: str
    load_summary: Any = None
    campaign_path: Path | None = None
    campaign: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


class NothingScored(DataError):
    """No customer had a purchase on or before the as-of date."""


def customer_chunks(customer_ids: pd.Series, chunk_size: int) -> tuple[list[np.ndarray], int]:
    """Row positions of chunks of whole customers in customer_id order, and the customer count."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    codes, uniques = pd.factorize(customer_ids, sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.append(np.arange(0, len(uniques), chunk_size), len(uniques))
    bounds = np.searchsorted(codes[order], starts)
    return [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)], len(uniques)


def iter_scores(
    transactions: pd.DataFrame,
    scorer: ScorerProtocol,
    as_of: Any,
    chunk_size: int = 250_000,
    progress: bool | None = None,
) -> Iterator[pd.DataFrame]:
    """Score customers chunk by chunk; chunks come out in customer_id order."""
    as_of = as_of_timestamp(as_of)
    chunks, n_customers = customer_chunks(transactions["customer_id"], chunk_size)
    show = sys.stderr.isatty() if progress is None else progress
    with tqdm(total=n_customers, unit="customer", file=sys.stderr, disable=not show, desc="scoring") as bar:
        for positions in chunks:  # a loop over chunks; the work inside each is vectorised
            chunk = transactions.take(positions)
            scores = score_frame(chunk, scorer, as_of)
            bar.update(min(chunk_size, n_customers - bar.n))
            del chunk
            if len(scores):
                yield scores


def score_transactions(
    transactions: pd.DataFrame,
    scorer: ScorerProtocol,
    as_of: Any,
    chunk_size: int = 250_000,
    progress: bool | None = False,
) -> pd.DataFrame:
    """Score every customer with a purchase on or before `as_of`, sorted by customer_id."""
    chunks = list(iter_scores(transactions, scorer, as_of, chunk_size=chunk_size, progress=progress))
    if not chunks:
        raise NothingScored(f"no customer has a purchase on or before {as_of_timestamp(as_of).date()}")
    return pd.concat(chunks, ignore_index=True)


def scores_table(scores: pd.DataFrame) -> pa.Table:
    """A scores frame as an Arrow table of `scores_schema()`."""
    schema = scores_schema()
    arrays = [pa.array(scores[field.name].to_numpy(), type=field.type, from_pandas=True) for field in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _open_temp(path: Path) -> Path:
    """A fresh temporary file beside `path` (same file system, so the final rename is atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    return Path(name)


def _publish(temp: Path, path: Path) -> None:
    """Flush `temp` to disk and rename it over `path` in one step."""
    with open(temp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(temp, path)


def write_scores(chunks: Iterable[pd.DataFrame], path: str | Path) -> int:
    """Stream score chunks into `path` via a temporary file renamed into place; return rows written."""
    path = Path(path)
    temp = _open_temp(path)
    rows = 0
    writer: pq.ParquetWriter | None = None
    try:
        for chunk in chunks:
            table = scores_table(chunk)
            if writer is None:
                writer = pq.ParquetWriter(temp, table.schema, **PARQUET_OPTIONS)
            writer.write_table(table)
            rows += table.num_rows
        if writer is None:
            raise NothingScored("nothing to write: no customer was scored")
        writer.close()
        writer = None
        _publish(temp, path)
    except BaseException:
        if writer is not None:
            writer.close()
        temp.unlink(missing_ok=True)
        raise
    return rows


def score_file(
    transactions_path: str | Path,
    out_path: str | Path,
    scorer: ScorerProtocol,
    as_of: Any,
    *,
    mapping: dict[str, str] | None = None,
    sep: str | None = None,
    date_format: str | None = None,
    keep_duplicates: bool = False,
    chunk_size: int = 250_000,
    progress: bool | None = None,
    campaign_budget: float | None = None,
    campaign_out: str | Path | None = None,
    campaign_options: dict[str, Any] | None = None,
) -> BatchResult:
    """Load a transaction log, score every customer at `as_of`, write scores, rejects and campaign."""
    from features import load_transactions
    from features.io import rejects_path_for, write_table

    out_path = Path(out_path)
    loaded = load_transactions(
        transactions_path, mapping=mapping, sep=sep, date_format=date_format, keep_duplicates=keep_duplicates
    )
    transactions = loaded.transactions
    rejects_path = rejects_path_for(out_path)
    write_table(loaded.rejects, rejects_path)
    logger.info("scoring %d transactions at %s", len(transactions), as_of_timestamp(as_of).date())
    chunks = iter_scores(transactions, scorer, as_of, chunk_size=chunk_size, progress=progress)
    try:
        n_customers = write_scores(chunks, out_path)
    except NothingScored:
        raise NothingScored(
            f"no customer in {transactions_path} has a purchase on or before {as_of_timestamp(as_of).date()}"
        ) from None
    campaign = campaign_path = None
    if campaign_budget is not None:
        from targeting.campaign import select_campaign

        scores = pd.read_parquet(out_path)
        # The model's own policy, so campaign spend uses the costs its decisions were made with.
        options = {"policy": getattr(scorer, "policy", None), **(campaign_options or {})}
        campaign = select_campaign(scores, campaign_budget, **options)
        if campaign_out is not None:
            campaign_path = Path(campaign_out)
            write_table(campaign.selected, campaign_path)
    metadata = scorer.metadata
    return BatchResult(
        out_path=out_path,
        rejects_path=rejects_path,
        n_customers=n_customers,
        n_transactions=len(transactions),
        n_rejected=len(loaded.rejects),
        model_name=str(metadata.get("model_name", "")),
        model_version=str(metadata.get("model_version", "")),
        load_summary=loaded.summary,
        campaign_path=campaign_path,
        campaign=campaign,
    )


def run_batch(
    transactions_path: str | Path,
    out_path: str | Path,
    as_of: Any,
    *,
    model_uri: str,
    tracking_uri: str,
    **options: Any,
) -> BatchResult:
    """Load the model at `model_uri` from the MLflow registry and run `score_file` with it."""
    as_of_timestamp(as_of)  # a bad date fails before the (slower) model load
    return score_file(transactions_path, out_path, load_model(model_uri, tracking_uri), as_of, **options)


def load_model(model_uri: str, tracking_uri: str) -> ScorerProtocol:
    """The scorer at `model_uri` in the registry at `tracking_uri`; a ModelError naming both when it fails."""
    from core.errors import ModelError
    from serving.model_store import mlflow_scorer_loader

    try:
        return mlflow_scorer_loader(tracking_uri)(model_uri)
    except ModelError:
        raise
    except Exception as exc:  # MLflow's own errors: no such model, alias or store
        raise ModelError(f"cannot load model {model_uri} from {tracking_uri}: {exc}") from None
