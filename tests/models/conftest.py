"""Real-data fixtures of the model tests (readers in model_data.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from model_data import ONLINE_RETAIL, read_cdnow, rfm

from features import build_features
from features.synthetic import generate_transactions

SYNTHETIC_AS_OF = "2023-12-31"


@pytest.fixture(scope="session")
def cdnow_master() -> pd.DataFrame:
    """All 69,659 CDNOW transactions (23,570 customers)."""
    return read_cdnow("CDNOW_master.txt")


@pytest.fixture(scope="session")
def cdnow_sample() -> pd.DataFrame:
    """The 2,357-customer CDNOW sample behind the published BG/NBD and Gamma-Gamma estimates."""
    return read_cdnow("CDNOW_sample.txt")


@pytest.fixture(scope="session")
def cdnow_rfm_days(cdnow_master: pd.DataFrame) -> pd.DataFrame:
    """CDNOW RFM in days over the classic 39-week calibration period (to 1997-09-30)."""
    return rfm(cdnow_master, "1997-09-30")


@pytest.fixture(scope="session")
def cdnow_sample_rfm_weeks(cdnow_sample: pd.DataFrame) -> pd.DataFrame:
    """The sample's RFM in weeks as of 1997-09-30, as in Fader, Hardie & Lee (2005)."""
    return rfm(cdnow_sample, "1997-09-30", time_unit_days=7)


@pytest.fixture(scope="session")
def online_retail() -> pd.DataFrame:
    """Online Retail purchase lines with a customer and a positive amount, as customer_id, date, amount."""
    if not ONLINE_RETAIL.exists():
        pytest.skip(f"real data folder absent: {ONLINE_RETAIL} (CI always has it)")
    raw = pd.read_csv(ONLINE_RETAIL, usecols=["CustomerID", "InvoiceDate", "Quantity", "UnitPrice"])
    raw = raw[raw["CustomerID"].notna()]
    amount = raw["Quantity"] * raw["UnitPrice"]
    raw = raw[amount > 0]
    return pd.DataFrame(
        {
            "customer_id": raw["CustomerID"].astype("int64").astype(str),
            "date": pd.to_datetime(raw["InvoiceDate"]),
            "amount": amount[amount > 0],
        }
    )


@pytest.fixture(scope="module")
def synthetic() -> pd.DataFrame:
    """2,000 generated customers: the log the scorer tests fit on."""
    return generate_transactions(2000, seed=11).transactions


@pytest.fixture(scope="module")
def features(synthetic: pd.DataFrame) -> pd.DataFrame:
    """Their features at SYNTHETIC_AS_OF."""
    return build_features(synthetic, SYNTHETIC_AS_OF)
