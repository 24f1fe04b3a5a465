"""Fixtures for the targeting tests: a generator of model-like score frames."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest
from score_frames import make_scores


@pytest.fixture(scope="session")
def scores_factory() -> Callable[..., pd.DataFrame]:
    """`scores_factory(n, seed)` -> a model-like scores frame."""
    return make_scores


@pytest.fixture
def scores() -> pd.DataFrame:
    """500 model-like customers."""
    return make_scores(500, seed=0)
