"""ChurnModel on CDNOW: behaviour (directional, invariance), calibration, reasons, artifacts."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from model_data import churn_frame
from sklearn.metrics import roc_auc_score

from core.errors import ModelError, NotFittedError
from models.boosting import SMALL_PREDICT_ROWS, predict_threads
from models.churn import PROBABILITY_FLOOR, ChurnModel

# Out-of-time: train on features at 1997-12-31 (labels to 1998-03-31), test at 1998-03-31 (to 06-29).
MONOTONE = {"days_since_last": +1, "recency": -1, "orders_90d": -1, "not_a_feature": +1}


@pytest.fixture(scope="module")
def cdnow_churn(cdnow_master):
    train = churn_frame(cdnow_master, "1997-12-31", 90)
    test = churn_frame(cdnow_master, "1998-03-31", 90)
    return train, test


@pytest.fixture(scope="module")
def fitted(cdnow_churn) -> ChurnModel:
    (X, y, _), _ = cdnow_churn
    return ChurnModel(monotone_constraints=MONOTONE).fit(X, y)


def test_beats_the_recency_rule_out_of_time(fitted, cdnow_churn):
    _, (X, y, _) = cdnow_churn
    auc = roc_auc_score(y, fitted.predict_proba(X))
    recency_rule = roc_auc_score(y, X["days_since_last"])
    assert auc > recency_rule  # seen: 0.838 vs 0.828
    assert fitted.best_iteration_ < fitted.n_estimators  # early stopping did stop


def test_a_more_recent_purchase_never_raises_the_churn_score(fitted, cdnow_churn):
    """Directional: all else equal, fewer days since the last purchase cannot mean more risk."""
    _, (X, _, _) = cdnow_churn
    sample = X.sample(3000, random_state=0)
    base = fitted.predict_proba(sample)
    for factor in (0.0, 0.25, 0.5, 0.9):
        recent = fitted.predict_proba(
            sample.assign(days_since_last=sample["days_since_last"] * factor)
        )
        assert (recent <= base + 1e-12).all()
    # and a longer purchase history (larger recency at the same age) never raises it either
    later = fitted.predict_proba(
        sample.assign(recency=np.minimum(sample["recency"] + 30, sample["T"]))
    )
    assert (later <= base + 1e-12).all()


def test_probabilities_are_calibrated_on_the_training_period(fitted, cdnow_churn):
    (X, y, _), _ = cdnow_churn
    prob = fitted.predict_proba(X)
    assert prob.ndim == 1 and np.isfinite(prob).all()
    assert ((prob >= PROBABILITY_FLOOR) & (prob <= 1 - PROBABILITY_FLOOR)).all()
    assert fitted.calibration_ in ("isotonic", "platt")
    assert set(fitted.calibration_scores_) == {"isotonic", "platt"}
    assert fitted.calibration_scores_[fitted.calibration_] == min(
        fitted.calibration_scores_.values()
    )
    # calibration-in-the-large within every decile of risk: 0.03 is ~3 standard errors of a decile's rate
    deciles = pd.qcut(prob, 10, labels=False, duplicates="drop")
    frame = pd.DataFrame({"p": prob, "y": y.to_numpy(), "d": deciles}).groupby("d").mean()
    assert (frame["p"] - frame["y"]).abs().max() < 0.03


def test_training_is_deterministic(fitted, cdnow_churn):
    (X, y, _), (X_test, _, _) = cdnow_churn
    again = ChurnModel(monotone_constraints=MONOTONE).fit(X, y)
    assert again.best_iteration_ == fitted.best_iteration_
    np.testing.assert_array_equal(again.predict_proba(X_test), fitted.predict_proba(X_test))


def test_column_order_does_not_matter_and_missing_columns_are_named(fitted, cdnow_churn):
    _, (X, _, _) = cdnow_churn
    shuffled = X[list(reversed(X.columns))].assign(extra=1.0)
    np.testing.assert_array_equal(fitted.predict_proba(shuffled), fitted.predict_proba(X))
    with pytest.raises(ModelError, match=r"\['recency', 'gap_mean'\]"):
        fitted.predict_proba(X.drop(columns=["recency", "gap_mean"]))


def test_reasons_are_the_largest_positive_contributions(fitted, cdnow_churn):
    _, (X, _, _) = cdnow_churn
    rows = X.head(200)
    reasons = fitted.reasons(rows)
    assert list(reasons.columns) == ["churn_reason_1", "churn_reason_2", "churn_reason_3"]
    assert reasons.index.equals(rows.index)
    contrib = fitted.booster_.predict(rows[fitted.feature_names_].to_numpy(), pred_contrib=True)[
        :, :-1
    ]
    for i in range(len(rows)):
        positive = sorted(
            (c, name) for c, name in zip(contrib[i], fitted.feature_names_, strict=True) if c > 0
        )[::-1]
        expected = [name for _, name in positive[:3]] + [""] * max(0, 3 - len(positive))
        assert reasons.iloc[i].tolist() == expected
    every = fitted.reasons(rows, top=len(fitted.feature_names_) + 2)
    assert (every.iloc[:, -2:] == "").all().all()  # never more reasons than pushing features


def test_save_load_round_trip_is_identical_small_and_pickle_free(fitted, cdnow_churn, tmp_path):
    _, (X, _, _) = cdnow_churn
    fitted.save(tmp_path / "churn")
    files = sorted(p.name for p in (tmp_path / "churn").iterdir())
    assert files == ["booster.txt", "model.json"]
    assert sum(p.stat().st_size for p in (tmp_path / "churn").iterdir()) < 2_000_000
    assert (tmp_path / "churn" / "booster.txt").read_text().startswith("tree")
    meta = json.loads((tmp_path / "churn" / "model.json").read_text())
    assert meta["calibration_"] == fitted.calibration_
    loaded = ChurnModel.load(tmp_path / "churn")
    np.testing.assert_array_equal(loaded.predict_proba(X), fitted.predict_proba(X))
    pd.testing.assert_frame_equal(loaded.reasons(X.head(500)), fitted.reasons(X.head(500)))
    assert loaded.get_params() == fitted.get_params()


@pytest.mark.parametrize("calibration", ["isotonic", "platt", "none"])
def test_explicit_calibrations_round_trip(cdnow_churn, calibration, tmp_path):
    (X, y, _), (X_test, _, _) = cdnow_churn
    model = ChurnModel(calibration=calibration, n_estimators=60).fit(X, y)
    assert model.calibration_ == calibration
    model.save(tmp_path)
    np.testing.assert_array_equal(
        ChurnModel.load(tmp_path).predict_proba(X_test), model.predict_proba(X_test)
    )


def test_bad_inputs_are_refused(cdnow_churn):
    (X, y, _), _ = cdnow_churn
    with pytest.raises(ModelError, match="one class only"):
        ChurnModel().fit(X, np.zeros(len(X)))
    with pytest.raises(ModelError, match="0 \\(retained\\) or 1"):
        ChurnModel().fit(X, y * 2)
    with pytest.raises(ModelError, match="-1, 0 or \\+1"):
        ChurnModel(monotone_constraints={"recency": 2}).fit(X, y)
    with pytest.raises(ModelError, match="numeric"):
        ChurnModel().fit(X.assign(segment="a"), y)
    with pytest.raises(NotFittedError, match="not fitted yet"):
        ChurnModel().predict_proba(X)
    with pytest.raises(ModelError, match="unknown calibration"):
        ChurnModel(calibration="beta").fit(X, y)


# --- reasons from tabulated TreeSHAP (production-sized trees) ----------------------------------


def _pred_contrib_reasons(booster, matrix: np.ndarray, names: list[str]) -> np.ndarray:
    """Top-3 names from LightGBM's pred_contrib over every row, ties to the earlier feature."""
    contrib = booster.predict(matrix, pred_contrib=True)[:, :-1]
    order = np.argsort(-contrib, axis=1, kind="stable")[:, :3]
    values = np.take_along_axis(contrib, order, axis=1)
    picked = np.asarray(names, dtype=object)[order]
    picked[~(values > 0)] = ""
    return picked


