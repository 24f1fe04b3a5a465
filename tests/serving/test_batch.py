"""Batch scoring: chunks of whole customers, atomic and byte-identical output, and the API's equal."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from serving_helpers import request_body
from typer.testing import CliRunner

from core.scores import DAY_SCORE_COLUMNS, EMPTY_WHEN_UNKNOWN_COLUMNS, SCORE_COLUMNS
from features.io import rejects_path_for
from patron.cli import app as cli
from serving.batch import customer_chunks, score_file, write_scores
from serving.scores_file import read_tier_boundaries
from targeting.tiers import tier_boundaries


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_chunks_hold_whole_customers_in_id_order():
    ids = pd.Series(["b", "a", "c", "a", "d", "b", "e", "c", "a"])
    chunks, n = customer_chunks(ids, chunk_size=2)
    assert n == 5
    groups = [sorted(set(ids.iloc[positions])) for positions in chunks]
    assert groups == [["a", "b"], ["c", "d"], ["e"]]
    assert sorted(np.concatenate(chunks).tolist()) == list(range(len(ids)))
    with pytest.raises(ValueError):
        customer_chunks(ids, 0)


def test_chunked_scores_equal_one_pass_tiers_included(registry, scorer, tmp_path):
    """Chunks are tiered against the whole population's boundaries: chunking changes no value."""
    whole_path, chunked_path = tmp_path / "whole.parquet", tmp_path / "chunked.parquet"
    score_file(registry.transactions_path, whole_path, scorer, registry.as_of, chunk_size=10**9, progress=False)
    score_file(registry.transactions_path, chunked_path, scorer, registry.as_of, chunk_size=97, progress=False)
    whole, chunked = pd.read_parquet(whole_path), pd.read_parquet(chunked_path)
    assert len(chunked) > 1000
    assert chunked["customer_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)


def test_tiers_are_the_configured_shares_of_the_batch_and_its_boundaries_are_saved(batch_scores, scorer):
    """Issue 10.6: 10/15/25/50 of today's base (to one customer), whatever the training snapshot's cut points."""
    frame = pd.read_parquet(batch_scores)
    counts = frame["value_tier"].value_counts()
    cumulative = np.cumsum(scorer.policy.tier_shares)
    expected = np.floor(len(frame) * cumulative + 0.5).astype(int)
    above = np.cumsum([counts.get(tier, 0) for tier in ("diamond", "gold", "silver", "regular")])
    assert above.tolist() == [*expected[:3].tolist(), len(frame)]
    saved, version = read_tier_boundaries(pq.read_schema(batch_scores).metadata)
    assert version == scorer.metadata["model_version"]
    assert saved == tier_boundaries(frame["value_score"], frame["customer_id"], scorer.policy.tier_shares)


def test_scores_file_has_the_contract_columns_and_rejects_beside(batch_scores, registry):
    frame = pd.read_parquet(batch_scores)
    assert list(frame.columns) == list(SCORE_COLUMNS)
    assert frame["customer_id"].is_unique and frame["customer_id"].is_monotonic_increasing
    assert (pd.to_datetime(frame["as_of"]) == registry.as_of).all()
    numeric = frame.drop(columns=list(EMPTY_WHEN_UNKNOWN_COLUMNS)).select_dtypes("number")
    assert np.isfinite(numeric.to_numpy()).all()
    assert rejects_path_for(batch_scores).exists()
    assert rejects_path_for(batch_scores).name == "scores.rejects.csv"


def test_rerun_is_byte_identical(registry, scorer, batch_scores, tmp_path):
    again = tmp_path / "scores.parquet"
    score_file(registry.transactions_path, again, scorer, registry.as_of, chunk_size=400, progress=False)
    assert sha256(again) == sha256(batch_scores)


def test_failed_run_leaves_previous_output_untouched_and_no_temp_files(tmp_path, batch_scores):
    out = tmp_path / "scores.parquet"
    out.write_bytes(batch_scores.read_bytes())
    before = sha256(out)
    good = pd.read_parquet(batch_scores).iloc[:10]

    def dying_chunks():
        yield good
        raise KeyboardInterrupt  # a job killed between chunks

    with pytest.raises(KeyboardInterrupt):
        write_scores(dying_chunks(), out)
    assert sha256(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet"]


def test_api_equals_batch_for_the_same_customers(client, registry, batch_scores):
    """The contract of issue 5: POST /v1/score gives the batch job's row, number for number."""
    batch = pd.read_parquet(batch_scores).set_index("customer_id", drop=False)
    rng = np.random.default_rng(5)
    ids = sorted(rng.choice(batch.index.to_numpy(), size=40, replace=False).tolist())
    response = client.post("/v1/score", json=request_body(registry.transactions, ids, registry.as_of))
    assert response.status_code == 200, response.text
    rows = response.json()["scores"]
    assert [row["customer_id"] for row in rows] == ids
    for row in rows:
        expected = batch.loc[row["customer_id"]]
        for column in SCORE_COLUMNS:
            value = expected[column]
            if column in DAY_SCORE_COLUMNS:  # as_of, and the dates that are empty when unknown
                assert row[column] == (None if pd.isna(value) else pd.Timestamp(value).date().isoformat()), column
            elif isinstance(value, float | np.floating):
                # JSON carries float64 by its shortest repr, which round-trips exactly.
                assert row[column] == float(value) or (math.isnan(value) and row[column] is None), column
            else:
                assert row[column] == (value.item() if hasattr(value, "item") else value), column


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli_env(registry, monkeypatch):
    from patron.settings import get_settings

    monkeypatch.setenv("PATRON_TRACKING_URI", registry.tracking_uri)
    monkeypatch.setenv("PATRON_MODEL_URI", registry.model_uri)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_cli_scores_and_writes_a_campaign(cli_env, registry, batch_scores, tmp_path):
    out, campaign = tmp_path / "scores.parquet", tmp_path / "campaign.csv"
    args = ["score", "--transactions", str(registry.transactions_path), "--as-of", str(registry.as_of.date())]
    args += ["--out", str(out), "--chunk-size", "400", "--campaign-budget", "25", "--campaign-out", str(campaign)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "scored" in result.output and "patron version" in result.output
    assert sha256(out) == sha256(batch_scores)  # same data, model and chunk size as the fixture
    selected = pd.read_csv(campaign)
    assert selected["spend"].sum() <= 25 + 1e-9 and len(selected) > 0


def test_cli_errors_are_one_line(cli_env, registry, tmp_path):
    base = ["score", "--transactions", str(registry.transactions_path), "--out", str(tmp_path / "s.parquet")]
    bad_date = CliRunner().invoke(cli, [*base, "--as-of", "not-a-date"])
    assert bad_date.exit_code == 1 and "error:" in bad_date.output and "Traceback" not in bad_date.output
    no_model = CliRunner().invoke(cli, [*base, "--as-of", "2011-01-01", "--model-uri", "models:/nope@champion"])
    assert no_model.exit_code == 1 and "cannot load model" in no_model.output
    assert not (tmp_path / "s.parquet").exists()


# --- a killed or failed run leaves nothing half-written (issue 15.4, 15.5) ---------------------


def test_a_killed_run_publishes_nothing_and_the_next_run_cleans_up(registry, tmp_path):
    """kill -9 a real `patron score` while it writes: no scores, no rejects; the next run removes its debris."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    out = tmp_path / "scores.parquet"
    env = {**os.environ, "PATRON_TRACKING_URI": registry.tracking_uri, "PATRON_MODEL_URI": registry.model_uri}
    command = [str(Path(sys.executable).parent / "patron"), "score", "--transactions", str(registry.transactions_path)]
    command += ["--as-of", str(registry.as_of.date()), "--out", str(out), "--chunk-size", "10"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen: list[str] = []
    deadline = time.monotonic() + 300
    while process.poll() is None and time.monotonic() < deadline:
        seen = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
        if seen:  # a temporary is being written: kill the run mid-write
            os.kill(process.pid, signal.SIGKILL)
            break
        time.sleep(0.001)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, (seen, process.stderr.read().decode()[-2000:])
    left = sorted(p.name for p in tmp_path.iterdir())
    assert left and all(name.startswith(".") for name in left)  # debris only, nothing published
    assert not out.exists() and not rejects_path_for(out).exists()

    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scores.parquet", "scores.rejects.csv"]


def test_published_files_get_the_umask_mode(registry, scorer, tmp_path):
    """Issue 15.5: an API running as another user can read what the nightly job wrote."""
    import os
    import stat

    for mask, mode in ((0o022, 0o644), (0o007, 0o660)):
        out = tmp_path / f"scores-{mask:o}.parquet"
        previous = os.umask(mask)
        try:
            score_file(registry.transactions_path, out, scorer, registry.as_of, progress=False)
        finally:
            os.umask(previous)
        assert stat.S_IMODE(out.stat().st_mode) == mode
        assert stat.S_IMODE(rejects_path_for(out).stat().st_mode) == mode


def test_stale_temporaries_of_dead_runs_are_removed_and_live_ones_kept(registry, scorer, tmp_path):
    import os

    out = tmp_path / "scores.parquet"
    dead = [tmp_path / ".scores.parquet.999999999.a1b2.tmp", tmp_path / ".scores.parquet.k3j4.tmp"]
    dead.append(tmp_path / ".scores.rejects.csv.999999999.tmp.csv")
    live = tmp_path / f".scores.parquet.{os.getppid()}.x9y8.tmp"  # a run in progress (our parent is alive)
    for path in [*dead, live]:
        path.write_bytes(b"partial")
    score_file(registry.transactions_path, out, scorer, registry.as_of, progress=False)
    assert not any(path.exists() for path in dead)
    assert live.exists()
