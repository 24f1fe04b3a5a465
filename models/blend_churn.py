"""Churn by a calibrated blend of the LightGBM risk and the RFM score, one customer at a time.

The mean percentile rank of the booster's risk and the RFM score was the one variant whose AUC gain over
the RFM score had its 90% interval clear of zero on Online Retail (+0.0036 [+0.0012, +0.0059],
benchmarks/RESULTS.md, row 7g). As measured there it needed the scored population (ranks and
quintiles); here every population-dependent step is learned at training and saved, so a customer
scored alone through the API gets the batch's number:

- the RFM quintile cut points (recency, frequency, gross spend);
- the empirical CDFs (mid-ranks) of the booster's risk and of the RFM risk, as knots;
- a calibration map (isotonic or Platt, chosen by cross-fitted log loss as `ChurnModel` does) from the
  blend to P(churn).

All three are fitted on the booster's validation rows (whole customers the trees never saw, the rows
its early stopping held out), not on its training rows, whose risks are optimistic. Reason codes are
the booster's (the RFM part carries no reason the booster's features do not name).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import logit

from core.errors import ModelError, NotFittedError
from models.churn import PROBABILITY_FLOOR, ChurnModel, _apply_calibration, _choose_calibration

META_FILE = "model.json"
BOOSTER_DIR = "booster"
FORMAT = "patron.BlendChurnModel/1"
RFM_INPUTS = ("days_since_last", "frequency", "gross_spend")
"""Recency (fewer days = better), frequency and monetary inputs of the RFM score, as in training.evaluate.rfm_score."""
CDF_KNOTS = 257
BLEND_WEIGHT = 0.5


def rfm_quintile_cuts(values: np.ndarray) -> list[float]:
    """The four cut points (20/40/60/80%) of one RFM input."""
    return [float(c) for c in np.quantile(values, [0.2, 0.4, 0.6, 0.8])]


def rfm_risk(matrix: np.ndarray, cuts: list[list[float]]) -> np.ndarray:
    """12 minus the RFM score's excess over 3, from fixed cut points: 0 (best customer) .. 12 (worst)."""
    score = np.zeros(len(matrix))
    for j, sign in enumerate((-1.0, 1.0, 1.0)):  # recency: a higher days_since_last is a lower quintile
        score += (sign * matrix[:, j, None] > np.asarray(cuts[j])[None, :]).sum(axis=1)
    return 12.0 - score


def mid_cdf_knots(values: np.ndarray) -> tuple[list[float], list[float]]:
    """Knots of the empirical mid-rank CDF (share below + half the share equal) of `values`."""
    ordered = np.sort(values)
    knots = np.unique(np.quantile(ordered, np.linspace(0.0, 1.0, CDF_KNOTS)))
    below = np.searchsorted(ordered, knots, side="left")
    upto = np.searchsorted(ordered, knots, side="right")
    return knots.tolist(), ((below + upto) / (2.0 * len(ordered))).tolist()


