"""Where the real data sets are, and how they map onto the transaction contract."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ONLINE_RETAIL = REPO_ROOT.parent / "shared" / "data" / "online_retail" / "online_retail_2010-12_2011-12.csv.gz"
ONLINE_RETAIL_MAP = {
    "customer_id": "CustomerID",
    "order_id": "InvoiceNo",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "channel": "Country",
}
CDNOW_MAP = {"timestamp": "date", "amount": "dollar_value", "quantity": "number_of_cds"}


def lifetimes_dataset(name: str) -> Path:
    """A data file shipped inside the lifetimes package."""
    return Path(str(importlib.resources.files("lifetimes") / "datasets" / name))
