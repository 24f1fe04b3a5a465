"""Real data sets that ship with Patron's dependencies, and how they map onto the transaction contract."""

from __future__ import annotations

import importlib.resources
from pathlib import Path

# CDNOW_master.txt (inside lifetimes): whitespace-separated, a header line, dates as YYYYMMDD.
CDNOW_MAPPING = {"timestamp": "date", "amount": "dollar_value", "quantity": "number_of_cds"}
CDNOW_DATE_FORMAT = "%Y%m%d"

# The UCI Online Retail export (one row per order line; negative quantities are returns).
ONLINE_RETAIL_MAPPING = {
    "customer_id": "CustomerID",
    "order_id": "InvoiceNo",
    "timestamp": "InvoiceDate",
    "quantity": "Quantity",
    "unit_price": "UnitPrice",
    "channel": "Country",
}


def lifetimes_dataset(name: str) -> Path:
    """Path of a data file shipped inside the lifetimes package (e.g. `CDNOW_master.txt`)."""
    return Path(str(importlib.resources.files("lifetimes") / "datasets" / name))


def cdnow_master_path() -> Path:
    """Path of CDNOW_master.txt: 23,570 customers' CD purchases, 1997-01 to 1998-06."""
    return lifetimes_dataset("CDNOW_master.txt")
