"""Value tiers: shares within one customer, deterministic ties, cut-points agree with ranks."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from targeting.policy import TIERS
from targeting.tiers import assign_tiers, lower_bound_value, tier_cut_points

SHARES = (0.10, 0.15, 0.25, 0.50)


def _counts(tiers):
    return np.array([(tiers == t).sum() for t in TIERS])


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 2000),
    seed=st.integers(0, 2**32 - 1),
    raw=st.lists(st.floats(0.05, 1.0), min_size=4, max_size=4),
)
def test_tier_shares_are_within_one_customer(n, seed, raw):
    shares = np.array(raw) / np.sum(raw)
    values = np.random.default_rng(seed).lognormal(3, 1, n)
    tiers = assign_tiers(values, shares=shares)
    assert np.all(np.abs(_counts(tiers) - n * shares) <= 1.0 + 1e-9)


def test_default_shares_on_1000_customers_are_exact():
    tiers = assign_tiers(np.random.default_rng(1).normal(size=1000), shares=SHARES)
    assert _counts(tiers).tolist() == [100, 150, 250, 500]


def test_higher_value_never_gets_a_lower_tier():
    values = np.random.default_rng(2).lognormal(size=777)
    rank = {t: i for i, t in enumerate(TIERS)}
    tiers = np.array([rank[t] for t in assign_tiers(values, shares=SHARES)])
    order = np.argsort(-values)
    assert np.all(np.diff(tiers[order]) >= 0)


def test_ties_are_broken_by_customer_id_whatever_the_row_order():
    values = np.zeros(20)  # everyone tied: ids decide
    ids = np.array([f"c{i:02d}" for i in range(20)])
    tiers = assign_tiers(values, shares=SHARES, ids=ids)
    assert tiers[:2].tolist() == ["diamond", "diamond"]  # 10% of 20, smallest ids
    shuffle = np.random.default_rng(3).permutation(20)
    shuffled = assign_tiers(values[shuffle], shares=SHARES, ids=ids[shuffle])
    assert dict(zip(ids[shuffle], shuffled, strict=True)) == dict(zip(ids, tiers, strict=True))


def test_cut_point_tiers_equal_rank_tiers_on_the_training_data():
    values = np.random.default_rng(4).lognormal(4, 1.5, 5000)
    cuts = tier_cut_points(values, SHARES)
    assert cuts[0] >= cuts[1] >= cuts[2]
    assert (assign_tiers(values, cut_points=cuts) == assign_tiers(values, shares=SHARES)).all()


def test_single_customer_scored_alone_gets_its_batch_tier():
    values = np.random.default_rng(5).lognormal(4, 1.5, 3000)
    cuts = tier_cut_points(values, SHARES)
    batch = assign_tiers(values, cut_points=cuts)
    alone = [assign_tiers(values[i : i + 1], cut_points=cuts)[0] for i in range(0, 3000, 97)]
    assert alone == batch[::97].tolist()


def test_cut_points_put_tied_scores_in_the_better_tier():
    values = np.array([5.0, 4.0, 4.0, 1.0, 0.0] * 2)
    cuts = tier_cut_points(values, (0.1, 0.15, 0.25, 0.5))  # boundaries at 1, 3 (rounded 2.5), 5
    tiers = assign_tiers(values, cut_points=cuts)
    assert set(tiers[values == 4.0]) == {"gold"}


def test_cut_points_outside_the_training_range():
    cuts = tier_cut_points([3.0, 2.0, 1.0, 0.0], SHARES)
    assert assign_tiers([1e9, -1e9], cut_points=cuts).tolist() == ["diamond", "regular"]


@pytest.mark.parametrize(
    ("values", "cuts"),
    [([1.0, np.nan], None), ([1.0], [1.0, 2.0, 0.0]), ([1.0], [1.0, 0.5]), ([1.0], [np.inf, 1.0, 0.0])],
)
def test_bad_inputs_raise(values, cuts):
    with pytest.raises(ValueError):
        assign_tiers(values, cut_points=cuts)


def test_cut_points_need_data():
    with pytest.raises(ValueError):
        tier_cut_points([], SHARES)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 300), distinct=st.integers(1, 20))
def test_rank_order_sorts_by_score_then_id(seed, n, distinct):
    from targeting.tiers import rank_order

    rng = np.random.default_rng(seed)
    values = rng.integers(0, distinct, n).astype(float) + (rng.uniform(size=n) < 0.3) * rng.uniform(size=n)
    ids = rng.permutation([f"id{i:04d}" for i in range(n)])
    order = rank_order(values, ids)
    expected = sorted(range(n), key=lambda i: (-values[i], ids[i]))
    assert order.tolist() == expected


def test_the_lower_bound_value_scales_by_the_clv_interval_and_keeps_negative_scores():
    value = np.array([100.0, 50.0, -20.0, 30.0, 10.0])
    clv = np.array([80.0, 40.0, 10.0, 0.0, 10.0])
    low = np.array([20.0, 40.0, 5.0, 0.0, 12.0])  # the last low end above its CLV (rounding) is capped
    np.testing.assert_allclose(lower_bound_value(value, clv, low), [25.0, 50.0, -20.0, 0.0, 10.0])
    np.testing.assert_allclose(lower_bound_value(clv, clv, np.minimum(low, clv)), np.minimum(low, clv))
