"""Batch scoring: chunks of whole customers, atomic and byte-identical output, and the API's equal."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pandas as pd
import pytest
from serving_helpers import request_body
from typer.testing import CliRunner

from core.scores import DAY_SCORE_COLUMNS, EMPTY_WHEN_UNKNOWN_COLUMNS, SCORE_COLUMNS
from features.io import rejects_path_for
from patron.cli import app as cli
from serving.batch import (
    customer_chunks,
    score_file,
    score_transactions,
    write_scores,
)


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


def test_chunked_scores_equal_one_pass(registry, scorer):
    whole = score_transactions(registry.transactions, scorer, registry.as_of, chunk_size=10**9)
    chunked = score_transactions(registry.transactions, scorer, registry.as_of, chunk_size=97)
    assert len(chunked) > 1000
    assert chunked["customer_id"].is_monotonic_increasing
    pd.testing.assert_frame_equal(chunked, whole, check_exact=True)


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
