"""Churn reason codes computed fast: LightGBM's own TreeSHAP values, tabulated per tree and looked up.

Why this module exists: reasons are "the top 3 features pushing the risk up, from LightGBM's
`pred_contrib`". Calling `pred_contrib` over every customer cost 3.4 s per 250,000 customers in the 1M
batch profile (5.8-11 s in isolation); tabulating it costs 0.8 s per 250,000 plus 0.1 s once per model
(benchmarks/RESULTS.md, "batch scoring"). TreeSHAP (Lundberg et al. 2020) reads a row only through the
side it takes at each split, so a tree with k splits has at most 2**k distinct contribution vectors:
each is taken from LightGBM's `pred_contrib` for that tree alone on one probe row per split pattern,
and a customer's contributions are the looked-up vectors summed tree by tree.

Nothing here computes a SHAP value; every value comes from LightGBM. What it does duplicate from
LightGBM, and must change if LightGBM changes it:

- `Tree::NumericalDecision` (`include/LightGBM/tree.h`): which way a value goes at a numerical split,
  by missing type (`None`, `Zero`, `NaN`) and `default_left` -- `numerical_decisions`.
- `kZeroThreshold` (`include/LightGBM/meta.h`, `1e-35f`) and the dense-input conversion that turns
  |x| <= kZeroThreshold into 0 -- `ZERO_THRESHOLD`.
- The text model format: one `Tree=` block per tree with a `threshold=` line in split-index order
  (exact, "inf" included, where the JSON dump caps thresholds at +-1e300) -- `_text_thresholds`.
- The JSON dump's fields (`tree_info`, `tree_structure`, `split_index`, `split_feature`,
  `decision_type`, `missing_type`, `default_left`, `num_tree_per_iteration`, `average_output`,
  `is_linear`, `max_feature_idx`) -- `ContributionTables.build`.

Where the copy stops, `ContributionTables.build` returns None and the caller uses `pred_contrib`:
categorical splits (`decision_type == "=="`), linear trees, multiclass models, random-forest
averaging, and trees of more than log2(MAX_TREE_PATTERNS) splits (over 11 leaves).
tests/models/test_churn_reasons.py compares the tables with `pred_contrib` for every split kind.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np

ZERO_THRESHOLD = float(np.float32(1e-35))
"""LightGBM's kZeroThreshold (`1e-35f`, a float32 widened to double): dense inputs with |x| <= it
reach the trees as 0, and split thresholds sit at -+ this value around zero."""
MAX_TREE_PATTERNS = 1 << 10
"""Trees with more split nodes than log2 of this (over 10 splits, i.e. 12 leaves or more) are explained by LightGBM directly."""
_MISSING_TYPES = {"None": 0, "Zero": 1, "NaN": 2}


def top_reasons(contrib: np.ndarray, names: list[str], top: int) -> dict[str, np.ndarray]:
    """`churn_reason_1..top`: per row, the names of the features with the largest positive contributions.

    `contrib` is (features, rows) and is overwritten. A slot is "" when fewer features push the risk
    up; ties go to the feature that comes first in `names`.
    """
    k = min(top, contrib.shape[0])
    columns = np.arange(contrib.shape[1])
    labels = np.asarray(names, dtype=object)
    out: dict[str, np.ndarray] = {}
    for i in range(top):  # top is small: a few argmax passes beat sorting every row
        if i >= k:
            out[f"churn_reason_{i + 1}"] = np.full(contrib.shape[1], "", dtype=object)
            continue
        best = np.argmax(contrib, axis=0)  # the first of equal maxima: a stable sort's order
        value = contrib[best, columns]
        out[f"churn_reason_{i + 1}"] = np.where(value > 0, labels[best], "")
        contrib[best, columns] = -np.inf
    return out


def numerical_decisions(
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
class ContributionTables:
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
    def build(cls, booster: Any) -> ContributionTables | None:
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
        decided[:-1] = numerical_decisions(
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
    decided = numerical_decisions(grid[:, where].T, threshold[:, None], missing_type[:, None], default_left[:, None])
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
