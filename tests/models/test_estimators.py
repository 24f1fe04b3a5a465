"""CLVModel, ChurnModel and ValueModel behave as scikit-learn estimators (get/set_params, clone, repr)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import check_is_fitted

from core.errors import ModelError, NotFittedError
from models.churn import ChurnModel
from models.clv import CLVModel
from models.value import ValueModel

ESTIMATORS = [
    (CLVModel, {"model": "pareto", "clv_horizon_days": 180}),
    (ChurnModel, {"num_leaves": 4, "calibration": "platt", "monotone_constraints": {"recency": -1}}),
    (ValueModel, {"learning_rate": 0.1, "seed": 7}),
]
ROW = pd.DataFrame({"frequency": [1.0], "recency": [3.0], "T": [9.0], "monetary_value": [10.0]})


@pytest.mark.parametrize(("cls", "params"), ESTIMATORS, ids=lambda v: getattr(v, "__name__", ""))
def test_init_stores_only_the_hyperparameters(cls, params):
    model = cls(**params)
    assert vars(model) == model.get_params(deep=False)
    assert {key: model.get_params()[key] for key in params} == params


@pytest.mark.parametrize(("cls", "params"), ESTIMATORS, ids=lambda v: getattr(v, "__name__", ""))
def test_clone_set_params_and_repr(cls, params):
    model = cls(**params)
    copy = clone(model)
    assert copy is not model and copy.get_params() == model.get_params()
    name, value = next(iter(params.items()))
    default = cls().get_params()[name]
    assert copy.set_params(**{name: default}) is copy and copy.get_params()[name] == default != value
    assert f"{name}={value!r}" in repr(model)
    assert repr(cls()) == f"{cls.__name__}()"  # defaults are not repeated in the repr
    with pytest.raises(ValueError):
        model.set_params(not_a_hyperparameter=1)


@pytest.mark.parametrize(("cls", "params"), ESTIMATORS, ids=lambda v: getattr(v, "__name__", ""))
def test_unfitted_models_raise_a_not_fitted_error_scikit_learn_recognises(cls, params):
    model = cls(**params)
    with pytest.raises(SklearnNotFittedError):
        check_is_fitted(model)
    predict = model.predict_horizons if cls is CLVModel else (model.predict_proba if cls is ChurnModel else model.predict)
    args = (ROW, (90,)) if cls is CLVModel else (ROW,)
    with pytest.raises(NotFittedError, match="not fitted yet") as info:
        predict(*args)
    assert isinstance(info.value, ModelError) and isinstance(info.value, SklearnNotFittedError)


def test_clone_of_a_fitted_model_is_unfitted_with_the_same_hyperparameters():
    rng = np.random.default_rng(0)
    frequency = rng.integers(0, 6, size=400).astype(float)
    T = rng.uniform(30, 300, size=400)
    recency = np.where(frequency > 0, T * rng.uniform(0.1, 1.0, size=400), 0.0)
    features = pd.DataFrame(
        {"frequency": frequency, "recency": recency, "T": T, "monetary_value": np.where(frequency > 0, rng.gamma(3, 10, 400), 0)}
    )
    fitted = CLVModel(clv_horizon_days=180).fit(features)
    check_is_fitted(fitted)
    fresh = clone(fitted)
    assert fresh.get_params() == fitted.get_params() and not hasattr(fresh, "params_")


def test_unfitted_menu_churn_models_raise_the_same_not_fitted_error():
    """The logistic model and the blend, the menu's other churn choices, honour the same contract."""
    from models.blend_churn import BlendChurnModel
    from models.linear_churn import LogisticChurnModel

    for model in (LogisticChurnModel(), BlendChurnModel(ChurnModel())):
        with pytest.raises(NotFittedError, match="not fitted yet"):
            model.predict_proba(ROW)
