"""CustomerUpliftModel: learns a known effect, saves as LightGBM text + JSON and reads back the same model."""

import numpy as np
import pandas as pd
import pytest

from core.errors import ModelError, NotFittedError
from models.uplift import CustomerUpliftModel


@pytest.fixture(scope="module")
def campaign():
    rng = np.random.default_rng(3)
    n = 20_000
    x = pd.DataFrame({"promo_share": rng.random(n), "days_since_last": rng.integers(1, 400, n).astype(float)})
    treated = rng.random(n) < 0.5
    effect = 0.4 * x["promo_share"].to_numpy()  # the contact works on promotion buyers only
    bought = rng.random(n) < 0.1 + effect * treated
    return x, treated, bought, effect


def test_it_recovers_the_effect(campaign):
    x, treated, bought, effect = campaign
    model = CustomerUpliftModel().fit(x, treated, bought)
    predicted = model.predict(x)
    assert np.corrcoef(predicted, effect)[0, 1] > 0.9
    assert abs(predicted.mean() - effect.mean()) < 0.02  # 0.2 on average; sampling noise ~0.005


def test_the_channel_lift_scales_to_email_units(campaign):
    x, treated, bought, _ = campaign
    plain = CustomerUpliftModel().fit(x, treated, bought).predict(x)
    lifted = CustomerUpliftModel().fit(x, treated, bought, lift=2.0).predict(x)
    assert np.allclose(lifted, plain / 2)


def test_save_and_load_give_the_same_predictions(campaign, tmp_path):
    x, treated, bought, _ = campaign
    model = CustomerUpliftModel().fit(x, treated, bought)
    loaded = CustomerUpliftModel.load(model.save(tmp_path / "uplift"))
    assert np.array_equal(loaded.predict(x), model.predict(x))
    assert sorted(p.name for p in (tmp_path / "uplift").iterdir()) == ["control.txt", "treatment.txt", "uplift.json"]


def test_bad_use_is_one_clear_error(campaign, tmp_path):
    x, treated, bought, _ = campaign
    with pytest.raises(NotFittedError):
        CustomerUpliftModel().predict(x)
    with pytest.raises(ModelError, match="treated and control"):
        CustomerUpliftModel().fit(x, np.ones(len(x), dtype=bool), bought)
    with pytest.raises(ModelError, match="lack"):
        CustomerUpliftModel().fit(x, treated, bought).predict(x[["promo_share"]])
    with pytest.raises(ModelError, match="holds no uplift model"):
        CustomerUpliftModel.load(tmp_path)
