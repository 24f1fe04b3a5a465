"""Churn model: LightGBM classifier with calibrated probabilities and per-customer reason codes."""

from __future__ import annotations

import itertools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.special import expit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

from core.errors import ModelError
from models.boosting import BoostedModel

logger = logging.getLogger(__name__)

CALIBRATIONS = ("auto", "isotonic", "platt", "none")
PROBABILITY_FLOOR = 1e-6
"""Calibrated probabilities are kept in [floor, 1 - floor]: an isotonic map can reach exactly 0 or 1,
which would make any log loss computed downstream infinite for a single surprise."""
TIE_BREAK_SHARE = 1e-4
"""Isotonic regression is a step function: every customer on one step gets the same probability, and
those ties throw away ranking the booster had (measured on Online Retail: 0.024 holdout AUC with a
971-row training set, benchmarks/RESULTS.md). A 1e-4 share of the booster's own sigmoid is mixed in,
which orders each step as the booster does and moves no probability by more than 1e-4."""
ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's kZeroThreshold (`1e-35f`, a float32 widened to double): dense inputs with |x| <= it
reach the trees as 0, and split thresholds sit at -+ this value around zero."""
MAX_TREE_PATTERNS = 1 << 10
"""Trees with more split nodes than log2 of this (e.g. over 11 leaves) are explained by LightGBM directly."""
_MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}


class ChurnModel(BoostedModel):
    """Binary LightGBM classifier of churn (label 1 = churned), calibrated on a held-out split.

    `fit` holds out `validation_fraction` of the rows (stratified, seeded): LightGBM stops adding
    trees when the validation log loss has not improved for `early_stopping_rounds`, and the same
    rows then fit the calibration map. With `calibration="auto"` isotonic regression and Platt
    scaling are compared by cross-fitted log loss within the validation rows (fitting and scoring a
    map on the same rows would always favour the more flexible isotonic), and the better one is
    refitted on all of them. No class weighting: it would distort the probabilities.

    Parameters
    ----------
    seed, n_threads : int
        Seed of every random step and LightGBM's thread count; with `deterministic=True` and
        row-wise histograms, the same data give the same model.
    n_estimators, learning_rate, num_leaves, min_child_samples, reg_lambda
        LightGBM's boosting rounds (upper bound), shrinkage, leaves per tree, rows per leaf, L2.
    monotone_constraints : dict[str, int] | None
        Feature name -> -1 (score falls as it grows), 0, +1; names not in the data are ignored.
    calibration : "auto" | "isotonic" | "platt" | "none"
    validation_fraction : float
    early_stopping_rounds : int

    Attributes
    ----------
    booster_ : lightgbm.Booster
        Trees up to the best iteration only.
    feature_names_ : list[str]
    best_iteration_ : int
    calibration_ : str
        The calibration map in use ("isotonic", "platt" or "none").
    calibration_scores_ : dict[str, float]
        Cross-fitted validation log loss of each candidate (empty unless calibration="auto").
    """

    _OBJECTIVE = "binary"
    _METRIC = "binary_logloss"
    _STRATIFY = True
    _FORMAT = "patron.ChurnModel/1"

    def __init__(
        self,
        seed: int = 42,
        n_threads: int = 2,
        n_estimators: int = 2000,
        learning_rate: float = 0.03,
        num_leaves: int = 15,
        min_child_samples: int = 50,
        reg_lambda: float = 1.0,
        monotone_constraints: dict[str, int] | None = None,
        calibration: str = "auto",
        validation_fraction: float = 0.2,
        early_stopping_rounds: int = 100,
    ) -> None:
        self.seed = seed
        self.n_threads = n_threads
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.reg_lambda = reg_lambda
        self.monotone_constraints = monotone_constraints
        self.calibration = calibration
        self.validation_fraction = validation_fraction
        self.early_stopping_rounds = early_stopping_rounds

    def fit(self, X: pd.DataFrame, y: Any, groups: Any = None) -> ChurnModel:
        """Train on features X and churn labels y (0/1), then calibrate on the validation split.

        `groups` (one label per row, e.g. the customer id of stacked snapshots) keeps each group on one
        side of the validation split.
        """
        if self.calibration not in CALIBRATIONS:
            raise ModelError(
                f"unknown calibration {self.calibration!r}: use one of {', '.join(CALIBRATIONS)}"
            )
        matrix = self._matrix(X)
        labels = _binary_labels(y, len(matrix))
        _, valid = self._train(
            matrix, labels, [str(c) for c in X.columns], None if groups is None else np.asarray(groups)
        )
        raw_valid = self.booster_.predict(matrix[valid], raw_score=True)
        self.calibration_, self.calibration_map_, self.calibration_scores_ = _choose_calibration(
            self.calibration, raw_valid, labels[valid], self.seed
        )
        logger.info("ChurnModel calibration: %s %s", self.calibration_, self.calibration_scores_)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated P(churn) per row, 1-d, finite, in [PROBABILITY_FLOOR, 1 - PROBABILITY_FLOOR]."""
        raw = self._raw(X)
        return _apply_calibration(self.calibration_, self.calibration_map_, raw)

    def reasons(self, X: pd.DataFrame, top: int = 3) -> pd.DataFrame:
        """Names of the `top` features pushing each customer's risk up most (LightGBM's pred_contrib).

        Columns `churn_reason_1..top`; a slot is "" when fewer features have a positive contribution.
        Ties go to the feature that comes first in `feature_names_`.
        """
        self._check_fitted()
        if top < 1:
            raise ModelError(f"top must be >= 1, got {top}")
        contrib = self.contributions(X)  # features x rows
        k = min(top, contrib.shape[0])
        columns = np.arange(contrib.shape[1])
        names = np.asarray(self.feature_names_, dtype=object)
        out: dict[str, Any] = {}
        for i in range(top):  # top is small: a few argmax passes beat sorting every row
            if i >= k:
                out[f"churn_reason_{i + 1}"] = ""
                continue
            best = np.argmax(contrib, axis=0)  # the first of equal maxima: a stable sort's order
            value = contrib[best, columns]
            out[f"churn_reason_{i + 1}"] = np.where(value > 0, names[best], "")
            contrib[best, columns] = -np.inf
        return pd.DataFrame(out, index=X.index)

    def contributions(self, X: pd.DataFrame) -> np.ndarray:
        """Each feature's SHAP contribution to each row's raw score, as a (features, rows) array.

        The values are LightGBM's TreeSHAP (`pred_contrib`) without the bias term. A tree's
        contributions depend on a row only through the side it takes at each split, so for small
        trees (the production recipe grows 4 leaves) they are tabulated once per tree from
        LightGBM's own `pred_contrib` on one row per split pattern and then looked up and summed in
        tree order, ~20x faster than `pred_contrib` over every row. The sums differ from LightGBM's
        by float rounding only (its terms are added leaf by leaf), and a row's result never depends
        on the other rows passed with it.
        """
        self._check_fitted()
        if isinstance(X, pd.DataFrame) and list(X.columns) == self.feature_names_ and (X.dtypes == np.float64).all():
            matrix = X.to_numpy(dtype=float)  # already the model's matrix (the scorer's input frames)
        else:
            matrix = self._matrix(X, self.feature_names_)
        tables = self._contribution_tables()
        if tables is None:
            return self._pred_contrib(matrix)
        out = tables.contributions(matrix)
        unknown = np.isnan(out).any(axis=0)
        if unknown.any():  # a split pattern no probe row took: cannot happen while _decisions is LightGBM's
            logger.warning("churn reasons: %d rows took split patterns missing from the tables", int(unknown.sum()))
            out[:, unknown] = self._pred_contrib(matrix[unknown])
        return out

    def _pred_contrib(self, matrix: np.ndarray) -> np.ndarray:
        """LightGBM's pred_contrib without the bias column, as (features, rows)."""
        contrib = np.asarray(self.booster_.predict(matrix, pred_contrib=True))
        return np.ascontiguousarray(contrib[:, : len(self.feature_names_)].T)

    def prepare_reasons(self) -> None:
        """Build the lookup tables `reasons` uses now rather than on its first call (e.g. at model load)."""
        self._check_fitted()
        self._contribution_tables()

    def _contribution_tables(self) -> _ContributionTables | None:
        """The booster's lookup tables, built on first use and kept with the booster they describe."""
        cached = getattr(self, "_tables_cache", None)
        if cached is None or cached[0] is not self.booster_:
            cached = (self.booster_, _ContributionTables.build(self.booster_))
            self._tables_cache = cached
        return cached[1]

    def _extra_state(self) -> dict[str, Any]:
        return {
            "calibration_": self.calibration_,
            "calibration_map_": self.calibration_map_,
            "calibration_scores_": self.calibration_scores_,
        }

    def _set_extra_state(self, state: dict[str, Any]) -> None:
        self.calibration_ = state["calibration_"]
        self.calibration_map_ = {
            key: [float(v) for v in values] for key, values in state["calibration_map_"].items()
        }
        self.calibration_scores_ = dict(state.get("calibration_scores_", {}))


