"""The served model: loaded from the registry, swapped atomically, kept when a new load fails."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol, runtime_checkable

import pandas as pd

logger = logging.getLogger(__name__)


@runtime_checkable
class ScorerProtocol(Protocol):
    """What serving needs from a model: `models.scorer.PatronScorer` satisfies it."""

    @property
    def metadata(self) -> Mapping[str, Any]:
        """model_name, model_version, alias, trained_at, data fingerprint, headline metrics."""
        ...

    @property
    def time_unit_days(self) -> int:
        """Time unit the model's recency and T are measured in."""
        ...

    def score(self, features: pd.DataFrame, as_of: Any) -> pd.DataFrame:
        """Score a feature frame (indexed by customer_id) into the scores table."""
        ...

    def training_tier_boundaries(self) -> Any:
        """Tier boundaries of the training snapshot (the API's fallback when no batch saved any)."""
        ...


ScorerLoader = Callable[[str], ScorerProtocol]
VersionResolver = Callable[[str], "str | None"]


@dataclass(frozen=True)
class LoadedModel:
    """A scorer with where it came from; immutable, so a request holds one consistent model."""

    scorer: ScorerProtocol
    uri: str
    name: str
    version: str
    loaded_at: dt.datetime

    @property
    def metadata(self) -> Mapping[str, Any]:
        """The scorer's metadata."""
        return self.scorer.metadata


@dataclass(frozen=True)
class ReloadOutcome:
    """What a reload did: loaded a new model, found the same version, or failed (old model kept)."""

    status: Literal["reloaded", "unchanged", "failed"]
    model: LoadedModel | None
    error: str | None = None


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


class ModelStore:
    """Holds the model being served and replaces it without disturbing requests in flight.

    Parameters
    ----------
    uri : str
        Model URI to load, e.g. ``models:/patron@champion``.
    loader : callable
        ``loader(uri) -> scorer``; raises on failure.
    version_resolver : callable, optional
        ``version_resolver(uri) -> version or None``: a cheap registry look-up that lets
        ``reload(force=False)`` skip loading when the alias still points at the served version.
    check : callable, optional
        ``check(scorer)`` raises when a loaded model cannot score; default
        `models.prediction.check_scorer` (its example transactions through the one scoring path).

    Notes
    -----
    Requests read ``current`` once and keep that reference for their whole duration; a reload
    builds the new model fully before one reference assignment publishes it (atomic under the
    GIL), so in-flight requests finish on the model they started with. A failed load leaves
    ``current`` untouched and records the error for ``/readyz``.
    """

    def __init__(
        self,
        uri: str,
        loader: ScorerLoader,
        version_resolver: VersionResolver | None = None,
        check: Callable[[Any], object] | None = None,
    ):
        self.uri = uri
        self.check = check if check is not None else _check_scorer
        self.loader = loader
        self.version_resolver = version_resolver
        self._current: LoadedModel | None = None
        self._lock = threading.Lock()
        self.last_error: str | None = None
        self.last_error_at: dt.datetime | None = None
        self.on_reload: Callable[[ReloadOutcome], None] | None = None

    @property
    def current(self) -> LoadedModel | None:
        """The model serving requests now, or None before the first successful load."""
        return self._current

    def reload(self, force: bool = True) -> ReloadOutcome:
        """Load the model at `uri` and swap it in; keep the previous one if loading fails.

        With ``force=False`` and a version resolver, nothing is loaded while the registry still
        points at the version being served (the cheap check the polling loop makes).
        """
        with self._lock:  # one load at a time; readers never take this lock
            outcome = self._reload(force)
        if self.on_reload is not None:
            self.on_reload(outcome)
        return outcome

    def _reload(self, force: bool) -> ReloadOutcome:
        current = self._current
        try:
            if not force and current is not None and self.version_resolver is not None:
                latest = self.version_resolver(self.uri)
                if latest is not None and str(latest) == current.version:
                    return ReloadOutcome("unchanged", current)
            loaded = _describe(self.loader(self.uri), self.uri)
            self.check(loaded.scorer)  # a model that cannot score never goes live
        except Exception as exc:  # any failure of a load must keep the old model serving
            message = f"{type(exc).__name__}: {exc}".strip()
            self.last_error, self.last_error_at = message, _now()
            logger.error(
                "loading model %s failed; still serving %s: %s",
                self.uri,
                f"version {current.version}" if current else "nothing",
                message,
                exc_info=logger.isEnabledFor(logging.DEBUG),
            )
            return ReloadOutcome("failed", current, message)
        self._current = loaded  # the atomic swap: one reference assignment
        self.last_error = self.last_error_at = None
        if current is not None and (current.name, current.version) == (loaded.name, loaded.version):
            return ReloadOutcome("unchanged", loaded)
        logger.info("serving model %s version %s from %s", loaded.name, loaded.version, self.uri)
        return ReloadOutcome("reloaded", loaded)


def _check_scorer(scorer: Any) -> None:
    """`models.prediction.check_scorer`: the loaded model scores its example through the one path."""
    from models.prediction import check_scorer

    check_scorer(scorer)


def _describe(scorer: ScorerProtocol, uri: str) -> LoadedModel:
    """Wrap a freshly loaded scorer, checking it carries the metadata serving reports."""
    metadata = scorer.metadata
    name = metadata.get("model_name")
    version = metadata.get("model_version")
    if name is None or version is None:
        raise ValueError(f"model at {uri} has no model_name/model_version in its metadata")
    return LoadedModel(scorer=scorer, uri=uri, name=str(name), version=str(version), loaded_at=_now())


def registry_version_resolver(tracking_uri: str) -> VersionResolver:
    """A resolver that asks the MLflow registry which version `models:/name@alias` points at."""

    def resolve(uri: str) -> str | None:
        from mlflow import MlflowClient

        from models.pyfunc import parse_model_uri

        name, version, alias = parse_model_uri(uri)
        if name is None:
            return None
        if alias is not None:
            client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
            return str(client.get_model_version_by_alias(name, alias).version)
        return version if version is not None and version.isdigit() else None

    return resolve


def mlflow_scorer_loader(tracking_uri: str) -> ScorerLoader:
    """A loader that reads a PatronScorer from the MLflow registry at `tracking_uri`."""

    def load(uri: str) -> ScorerProtocol:
        import mlflow

        from models.pyfunc import load_scorer

        mlflow.set_tracking_uri(tracking_uri)
        mlflow.set_registry_uri(tracking_uri)
        scorer = load_scorer(uri)
        scorer.prepare()  # at load, not inside the first request
        return scorer

    return load
