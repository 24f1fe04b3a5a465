"""TargetingPolicy: defaults agree with the settings, JSON round trip, validation."""

import json

import pytest

from patron.settings import Settings
from targeting.policy import TargetingPolicy


def test_defaults_are_the_settings_defaults():
    assert TargetingPolicy() == TargetingPolicy.from_settings(Settings())


def test_from_settings_reads_overrides(monkeypatch):
    monkeypatch.setenv("PATRON_ACTIVE_DAYS", "60")
    monkeypatch.setenv("PATRON_UPLIFT", '{"lost": 0.001}')
    policy = TargetingPolicy.from_settings(Settings())
    assert policy.active_days == 60
    assert policy.uplift["lost"] == 0.001
    # stages left out of a partial mapping keep their defaults
    assert policy.uplift["sleeping"] == 0.008


def test_json_round_trip_gives_an_equal_policy():
    policy = TargetingPolicy(active_days=30, contact_costs={"email": 0.02, "sms": 0.1}, perk_tiers=("diamond",))
    restored = TargetingPolicy.from_dict(json.loads(json.dumps(policy.to_dict())))
    assert restored == policy
    assert hash(restored) == hash(policy)


def test_from_dict_ignores_unknown_keys_and_fills_missing_ones():
    policy = TargetingPolicy.from_dict({"active_days": 45, "from_a_newer_version": 1})
    assert policy.active_days == 45
    assert policy.sleeping_days == TargetingPolicy().sleeping_days


def test_policy_is_frozen():
    policy = TargetingPolicy()
    with pytest.raises(AttributeError):
        policy.active_days = 10  # type: ignore[misc]
    with pytest.raises(TypeError):
        policy.uplift["lost"] = 1.0  # type: ignore[index]


def test_channels_are_cheapest_first():
    assert TargetingPolicy().channels == ["email", "sms", "mail"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"tier_shares": (0.5, 0.5, 0.0, 0.0)},
        {"tier_shares": (0.1, 0.1, 0.1, 0.1)},
        {"active_days": 200},
        {"active_days": 0},
        {"contact_costs": {}},
        {"contact_costs": {"email": -1.0}},
        {"uplift": {"lost": 1.5}},
        {"base_conversion": {"new": float("nan")}},
        {"control_share": 1.0},
        {"control_share": -0.1},
        {"max_incentive_share": 2.0},
        {"perk_tiers": ("platinum",)},
    ],
)
def test_invalid_policies_are_rejected(kwargs):
    with pytest.raises(ValueError):
        TargetingPolicy(**kwargs)
