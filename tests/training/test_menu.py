"""Choices on the inner holdout: they never read the reported holdout, and `auto` means the menu's choice."""

from __future__ import annotations

import pandas as pd
import pytest

from models.intervals import RATE_SD_KEY
from training.evaluate import VALUE_SOURCE_METRICS
from training.fit import FeatureCache, TrainingConfig, fit_scorer
from training.menu import CHURN_CHOICES, btyd_menu_choice, choose_on_inner_holdout, inner_as_of
from training.split import plan_out_of_time, restrict_to

CONFIG = TrainingConfig(n_threads=1)


@pytest.fixture(scope="module")
def plan(small_log):
    return plan_out_of_time(small_log, CONFIG.churn_horizon_days, CONFIG.churn_snapshots, CONFIG.snapshot_step_days)


@pytest.fixture(scope="module")
def choice(small_log, plan):
    return choose_on_inner_holdout(FeatureCache(small_log, CONFIG.churn_horizon_days, 1), plan, CONFIG)


def test_the_choices_never_read_the_reported_holdout(small_log, plan, choice):
    """Dropping every transaction after E-H (the reported holdout's labels) changes no choice and no figure."""
    truncated = restrict_to(small_log, plan.holdout_as_of)
    assert len(truncated) < len(small_log)
    again = choose_on_inner_holdout(FeatureCache(truncated, CONFIG.churn_horizon_days, 1), plan, CONFIG)
    assert (again.btyd_model, again.churn_level, again.value_source) == (
        choice.btyd_model,
        choice.churn_level,
        choice.value_source,
    )
    assert again.interval_levels == choice.interval_levels
    assert again.metrics == choice.metrics


def test_every_menu_entry_is_measured_and_the_best_is_chosen(choice):
    aucs = {name: choice.metrics[f"inner_churn_{name}_auc"] for name in CHURN_CHOICES}
    assert set(aucs) == {"lightgbm_loose", "lightgbm_default", "lightgbm_strong", "logistic", "blend"}
    assert choice.churn_level == max(aucs, key=aucs.get)
    assert all(0.5 < auc <= 1 for auc in aucs.values()), aucs
    spearman = {source: choice.metrics[f"inner_{name}"] for source, name in VALUE_SOURCE_METRICS.items()}
    assert set(spearman) == {"clv", "regressor", "spend_rate"}
    assert choice.value_source == max(spearman, key=spearman.get)
    assert set(choice.reasons) == {"btyd_model", "churn_model", "value_source"}
    assert all(0.5 <= level < 1 for key, level in choice.interval_levels.items() if key != RATE_SD_KEY)
    assert 0 <= choice.interval_levels[RATE_SD_KEY] < 1


def test_auto_means_the_btyd_menus_choice_in_fit_scorer(small_log):
    anchor = small_log["timestamp"].max().normalize()
    cache = FeatureCache(small_log, CONFIG.churn_horizon_days, 1)
    expected = btyd_menu_choice(cache.get(anchor - pd.Timedelta(days=CONFIG.churn_horizon_days)), CONFIG)
    scorer = fit_scorer(small_log, config=CONFIG)
    assert scorer.clv_model.model_ == expected
    assert scorer.metadata["data_end"] == anchor.date().isoformat()


def test_the_inner_holdout_is_one_horizon_before_the_reported_one(plan):
    assert inner_as_of(plan) == plan.holdout_as_of - pd.Timedelta(days=plan.horizon_days)
