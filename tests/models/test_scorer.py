"""PatronScorer: the scores contract of ARCHITECTURE.md, input validation, save/load without pickle."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from model_data import with_a_more_recent_purchase

from core.errors import ModelError
from core.scores import EMPTY_WHEN_UNKNOWN_COLUMNS, SCORE_COLUMNS
from features import build_features
from features.synthetic import generate_transactions
from models.scorer import PatronScorer
from targeting.tiers import tier_boundaries
from training.fit import TrainingConfig, fit_scorer

REPO_ROOT = Path(__file__).resolve().parents[2]
AS_OF = "2023-12-31"


def architecture_score_columns() -> list[str]:
    """The scores column list as ARCHITECTURE.md pins it (the first code span list under ## Scores)."""
    text = (REPO_ROOT / "ARCHITECTURE.md").read_text()
    section = text.split("## Scores", 1)[1]
    block = section.split("\n\n", 1)[1].split("\n\n", 1)[0]
    return [name.strip() for name in re.sub(r"[`\n]", " ", block).split(",")]


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    return generate_transactions(2000, seed=11).transactions


@pytest.fixture(scope="module")
def scorer(synthetic: pd.DataFrame) -> PatronScorer:
    return fit_scorer(synthetic, TrainingConfig(seed=5, n_threads=1), metadata={"model_name": "patron"})


@pytest.fixture(scope="module")
def features(synthetic: pd.DataFrame) -> pd.DataFrame:
    return build_features(synthetic, AS_OF)


@pytest.fixture(scope="module")
def scores(scorer: PatronScorer, features: pd.DataFrame) -> pd.DataFrame:
    return scorer.score(features, AS_OF)


def test_scores_have_exactly_the_architecture_columns_one_row_per_customer(scores, features):
    assert list(SCORE_COLUMNS) == architecture_score_columns()
    assert list(scores.columns) == list(SCORE_COLUMNS)
    assert len(scores) == len(features)
    assert sorted(scores["customer_id"]) == sorted(features.index)
    assert (scores["as_of"] == pd.Timestamp(AS_OF)).all()
    assert (scores["model_name"] == "patron").all()


def test_scores_are_finite_and_in_their_domains(scorer, scores):
    numeric = scores.drop(columns=list(EMPTY_WHEN_UNKNOWN_COLUMNS)).select_dtypes("number")
    assert np.isfinite(numeric.to_numpy(dtype=float)).all()
    gap = scores["avg_days_between_orders"]
    assert gap.isna().equals(scores["frequency"] == 0) and (gap.dropna() > 0).all()
    assert scores["churn_probability"].between(0, 1).all() and scores["p_alive"].between(0, 1).all()
    assert set(scores["value_tier"]) <= {"diamond", "gold", "silver", "regular"}
    assert set(scores["lifecycle_stage"]) <= {"new", "active", "sleeping", "at_risk", "lost"}
    excluded = scores["exclude_from_spend"].astype(bool)
    assert (scores.loc[~excluded, "exclude_reason"] == "").all()
    assert (scores.loc[excluded, "exclude_reason"] != "").all()
    reasons = set(scores[["churn_reason_1", "churn_reason_2", "churn_reason_3"]].to_numpy().ravel())
    assert reasons - {""} and reasons <= set(scorer.churn_features) | {""}


def test_tiers_are_the_configured_shares_of_the_scored_population(scorer, scores):
    """Tiers rank the customers scored together into the policy's shares (10/15/25/50 by default)."""
    shares = scores["value_tier"].value_counts(normalize=True)
    for tier, share in zip(("diamond", "gold", "silver", "regular"), scorer.policy.tier_shares, strict=True):
        assert shares[tier] == pytest.approx(share, abs=1 / len(scores))
    ranked = scores.sort_values("value_score", ascending=False)["value_tier"].map(
        {"diamond": 0, "gold": 1, "silver": 2, "regular": 3}
    )
    assert ranked.is_monotonic_increasing


def test_tiers_placed_against_the_training_cut_points(scorer, features):
    """With the training snapshot's boundaries, a customer >= the diamond cut-point is a diamond."""
    placed = scorer.score(features, AS_OF, tier_boundaries=scorer.training_tier_boundaries())
    diamond, gold, silver = scorer.cut_points
    value = placed["value_score"]
    assert (placed.loc[value >= diamond, "value_tier"] == "diamond").all()
    assert (placed.loc[(value < diamond) & (value >= gold), "value_tier"] == "gold").all()
    assert (placed.loc[value < silver, "value_tier"] == "regular").all()


def test_customer_id_as_index_or_as_column_scores_the_same(scorer, features, scores):
    again = scorer.score(features.reset_index(), AS_OF)
    pd.testing.assert_frame_equal(again, scores)


def test_missing_feature_columns_are_named(scorer, features):
    with pytest.raises(ModelError, match=r"lack columns \['days_since_last', 'overdue_ratio'\]"):
        scorer.score(features.drop(columns=["overdue_ratio", "days_since_last"]), AS_OF)


def test_non_finite_values_and_duplicate_customers_are_refused(scorer, features):
    broken = features.copy()
    broken.iloc[0, broken.columns.get_loc("frequency")] = np.nan
    with pytest.raises(ModelError, match="frequency"):
        scorer.score(broken, AS_OF)
    with pytest.raises(ModelError, match="more than once"):
        scorer.score(pd.concat([features.iloc[:3], features.iloc[:1]]), AS_OF)


def test_an_empty_frame_gives_an_empty_scores_table(scorer, features):
    empty = scorer.score(features.iloc[:0], AS_OF)
    assert list(empty.columns) == list(SCORE_COLUMNS) and empty.empty


def test_a_more_recent_purchase_never_raises_the_churn_probability(scorer, features):
    repeat = features[(features["frequency"] > 0) & (features["days_since_last"] > 40)].head(300)
    recent = with_a_more_recent_purchase(repeat)
    before = scorer.model_outputs(repeat)["churn_probability"]
    after = scorer.model_outputs(recent)["churn_probability"]
    assert (after <= before + 1e-12).all()
    assert (after < before).any()


def test_save_and_load_round_trip_without_pickle_or_customer_data(scorer, features, scores, tmp_path):
    folder = scorer.save(tmp_path / "scorer")
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files and all(p.suffix in {".json", ".txt"} for p in files)
    assert sum(p.stat().st_size for p in files) < 3_000_000
    text = " ".join(p.read_text() for p in files)
    assert features.index[0] not in text  # no customer (training data) inside
    loaded = PatronScorer.load(folder)
    pd.testing.assert_frame_equal(loaded.score(features, AS_OF), scores)
    assert loaded.cut_points == scorer.cut_points and loaded.value_source == scorer.value_source


def test_loading_a_folder_without_a_scorer_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="holds no Patron scorer"):
        PatronScorer.load(tmp_path)


