"""The batch scores file behind GET /v1/customers/{id}: read once, re-read when it is replaced."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Sequence

import pandas as pd
import pyarrow.parquet as pq

from core.errors import PatronError
from targeting.tiers import BoundaryKey

TIER_BOUNDARIES_KEY = b"patron.tier_boundaries"
"""Parquet key-value metadata of a scores file: the tier boundaries of its population and its model version."""


def tier_boundaries_metadata(boundaries: Sequence[BoundaryKey | None], model_version: str) -> dict[bytes, bytes]:
    """The scores file's metadata entry recording its population's tier boundaries (deterministic bytes)."""
    record = {
        "model_version": model_version,
        "boundaries": [None if b is None else [float(b[0]), str(b[1])] for b in boundaries],
    }
    return {TIER_BOUNDARIES_KEY: json.dumps(record, sort_keys=True).encode("utf-8")}


def read_tier_boundaries(metadata: dict[bytes, bytes] | None) -> tuple[list[BoundaryKey | None], str] | None:
    """(boundaries, model version) recorded by `tier_boundaries_metadata`, or None when absent."""
    raw = (metadata or {}).get(TIER_BOUNDARIES_KEY)
    if raw is None:
        return None
    record = json.loads(raw)
    boundaries: list[BoundaryKey | None] = [None if b is None else (float(b[0]), str(b[1])) for b in record["boundaries"]]
    return boundaries, str(record["model_version"])


class ScoresUnavailable(PatronError):
    """No scores file is configured, or it cannot be read."""


class ScoresFile:
    """Latest batch scores by customer id, cached and refreshed when the file changes on disk.

    The batch job replaces its output with a rename, so a new (mtime, size, inode) means a
    complete new file: the cache never sees a half-written one.
    """

    def __init__(self) -> None:
        self._key: tuple[str, int, int, int] | None = None
        self._frame: pd.DataFrame | None = None
        self._lock = threading.Lock()
        self._boundaries_key: tuple[str, int, int, int] | None = None
        self._boundaries: tuple[list[BoundaryKey | None], str] | None = None

    def tier_boundaries(self, path: str | None, model_version: str) -> list[BoundaryKey | None] | None:
        """The tier boundaries the latest batch (of `model_version`) saved with its scores, else None."""
        if not path:
            return None
        try:
            stat = os.stat(path)
            key = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
            if key != self._boundaries_key:
                self._boundaries = read_tier_boundaries(pq.read_schema(path).metadata)
                self._boundaries_key = key
        except Exception:  # no file, or not a parquet file: the model's own cut-points apply
            return None
        if self._boundaries is None or self._boundaries[1] != model_version:
            return None
        return self._boundaries[0]

    def frame(self, path: str | None) -> pd.DataFrame:
        """The scores indexed by customer_id (the column is kept too)."""
        if not path:
            raise ScoresUnavailable("no batch scores file is configured: set PATRON_SCORES_PATH")
        try:
            stat = os.stat(path)
        except OSError as exc:
            raise ScoresUnavailable(f"batch scores file {path} cannot be read ({exc.strerror}); run `patron score`") from None
        key = (path, stat.st_mtime_ns, stat.st_size, stat.st_ino)
        with self._lock:
            if key != self._key or self._frame is None:
                try:
                    frame = pd.read_parquet(path)
                except Exception as exc:  # a corrupt or foreign file must not become a 500
                    raise ScoresUnavailable(f"batch scores file {path} is not a readable scores table: {exc}") from None
                if "customer_id" not in frame.columns:
                    raise ScoresUnavailable(f"batch scores file {path} has no customer_id column")
                frame.index = pd.Index(frame["customer_id"].astype(str), name=None)
                # get_indexer needs unique labels; a scores file has one row per customer anyway.
                frame = frame[~frame.index.duplicated(keep="last")]
                self._frame, self._key = frame, key
            return self._frame

    def select(self, path: str | None, customer_ids: list[str]) -> pd.DataFrame:
        """Score rows of the given customers that the file holds, in the order asked."""
        frame = self.frame(path)
        positions = frame.index.get_indexer(pd.Index(customer_ids, dtype=object))
        return frame.iloc[positions[positions >= 0]].reset_index(drop=True)