def _binary_labels(y: Any, n: int) -> np.ndarray:
    """Labels as a 0/1 float array; both classes must be present."""
    labels = np.asarray(y, dtype=float).ravel()
    if labels.shape[0] != n:
        raise ModelError(f"ChurnModel.fit got {n} feature rows but {labels.shape[0]} labels")
    if not np.isin(labels, (0.0, 1.0)).all():
        raise ModelError("churn labels must be 0 (retained) or 1 (churned), without missing values")
    if labels.min() == labels.max():
        raise ModelError(
            f"churn labels hold one class only ({int(labels[0])}): the model needs both churned and retained customers"
        )
    return labels


def _fit_map(kind: str, raw: np.ndarray, y: np.ndarray) -> dict[str, list[float]]:
    """Fit one calibration map on raw scores (log-odds); stored as plain arrays."""
    if kind == "isotonic":
        iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(raw, y)
        return {"x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist()}
    if kind == "platt":
        # Platt (1999) scaling on the log-odds; a huge C makes the L2 term negligible.
        lr = LogisticRegression(C=1e6, max_iter=1000).fit(raw.reshape(-1, 1), y)
        return {"coef": [float(lr.coef_[0, 0])], "intercept": [float(lr.intercept_[0])]}
    return {}


def _apply_calibration(kind: str, mapping: dict[str, list[float]], raw: np.ndarray) -> np.ndarray:
    """Map raw scores to probabilities with a stored calibration map (numpy only)."""
    if kind == "isotonic":
        # IsotonicRegression.predict interpolates linearly between thresholds and clips outside;
        # the sigmoid share breaks the ties of its steps in the booster's order (TIE_BREAK_SHARE).
        step = np.interp(raw, np.asarray(mapping["x"]), np.asarray(mapping["y"]))
        prob = (1.0 - TIE_BREAK_SHARE) * step + TIE_BREAK_SHARE * expit(raw)
    elif kind == "platt":
        prob = expit(mapping["coef"][0] * raw + mapping["intercept"][0])
    else:
        prob = expit(raw)
    return np.clip(np.nan_to_num(prob, nan=0.5), PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)


def _log_loss(y: np.ndarray, p: np.ndarray) -> float:
    p = np.clip(p, PROBABILITY_FLOOR, 1.0 - PROBABILITY_FLOOR)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log1p(-p)))


