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


LONG_TEST_MARKERS = ("slow", "integration", "spark")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the files of the longest tests first, so `make test`'s two workers finish together.

    A file's weight is how many of LONG_TEST_MARKERS its tests carry (the README run, marked slow and
    integration, takes about a third of the suite); the sort is stable, so the order within a file
    and among equal files is pytest's.
    """

    def weight(item: pytest.Item) -> int:
        return sum(item.get_closest_marker(name) is not None for name in LONG_TEST_MARKERS)

    heaviest = {}
    for item in items:
        heaviest[item.path] = max(heaviest.get(item.path, 0), weight(item))
    items.sort(key=lambda item: -heaviest[item.path])