@pytest.fixture(scope="module")
def small_trees(cdnow_churn) -> ChurnModel:
    """The production recipe's tree size (training.fit.BOOSTING_PARAMS: 4 leaves)."""
    (X, y, _), _ = cdnow_churn
    params = {"learning_rate": 0.05, "num_leaves": 4, "min_child_samples": 200, "reg_lambda": 10.0}
    return ChurnModel(monotone_constraints=MONOTONE, **params).fit(X, y)


def test_tabulated_contributions_are_lightgbms_pred_contrib(small_trees, cdnow_churn):
    _, (X, _, _) = cdnow_churn
    assert small_trees.prepare_reasons()  # the tabulated path is the one under test
    rows = X.copy()
    # the edges of a split: missing values, zeros, values below LightGBM's zero threshold, thresholds
    rows.iloc[:50, 0] = np.nan
    rows.iloc[50:100, 1] = 0.0
    rows.iloc[100:150, 2] = 1e-40
    matrix = rows[small_trees.feature_names_].to_numpy()
    expected = small_trees.booster_.predict(matrix, pred_contrib=True)[:, :-1]
    got = small_trees.contributions(rows)
    np.testing.assert_allclose(got.T, expected, rtol=0, atol=1e-12)  # seen: 2e-15
    reasons = small_trees.reasons(rows).to_numpy()
    assert (reasons == _pred_contrib_reasons(small_trees.booster_, matrix, small_trees.feature_names_)).all()


