"""MLflow tracking set-up: point MLflow at a store and make sure an experiment exists (called, never at import)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

logger = logging.getLogger(__name__)

ARTIFACTS_FOLDER = "artifacts"


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


def configure_tracking(tracking_uri: str) -> str:
    """Point MLflow (tracking and registry) at `tracking_uri`; create the local sqlite folder if needed."""
    import mlflow

    database = sqlite_database_path(tracking_uri)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
        # Pin the resolved path so a later chdir cannot move the store.
        tracking_uri = "sqlite:///" + database.as_posix()
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)
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
    """The id of `experiment_name`, created (with artifacts under the store's folder) when missing."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    experiment = client.get_experiment_by_name(experiment_name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            client.restore_experiment(experiment.experiment_id)
        return experiment.experiment_id
    location = default_artifact_location(tracking_uri, experiment_name)
    experiment_id = client.create_experiment(experiment_name, artifact_location=location)
    logger.info("created MLflow experiment %r (artifacts: %s)", experiment_name, location or "server default")
    return experiment_id
