"""POST /v1/campaign holds back a control group; GET /v1/model says where the uplift figures come from."""

from __future__ import annotations

import pandas as pd


def test_campaign_holds_back_a_reproducible_control_group(client, batch_scores):
    ids = pd.read_parquet(batch_scores)["customer_id"].astype(str).tolist()[:400]
    body = {"budget": 1e6, "customer_ids": ids, "campaign_id": "spring", "control_share": 0.3}
    first = client.post("/v1/campaign", json=body)
    assert first.status_code == 200, first.text
    answer = first.json()
    assert answer["campaign_id"] == "spring"
    selected = pd.DataFrame(answer["selected"])
    control = selected[selected["group"] == "control"]
    assert len(control) > 0 and (selected["campaign_id"] == "spring").all()
    assert (control["channel"] == "none").all() and (control["spend"] == 0).all()
    assert sum(row["control"] for row in answer["summary"]) == len(control)
    again = pd.DataFrame(client.post("/v1/campaign", json=body).json()["selected"])
    assert set(again.loc[again["group"] == "control", "customer_id"]) == set(control["customer_id"])


def test_bad_control_share_is_422_naming_the_field(client):
    response = client.post("/v1/campaign", json={"budget": 5.0, "customer_ids": ["x"], "control_share": 1.0})
    assert response.status_code == 422
    assert any("control_share" in error["loc"] for error in response.json()["detail"])


def test_model_info_shows_the_uplift_and_its_source(client):
    uplift = client.get("/v1/model").json()["uplift"]
    learner = uplift.pop("learner")
    assert set(uplift) == {"new", "active", "sleeping", "at_risk", "lost"}
    assert all(entry["source"] in ("measured", "default") for entry in uplift.values())
    assert all(set(entry["tiers"]) == {"diamond", "gold", "silver", "regular"} for entry in uplift.values())
    # a model trained without campaigns: the table's defaults, no per-customer model
    assert learner["chosen"] == "segment_table"
    assert all(t["uplift"] == entry["uplift"] for entry in uplift.values() for t in entry["tiers"].values())
