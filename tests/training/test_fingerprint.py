"""Data fingerprint: stable under row and column order, sensitive to content."""

from __future__ import annotations

import pandas as pd

from training.fingerprint import data_fingerprint


def test_fingerprint_ignores_order_but_not_content():
    tx = pd.DataFrame(
        {
            "customer_id": ["a", "b", "a"],
            "timestamp": pd.to_datetime(["2020-01-01", "2020-01-02", "2020-02-01"]),
            "amount": [10.0, 5.0, -2.0],
        }
    )
    fp = data_fingerprint(tx)
    shuffled = tx.iloc[[2, 0, 1]][["amount", "customer_id", "timestamp"]]
    assert data_fingerprint(shuffled)["sha256"] == fp["sha256"]
    changed = tx.assign(amount=[10.0, 5.0, -2.5])
    assert data_fingerprint(changed)["sha256"] != fp["sha256"]
    assert fp["rows"] == 3 and fp["customers"] == 2
    assert fp["first_timestamp"].startswith("2020-01-01") and fp["last_timestamp"].startswith("2020-02-01")
