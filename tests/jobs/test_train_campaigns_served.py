"""From the command line to the served model: `patron generate --campaigns`, `patron train --campaigns`,
`patron serve` (real uvicorn on 127.0.0.1); /v1/model shows the learned uplift as the MLflow run logged it
and /v1/score prices each customer with the per-customer uplift model the training chose."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import pytest
from subprocesses import stop, wait_until_up

from serving.schemas import TransactionIn

pytestmark = pytest.mark.integration

PATRON = str(Path(sys.executable).with_name("patron"))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run(args: list[str], env: dict[str, str], cwd: Path) -> str:
    done = subprocess.run([PATRON, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A generated shop with 4 past campaigns, trained on with `--campaigns`; the served API's base URL."""
    folder = tmp_path_factory.mktemp("closed_loop")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    env = {**os.environ, "PATRON_TRACKING_URI": uri, "PATRON_MODEL_URI": "models:/patron@champion"}
    _run(["generate", "--customers", "12000", "--out", "shop.parquet", "--campaigns", "4", "--campaigns-out", "c.csv", "--control-share", "0.5"], env, folder)
    output = _run(["train", "--transactions", "shop.parquet", "--campaigns", "c.csv", "--force-promote"], env, folder)
    port = _free_port()
    log = folder / "server.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [PATRON, "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"], env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(f"{base}/healthz", process, log, "patron serve")
        yield {"base": base, "uri": uri, "folder": folder, "output": output}
    finally:
        stop(process)


def test_the_training_run_and_the_served_model_show_the_same_uplift(trained):
    assert "uplift learner: customer_model" in trained["output"]
    info = httpx.get(f"{trained['base']}/v1/model", timeout=30).json()
    uplift = info["uplift"]
    client = mlflow.MlflowClient(tracking_uri=trained["uri"])
    run = client.search_runs([client.get_experiment_by_name("patron").experiment_id])[0]
    logged = json.loads(Path(client.download_artifacts(run.info.run_id, "uplift.json", str(trained["folder"]))).read_text())
    assert logged == uplift  # stages, tiers, sources and the learner, figure for figure
    assert {uplift[s]["source"] for s in ("new", "active", "sleeping", "at_risk", "lost")} == {"measured"}
    assert any(t["source"] == "measured" for t in uplift["active"]["tiers"].values())
    learner = uplift["learner"]
    assert learner["chosen"] == "customer_model"
    assert learner["customer_model_qini_auc"] > learner["segment_table_qini_auc"]
    assert run.data.metrics["uplift_customer_model_qini_auc"] == pytest.approx(learner["customer_model_qini_auc"])
    assert run.data.tags["uplift_learner"] == "customer_model"


def test_served_scores_carry_each_customers_own_uplift(trained):
    log = pd.read_parquet(trained["folder"] / "shop.parquet")
    ids = log["customer_id"].drop_duplicates().iloc[:40].tolist()
    rows = log[log["customer_id"].isin(ids)]
    columns = [c for c in TransactionIn.model_fields if c in rows.columns and c != "customer_id"]
    customers = []
    for cid, group in rows.groupby("customer_id", sort=False):  # 40 customers
        records = group[columns].assign(timestamp=group["timestamp"].map(pd.Timestamp.isoformat)).to_dict(orient="records")
        customers.append({"customer_id": str(cid), "transactions": records})
    body = {"as_of": log["timestamp"].max().date().isoformat(), "customers": customers}
    response = httpx.post(f"{trained['base']}/v1/score", json=body, timeout=60)
    assert response.status_code == 200, response.text
    scores = pd.DataFrame(response.json()["scores"])
    table = httpx.get(f"{trained['base']}/v1/model", timeout=30).json()["uplift"]
    cells = {round(t["uplift"], 12) for s in ("new", "active", "sleeping", "at_risk", "lost") for t in table[s]["tiers"].values()}
    assert scores["uplift"].notna().all()
    # the model's figures, not the table's: (nearly) every customer has its own
    assert scores["uplift"].round(12).nunique() > 30 and not set(scores["uplift"].round(12)) <= cells
