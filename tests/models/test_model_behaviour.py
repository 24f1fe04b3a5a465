"""Model behaviour from transactions (through `models.prediction.score_transactions`), for every model
the training menus can choose: a purchase on the as-of day never raises churn risk nor lowers P(alive);
a return never raises net value, CLV or its interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from features.synthetic import generate_transactions
from models.clv import MENU as BTYD_MENU
from models.prediction import score_transactions
from training.fit import TrainingConfig, fit_scorer
from training.menu import CHURN_CHOICES, InnerChoice

CUSTOMERS = 300  # changed customers per check; the rest of the population stays as it was
EPS = 1e-9  # float noise of the closed forms


@pytest.fixture(scope="module")
def log() -> pd.DataFrame:
    """1,500 generated customers over two years."""
    return generate_transactions(1500, seed=5).transactions


# Every BTYD model with the default churn level, and every other churn choice with the default BTYD model.
MENU_CHOICES = [(btyd, "lightgbm_default") for btyd in BTYD_MENU] + [
    ("bgnbd", level) for level in CHURN_CHOICES if level != "lightgbm_default"
]


@pytest.fixture(scope="module", params=MENU_CHOICES, ids=lambda choice: "-".join(choice))
def scored(request, log) -> dict[str, object]:
    """A scorer fitted with one menu choice, and the population's scores at the last day."""
    btyd, level = request.param
    config = InnerChoice("bgnbd", level, "regressor", {}, {}).config_for(TrainingConfig(n_threads=1))
    scorer = fit_scorer(log, config=config, btyd_model=btyd, value_source="regressor")
    as_of = log["timestamp"].max().normalize()
    # tiers placed against the training boundaries, so one customer's purchase cannot move others' tiers
    base = score_transactions(log, scorer, as_of, tier_boundaries=scorer.training_tier_boundaries()).scores.set_index("customer_id")
    return {"scorer": scorer, "as_of": as_of, "base": base}


def _extra_rows(log: pd.DataFrame, as_of: pd.Timestamp, is_return: bool) -> pd.DataFrame:
    """One row on the as-of day for each of `CUSTOMERS` customers: a purchase, or a return of part of one."""
    last = log.sort_values("timestamp").groupby("customer_id").tail(1)
    rows = last[~last["is_return"]].sample(CUSTOMERS, random_state=0).copy()
    rows["timestamp"] = as_of + pd.Timedelta(hours=12)
    rows["order_id"] = rows["order_id"] + ("-R" if is_return else "-X")
    if is_return:
        for column in ("amount", "cost", "quantity"):
            rows[column] = -rows[column].abs() / 2
        rows["is_return"] = True
    return rows


def _after_purchase(scored: dict[str, object], log: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.Index]:
    """Scores of the changed customers before and after a purchase on the as-of day, and the others' ids."""
    extra = _extra_rows(log, scored["as_of"], is_return=False)
    after = score_transactions(
        pd.concat([log, extra]), scored["scorer"], scored["as_of"], tier_boundaries=scored["scorer"].training_tier_boundaries()
    ).scores.set_index("customer_id")
    ids = pd.Index(extra["customer_id"].unique())
    others = after.index.difference(ids)
    pd.testing.assert_frame_equal(after.loc[others], scored["base"].loc[others])  # nobody else moves
    return scored["base"].loc[ids], after.loc[ids], ids


def test_a_purchase_on_the_as_of_day_never_lowers_p_alive(scored, log, request):
    if scored["scorer"].clv_model.model_ == "bgnbd":
        # BG/NBD's own assumption: a customer without a repeat purchase cannot have dropped out, so
        # P(alive) = 1 at x = 0 and falls below 1 with the first repeat (Fader, Hardie & Lee 2005,
        # section 5; MBG/NBD was made to remove this). Kept visible, not skipped.
        request.applymarker(pytest.mark.xfail(strict=True, reason="BG/NBD: P(alive) = 1 before the first repeat purchase"))
    before, now, _ = _after_purchase(scored, log)
    assert (now["p_alive"] >= before["p_alive"] - EPS).all()


def test_a_purchase_on_the_as_of_day_never_raises_churn_risk(scored, log):
    # every churn model reads only features a purchase moves one way, under the matching constraint
    # (training.fit.churn_inputs, CHURN_MONOTONE)
    before, now, _ = _after_purchase(scored, log)
    rise = now["churn_probability"] - before["churn_probability"]
    assert (rise <= EPS).all(), rise.nlargest(3)


def test_a_return_never_raises_net_value_nor_clv(scored, log):
    extra = _extra_rows(log, scored["as_of"], is_return=True)
    after = score_transactions(
        pd.concat([log, extra]), scored["scorer"], scored["as_of"], tier_boundaries=scored["scorer"].training_tier_boundaries()
    ).scores.set_index("customer_id")
    ids = extra["customer_id"].unique()
    before = scored["base"].loc[ids]
    now = after.loc[ids]
    for column in ("net_value", "clv", "clv_low", "clv_high"):
        grew = now[column] > before[column] + EPS * np.maximum(1.0, before[column].abs())
        assert not grew.any(), (column, (now[column] - before[column])[grew].head(3))
