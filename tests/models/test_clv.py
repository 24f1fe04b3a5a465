"""CLVModel on real data: published estimates, lifetimes equivalence, fallbacks, numerical safety."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pandas as pd
import pytest
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from model_data import rfm

import models.clv as clv_module
from core.errors import ModelError
from models.clv import MENU, PREDICTION_COLUMNS, CLVModel, purchase_counts

LIFETIMES_FITTERS = {
    "bgnbd": BetaGeoFitter,
    "mbgnbd": ModifiedBetaGeoFitter,
    "pareto": ParetoNBDFitter,
}


def lifetimes_twin(model: CLVModel):
    """lifetimes fitters holding our estimates, to compare predictions formula by formula."""
    purchase = LIFETIMES_FITTERS[model.model_]()
    names = ("r", "alpha", "s", "beta") if model.model_ == "pareto" else ("r", "alpha", "a", "b")
    purchase.params_ = pd.Series({key: model.params_[key] for key in names})
    purchase.predict = (
        purchase.conditional_expected_number_of_purchases_up_to_time
    )  # set by lifetimes' fit
    spend = GammaGammaFitter()
    spend.params_ = pd.Series({key: model.params_[key] for key in ("p", "q", "v")})
    return purchase, spend


@pytest.fixture(scope="module")
def cdnow_days_model(cdnow_rfm_days) -> CLVModel:
    return CLVModel(clv_horizon_days=360).fit(cdnow_rfm_days)


@pytest.fixture(scope="module", params=MENU)
def sample_model(request, cdnow_sample_rfm_weeks) -> CLVModel:
    return CLVModel(model=request.param, time_unit_days=7).fit(cdnow_sample_rfm_weeks)


def test_reproduces_published_cdnow_estimates(cdnow_sample_rfm_weeks):
    """Fader, Hardie & Lee (2005) BG/NBD and Hardie's note 025 Gamma-Gamma, on the raw 2,357-customer sample.

    Gamma-Gamma is fitted, as published and as lifetimes' own test does, on the repeat customers'
    average spend per repeat purchase (946 customers).
    """
    model = CLVModel(model="bgnbd", time_unit_days=7).fit(cdnow_sample_rfm_weeks)
    assert model.model_ == "bgnbd" and model.fallbacks_ == []
    published = {
        "r": 0.243,
        "alpha": 4.414,
        "a": 0.793,
        "b": 2.426,
        "p": 6.25,
        "q": 3.74,
        "v": 15.44,
    }
    for key, value in published.items():
        assert model.params_[key] == pytest.approx(value, rel=0.01), key
    assert 0 < model.freq_monetary_corr_ < 0.2  # Hardie's note 025: 0.11, independence is tenable


@pytest.mark.parametrize("name", MENU)
def test_fit_on_distinct_rows_gives_the_per_customer_estimates(name, cdnow_sample_rfm_weeks):
    data = cdnow_sample_rfm_weeks
    assert (
        data.groupby(["frequency", "recency", "T"]).ngroups < len(data) / 2
    )  # the weights do compress
    ours = CLVModel(model=name, time_unit_days=7).fit(data)
    start = {"initial_params": np.ones(4)} if name == "pareto" else {}  # ours: the same fixed start
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = (
            LIFETIMES_FITTERS[name]()
            .fit(data["frequency"], data["recency"], data["T"], **start)
            .params_
        )
        repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
        spend = (
            GammaGammaFitter()
            .fit(repeat["frequency"], repeat["monetary_value"], q_constraint=True)
            .params_
        )
    # Same objective up to summation order: equal to the optimiser's tolerance (seen: < 1e-12).
    for key, value in {**theirs.to_dict(), **spend.to_dict()}.items():
        assert ours.params_[key] == pytest.approx(value, rel=1e-6), key


@pytest.mark.parametrize("name", MENU)
def test_purchase_counts_of_more_customers_fit_the_purchase_model_only(name, cdnow_sample_rfm_weeks):
    """What `patron train --engine spark` does: purchase model on a population's counts, Gamma-Gamma on a sample."""
    data = cdnow_sample_rfm_weeks
    sample = data.iloc[::4]
    whole = CLVModel(model=name, time_unit_days=7).fit(data)
    spend = CLVModel(model=name, time_unit_days=7).fit(sample)
    counts = purchase_counts(data)
    assert counts["customers"].sum() == len(data) and len(counts) < len(data) / 2
    ours = CLVModel(model=name, time_unit_days=7).fit(sample, purchase_counts=counts.iloc[::-1])  # any row order
    assert (ours.n_customers_, ours.n_purchase_rows_) == (len(data), len(counts))
    for key, value in ours.params_.items():
        expected = (spend if key in ("p", "q", "v") else whole).params_[key]
        assert value == expected or (math.isnan(value) and math.isnan(expected)), key  # the same optimiser inputs


