"""Lifecycle stages: each boundary day belongs where the settings say."""

import numpy as np
import pytest

from targeting.lifecycle import STAGE_NAMES, stage_codes


def assign_stages(days, frequency, **thresholds):
    """Stage names, as the decisions frame shows them."""
    return STAGE_NAMES[stage_codes(days, frequency, **thresholds)]


@pytest.mark.parametrize(
    ("days", "frequency", "stage"),
    [
        (0, 3, "active"),
        (89, 3, "active"),
        (89.9, 3, "active"),
        (90, 3, "sleeping"),  # "active: fewer than 90 days"
        (180, 3, "sleeping"),  # "sleeping: up to 180 days"
        (180.5, 3, "at_risk"),
        (181, 3, "at_risk"),
        (365, 3, "at_risk"),  # "at risk: up to 365 days"
        (366, 3, "lost"),  # "beyond is lost"
        (2000, 3, "lost"),
        (0, 0, "new"),
        (89, 0, "new"),
        (90, 0, "sleeping"),  # a single purchase outside the active window is not new
        (400, 0, "lost"),
    ],
)
def test_stage_boundaries(days, frequency, stage):
    assert assign_stages([days], [frequency]).tolist() == [stage]


def test_thresholds_are_arguments():
    stages = assign_stages([29, 30, 60, 61, 120, 121], [1] * 6, active_days=30, sleeping_days=60, at_risk_days=120)
    assert stages.tolist() == ["active", "sleeping", "sleeping", "at_risk", "at_risk", "lost"]


def test_stage_never_goes_back_as_days_grow():
    order = ["active", "sleeping", "at_risk", "lost"]
    days = np.arange(0, 800, 0.5)
    stages = assign_stages(days, np.ones_like(days))
    assert np.all(np.diff([order.index(s) for s in stages]) >= 0)


@pytest.mark.parametrize(
    ("days", "frequency", "kwargs"),
    [([np.nan], [1], {}), ([1, 2], [1], {}), ([1], [1], {"active_days": 100, "sleeping_days": 50})],
)
def test_bad_inputs_raise(days, frequency, kwargs):
    with pytest.raises(ValueError):
        assign_stages(days, frequency, **kwargs)
