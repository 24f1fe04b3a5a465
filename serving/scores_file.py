"""The batch scores file behind GET /v1/customers/{id}: read once, re-read when it is replaced."""

from __future__ import annotations

import os
import threading

import pandas as pd

from core.errors import PatronError


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
