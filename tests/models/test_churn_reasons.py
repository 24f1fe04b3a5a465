"""Tabulated churn reasons equal LightGBM's pred_contrib for every split kind a booster can hold."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pytest

from models.churn_reasons import ZERO_THRESHOLD, ContributionTables


def _split_nodes(booster: lgb.Booster) -> list[dict]:
    nodes = []
    for tree in booster.dump_model()["tree_info"]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_index" in node:
                nodes.append(node)
                stack += [node["left_child"], node["right_child"]]
    return nodes


def _edge_rows(booster: lgb.Booster, n_features: int, rng: np.random.Generator, n: int) -> np.ndarray:
    """Rows made of each feature's split thresholds, the floats beside them, signed zeros, tiny values and NaN."""
    nodes = _split_nodes(booster)
    columns = []
    for feature in range(n_features):
        cuts = np.array(
            [float(n["threshold"]) for n in nodes if n["split_feature"] == feature] + [ZERO_THRESHOLD, -ZERO_THRESHOLD]
        )
        edges = np.concatenate(
            [cuts, np.nextafter(cuts, np.inf), np.nextafter(cuts, -np.inf), [0.0, -0.0, 1e-40, -1e-40, np.nan]]
        )
        columns.append(rng.choice(edges, size=n))
    return np.column_stack(columns)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """Features with NaN and exact zeros that matter to the label, so trees route missing values."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4000, 6))
    X[:, :5][rng.random((4000, 5)) < 0.2] = np.nan
    X[:, :5][rng.random((4000, 5)) < 0.1] = 0.0  # the last column has no missing values: plain splits
    signal = np.nan_to_num(X[:, 0]) + np.isnan(X[:, 1]) + (X[:, 2] == 0) + X[:, 5]
    y = (signal + rng.normal(size=4000) > 0.5).astype(float)
    return X, y


@pytest.mark.parametrize("zero_as_missing", [False, True], ids=["nan-missing", "zero-as-missing"])
def test_missing_value_splits_both_ways_equal_pred_contrib(data, zero_as_missing):
    """NaN-as-missing and zero-as-missing splits, missing values sent left and right, NaN and tiny inputs."""
    X, y = data
    params = {"objective": "binary", "num_leaves": 6, "verbosity": -1, "seed": 1, "zero_as_missing": zero_as_missing}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=40)
    nodes = _split_nodes(booster)
    routed = {(n["missing_type"], n["default_left"]) for n in nodes if n["missing_type"] != "None"}
    expected_type = "Zero" if zero_as_missing else "NaN"
    # the trees really hold the split kinds under test: missing values going left and going right
    assert {(expected_type, True), (expected_type, False)} <= routed
    if not zero_as_missing:  # with zero_as_missing LightGBM types every split "Zero"
        assert any(n["missing_type"] == "None" for n in nodes)  # plain splits too
    tables = ContributionTables.build(booster)
    assert tables is not None
    rng = np.random.default_rng(4)
    probe = np.vstack([X[:500], _edge_rows(booster, X.shape[1], rng, 2000), np.full((1, X.shape[1]), np.nan)])
    expected = booster.predict(probe, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(tables.contributions(probe).T, expected, rtol=0, atol=1e-12)  # seen: ~1e-15


def test_infinite_thresholds_from_the_model_text_are_kept(data):
    """A split that sends only missing values one way has an infinite threshold in the model text."""
    X, y = data
    params = {"objective": "binary", "num_leaves": 4, "verbosity": -1, "seed": 2, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=60)
    tables = ContributionTables.build(booster)
    assert tables is not None
    probe = np.vstack([X, np.full((1, X.shape[1]), np.inf), np.full((1, X.shape[1]), -np.inf)])
    expected = booster.predict(probe, pred_contrib=True)[:, :-1]
    np.testing.assert_allclose(tables.contributions(probe).T, expected, rtol=0, atol=1e-12)


def test_categorical_splits_are_left_to_lightgbm(data):
    """Categorical splits ("==") are not re-implemented: build declines and callers use pred_contrib."""
    X, y = data
    X = X.copy()
    X[:, 4] = np.random.default_rng(5).integers(0, 6, size=len(X))
    y = ((X[:, 4] % 2 == 0) | (np.nan_to_num(X[:, 0]) > 1)).astype(float)
    params = {"objective": "binary", "num_leaves": 4, "verbosity": -1, "seed": 1, "min_data_per_group": 5, "cat_smooth": 1}
    booster = lgb.train(params, lgb.Dataset(X, y, categorical_feature=[4]), num_boost_round=20)
    assert any(n["decision_type"] == "==" for n in _split_nodes(booster))
    assert ContributionTables.build(booster) is None


def test_trees_with_too_many_splits_are_left_to_lightgbm(data):
    X, y = data
    params = {"objective": "binary", "num_leaves": 15, "verbosity": -1, "seed": 1, "min_data_in_leaf": 5}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    assert max(t["num_leaves"] for t in booster.dump_model()["tree_info"]) > 11
    assert ContributionTables.build(booster) is None


def test_a_rows_values_do_not_depend_on_the_block_it_is_scored_in(data):
    """Fewer rows than ContributionTables.SMALL take the one-gather path; the sums must be the same bits."""
    X, y = data
    booster = lgb.train({"objective": "binary", "num_leaves": 4, "verbosity": -1, "seed": 1}, lgb.Dataset(X, y), 30)
    tables = ContributionTables.build(booster)
    assert tables is not None
    rows = X[: ContributionTables.SMALL * 3]
    together = tables.contributions(rows)
    alone = np.hstack([tables.contributions(rows[i : i + 1]) for i in range(len(rows))])
    assert np.array_equal(together, alone)