def test_a_rows_reasons_do_not_depend_on_the_rows_scored_with_it(small_trees, cdnow_churn):
    """The API scores a customer alone, the batch job among 250,000: the values must be the same bits."""
    _, (X, _, _) = cdnow_churn
    rows = X.head(300)
    together = small_trees.contributions(rows)
    alone = np.hstack([small_trees.contributions(rows.iloc[[i]]) for i in range(len(rows))])
    in_blocks = np.hstack([small_trees.contributions(rows.iloc[i : i + 100]) for i in range(0, 300, 100)])
    assert np.array_equal(together, alone) and np.array_equal(together, in_blocks)


def test_large_trees_are_explained_by_lightgbm_directly(fitted):
    assert fitted.num_leaves == 15 and not fitted.prepare_reasons()


def test_small_inputs_on_one_thread_predict_the_bits_of_large_ones(fitted, cdnow_churn):
    """Below SMALL_PREDICT_ROWS LightGBM runs on the calling thread, above on its thread team."""
    _, (X, _, _) = cdnow_churn
    large = pd.concat([X] * (SMALL_PREDICT_ROWS // len(X) + 1)).head(SMALL_PREDICT_ROWS)
    assert predict_threads(len(large)) == 0 and predict_threads(len(large) - 1) == 1
    together = fitted.predict_proba(large)
    alone = np.concatenate([fitted.predict_proba(X.iloc[i : i + 7]) for i in range(0, 70, 7)])
    assert np.array_equal(together[:70], alone)


def test_a_float_matrix_in_feature_order_predicts_as_the_frame(fitted, cdnow_churn):
    """The scorer hands its input blocks to the models as matrices; a matrix of the wrong width is refused."""
    _, (X, _, _) = cdnow_churn
    rows = X.head(50)
    matrix = rows[fitted.feature_names_].to_numpy(dtype=float)
    assert np.array_equal(fitted.predict_proba(matrix), fitted.predict_proba(rows))
    assert (fitted.reasons(matrix).to_numpy() == fitted.reasons(rows).to_numpy()).all()
    with pytest.raises(ModelError, match="columns"):
        fitted.predict_proba(matrix[:, :-1])
