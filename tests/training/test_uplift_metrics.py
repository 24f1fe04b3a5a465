"""Qini curve, Qini AUC and uplift@k against small cases computed by hand (scikit-uplift's definitions)."""

import numpy as np
import pytest

from training.uplift_metrics import qini_auc_score, qini_curve, uplift_at_k

Y = np.array([1, 0, 1, 0])
T = np.array([1, 1, 0, 0])


def test_qini_curve_by_hand():
    # sorted by score 4, 3, 2, 1: treated buyer, treated non-buyer, control buyer, control non-buyer
    # n=1: 1 - 0 = 1; n=2: 1; n=3: 1 - 1 * 2 / 1 = -1; n=4: 1 - 1 * 2 / 2 = 0
    x, q = qini_curve(Y, [4, 3, 2, 1], T)
    assert x.tolist() == [0, 1, 2, 3, 4]
    assert q.tolist() == [0, 1, 1, -1, 0]


def test_ties_move_together():
    # all scores equal: one point at n=4
    x, q = qini_curve(Y, [1, 1, 1, 1], T)
    assert x.tolist() == [0, 4] and q.tolist() == [0, 0]


def test_qini_auc_by_hand():
    # actual area: 0.5 + 1 + 0 - 0.5 = 1; the end point is (4, 0) so the random line has area 0.
    # perfect order (scores y*t - y*(1-t) = 1, 0, -1, 0): points (0,0), (1,1), (3,1), (4,0): area 3
    assert qini_auc_score(Y, [4, 3, 2, 1], T) == pytest.approx(1 / 3)
    assert qini_auc_score(Y, [1, 0, -1, 0], T) == pytest.approx(1.0)


def test_qini_auc_random_is_near_zero_and_reversed_is_negative():
    rng = np.random.default_rng(0)
    n = 20_000
    t = rng.random(n) < 0.5
    effect = rng.random(n)
    y = rng.random(n) < 0.1 + 0.2 * effect * t
    assert abs(qini_auc_score(y, rng.random(n), t)) < 0.05
    assert qini_auc_score(y, effect, t) > 0.1
    assert qini_auc_score(y, -effect, t) < -0.1


def test_uplift_at_k_by_hand():
    y = [1, 0, 0, 1, 0, 0]
    t = [1, 0, 1, 0, 1, 0]
    # top ceil(0.5 * 6) = 3: treated (1, 0) -> 0.5, control (0) -> 0
    assert uplift_at_k(y, [6, 5, 4, 3, 2, 1], t, k=0.5) == pytest.approx(0.5)
    # everyone: treated 1/3, control 1/3
    assert uplift_at_k(y, [6, 5, 4, 3, 2, 1], t, k=1.0) == pytest.approx(0.0)
    # a top without control customers has no uplift to show
    assert np.isnan(uplift_at_k(y, [6, 5, 4, 3, 2, 1], t, k=0.1))


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="0/1"):
        qini_auc_score([2, 0], [1, 0], [1, 0])
    with pytest.raises(ValueError, match="one length"):
        uplift_at_k([1, 0], [1], [1, 0])
    with pytest.raises(ValueError, match="k must"):
        uplift_at_k([1, 0], [1, 0], [1, 0], k=0)
