"""The trained champion the Spark tests share (a module of its own: test folders have no packages, so
`conftest` is not a name a test can import from reliably)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Champion:
    """A temporary registry holding `patron@champion`, the scorer it loads to, and its training log."""

    tracking_uri: str
    model_uri: str
    scorer: Any
    transactions: pd.DataFrame
