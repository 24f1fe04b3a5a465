"""Helpers of the serving tests (importable from test modules: `from serving_helpers import ...`)."""

from __future__ import annotations

import socket
from typing import Any

import pandas as pd
from fastapi import FastAPI
from fastapi.testclient import TestClient


def app_of(client: TestClient) -> FastAPI:
    """The FastAPI app behind a test client."""
    app = client.app
    assert isinstance(app, FastAPI)
    return app


def request_body(transactions: pd.DataFrame, customer_ids: list[str], as_of: pd.Timestamp) -> dict[str, Any]:
    """A /v1/score body for some customers of a contract frame, every contract column they have."""
    from serving.schemas import TransactionIn

    columns = [c for c in transactions.columns if c in TransactionIn.model_fields]
    chosen = transactions[transactions["customer_id"].isin(customer_ids)]
    customers = []
    for customer_id in customer_ids:  # test helper over a handful of customers
        rows = chosen[chosen["customer_id"] == customer_id]
        records = []
        for record in rows[columns].to_dict(orient="records"):
            clean = {k: v for k, v in record.items() if not (isinstance(v, float) and pd.isna(v)) and v is not None}
            clean["timestamp"] = pd.Timestamp(clean["timestamp"]).isoformat()
            records.append(clean)
        customers.append({"customer_id": str(customer_id), "transactions": records})
    return {"as_of": as_of.date().isoformat(), "customers": customers}


def free_port() -> int:
    """A TCP port on 127.0.0.1 nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