def test_purchase_counts_are_checked_like_features(cdnow_sample_rfm_weeks):
    counts = purchase_counts(cdnow_sample_rfm_weeks)
    bad_recency = counts.assign(recency=counts["T"] + 1.0)
    with pytest.raises(ModelError, match="recency must not exceed T"):
        CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks, purchase_counts=bad_recency)
    with pytest.raises(ModelError, match="whole numbers >= 1"):
        CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks, purchase_counts=counts.assign(customers=0))
    with pytest.raises(ModelError, match="columns"):
        CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks, purchase_counts=counts.drop(columns="customers"))


def test_clv_equals_lifetimes_customer_lifetime_value(cdnow_days_model, cdnow_rfm_days):
    data = cdnow_rfm_days
    purchase, spend = lifetimes_twin(cdnow_days_model)
    theirs = spend.customer_lifetime_value(
        purchase,
        data["frequency"],
        data["recency"],
        data["T"],
        data["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq="D",
    )
    ours = cdnow_days_model.predict(data, horizon_days=90)
    # 360 days = 12 months of 30 days, lifetimes' month for freq="D"; lifetimes' CLV is on revenue.
    np.testing.assert_allclose(ours["clv"], theirs * 0.3, rtol=1e-6)
    np.testing.assert_allclose(
        ours["expected_order_value"],
        spend.conditional_expected_average_profit(data["frequency"], data["monetary_value"]),
        rtol=1e-12,
    )


def test_p_alive_and_expected_purchases_equal_lifetimes(sample_model, cdnow_sample_rfm_weeks):
    data = cdnow_sample_rfm_weeks
    purchase, _ = lifetimes_twin(sample_model)
    ours = sample_model.predict(data, horizon_days=91)
    x, t_x, T = data["frequency"], data["recency"], data["T"]
    np.testing.assert_allclose(
        ours["p_alive"], purchase.conditional_probability_alive(x, t_x, T), rtol=1e-9, atol=1e-15
    )
    expected = purchase.conditional_expected_number_of_purchases_up_to_time(13, x, t_x, T)
    np.testing.assert_allclose(ours["expected_purchases"], expected, rtol=1e-8)


def extreme_customers() -> pd.DataFrame:
    """0 and 1000 repeat purchases, ages of a day and of ten years, recency 0 and == T, huge spend."""
    rows = []
    for x in (0, 1, 1000):
        for T in (0.0, 1.0, 3650.0):
            for t_x in {0.0, T / 2, T} if x else {0.0}:
                for m in (0.0, 25.0, 1e9):
                    rows.append(
                        {
                            "frequency": float(x),
                            "recency": t_x,
                            "T": T,
                            "monetary_value": m if x else 0.0,
                        }
                    )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("horizon_days", [0, 1, 90, 3650])
def test_extreme_customers_get_finite_valid_predictions(sample_model, horizon_days):
    weeks = extreme_customers()
    weeks[["recency", "T"]] /= 7
    out = sample_model.predict(weeks, horizon_days=horizon_days)
    assert list(out.columns) == list(PREDICTION_COLUMNS)
    assert np.isfinite(out.to_numpy()).all()
    assert out["p_alive"].between(0, 1).all()
    assert (
        (out["expected_purchases"] >= 0).all()
        and (out["clv"] >= 0).all()
        and (out["expected_order_value"] > 0).all()
    )
    if horizon_days == 0:
        assert (out["expected_purchases"] == 0).all()


def test_longer_horizons_and_recent_buyers_get_more_expected_purchases(
    cdnow_days_model, cdnow_rfm_days
):
    short = cdnow_days_model.predict(cdnow_rfm_days, horizon_days=30)
    long = cdnow_days_model.predict(cdnow_rfm_days, horizon_days=365)
    assert (long["expected_purchases"] >= short["expected_purchases"]).all()
    assert (long["clv"] == short["clv"]).all()  # the CLV horizon is the model's, not the call's
    recent = cdnow_rfm_days.assign(
        recency=cdnow_rfm_days["T"].where(cdnow_rfm_days["frequency"] > 0, 0.0)
    )
    assert (cdnow_days_model.predict(recent, 90)["p_alive"] >= short["p_alive"] - 1e-12).all()


def test_margin_rate_column_is_used_per_row(cdnow_days_model, cdnow_rfm_days):
    data = cdnow_rfm_days.head(50)
    plain = cdnow_days_model.predict(data, horizon_days=90)
    margins = np.where(np.arange(50) % 2 == 0, 0.6, np.nan)
    with_cost = cdnow_days_model.predict(data.assign(margin_rate=margins), horizon_days=90)
    expected = np.where(np.isnan(margins), plain["clv"], plain["clv"] * 2)
    np.testing.assert_allclose(with_cost["clv"], expected, rtol=1e-12)


def test_monthly_discounting_lowers_clv(cdnow_rfm_days, cdnow_days_model):
    undiscounted = CLVModel.from_dict(
        {
            **cdnow_days_model.to_dict(),
            "hyperparameters": {**cdnow_days_model.get_params(), "monthly_discount_rate": 0.0},
        }
    )
    data = cdnow_rfm_days.head(500)
    assert (
        undiscounted.predict(data, 90)["clv"] >= cdnow_days_model.predict(data, 90)["clv"]
    ).all()


def test_json_round_trip_predicts_identically(cdnow_days_model, cdnow_rfm_days):
    text = json.dumps(cdnow_days_model.to_dict(), allow_nan=False)
    assert len(text) < 5_000
    restored = CLVModel.from_dict(json.loads(text))
    assert (
        restored.model_ == cdnow_days_model.model_
        and restored.fallbacks_ == cdnow_days_model.fallbacks_
    )
    pd.testing.assert_frame_equal(
        restored.predict(cdnow_rfm_days, 90), cdnow_days_model.predict(cdnow_rfm_days, 90)
    )


def test_pareto_description_keeps_every_key_json_safe(cdnow_sample_rfm_weeks):
    model = CLVModel(model="pareto", time_unit_days=7).fit(cdnow_sample_rfm_weeks)
    assert set(model.params_) == {"r", "alpha", "a", "b", "s", "beta", "p", "q", "v"}
    assert math.isnan(model.params_["a"]) and math.isnan(model.params_["b"])
    restored = CLVModel.from_dict(json.loads(json.dumps(model.to_dict(), allow_nan=False)))
    assert math.isnan(restored.params_["a"])
    pd.testing.assert_frame_equal(
        restored.predict(cdnow_sample_rfm_weeks, 91), model.predict(cdnow_sample_rfm_weeks, 91)
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda f: f.drop(columns=["T"]), "lack the RFM columns"),
        (lambda f: f.assign(recency=f["T"] + 1), "must not exceed T"),
        (lambda f: f.assign(frequency=f["frequency"] + 0.5), "whole number"),
        (lambda f: f.assign(T=np.nan), "missing or infinite"),
        (
            lambda f: f.assign(recency=np.where(f["frequency"] == 0, 1.0, f["recency"])),
            "recency must be 0",
        ),
    ],
)
def test_invalid_rfm_is_refused_with_a_clear_message(
    cdnow_days_model, cdnow_rfm_days, change, message
):
    with pytest.raises(ModelError, match=message):
        cdnow_days_model.predict(change(cdnow_rfm_days.head(100).copy()), horizon_days=90)
    with pytest.raises(ModelError, match=message):
        CLVModel().fit(change(cdnow_rfm_days.head(100).copy()))


