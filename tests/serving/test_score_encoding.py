"""`patron score` decodes the transaction log strictly too: `--encoding` or one clear error line."""

from __future__ import annotations

import pandas as pd
from typer.testing import CliRunner

from patron.cli import app
from patron.settings import Settings

runner = CliRunner()


def test_score_refuses_undecodable_input_and_scores_it_with_encoding(registry, tmp_path, monkeypatch):
    raw = pd.read_parquet(registry.transactions_path)
    first = raw[raw["customer_id"].isin(raw["customer_id"].drop_duplicates().head(3))].copy()
    names = dict(zip(first["customer_id"].drop_duplicates(), ["M\u00e4ller", "M\u00fcller", "M\u00f6ller"], strict=True))
    first["customer_id"] = first["customer_id"].map(names)
    log = tmp_path / "m.csv"
    first.to_csv(log, index=False, encoding="latin-1")
    settings = Settings(tracking_uri=registry.tracking_uri, model_uri=registry.model_uri)
    monkeypatch.setattr("patron.cli.get_settings", lambda: settings)
    out = tmp_path / "scores.parquet"
    args = ["score", "--transactions", str(log), "--as-of", str(registry.as_of.date()), "--out", str(out)]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 1
    assert "not valid utf-8 at byte" in refused.output and "--encoding" in refused.output
    assert not out.exists()
    scored = runner.invoke(app, [*args, "--encoding", "latin-1"])
    assert scored.exit_code == 0, scored.output
    assert sorted(pd.read_parquet(out)["customer_id"]) == ["M\u00e4ller", "M\u00f6ller", "M\u00fcller"]
