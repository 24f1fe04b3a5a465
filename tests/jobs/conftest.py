"""Fixtures for the campaign jobs: a generated shop with simulated past campaigns (known true uplift)."""

from __future__ import annotations

import pytest

from features.synthetic import generate_transactions
from targeting.simulated_campaigns import SimulatedCampaigns, simulate_campaigns


@pytest.fixture(scope="session")
def shop() -> SimulatedCampaigns:
    """4,000 customers, 3 past campaigns with half of each held back as control."""
    data = generate_transactions(4000, seed=7)
    return simulate_campaigns(data, 3, control_share=0.5, seed=7)
