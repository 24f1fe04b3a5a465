"""Grouped validation splits of the LightGBM models: stacked snapshots of one customer stay together."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from model_data import churn_frame
from sklearn.metrics import roc_auc_score

from core.errors import ModelError
from models.churn import ChurnModel
from models.value import ValueModel

FAST = {"n_estimators": 60, "learning_rate": 0.2, "n_threads": 1, "early_stopping_rounds": 10}


@pytest.fixture(scope="module")
def stacked(cdnow_master):
    """CDNOW features at two as-of dates 90 days apart, stacked: most customers appear twice."""
    frames = []
    for as_of in ("1997-09-30", "1997-12-29"):
        X, y, spend = churn_frame(cdnow_master, as_of, 90)
        frames.append(X.assign(churned=y, spend=spend).reset_index())
    data = pd.concat(frames, ignore_index=True)
    features = data.drop(columns=["customer_id", "churned", "spend"])
    return features, data["churned"].to_numpy(), data["spend"].to_numpy(), data["customer_id"].to_numpy()


@pytest.mark.parametrize("model_class", [ChurnModel, ValueModel])
def test_validation_split_keeps_each_customer_on_one_side(model_class, stacked):
    X, y, spend, customers = stacked
    assert pd.Series(customers).duplicated().sum() > 10_000  # the premise: customers repeat
    target = y if model_class is ChurnModel else spend
    train, valid = model_class(seed=7)._split(len(X), target, customers)
    assert len(train) + len(valid) == len(X)
    assert not set(customers[train]) & set(customers[valid])
    assert 0.15 < len(valid) / len(X) < 0.25  # validation_fraction 0.2 of the customers
    if model_class is ChurnModel:  # stratified by customer: the churn rate is kept on both sides
        assert abs(y[valid].mean() - y[train].mean()) < 0.02


def test_grouped_fit_is_deterministic_and_finite(stacked):
    X, y, _, customers = stacked
    first = ChurnModel(**FAST).fit(X, y, groups=customers)
    second = ChurnModel(**FAST).fit(X, y, groups=customers)
    p = first.predict_proba(X)
    assert np.isfinite(p).all()
    np.testing.assert_array_equal(p, second.predict_proba(X))
    ungrouped = ChurnModel(**FAST).fit(X, y)
    assert not np.array_equal(p, ungrouped.predict_proba(X))  # the groups did change the split


def test_value_model_takes_groups(stacked):
    X, _, spend, customers = stacked
    value = ValueModel(**FAST).fit(X, spend, groups=customers)
    assert (value.predict(X) >= 0).all()


def test_groups_must_match_the_rows(stacked):
    X, y, _, customers = stacked
    with pytest.raises(ModelError, match="groups"):
        ChurnModel(**FAST).fit(X, y, groups=customers[:-1])
    with pytest.raises(ModelError, match="two distinct"):
        ChurnModel(**FAST).fit(X, y, groups=np.zeros(len(X)))


def test_isotonic_calibration_keeps_the_boosters_ranking(stacked):
    """Isotonic steps would tie customers the booster tells apart; the calibrated ranking must not lose that."""
    X, y, _, customers = stacked
    model = ChurnModel(calibration="isotonic", **FAST).fit(X, y, groups=customers)
    raw = model.booster_.predict(X[model.feature_names_].to_numpy(), raw_score=True)
    prob = model.predict_proba(X)
    distinct_raw = len(np.unique(raw))
    assert len(np.unique(model.calibration_map_["y"])) < distinct_raw / 10  # the map itself has few steps
    assert len(np.unique(prob)) > 0.99 * distinct_raw  # ...but probabilities keep the booster's order
    assert roc_auc_score(y, prob) == pytest.approx(roc_auc_score(y, raw), abs=1e-6)
    step = np.interp(raw, model.calibration_map_["x"], model.calibration_map_["y"])
    assert np.abs(prob - np.clip(step, 1e-6, 1 - 1e-6)).max() <= 1e-4  # calibration unchanged
