"""The promotion gate's rule, as a pure function (the registry side is tested with MLflow in test_train)."""

from __future__ import annotations

import pandas as pd

from training.registry import ChampionScore, decide_promotion

BASELINES = {"recency": 0.82, "palive": 0.35, "rfm": 0.83}


def test_first_candidate_beating_every_baseline_is_promoted():
    promoted, reason = decide_promotion(0.85, BASELINES)
    assert promoted and "no champion" in reason


def test_a_baseline_that_is_not_beaten_blocks_promotion_and_is_named():
    promoted, reason = decide_promotion(0.825, BASELINES)
    assert not promoted and "rfm" in reason


def test_a_tie_with_the_champion_on_the_same_data_keeps_the_champion():
    champion = ChampionScore("1", 0.85, pd.Timestamp("1998-06-30"), "its out-of-time model scored")
    promoted, reason = decide_promotion(0.85, BASELINES, champion, pd.Timestamp("1998-06-30"), tolerance=0.005)
    assert not promoted and "tie" in reason


def test_tolerance_applies_only_to_fresher_data():
    champion = ChampionScore("1", 0.85, pd.Timestamp("1998-03-31"), "registered model scored")
    same_data, _ = decide_promotion(0.848, BASELINES, champion, pd.Timestamp("1998-03-31"), tolerance=0.005)
    fresher, reason = decide_promotion(0.848, BASELINES, champion, pd.Timestamp("1998-06-30"), tolerance=0.005)
    too_much_worse, _ = decide_promotion(0.84, BASELINES, champion, pd.Timestamp("1998-06-30"), tolerance=0.005)
    assert (same_data, fresher, too_much_worse) == (False, True, False)
    assert "fresher" in reason


def test_a_better_candidate_replaces_the_champion():
    champion = ChampionScore("3", 0.84, pd.Timestamp("1998-06-30"), "its out-of-time model scored")
    promoted, reason = decide_promotion(0.85, BASELINES, champion, pd.Timestamp("1998-06-30"))
    assert promoted and "v3" in reason


def test_a_champion_that_cannot_be_compared_is_kept():
    champion = ChampionScore("2", None, pd.Timestamp("1999-01-01"), "it was trained on newer data")
    promoted, reason = decide_promotion(0.9, BASELINES, champion, pd.Timestamp("1998-06-30"))
    assert not promoted and "newer" in reason