def _choose_calibration(
    requested: str, raw: np.ndarray, y: np.ndarray, seed: int
) -> tuple[str, dict[str, list[float]], dict[str, float]]:
    """The requested map, or for "auto" the candidate with the lower cross-fitted log loss."""
    if requested != "auto":
        return requested, _fit_map(requested, raw, y), {}
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < 2:
        logger.warning(
            "validation split has %d rows of one class: Platt scaling without comparison", minority
        )
        return "platt", _fit_map("platt", raw, y), {}
    folds = StratifiedKFold(n_splits=min(5, minority), shuffle=True, random_state=seed)
    scores = {}
    for kind in ("isotonic", "platt"):
        oof = np.empty(len(y))
        for fit_rows, score_rows in folds.split(raw.reshape(-1, 1), y):
            oof[score_rows] = _apply_calibration(
                kind, _fit_map(kind, raw[fit_rows], y[fit_rows]), raw[score_rows]
            )
        scores[kind] = _log_loss(y, oof)
    platt = _fit_map("platt", raw, y)
    # A Platt map with a negative slope would reverse the booster's ranking (and its monotone
    # constraints); it only happens when the booster is uninformative, so isotonic is kept then.
    if scores["platt"] < scores["isotonic"] and platt["coef"][0] > 0:
        return "platt", platt, scores
    return "isotonic", _fit_map("isotonic", raw, y), scores