def _composed_scores(scorer: PatronScorer, features: pd.DataFrame, as_of: str) -> pd.DataFrame:
    """The scores table composed frame by frame from the public pieces (how `score` used to build it)."""
    from models.intervals import prediction_intervals
    from models.next_order import marketing_columns
    from models.scorer import btyd_outputs
    from targeting.decide import decide

    def model_matrix(frame: pd.DataFrame, btyd: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
        from_btyd = [c for c in columns if c in btyd.columns]
        matrix = pd.concat([frame[[c for c in columns if c not in btyd.columns]], btyd[from_btyd]], axis=1)
        return matrix[columns].astype(float)

    frame = scorer.validate(features)
    parts = btyd_outputs(scorer.clv_model, frame, scorer.churn_horizon_days, scorer.clv_horizon_days)
    churn_x = model_matrix(frame, parts, scorer.churn_features)
    parts["churn_probability"] = np.clip(scorer.churn_model.predict_proba(churn_x), 0, 1)
    if scorer.value_model is not None:
        parts["regressor_value"] = scorer.value_model.predict(model_matrix(frame, parts, scorer.value_features))
    parts["value_score"] = parts["regressor_value"] if scorer.value_source == "regressor" else parts["clv"]
    intervals = prediction_intervals(
        {c: parts[c].to_numpy() for c in parts}, frame["frequency"].to_numpy(dtype=float), scorer.clv_model.params_,
        scorer.metadata.get("interval_levels"),
    )
    parts = parts.assign(**intervals)
    reasons = scorer.churn_model.reasons(churn_x)
    passthrough = frame.drop(columns=[c for c in frame.columns if c in parts.columns])
    scores = pd.concat([passthrough, parts, reasons], axis=1).assign(as_of=pd.Timestamp(as_of))
    decided = decide(scores.rename_axis("customer_id").reset_index(), scorer.policy).set_index("customer_id")
    columns = {c: frame[c].to_numpy(dtype=float) for c in frame.columns}
    columns.update({c: decided[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T", "days_since_last", "p_alive")})
    marketing = marketing_columns(
        columns, decided, scorer.clv_model, scorer.policy, pd.Timestamp(as_of), scorer.shop_reference
    )
    decided = decided.assign(**marketing)
    decided = decided.assign(model_name="patron", model_version="", customer_id=decided.index.astype(str))
    return decided.reset_index(drop=True)[list(SCORE_COLUMNS)]


def test_score_equals_the_frame_by_frame_composition_number_for_number(scorer, features, scores):
    """`score` works on arrays to serve one customer fast; the numbers must be the composition's."""
    pd.testing.assert_frame_equal(scores, _composed_scores(scorer, features, AS_OF), check_exact=True)
    # integer and text columns take the coercing path of validation, with the same result
    coerced = features.astype({"order_count": "int64", "frequency": "int64"}).assign(T=features["T"].astype(str))
    pd.testing.assert_frame_equal(scorer.score(coerced, AS_OF), scores, check_exact=True)
    one = features.iloc[[len(features) // 2]]
    boundaries = tier_boundaries(scores["value_score"], scores["customer_id"], scorer.policy.tier_shares)
    pd.testing.assert_frame_equal(
        scorer.score(one, AS_OF, tier_boundaries=boundaries),
        scores[scores["customer_id"] == one.index[0]].reset_index(drop=True),
        check_exact=True,
    )


def test_a_margin_rate_missing_by_design_is_scored(scorer, features, scores):
    """build_features leaves margin_rate NaN for a customer without costed rows (features.pipeline.MAY_BE_MISSING)."""
    assert "margin_rate" in features.columns  # the CLV model reads it (the churn model does not: it moves either way)
    uncosted = features.copy()
    uncosted.iloc[0, uncosted.columns.get_loc("margin_rate")] = np.nan
    got = scorer.score(uncosted, AS_OF)
    assert np.isfinite(got.drop(columns=list(EMPTY_WHEN_UNKNOWN_COLUMNS)).select_dtypes("number").to_numpy(dtype=float)).all()
    pd.testing.assert_frame_equal(got.iloc[1:], scores.iloc[1:], check_exact=True)  # the others are untouched
    with pytest.raises(ModelError, match="margin_rate"):
        scorer.score(uncosted.assign(margin_rate=np.inf), AS_OF)