class BlendChurnModel:
    """P(churn) from BLEND_WEIGHT x CDF(booster risk) + (1 - BLEND_WEIGHT) x CDF(RFM risk), calibrated.

    Parameters
    ----------
    booster : ChurnModel
        A fitted LightGBM churn model (the menu's best level); `fit` uses its validation rows.
    seed : int
        Seed of the calibration's cross-fitting.
    """

    def __init__(self, booster: ChurnModel, seed: int = 42) -> None:
        self.booster = booster
        self.seed = seed

    @property
    def feature_names_(self) -> list[str]:
        """The booster's inputs plus the RFM inputs it may lack."""
        names = list(self.booster.feature_names_)
        return names + [c for c in RFM_INPUTS if c not in names]

    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> BlendChurnModel:
        """Learn cut points, CDFs and the calibration map on the rows the booster held out of its trees."""
        missing = [c for c in RFM_INPUTS if c not in X.columns]
        if missing:
            raise ModelError(f"BlendChurnModel needs the RFM inputs {missing}")
        labels = np.asarray(y, dtype=float).ravel()
        rows = self.booster.validation_rows(labels, groups)
        held = X.iloc[rows]
        rfm = held[list(RFM_INPUTS)].to_numpy(dtype=float)
        self.rfm_cuts_ = [rfm_quintile_cuts(sign * rfm[:, j]) for j, sign in enumerate((-1.0, 1.0, 1.0))]
        risk = self.booster.predict_proba(held)
        self.risk_cdf_ = mid_cdf_knots(risk)
        self.rfm_cdf_ = mid_cdf_knots(rfm_risk(rfm, self.rfm_cuts_))
        self.calibration_, self.calibration_map_, self.calibration_scores_ = _choose_calibration(
            "auto", self._raw(risk, rfm), labels[rows], self.seed
        )
        return self

    def _raw(self, risk: np.ndarray, rfm: np.ndarray) -> np.ndarray:
        """The blend on the log-odds scale the calibration maps read."""
        blend = BLEND_WEIGHT * np.interp(risk, *self.risk_cdf_) + (1.0 - BLEND_WEIGHT) * np.interp(
            rfm_risk(rfm, self.rfm_cuts_), *self.rfm_cdf_
        )
        return np.asarray(logit(np.clip(blend, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)))

    def _split(self, X: pd.DataFrame | np.ndarray) -> tuple[pd.DataFrame | np.ndarray, np.ndarray]:
        """The booster's input and the RFM inputs; a matrix's columns are `feature_names_` (the booster's first)."""
        if not isinstance(X, np.ndarray):
            return X, X[list(RFM_INPUTS)].to_numpy(dtype=float)
        names = self.feature_names_
        if X.ndim != 2 or X.shape[1] != len(names):
            raise ModelError(f"BlendChurnModel: a matrix of shape {X.shape} for {len(names)} features")
        booster_x = np.ascontiguousarray(X[:, : len(self.booster.feature_names_)], dtype=float)
        return booster_x, X[:, [names.index(c) for c in RFM_INPUTS]].astype(float)

    def predict_proba(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """Calibrated P(churn) per row, in [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
        if not hasattr(self, "calibration_map_"):
            raise NotFittedError("this BlendChurnModel is not fitted yet: call fit(X, y) or BlendChurnModel.load(directory)")
        booster_x, rfm = self._split(X)
        return _apply_calibration(self.calibration_, self.calibration_map_, self._raw(self.booster.predict_proba(booster_x), rfm))

    def reasons(self, X: pd.DataFrame | np.ndarray, top: int = 3) -> pd.DataFrame:
        """The booster's reason codes."""
        return self.booster.reasons(self._split(X)[0], top)

    def prepare_reasons(self) -> bool:
        """Build the booster's reason tables."""
        return self.booster.prepare_reasons()

    def save(self, directory: str | Path) -> None:
        """Write the booster (LightGBM text + JSON) and the blend's knots and map as JSON."""
        path = Path(directory)
        self.booster.save(path / BOOSTER_DIR)
        state = {
            "format": FORMAT,
            "seed": int(self.seed),
            "rfm_cuts_": self.rfm_cuts_,
            "risk_cdf_": self.risk_cdf_,
            "rfm_cdf_": self.rfm_cdf_,
            "calibration_": self.calibration_,
            "calibration_map_": self.calibration_map_,
            "calibration_scores_": self.calibration_scores_,
        }
        (path / META_FILE).write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> BlendChurnModel:
        """Read a model written by `save`."""
        path = Path(directory)
        state = json.loads((path / META_FILE).read_text())
        if state.get("format") != FORMAT:
            raise ModelError(f"{path} holds {state.get('format')!r}, not a BlendChurnModel")
        model = cls(ChurnModel.load(path / BOOSTER_DIR), seed=int(state["seed"]))
        model.rfm_cuts_ = [[float(c) for c in cuts] for cuts in state["rfm_cuts_"]]
        model.risk_cdf_ = (list(state["risk_cdf_"][0]), list(state["risk_cdf_"][1]))
        model.rfm_cdf_ = (list(state["rfm_cdf_"][0]), list(state["rfm_cdf_"][1]))
        model.calibration_ = state["calibration_"]
        model.calibration_map_ = {k: [float(v) for v in values] for k, values in state["calibration_map_"].items()}
        model.calibration_scores_ = dict(state.get("calibration_scores_", {}))
        return model