def _decisions(
    values: np.ndarray, threshold: np.ndarray, missing_type: np.ndarray, default_left: np.ndarray
) -> np.ndarray:
    """LightGBM's numerical split decision (True: go left) of `values` (splits x rows) at each split.

    Mirrors `Tree::NumericalDecision` after LightGBM's dense-input conversion (|x| <= ZERO_THRESHOLD is 0):
    NaN counts as 0 unless the split's missing type is NaN; a missing value (0 for type Zero, NaN
    for type NaN) goes the default way; otherwise `x <= threshold` goes left.
    """
    go_left = values <= threshold
    nan = np.isnan(values)
    tiny = np.abs(values) <= ZERO_THRESHOLD  # False for NaN
    if not (nan.any() or (tiny & (values != 0)).any() or (tiny & (missing_type == 1)).any()):
        return go_left  # the usual case: finite, no zero at a zero-as-missing split
    zero = tiny | (nan & (missing_type != 2))  # what LightGBM sees as 0
    go_left = np.where(zero, 0.0 <= threshold, go_left)
    default = (zero & (missing_type == 1)) | (nan & (missing_type == 2))
    return np.where(default, default_left, go_left)


def _text_thresholds(model_text: str) -> list[np.ndarray]:
    """Each tree's split thresholds, by split index, as LightGBM's model text stores them."""
    thresholds = []
    for block in model_text.split("\nTree=")[1:]:  # one block per tree
        line = next((row for row in block.splitlines() if row.startswith("threshold=")), "threshold=")
        thresholds.append(np.array([float(value) for value in line.removeprefix("threshold=").split()]))
    return thresholds


def _split_nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    """A dumped tree's split nodes in split_index order."""
    nodes: list[dict[str, Any]] = []
    stack = [tree["tree_structure"]]
    while stack:  # at most num_leaves - 1 nodes
        node = stack.pop()
        if "split_index" in node:
            nodes.append(node)
            stack += [node["left_child"], node["right_child"]]
    return sorted(nodes, key=lambda node: node["split_index"])


