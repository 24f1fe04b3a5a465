"""`patron campaign`: reads a scores file, prints the summary and exclusions, writes the list."""

import math
import re

import pandas as pd
import pytest
from typer.testing import CliRunner

from patron.cli import app
from patron.settings import get_settings
from targeting.decide import DECISION_COLUMNS, decide
from targeting.policy import TargetingPolicy

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")  # the campaign ledger
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def scores_file(scores, tmp_path):
    path = tmp_path / "scores.parquet"
    decide(scores, TargetingPolicy()).to_parquet(path, index=False)
    return path


def test_campaign_writes_the_list_and_prints_the_summary(scores_file, tmp_path):
    out = tmp_path / "campaign.csv"
    result = runner.invoke(app, ["campaign", "--scores", str(scores_file), "--budget", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out, dtype={"customer_id": str})
    assert len(written) > 0
    assert math.fsum(written["spend"]) <= 40.0
    assert {"customer_id", "action", "channel", "incentive", "expected_profit", "reason"} <= set(written.columns)
    for text in ("value_tier", "lifecycle_stage", "expected_roi", "negative_net_value", "over_budget"):
        assert text in result.output
    treated = (written["group"] == "treatment").sum()
    assert f"{treated} customers contacted, {len(written) - treated} held back as control" in result.output


def test_parquet_output_by_extension(scores_file, tmp_path):
    out = tmp_path / "campaign.parquet"
    result = runner.invoke(app, ["campaign", "--scores", str(scores_file), "--budget", "10", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_parquet(out)) > 0


def test_budget_defaults_to_the_setting(scores_file, tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_CAMPAIGN_BUDGET", "3")
    out = tmp_path / "campaign.csv"
    result = runner.invoke(app, ["campaign", "--scores", str(scores_file), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "of 3.00" in result.output
    assert pd.read_csv(out)["spend"].sum() <= 3.0


def test_scores_without_decisions_are_decided_with_the_settings_policy(scores, tmp_path):
    path = tmp_path / "model_output.csv"
    scores.to_csv(path, index=False)
    out = tmp_path / "campaign.csv"
    result = runner.invoke(app, ["campaign", "--scores", str(path), "--budget", "40", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert set(pd.read_csv(out, dtype={"customer_id": str})["customer_id"]) <= set(scores["customer_id"])


@pytest.mark.parametrize(
    ("case", "message"),
    [("missing_file", "no such file"), ("missing_columns", "churn_probability"), ("negative_budget", "budget")],
)
def test_bad_input_is_one_error_line(case, message, scores, scores_file, tmp_path):
    path, budget = scores_file, "10"
    if case == "missing_file":
        path = tmp_path / "nope.parquet"
    elif case == "missing_columns":
        path = tmp_path / "partial.parquet"
        scores.drop(columns=["churn_probability"]).to_parquet(path, index=False)
    else:
        budget = "-5"
    result = runner.invoke(app, ["campaign", "--scores", str(path), "--budget", budget, "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0]
    assert "Traceback" not in result.output
    assert not (tmp_path / "c.csv").exists()


def test_decision_columns_are_not_recomputed(scores, tmp_path):
    # a file scored with another policy keeps its own decisions
    decided = decide(scores, TargetingPolicy(recent_purchase_days=0))
    path = tmp_path / "scores.parquet"
    decided.to_parquet(path, index=False)
    out = tmp_path / "campaign.csv"
    result = runner.invoke(app, ["campaign", "--scores", str(path), "--budget", "1000000", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == (~decided["exclude_from_spend"]).sum()
    assert set(DECISION_COLUMNS) <= set(decided.columns)


def test_csv_scores_with_decisions_give_the_parquet_campaign(scores, scores_file, tmp_path):
    csv_path = tmp_path / "scores.csv"
    pd.read_parquet(scores_file).to_csv(csv_path, index=False)
    outs = []
    for source in (scores_file, csv_path):
        out = tmp_path / f"campaign_{source.suffix[1:]}.csv"
        result = runner.invoke(app, ["campaign", "--scores", str(source), "--budget", "30", "--out", str(out)])
        assert result.exit_code == 0, result.output
        outs.append(pd.read_csv(out, dtype={"customer_id": str}))
    pd.testing.assert_frame_equal(outs[0], outs[1])


def test_offer_price_excludes_small_baskets_and_counts_them(scores_file, tmp_path):
    out = tmp_path / "campaign.csv"
    args = ["campaign", "--scores", str(scores_file), "--budget", "1000", "--out", str(out)]
    result = runner.invoke(app, [*args, "--offer-price", "1000000"])
    assert result.exit_code == 0, result.output
    # every customer's orders are far below a price of a million: nobody is contacted, all counted
    assert "below_offer_price" in result.output
    assert pd.read_csv(out).empty
    bad = runner.invoke(app, [*args, "--offer-price", "-5"])
    assert bad.exit_code == 1 and "offer_price must be a positive amount" in bad.output


def test_the_summary_prints_the_expected_profit_range_when_the_scores_have_clv_intervals(scores, tmp_path):
    path = tmp_path / "scores.parquet"
    decided = decide(scores, TargetingPolicy())
    decided.assign(clv_low=decided["clv"] * 0.5, clv_high=decided["clv"] * 2.0).to_parquet(path, index=False)
    result = runner.invoke(app, ["campaign", "--scores", str(path), "--budget", "40", "--out", str(tmp_path / "c.csv")])
    assert result.exit_code == 0, result.output
    line = next(row for row in result.output.splitlines() if "expected incremental profit" in row)
    expected, low, high = (float(v.replace(",", "")) for v in re.findall(r"-?[\d,]+\.\d\d", line.split("held back")[1])[2:5])
    assert low < expected < high
