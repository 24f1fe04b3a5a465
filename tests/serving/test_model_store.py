"""ModelStore: atomic swaps, failed loads keep the previous model, cheap version checks."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from serving.model_store import ModelStore, ScorerProtocol


class VersionedScorer:
    """The smallest object with the scorer interface: the store never calls score()."""

    time_unit_days = 1

    def __init__(self, version: str):
        self.metadata = {"model_name": "patron", "model_version": version}

    def score(self, features: pd.DataFrame, as_of: object) -> pd.DataFrame:
        raise AssertionError("the store must not score")

    def training_tier_boundaries(self) -> None:
        return None


def mechanics_only(scorer: object) -> None:
    """These tests exercise the store's swapping with stand-in scorers: no scoring check (test_reload.py has it)."""


class Registry:
    """A loader whose answers a test controls: a version to hand out, or an error to raise."""

    def __init__(self) -> None:
        self.version = "1"
        self.error: Exception | None = None
        self.loads = 0

    def load(self, uri: str) -> ScorerProtocol:
        self.loads += 1
        if self.error is not None:
            raise self.error
        return VersionedScorer(self.version)

    def resolve(self, uri: str) -> str:
        return self.version


def test_scorer_protocol_is_structural():
    assert isinstance(VersionedScorer("1"), ScorerProtocol)


def test_first_load_and_swap():
    registry = Registry()
    store = ModelStore("models:/patron@champion", registry.load, registry.resolve, check=mechanics_only)
    assert store.current is None
    first = store.reload()
    assert first.status == "reloaded" and store.current.version == "1"
    held = store.current  # what an in-flight request holds
    registry.version = "2"
    second = store.reload()
    assert second.status == "reloaded" and store.current.version == "2"
    assert held.version == "1" and held.scorer.metadata["model_version"] == "1"


def test_failed_load_keeps_previous_model_and_reports_it():
    registry = Registry()
    store = ModelStore("models:/patron@champion", registry.load, registry.resolve, check=mechanics_only)
    store.reload()
    registry.version, registry.error = "2", RuntimeError("registry unreachable")
    outcome = store.reload()
    assert outcome.status == "failed"
    assert store.current.version == "1"
    assert "registry unreachable" in store.last_error and store.last_error_at is not None
    registry.error = None
    assert store.reload().status == "reloaded"
    assert store.current.version == "2" and store.last_error is None


def test_failure_before_any_model_leaves_store_empty():
    registry = Registry()
    registry.error = FileNotFoundError("no such model")
    store = ModelStore("models:/nope@champion", registry.load, check=mechanics_only)
    assert store.reload().status == "failed"
    assert store.current is None and "no such model" in store.last_error


def test_unforced_reload_skips_loading_when_version_unchanged():
    registry = Registry()
    store = ModelStore("models:/patron@champion", registry.load, registry.resolve, check=mechanics_only)
    store.reload()
    assert store.reload(force=False).status == "unchanged"
    assert registry.loads == 1
    registry.version = "3"
    assert store.reload(force=False).status == "reloaded"
    assert registry.loads == 2


def test_metadata_without_version_is_a_failed_load():
    store = ModelStore("x", lambda uri: type("S", (), {"metadata": {}, "time_unit_days": 1})(), check=mechanics_only)
    outcome = store.reload()
    assert outcome.status == "failed" and "model_version" in outcome.error


def test_concurrent_reloads_are_serialised_and_readers_never_see_none():
    registry = Registry()
    store = ModelStore("m", registry.load, registry.resolve, check=mechanics_only)
    store.reload()
    seen: list[str] = []
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            seen.append(store.current.version)

    reader = threading.Thread(target=read)
    reader.start()
    for version in map(str, range(2, 40)):
        registry.version = version
        store.reload()
    stop.set()
    reader.join()
    assert seen and all(version is not None for version in seen)
    assert store.current.version == "39"


def test_on_reload_hook_sees_every_outcome():
    registry = Registry()
    store = ModelStore("m", registry.load, registry.resolve, check=mechanics_only)
    outcomes: list[str] = []
    store.on_reload = lambda outcome: outcomes.append(outcome.status)
    store.reload()
    store.reload(force=False)
    registry.error = ValueError("bad")
    store.reload()
    assert outcomes == ["reloaded", "unchanged", "failed"]


@pytest.mark.parametrize("uri", ["models:/patron@champion", "runs:/abc/model"])
def test_registry_resolver_ignores_non_registry_uris(uri, tmp_path):
    from serving.model_store import registry_version_resolver

    resolve = registry_version_resolver(f"sqlite:///{tmp_path}/mlflow.db")
    if uri.startswith("runs:"):
        assert resolve(uri) is None
    else:
        from mlflow.exceptions import MlflowException

        with pytest.raises(MlflowException):  # no such registered model in an empty store
            resolve(uri)