def test_predict_before_fit_says_what_to_do():
    with pytest.raises(ModelError, match="not fitted yet"):
        CLVModel().predict(
            pd.DataFrame(
                {"frequency": [0.0], "recency": [0.0], "T": [1.0], "monetary_value": [0.0]}
            ),
            90,
        )


def test_failures_fall_back_along_the_menu_and_are_recorded(
    monkeypatch, cdnow_sample_rfm_weeks, caplog
):
    real = clv_module._fit_purchase_model

    def flaky(name, penalizer, *args):
        if name == "bgnbd" or (name == "mbgnbd" and penalizer < 0.01):
            raise clv_module._FitFailure("ConvergenceError (simulated)")
        return real(name, penalizer, *args)

    monkeypatch.setattr(clv_module, "_fit_purchase_model", flaky)
    with caplog.at_level("WARNING", logger="models.clv"):
        model = CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks)
    assert (model.model_, model.purchase_penalizer_) == ("mbgnbd", 0.01)
    assert model.fallbacks_[:4] == [
        f"bgnbd (penalizer {p:g}): ConvergenceError (simulated)" for p in (0, 0.001, 0.01, 0.1)
    ]
    assert "falling back to mbgnbd" in model.fallbacks_[4]
    assert model.fallbacks_[-1] == "using mbgnbd with penalizer 0.01"
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == len(model.fallbacks_)