@dataclass(frozen=True)
class _ContributionTables:
    """LightGBM's per-tree TreeSHAP values tabulated by split pattern (which way a row goes at each split).

    TreeSHAP (Lundberg et al. 2020) reads a row only through `Decision(x, node)` at the tree's
    splits, so a tree with k splits has at most 2**k distinct contribution vectors. Each is taken
    from LightGBM's `pred_contrib` for that tree alone (`start_iteration=t, num_iteration=1`) on a
    row built to take that pattern; scoring then evaluates the distinct splits once per row, looks
    each tree's values up and adds them per feature in tree order.
    """

    n_features: int
    split_feature: np.ndarray  # distinct splits (feature, threshold, missing type, default side)
    threshold: np.ndarray
    missing_type: np.ndarray
    default_left: np.ndarray
    tree_splits: np.ndarray  # (trees, max splits): a tree's splits as indices of the distinct ones
    slot_feature: np.ndarray  # one slot per (feature, tree) pair with a split, in feature then tree order
    slot_tree: np.ndarray
    slot_values: tuple[np.ndarray, ...]  # a slot's contribution by pattern code (views of `values`)
    values: np.ndarray  # every slot's table end to end, then one -0.0 (x + -0.0 == x for every x)
    slot_start: np.ndarray  # where a slot's table starts in `values`
    feature_slots: np.ndarray  # (max slots of a feature, features): slots in tree order, padded with -1

    SMALL = 64
    """Up to this many rows, one gather for all slots replaces the loop over slots (same sums)."""

    @classmethod
    def build(cls, booster: Any) -> _ContributionTables | None:
        """Tables of a booster; None when a tree is too large or not plain numerical splits."""
        dump = booster.dump_model()
        # The JSON dump caps thresholds at +-1e300 (an infinite one is common at a split that sends
        # only missing values one way); the model text keeps them exactly, "inf" included.
        thresholds = _text_thresholds(booster.model_to_string())
        if len(thresholds) != len(dump["tree_info"]):
            return None
        if dump.get("num_tree_per_iteration", 1) != 1 or dump.get("average_output"):
            return None
        n_features = int(dump["max_feature_idx"]) + 1
        distinct: dict[tuple[int, float, int, bool], int] = {}
        tree_splits: list[list[int]] = []
        slots: list[tuple[int, int, np.ndarray]] = []
        for t, tree in enumerate(dump["tree_info"]):  # one pass per tree (a few hundred), not per row
            nodes = _split_nodes(tree)
            if tree.get("is_linear") or any(node["decision_type"] != "<=" for node in nodes):
                return None
            if (1 << len(nodes)) > MAX_TREE_PATTERNS:
                return None
            keys = [
                (
                    int(n["split_feature"]),
                    float(thresholds[t][n["split_index"]]),
                    _MISSING_TYPES[n["missing_type"]],
                    bool(n["default_left"]),
                )
                for n in nodes
            ]
            tree_splits.append([distinct.setdefault(key, len(distinct)) for key in keys])
            if nodes:
                table = _tree_table(booster, t, keys, n_features)
                if table is None:
                    return None
                slots += [(feature, t, values) for feature, values in table.items()]
        if not distinct:
            return None
        width = max(len(splits) for splits in tree_splits)
        never = len(distinct)  # an extra all-False decision row pads trees with fewer splits
        padded = np.array([splits + [never] * (width - len(splits)) for splits in tree_splits], dtype=np.intp)
        keys_array = list(distinct)
        slots.sort(key=lambda slot: (slot[0], slot[1]))
        slot_feature = np.array([slot[0] for slot in slots], dtype=np.intp)
        sizes = np.array([len(slot[2]) for slot in slots], dtype=np.intp)
        values = np.concatenate([*(slot[2] for slot in slots), [-0.0]])
        slot_start = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.intp)
        per_feature = np.bincount(slot_feature, minlength=n_features)
        feature_slots = np.full((int(per_feature.max()), n_features), -1, dtype=np.intp)
        rank = np.arange(len(slots)) - np.repeat(np.cumsum(per_feature) - per_feature, per_feature)
        feature_slots[rank, slot_feature] = np.arange(len(slots))
        return cls(
            n_features=n_features,
            split_feature=np.array([k[0] for k in keys_array], dtype=np.intp),
            threshold=np.array([k[1] for k in keys_array], dtype=float),
            missing_type=np.array([k[2] for k in keys_array], dtype=np.int8),
            default_left=np.array([k[3] for k in keys_array], dtype=bool),
            tree_splits=padded,
            slot_feature=slot_feature,
            slot_tree=np.array([slot[1] for slot in slots], dtype=np.intp),
            slot_values=tuple(values[start : start + size] for start, size in zip(slot_start, sizes, strict=True)),
            values=values,
            slot_start=slot_start,
            feature_slots=feature_slots,
        )

    def contributions(self, matrix: np.ndarray, block: int = 32_768) -> np.ndarray:
        """Contributions (features x rows) of a float matrix in the booster's feature order.

        Each feature's contribution is summed tree after tree, starting from 0, whatever the number
        of rows, so a row's values never depend on the rows scored with it.
        """
        n = matrix.shape[0]
        out = np.zeros((self.n_features, n))
        for start in range(0, n, block):  # blocks keep the per-feature sums in cache
            rows = slice(start, min(start + block, n))
            codes = self._codes(matrix[rows])
            part = out[:, rows]
            if codes.shape[1] <= self.SMALL:
                # All slots' values at once, laid out (rank within feature, feature, rows); padding
                # reads the -0.0 at the end of `values`, and adding it changes nothing.
                picked = self.values[self.slot_start[:, None] + codes[self.slot_tree]]
                picked = np.concatenate([picked, np.full((1, picked.shape[1]), -0.0)])
                for by_rank in picked[self.feature_slots]:  # max slots of one feature, ~100 steps
                    part += by_rank
            else:
                for feature, tree, by_code in zip(self.slot_feature, self.slot_tree, self.slot_values, strict=True):
                    part[feature] += by_code.take(codes[tree])
        return out

    def _codes(self, matrix: np.ndarray) -> np.ndarray:
        """(trees, rows) pattern codes: bit j set when a row goes left at the tree's split j."""
        code_type = np.uint8 if self.tree_splits.shape[1] <= 8 else np.uint16
        values = np.ascontiguousarray(matrix.T)[self.split_feature]
        decided = np.zeros((len(self.split_feature) + 1, values.shape[1]), dtype=code_type)
        decided[:-1] = _decisions(
            values, self.threshold[:, None], self.missing_type[:, None], self.default_left[:, None]
        )
        codes = decided[self.tree_splits[:, 0]]
        for j in range(1, self.tree_splits.shape[1]):
            codes |= decided[self.tree_splits[:, j]] << j
        return codes


