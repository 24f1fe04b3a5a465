"""The campaign commands end to end with a real MLflow store: generate, plan, list, report; bad input is one line."""

import pandas as pd
import pytest
from score_frames import make_scores
from typer.testing import CliRunner

from patron.cli import app
from patron.settings import get_settings
from targeting.decide import decide
from targeting.policy import TargetingPolicy

runner = CliRunner()


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("PATRON_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shop")
    log, assignments = folder / "log.parquet", folder / "campaigns.csv"
    get_settings.cache_clear()
    result = runner.invoke(
        app,
        ["generate", "--customers", "3000", "--out", str(log), "--campaigns", "2", "--campaigns-out", str(assignments), "--control-share", "0.5"],
    )
    assert result.exit_code == 0, result.output
    return log, assignments, result.output


def test_generate_writes_campaigns_with_true_uplift(generated):
    _, assignments, output = generated
    frame = pd.read_csv(assignments)
    assert {"campaign_id", "group", "send_date", "true_uplift", "customer_type"} <= set(frame.columns)
    assert set(frame["group"]) == {"treatment", "control"}
    assert set(frame["customer_type"]) == {"sure_thing", "lost_cause", "persuadable", "sleeping_dog"}
    assert (frame.loc[frame["customer_type"] == "sleeping_dog", "true_uplift"] <= 0).all()
    assert "2 past campaigns" in output


def test_report_prints_and_writes_the_csv(generated, tmp_path):
    log, assignments, _ = generated
    out = tmp_path / "report.csv"
    result = runner.invoke(app, ["campaign-report", "--assignments", str(assignments), "--transactions", str(log), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out)
    assert ((report["value_tier"] == "all") & (report["lifecycle_stage"] == "all")).sum() == 2
    assert "incremental profit" in result.output and "planner expected" in result.output


def test_campaign_is_recorded_listed_and_reported(generated, tmp_path, scores_factory_jobs):
    log, _, _ = generated
    scores = tmp_path / "scores.parquet"
    decide(scores_factory_jobs, TargetingPolicy()).to_parquet(scores, index=False)
    out = tmp_path / "list.csv"
    result = runner.invoke(
        app, ["campaign", "--scores", str(scores), "--out", str(out), "--budget", "30", "--campaign-id", "autumn", "--send-date", "2023-06-01"]
    )
    assert result.exit_code == 0, result.output
    written = pd.read_csv(out)
    assert (written["campaign_id"] == "autumn").all() and (written["send_date"] == "2023-06-01").all()
    assert "held back as control" in result.output
    listed = runner.invoke(app, ["campaigns"])
    assert listed.exit_code == 0 and "autumn" in listed.output and "2023-06-01" in listed.output
    # the scores' customers are not in the generated log: nobody bought, one line
    reported = runner.invoke(app, ["campaign-report", "--campaign", "autumn", "--transactions", str(log)])
    assert reported.exit_code != 0
    assert "no customer bought" in reported.output and "Traceback" not in reported.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--campaign", "nope"], "unknown campaign id 'nope'"),
        ([], "exactly one of --assignments"),
        (["--assignments", "missing.csv"], "not found"),
    ],
)
def test_report_refusals_are_one_line(generated, args, message):
    log, _, _ = generated
    result = runner.invoke(app, ["campaign-report", "--transactions", str(log), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_empty_ledger_says_so():
    result = runner.invoke(app, ["campaigns"])
    assert result.exit_code == 0
    assert "no campaigns recorded yet" in result.output


@pytest.fixture(scope="module")
def scores_factory_jobs():
    return make_scores(400, seed=2)


def test_a_list_without_send_date_takes_the_option(generated, tmp_path):
    log, assignments, _ = generated
    frame = pd.read_csv(assignments)
    one = frame[frame["campaign_id"] == frame["campaign_id"].iloc[0]]
    bare = tmp_path / "bare.csv"
    one.drop(columns=["send_date"]).to_csv(bare, index=False)
    refused = runner.invoke(app, ["campaign-report", "--assignments", str(bare), "--transactions", str(log)])
    assert refused.exit_code != 0 and "send_date" in refused.output
    given = runner.invoke(
        app, ["campaign-report", "--assignments", str(bare), "--transactions", str(log), "--send-date", str(one["send_date"].iloc[0])]
    )
    assert given.exit_code == 0, given.output
    assert f"campaign {one['campaign_id'].iloc[0]}: incremental profit" in given.output
