"""`patron report`: one self-contained HTML page, opened in a real headless Chromium."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from core.defaults import P_ALIVE_FLOOR
from features.repurchase import repurchase_cycles
from features.synthetic import generate_transactions
from features.synthetic_traits import with_traits
from features.validate import validate_transactions
from jobs.report import SECTIONS, ReportInputs, render_report
from models.prediction import score_transactions
from patron.cli import app
from targeting.campaign import select_campaign
from training.fit import TrainingConfig, fit_scorer

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM = "/usr/bin/chromium"
BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
runner = CliRunner()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """A scores file, a campaign list and category cycles of a generated shop with traits."""
    folder = tmp_path_factory.mktemp("report")
    traits = with_traits(generate_transactions(500, seed=21), seed=22)
    tx = validate_transactions(traits.transactions).transactions
    as_of = tx["timestamp"].max().normalize()
    scorer = fit_scorer(tx, TrainingConfig(seed=3, n_threads=1), metadata={"model_name": "patron"})
    scores = score_transactions(traits.transactions, scorer, as_of).scores
    scores.to_parquet(folder / "scores.parquet", index=False)
    campaign = select_campaign(scores, 300.0, scorer.policy)
    campaign.selected.to_csv(folder / "campaign.csv", index=False)
    repurchase_cycles(tx, as_of).to_csv(folder / "cycles.csv", index=False)
    pd.DataFrame({"group": ["contacted", "control"], "customers": [120, 40], "buyers": [30, 6]}).to_csv(
        folder / "result.csv", index=False
    )
    return folder


@pytest.fixture(scope="module")
def report(outputs):
    out = outputs / "report.html"
    result = runner.invoke(
        app,
        [
            "report",
            "--scores", str(outputs / "scores.parquet"),
            "--campaign", str(outputs / "campaign.csv"),
            "--campaign-report", str(outputs / "result.csv"),
            "--cycles", str(outputs / "cycles.csv"),
            "--out", str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert str(out) in result.output
    return out


def test_the_page_is_self_contained(report):
    text = report.read_text()
    for fetching in ("<script", "<link", "<iframe", "<img", "src=", 'href="http', "@import"):
        assert fetching not in text, fetching
    assert not re.search(r"url\((?!#)", text)  # only the SVGs' own clip paths
    assert not re.search(r'href="(?!#|data:image/png;base64,)', text)  # table of contents and inlined images
    assert "http" not in text.replace('"http://www.w3.org/2000/svg"', "").replace('"http://www.w3.org/1999/xlink"', "")
    for key, title in SECTIONS:
        assert f'id="{key}"' in text and title in text
    assert text.count("<svg") >= 6  # tiers, CLV, risk, reasons, tags, cycles


def test_the_numbers_shown_are_the_files(outputs, report):
    text = report.read_text()
    scores = pd.read_parquet(outputs / "scores.parquet")
    campaign = pd.read_csv(outputs / "campaign.csv")
    assert f"{len(scores):,} customers scored" in text
    assert f"{len(campaign):,} customers, spend {campaign['spend'].sum():,.2f}" in text
    assert "new_arrival_buyer" in text and "contacted" in text


def test_bad_input_is_one_line_and_exit_one(tmp_path):
    result = runner.invoke(app, ["report", "--scores", str(tmp_path / "missing.parquet"), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "missing.parquet does not exist" in result.output and "Traceback" not in result.output
    bare = tmp_path / "bare.csv"
    pd.DataFrame({"customer_id": ["a"]}).to_csv(bare, index=False)
    result = runner.invoke(app, ["report", "--scores", str(bare), "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 1 and "lack columns" in result.output


def test_sections_without_their_source_say_so():
    scores = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c"],
            "as_of": pd.Timestamp("2024-01-31"),
            "value_tier": ["gold", "regular", "regular"],
            "lifecycle_stage": ["active", "lost", "new"],
            "clv": [120.0, 3.0, 40.0],
            "churn_probability": [0.2, 0.9, 0.4],
        }
    )
    text = render_report(ReportInputs(scores=scores))
    assert "No campaign file given" in text and "no category column" in text and "No measured result given" in text


@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian's chromium is installed by `make setup` (make browser)")
def test_every_section_renders_in_headless_chromium(report):
    from playwright.sync_api import sync_playwright

    console_errors: list[str] = []
    requests: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=BROWSER_FLAGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            page.on("console", lambda message: console_errors.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: console_errors.append(str(error)))
            page.on("request", lambda request: requests.append(request.url))
            page.goto(report.as_uri(), wait_until="load")
            for key, title in SECTIONS:
                section = page.locator(f"section#{key}")
                assert section.is_visible(), key
                assert section.locator("h2").inner_text() == title
                box = section.bounding_box()
                assert box is not None and box["height"] > 40, key
            for key in ("tiers", "clv", "risk", "reasons", "tags", "cycles"):
                chart = page.locator(f"section#{key} svg").first.bounding_box()
                assert chart is not None and chart["width"] > 200 and chart["height"] > 80, key
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "report.png"), full_page=True)
        finally:
            browser.close()
    assert console_errors == []
    assert requests == [report.as_uri()]  # the page itself and nothing else
    assert (ARTIFACTS / "report.png").stat().st_size > 10_000


def test_the_scored_shop_carries_every_tag_and_consistent_dates(outputs):
    """The scores behind the report: all six tags occur (the log has every source column) and the
    dates follow their rules."""
    scores = pd.read_parquet(outputs / "scores.parquet")
    present = set(",".join(scores["tags"]).split(",")) - {""}
    assert present == {"promo_sensitive", "new_arrival_buyer", "high_end", "event_buyer", "full_price_loyal", "serial_returner"}
    as_of = scores["as_of"].iloc[0]
    expected = scores["expected_next_order_date"]
    assert expected.isna().equals(scores["p_alive"] < P_ALIVE_FLOOR)
    assert (expected.dropna() > as_of).all()
    contact = scores["recommended_contact_date"]
    assert (contact.dropna() >= as_of).all()
    assert contact[scores["exclude_reason"] == "negative_net_value"].isna().all()