def test_every_model_failing_raises_a_model_error_naming_each_attempt(
    monkeypatch, cdnow_sample_rfm_weeks
):
    def broken(name, penalizer, *args):
        raise clv_module._FitFailure("ConvergenceError (simulated)")

    monkeypatch.setattr(clv_module, "_fit_purchase_model", broken)
    with pytest.raises(ModelError) as info:
        CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks)
    for name in MENU:
        for penalizer in ("0", "0.001", "0.01", "0.1"):
            assert f"{name} (penalizer {penalizer})" in str(info.value)


def test_degenerate_estimates_count_as_failures_but_remain_a_last_resort(
    monkeypatch, cdnow_sample_rfm_weeks
):
    def ridge(name, penalizer, *args):
        params = (
            {"r": 0.7, "alpha": 9.0, "a": 3e-22, "b": 1.5e-15}
            if name != "pareto"
            else {"r": 0.7, "alpha": 9.0, "s": 1e-12, "beta": 300.0}
        )
        return clv_module._check_estimates(params)

    monkeypatch.setattr(clv_module, "_fit_purchase_model", ridge)
    model = CLVModel(time_unit_days=7).fit(cdnow_sample_rfm_weeks)
    assert (model.model_, model.purchase_penalizer_) == ("bgnbd", 0.0)
    assert "degenerate estimate a=3e-22" in model.fallbacks_[0]
    assert model.fallbacks_[-1].startswith(
        "every fit was degenerate; keeping bgnbd with penalizer 0"
    )
    out = model.predict(cdnow_sample_rfm_weeks, 91)
    assert np.isfinite(out.to_numpy()).all() and out["p_alive"].between(0, 1).all()


def test_too_few_repeat_buyers_for_gamma_gamma_is_a_clear_error():
    data = pd.DataFrame(
        {
            "frequency": [0.0, 0, 1, 0],
            "recency": [0.0, 0, 3, 0],
            "T": [5.0, 9, 9, 2],
            "monetary_value": [0.0, 0, 10, 0],
        }
    )
    with pytest.raises(ModelError, match="Gamma-Gamma needs repeat customers"):
        CLVModel().fit(data)


@pytest.mark.slow
@pytest.mark.realdata
def test_online_retail_fit_survives_lifetimes_convergence_errors(online_retail):
    """Calibration data of the out-of-time design (to E - 90 days), in weeks: BG/NBD's likelihood
    runs along the ridge a -> 0, b -> inf; lifetimes raises ConvergenceError at penalizers 0 and
    0.001 and the penalized fits end at the boundary, so the model falls back and says so."""
    data = rfm(online_retail, "2011-09-10", time_unit_days=7)
    model = CLVModel(time_unit_days=7).fit(data)
    assert model.fallbacks_[0].startswith("bgnbd (penalizer 0): ConvergenceError")
    assert model.fallbacks_[1].startswith("bgnbd (penalizer 0.001): ConvergenceError")
    assert any("falling back to mbgnbd" in line for line in model.fallbacks_)
    assert model.model_ in MENU and model.model_ != "bgnbd"
    assert model.params_["q"] > 1
    out = model.predict(data, horizon_days=90)
    assert np.isfinite(out.to_numpy()).all() and out["p_alive"].between(0, 1).all()
    assert out["expected_purchases"].sum() > 0


def test_several_horizons_in_one_pass_equal_one_pass_per_horizon(cdnow_days_model, cdnow_rfm_days):
    both = cdnow_days_model.predict_horizons(cdnow_rfm_days, (90, 365))
    for horizon in (90, 365):
        single = cdnow_days_model.predict(cdnow_rfm_days, horizon_days=horizon)
        np.testing.assert_array_equal(both[f"expected_purchases_{horizon}d"], single["expected_purchases"])
        for column in ("p_alive", "expected_order_value", "clv"):
            np.testing.assert_array_equal(both[column], single[column])
    with pytest.raises(ModelError):
        cdnow_days_model.predict_horizons(cdnow_rfm_days, (-1,))
