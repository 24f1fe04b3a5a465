"""ValueModel on CDNOW: ranks holdout spend, never negative, deterministic, text artifacts."""

from __future__ import annotations

import numpy as np
import pytest
from model_data import churn_frame
from scipy.stats import spearmanr

from core.errors import ModelError
from models.value import ValueModel


@pytest.fixture(scope="module")
def cdnow_value(cdnow_master):
    return churn_frame(cdnow_master, "1997-12-31", 90), churn_frame(cdnow_master, "1998-03-31", 90)


@pytest.fixture(scope="module")
def fitted(cdnow_value) -> ValueModel:
    (X, _, spend), _ = cdnow_value
    return ValueModel().fit(X, spend)


def test_ranks_holdout_spend_out_of_time(fitted, cdnow_value):
    _, (X, _, spend) = cdnow_value
    predicted = fitted.predict(X)
    assert predicted.shape == (len(X),) and np.isfinite(predicted).all() and (predicted >= 0).all()
    # seen 0.42 (past 365-day spend alone: 0.44; whether the regressor earns its place beside the
    # baselines is measured by training); far from chance, and spenders get more than non-spenders
    assert spearmanr(predicted, spend).statistic > 0.35
    assert predicted[spend.to_numpy() > 0].mean() > 2 * predicted[spend.to_numpy() == 0].mean()


def test_negative_spend_counts_as_zero_and_training_is_deterministic(cdnow_value, fitted):
    (X, _, spend), (X_test, _, _) = cdnow_value
    with_returns = spend.where(spend > 0, -25.0)  # net spend after returns can be negative
    np.testing.assert_array_equal(
        ValueModel().fit(X, with_returns).predict(X_test), fitted.predict(X_test)
    )


def test_save_load_round_trip(fitted, cdnow_value, tmp_path):
    _, (X, _, _) = cdnow_value
    fitted.save(tmp_path / "value")
    loaded = ValueModel.load(tmp_path / "value")
    np.testing.assert_array_equal(loaded.predict(X[list(reversed(X.columns))]), fitted.predict(X))
    assert sum(p.stat().st_size for p in (tmp_path / "value").iterdir()) < 2_000_000
    with pytest.raises(ModelError, match="not a ValueModel"):
        ValueModel.load(_churn_artifact(X, tmp_path))


def _churn_artifact(X, tmp_path):
    from models.churn import ChurnModel

    y = (X["days_since_last"] > X["days_since_last"].median()).astype(int)
    ChurnModel(n_estimators=5).fit(X, y).save(tmp_path / "churn")
    return tmp_path / "churn"


def test_bad_targets_are_refused(cdnow_value):
    (X, _, spend), _ = cdnow_value
    with pytest.raises(ModelError, match="finite"):
        ValueModel().fit(X, spend.where(spend > 0, np.nan))
    with pytest.raises(ModelError, match="targets"):
        ValueModel().fit(X, spend.head(10))
