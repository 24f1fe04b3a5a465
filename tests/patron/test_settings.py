"""Settings: environment parsing and validation."""

import pytest
from pydantic import ValidationError

from core import defaults
from patron.settings import Settings


def test_defaults_match_crm_practice():
    settings = Settings()
    assert settings.tier_shares == [0.10, 0.15, 0.25, 0.50]
    assert (settings.active_days, settings.sleeping_days, settings.at_risk_days) == (90, 180, 365)
    assert settings.uplift["lost"] == 0.003
    assert settings.control_share == 0.1
    assert settings.model_uri == "models:/patron@champion"


def test_env_lists_and_maps_are_parsed(monkeypatch):
    monkeypatch.setenv("PATRON_API_KEYS", "k1, k2")
    monkeypatch.setenv("PATRON_COLUMN_MAP", "customer_id=CustomerID,timestamp=InvoiceDate")
    monkeypatch.setenv("PATRON_TIER_SHARES", "0.2,0.2,0.2,0.4")
    monkeypatch.setenv("PATRON_UPLIFT", '{"active": 0.02, "lost": 0.001}')
    settings = Settings()
    assert settings.api_keys == ["k1", "k2"]
    assert settings.column_map == {"customer_id": "CustomerID", "timestamp": "InvoiceDate"}
    assert settings.tier_shares == [0.2, 0.2, 0.2, 0.4]
    assert settings.uplift == {"active": 0.02, "lost": 0.001}


@pytest.mark.parametrize(
    ("name", "value"),
    [("PATRON_TIME_UNIT_DAYS", "3"), ("PATRON_TIER_SHARES", "0.5,0.5,0.5,0.5"), ("PATRON_COLUMN_MAP", "oops")],
)
def test_invalid_values_are_rejected(monkeypatch, name, value):
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_tracking_uri_precedence(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert Settings().resolved_tracking_uri() == defaults.TRACKING_URI
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://tracking.example:5000")
    assert Settings().resolved_tracking_uri() == "http://tracking.example:5000"
    monkeypatch.setenv("PATRON_TRACKING_URI", "sqlite:///elsewhere.db")
    assert Settings().resolved_tracking_uri() == "sqlite:///elsewhere.db"