def _tree_table(
    booster: Any, tree: int, keys: list[tuple[int, float, int, bool]], n_features: int
) -> dict[int, np.ndarray] | None:
    """One tree's contribution of each of its features by split pattern, from LightGBM's pred_contrib.

    Probe rows take, for each feature of the tree, a member of every value class its splits
    distinguish -- LightGBM sees |x| <= ZERO_THRESHOLD as 0, so the classes are NaN, 0 and the
    non-zero values between consecutive thresholds: each threshold and the floats just below and
    above it, 0, NaN and the smallest non-zero values either side of 0. So every pattern a row can
    take is probed.
    """
    split_feature = np.array([k[0] for k in keys])
    threshold = np.array([k[1] for k in keys])
    missing_type = np.array([k[2] for k in keys])
    default_left = np.array([k[3] for k in keys])
    features = sorted(set(split_feature.tolist()))
    candidates = []
    for feature in features:
        cut = threshold[split_feature == feature]
        near_zero = np.nextafter(ZERO_THRESHOLD, np.inf)
        values = np.concatenate([cut, np.nextafter(cut, np.inf), np.nextafter(cut, -np.inf), [0.0, near_zero, -near_zero]])
        candidates.append([*np.unique(values), np.nan])
    if np.prod([len(c) for c in candidates], dtype=float) > 1 << 16:
        return None
    grid = np.array(list(itertools.product(*candidates)), dtype=float)  # probe rows x tree features
    where = [features.index(f) for f in split_feature]
    decided = _decisions(grid[:, where].T, threshold[:, None], missing_type[:, None], default_left[:, None])
    codes = (decided.astype(np.int64) << np.arange(len(keys))[:, None]).sum(axis=0)
    patterns, first = np.unique(codes, return_index=True)
    probes = np.zeros((len(patterns), n_features))
    probes[:, features] = grid[first]
    # One thread: a few probe rows, and an OpenMP team's start-up would cost more than the trees.
    contrib = np.asarray(
        booster.predict(probes, pred_contrib=True, start_iteration=tree, num_iteration=1, num_threads=1)
    )
    tables = {}
    for feature in features:
        values = np.full(1 << len(keys), np.nan)
        values[patterns] = contrib[:, feature]
        tables[feature] = values
    return tables
