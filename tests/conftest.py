"""Shared fixtures: the real data sets."""

from __future__ import annotations

from pathlib import Path

import pytest
from realdata import ONLINE_RETAIL, lifetimes_dataset


@pytest.fixture(scope="session")
def cdnow_master_path() -> Path:
    return lifetimes_dataset("CDNOW_master.txt")


@pytest.fixture(scope="session")
def online_retail_path() -> Path:
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"real data not present at {ONLINE_RETAIL} (CI always has ../shared/data)")
    return ONLINE_RETAIL
