"""MLflow tracking set-up: point MLflow at a store and make sure an experiment exists (called, never at import).

Several processes may open the same new sqlite store at once (overlapping nightly `patron train`
runs, an API worker per process): MLflow creates a store's tables on first use without a lock, so
two creators race (`table trace_info already exists`, `duplicate column name`). Creating the tables
and the experiment happens under an exclusive file lock beside the database (`<db>.lock`); a failure
of the store that remains is one `TrackingError` line.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from core.errors import PatronError

logger = logging.getLogger(__name__)

ARTIFACTS_FOLDER = "artifacts"
LOCK_SUFFIX = ".lock"


class TrackingError(PatronError):
    """The MLflow tracking store failed (unreachable, locked, corrupt); the message is one line."""


def sqlite_database_path(tracking_uri: str) -> Path | None:
    """The database file of a `sqlite:///...` URI, resolved against the working directory; None otherwise."""
    if not tracking_uri.startswith("sqlite:"):
        return None
    path = unquote(urlparse(tracking_uri).path)
    if not path or path in ("/", "/:memory:"):
        return None
    # sqlite:///mlruns/mlflow.db is relative to the working directory, sqlite:////tmp/x.db absolute:
    # dropping the one slash that separates the (empty) host leaves exactly that.
    return Path(path[1:]).resolve()


@contextlib.contextmanager
def store_lock(tracking_uri: str) -> Iterator[None]:
    """Hold an exclusive lock on a local sqlite store (`<db>.lock` beside it); other stores: no lock."""
    database = sqlite_database_path(tracking_uri)
    if database is None:
        yield
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(database.with_name(database.name + LOCK_SUFFIX), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def store_errors(tracking_uri: str) -> Iterator[None]:
    """Turn a failure of the tracking store (MLflow, SQLAlchemy, sqlite) into one `TrackingError` line."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (MlflowException, SQLAlchemyError, sqlite3.Error) as exc:
        text = str(getattr(exc, "orig", None) or getattr(exc, "message", None) or exc).strip()
        reason = text.splitlines()[0] if text else type(exc).__name__
        raise TrackingError(f"MLflow store {tracking_uri} failed: {reason}") from None


def configure_tracking(tracking_uri: str) -> str:
    """Point MLflow (tracking and registry) at `tracking_uri`; create a local sqlite store safely.

    A new sqlite store gets its folder and tables under `store_lock`, so concurrent processes
    neither race nor fail; MLflow caches the initialised store for the rest of the process.
    """
    import mlflow

    database = sqlite_database_path(tracking_uri)
    if database is not None:
        # Pin the resolved path so a later chdir cannot move the store.
        tracking_uri = "sqlite:///" + database.as_posix()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
    if database is not None:
        with store_lock(tracking_uri), store_errors(tracking_uri):
            client = mlflow.MlflowClient(tracking_uri, registry_uri=tracking_uri)
            client.search_experiments(max_results=1)  # creates or migrates the tracking tables
            client.search_registered_models(max_results=1)  # and opens the registry's
    logger.info("MLflow tracking at %s", tracking_uri)
    return tracking_uri


def default_artifact_location(tracking_uri: str, experiment_name: str) -> str | None:
    """Artifacts of a local sqlite store go next to the database (`mlruns/artifacts/<experiment>`).

    A remote tracking server chooses its own artifact store (None).
    """
    database = sqlite_database_path(tracking_uri)
    if database is None:
        return None
    folder = re.sub(r"[^A-Za-z0-9_.-]+", "_", experiment_name).strip("_") or "experiment"
    return (database.parent / ARTIFACTS_FOLDER / folder).as_uri()


def ensure_experiment(experiment_name: str, tracking_uri: str) -> str:
    """The id of `experiment_name`, created (with artifacts under the store's folder) when missing.

    Look-up and creation hold `store_lock`, so two runs starting together share one experiment.
    """
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    with store_lock(tracking_uri), store_errors(tracking_uri):
        experiment = client.get_experiment_by_name(experiment_name)
        if experiment is not None:
            if experiment.lifecycle_stage == "deleted":
                client.restore_experiment(experiment.experiment_id)
            return experiment.experiment_id
        location = default_artifact_location(tracking_uri, experiment_name)
        experiment_id = client.create_experiment(experiment_name, artifact_location=location)
    logger.info("created MLflow experiment %r (artifacts: %s)", experiment_name, location or "server default")
    return experiment_id
