"""Shared plumbing of the LightGBM models: deterministic training, column checks, text artifacts."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, TypeVar

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.model_selection import train_test_split

from core.errors import ModelError, NotFittedError

logger = logging.getLogger(__name__)

Model = TypeVar("Model", bound="BoostedModel")

BOOSTER_FILE = "booster.txt"
META_FILE = "model.json"

# Hyperparameter defaults shared by ChurnModel and ValueModel (training passes its own recipe).
N_ESTIMATORS = 2000
LEARNING_RATE = 0.03
NUM_LEAVES = 15
MIN_CHILD_SAMPLES = 50
REG_LAMBDA = 1.0
VALIDATION_FRACTION = 0.2
EARLY_STOPPING_ROUNDS = 100
SMALL_PREDICT_ROWS = 10_000
"""Inputs of fewer rows are predicted on the calling thread alone (`predict_threads`)."""


def predict_threads(n_rows: int) -> int:
    """LightGBM's `num_threads` for predicting `n_rows` rows: 1 below SMALL_PREDICT_ROWS, else its default (0).

    Waking an OpenMP team costs more than a few rows' trees: a one-customer pass spent 2-8 ms per
    LightGBM call on the shared 2-core machine with the team against ~0.05 ms on one thread
    (benchmarks/RESULTS.md, API). LightGBM takes the thread count with each predict call, so every
    caller (API pass, pyfunc, Spark partition, a batch's small last chunk) gets it without a limiter.
    """
    return 1 if n_rows < SMALL_PREDICT_ROWS else 0


def _builtin(value: Any) -> Any:
    """JSON fallback for numpy scalars among hyperparameters (e.g. a seed read as np.int64)."""
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


class BoostedModel(BaseEstimator):
    """Base of ChurnModel and ValueModel: one LightGBM booster trained with early stopping.

    A scikit-learn estimator (`get_params`, `set_params`, `clone`, repr come from `BaseEstimator`).
    Subclasses define `__init__` (hyperparameters only), `_OBJECTIVE`, `_METRIC`, `_STRATIFY` and
    how targets are transformed.
    """

    _OBJECTIVE = ""
    _METRIC = ""
    _STRATIFY = False
    _FORMAT = ""

    seed: int
    n_threads: int
    n_estimators: int
    learning_rate: float
    num_leaves: int
    min_child_samples: int
    reg_lambda: float
    monotone_constraints: dict[str, int] | None
    validation_fraction: float
    early_stopping_rounds: int

    # --- hyperparameters ------------------------------------------------------------------------

    def _lgb_params(self, feature_names: list[str]) -> dict[str, Any]:
        """LightGBM parameters: deterministic given seed and thread count."""
        constraints = dict(self.monotone_constraints or {})
        bad = {name: value for name, value in constraints.items() if value not in (-1, 0, 1)}
        if bad:
            raise ModelError(f"monotone_constraints values must be -1, 0 or +1, got {bad}")
        unknown = sorted(set(constraints) - set(feature_names))
        if unknown:
            logger.info("monotone constraints on absent features ignored: %s", unknown)
        params: dict[str, Any] = {
            "objective": self._OBJECTIVE,
            "metric": self._METRIC,
            "learning_rate": self.learning_rate,
            "num_leaves": self.num_leaves,
            "min_child_samples": self.min_child_samples,
            "reg_lambda": self.reg_lambda,
            "seed": self.seed,
            "num_threads": self.n_threads,
            "deterministic": True,
            "force_row_wise": True,
            "verbosity": -1,
        }
        if any(constraints.get(name, 0) for name in feature_names):
            params["monotone_constraints"] = [
                int(constraints.get(name, 0)) for name in feature_names
            ]
            # Every method keeps the constraint exact; "intermediate" constrains fewer splits than
            # "basic" at a small cost in training time.
            params["monotone_constraints_method"] = "intermediate"
        return params

    # --- data ---------------------------------------------------------------------------------

    def _matrix(self, X: pd.DataFrame | np.ndarray, feature_names: list[str] | None = None) -> np.ndarray:
        """The features as a float matrix in training column order; NaN stays (LightGBM: missing).

        When predicting (`feature_names` given), a 2-d float array is taken as that matrix already (the
        scorer's input blocks: building a frame only to read it back cost ~0.5 ms per model call on a
        one-customer pass).
        """
        if feature_names is not None and isinstance(X, np.ndarray) and X.dtype == np.float64 and X.ndim == 2:
            if X.shape[1] != len(feature_names):
                raise ModelError(
                    f"{type(self).__name__}: a matrix of {X.shape[1]} columns for {len(feature_names)} features"
                )
            return X
        if not isinstance(X, pd.DataFrame):
            raise ModelError(
                f"{type(self).__name__} expects a pandas DataFrame, got {type(X).__name__}"
            )
        names = list(X.columns) if feature_names is None else feature_names
        missing = [name for name in names if name not in X.columns]
        if missing:
            raise ModelError(f"{type(self).__name__}: features missing from the input: {missing}")
        # dtypes, not frame[name]: one Series per column costs milliseconds on a one-row request
        dtypes = X.dtypes
        if list(X.columns) == names and (dtypes == np.float64).all():
            # PatronScorer's input frames: already float and in order, so no take and no checks
            return X.to_numpy(dtype=float)
        frame = X[names]
        not_numeric = [
            name
            for name, dtype in zip(names, frame.dtypes, strict=True)
            if not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))
        ]
        if not_numeric:
            raise ModelError(
                f"{type(self).__name__}: features must be numeric, these are not: {not_numeric}"
            )
        return frame.to_numpy(dtype=float, na_value=np.nan)

    def _split(
        self, n: int, y: np.ndarray, groups: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Seeded (and for classifiers stratified) train / validation row positions.

        With `groups` (e.g. customer ids of stacked snapshots) whole groups go to one side, so early
        stopping and calibration are judged on customers the trees have not seen; a classifier's
        groups are stratified by their share of positive rows, rounded.
        """
        if not 0 < self.validation_fraction < 1:
            raise ModelError(
                f"validation_fraction must be in (0, 1), got {self.validation_fraction}"
            )
        if groups is not None:
            return self._group_split(y, np.asarray(groups))
        try:
            train, valid = train_test_split(
                np.arange(n),
                test_size=self.validation_fraction,
                random_state=self.seed,
                stratify=y if self._STRATIFY else None,
            )
        except ValueError as exc:
            raise ModelError(
                f"{type(self).__name__}: cannot hold out a validation split: {exc}"
            ) from None
        return np.sort(train), np.sort(valid)

    def validation_rows(self, y: Any, groups: Any = None) -> np.ndarray:
        """Row positions `fit` holds out (early stopping, calibration) for these labels and groups."""
        target = np.asarray(y, dtype=float).ravel()
        return self._split(len(target), target, None if groups is None else np.asarray(groups))[1]

    def _group_split(self, y: np.ndarray, groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Train / validation row positions with every group on one side only."""
        if groups.shape[0] != y.shape[0]:
            raise ModelError(
                f"{type(self).__name__}.fit got {y.shape[0]} rows but {groups.shape[0]} groups"
            )
        codes, uniques = pd.factorize(groups, sort=False)
        if (codes < 0).any():
            raise ModelError(f"{type(self).__name__}: groups have missing values")
        if len(uniques) < 2:
            raise ModelError(f"{type(self).__name__}: groups need at least two distinct values")
        stratum = None
        if self._STRATIFY:
            positives = np.bincount(codes, weights=y, minlength=len(uniques))
            rows = np.bincount(codes, minlength=len(uniques))
            stratum = np.round(positives / rows).astype(int)
            if np.bincount(stratum, minlength=2).min() < 2:
                stratum = None  # too few groups of a kind to stratify: a plain group split
        try:
            _, valid_groups = train_test_split(
                np.arange(len(uniques)),
                test_size=self.validation_fraction,
                random_state=self.seed,
                stratify=stratum,
            )
        except ValueError as exc:
            raise ModelError(
                f"{type(self).__name__}: cannot hold out a validation split of groups: {exc}"
            ) from None
        in_valid = np.zeros(len(uniques), dtype=bool)
        in_valid[valid_groups] = True
        valid_rows = in_valid[codes]
        return np.flatnonzero(~valid_rows), np.flatnonzero(valid_rows)

    def _train(
        self,
        X: np.ndarray,
        target: np.ndarray,
        feature_names: list[str],
        groups: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Train with early stopping on a held-out split; sets booster_, best_iteration_, feature_names_."""
        if len(X) < 10:
            raise ModelError(f"{type(self).__name__} needs at least 10 rows to train, got {len(X)}")
        train, valid = self._split(len(X), target, groups)
        params = self._lgb_params(feature_names)
        train_set = lgb.Dataset(
            X[train], target[train], feature_name=feature_names, free_raw_data=True
        )
        valid_set = lgb.Dataset(X[valid], target[valid], reference=train_set)
        booster = lgb.train(
            params,
            train_set,
            num_boost_round=self.n_estimators,
            valid_sets=[valid_set],
            valid_names=["validation"],
            callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)],
        )
        self.best_iteration_ = int(booster.best_iteration or booster.current_iteration())
        # Keep only the best iterations, in the same text form `save` writes, so that a loaded
        # model is the very same trees and predicts identically.
        self.booster_ = lgb.Booster(
            model_str=booster.model_to_string(num_iteration=self.best_iteration_)
        )
        self.feature_names_ = list(feature_names)
        logger.info(
            "%s: %d trees (best validation %s %.5f)",
            type(self).__name__,
            self.best_iteration_,
            self._METRIC,
            booster.best_score["validation"][self._METRIC],
        )
        return train, valid

    def _raw(self, X: pd.DataFrame | np.ndarray) -> np.ndarray:
        """The booster's raw score for a frame whose columns include feature_names_ (any order), or a
        float matrix of exactly those columns in that order."""
        self._check_fitted()
        matrix = self._matrix(X, self.feature_names_)
        return np.asarray(self.booster_.predict(matrix, raw_score=True, num_threads=predict_threads(len(matrix))))

    # --- state --------------------------------------------------------------------------------

    def __sklearn_is_fitted__(self) -> bool:
        """True once `fit` or `load` has set the booster."""
        return hasattr(self, "booster_")

    def _check_fitted(self) -> None:
        if not self.__sklearn_is_fitted__():
            raise NotFittedError(
                f"this {type(self).__name__} is not fitted yet: call fit(X, y) or {type(self).__name__}.load(directory)"
            )

    @property
    def feature_importances_(self) -> pd.Series:
        """Total gain of each feature's splits, largest first."""
        self._check_fitted()
        gain = self.booster_.feature_importance(importance_type="gain")
        return pd.Series(gain, index=self.feature_names_, name="gain").sort_values(ascending=False)

    # --- artifacts ----------------------------------------------------------------------------

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        return None

    def save(self, directory: str | Path) -> None:
        """Write the booster in LightGBM's text format and the rest as JSON (no pickle)."""
        self._check_fitted()
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        self.booster_.save_model(str(path / BOOSTER_FILE))
        meta = {
            "format": self._FORMAT,
            "hyperparameters": self.get_params(deep=False),
            "feature_names_": self.feature_names_,
            "best_iteration_": self.best_iteration_,
            **self._extra_state(),
        }
        (path / META_FILE).write_text(json.dumps(meta, indent=2, default=_builtin))

    @classmethod
    def load(cls: type[Model], directory: str | Path) -> Model:
        """Read a model written by `save`."""
        path = Path(directory)
        try:
            meta = json.loads((path / META_FILE).read_text())
        except FileNotFoundError:
            raise ModelError(f"no {cls.__name__} in {path}: {META_FILE} is missing") from None
        if meta.get("format") != cls._FORMAT:
            raise ModelError(
                f"{path} holds {meta.get('format')!r}, not a {cls.__name__} ({cls._FORMAT!r})"
            )
        model = cls(**meta["hyperparameters"])
        model.booster_ = lgb.Booster(model_file=str(path / BOOSTER_FILE))
        model.feature_names_ = list(meta["feature_names_"])
        model.best_iteration_ = int(meta["best_iteration_"])
        model._set_extra_state(meta)
        return model
