"""Where the real data sets are, and how they map onto the transaction contract."""

from __future__ import annotations

from pathlib import Path

from features.datasets import CDNOW_MAPPING, ONLINE_RETAIL_MAPPING, lifetimes_dataset

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO_ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
ONLINE_RETAIL_MAP = ONLINE_RETAIL_MAPPING
CDNOW_MAP = CDNOW_MAPPING

__all__ = ["CDNOW_MAP", "ONLINE_RETAIL", "ONLINE_RETAIL_MAP", "REPO_ROOT", "lifetimes_dataset"]
