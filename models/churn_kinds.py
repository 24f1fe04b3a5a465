"""The churn models a scorer may hold (LightGBM, logistic, blend) and the loader that tells them apart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from core.errors import ModelError
from models.blend_churn import BlendChurnModel
from models.churn import ChurnModel
from models.linear_churn import LogisticChurnModel

META_FILE = "model.json"


class ChurnPredictor(Protocol):
    """What the scorer needs of a churn model."""

    @property
    def feature_names_(self) -> list[str]: ...  # noqa: D102

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray: ...  # noqa: D102

    def reasons(self, X: pd.DataFrame | np.ndarray, top: int = 3) -> pd.DataFrame: ...  # noqa: D102

    def prepare_reasons(self) -> bool: ...  # noqa: D102

    def save(self, directory: str | Path) -> None: ...  # noqa: D102


KINDS: dict[str, type[ChurnModel] | type[LogisticChurnModel] | type[BlendChurnModel]] = {
    "patron.ChurnModel/1": ChurnModel,
    "patron.LogisticChurnModel/1": LogisticChurnModel,
    "patron.BlendChurnModel/1": BlendChurnModel,
}


def load_churn_model(directory: str | Path) -> ChurnPredictor:
    """The churn model saved in `directory`, of whichever kind its `model.json` names."""
    path = Path(directory)
    try:
        kind = json.loads((path / META_FILE).read_text()).get("format")
    except FileNotFoundError:
        raise ModelError(f"no churn model in {path}: {META_FILE} is missing") from None
    if kind not in KINDS:
        raise ModelError(f"{path} holds {kind!r}, not a churn model Patron knows ({', '.join(KINDS)})")
    return KINDS[kind].load(path)
