"""The generator: reproducible, realistic, and faithful to the BG/NBD + Gamma-Gamma parameters."""

import numpy as np
import pandas as pd

from features import build_features, validate_transactions
from features.synthetic import GeneratorParams, generate_transactions


def test_same_seed_same_log_and_other_seed_differs():
    first = generate_transactions(500, seed=11)
    again = generate_transactions(500, seed=11)
    pd.testing.assert_frame_equal(first.transactions, again.transactions)
    pd.testing.assert_frame_equal(first.customers, again.customers)
    assert not generate_transactions(500, seed=12).transactions.equals(first.transactions)


def test_log_passes_the_contract_and_has_every_optional_field():
    data = generate_transactions(2000, seed=3)
    result = validate_transactions(data.transactions)
    assert result.summary["rows_rejected"] == 0
    assert {"order_id", "category", "discount", "promo", "cost", "channel", "is_return"} <= set(result.transactions.columns)
    assert 0 < result.transactions["is_return"].mean() < 0.3


def test_population_parameters_are_recovered_in_the_truth():
    params = GeneratorParams()
    truth = generate_transactions(40_000, seed=5).customers
    # Means of Gamma(r, alpha) and Beta(a, b) within 3% (standard errors are about 1% at this size).
    assert abs(truth["lambda_"].mean() / (params.r / params.alpha) - 1) < 0.03
    assert abs(truth["p_dropout"].mean() / (params.a / (params.a + params.b)) - 1) < 0.03
    assert 0.02 < truth["unprofitable"].mean() < 0.10
    assert truth.loc[truth["heavy_returner"], "unprofitable"].mean() > 0.5


def test_unprofitable_customers_return_more():
    data = generate_transactions(5000, seed=9)
    features = build_features(data.transactions, "2023-12-31")
    truth = data.customers.loc[features.index]
    rates = features.groupby(truth["unprofitable"].to_numpy())["return_value_share"].mean()
    assert rates[True] > 3 * rates[False]
    assert np.isfinite(features.to_numpy(dtype=float)).all()


def test_log_is_in_customer_time_order_and_returns_match_their_orders():
    data = generate_transactions(3000, seed=4)
    tx = data.transactions
    pd.testing.assert_frame_equal(tx, tx.sort_values(["customer_id", "timestamp"], kind="stable", ignore_index=True))
    purchases = tx.loc[~tx["is_return"]].set_index("order_id")
    assert purchases.index.is_unique
    returns = tx.loc[tx["is_return"]]
    bought = purchases.loc[returns["order_id"]]
    assert (bought["customer_id"].to_numpy() == returns["customer_id"].to_numpy()).all()
    assert (bought["timestamp"].to_numpy() < returns["timestamp"].to_numpy()).all()
    np.testing.assert_allclose(returns["amount"].to_numpy(), -bought["amount"].to_numpy())


def test_truth_matches_the_log():
    data = generate_transactions(3000, seed=6)
    purchases = data.transactions.loc[~data.transactions["is_return"]]
    per_customer = purchases.groupby("customer_id")["timestamp"].agg(["min", "max", "size"])
    truth = data.customers.loc[per_customer.index]
    assert (truth["first_purchase"] == per_customer["min"]).all()
    np.testing.assert_array_equal(truth["repeat_purchases"], per_customer["size"] - 1)
    # BG/NBD: a customer drops out right after a repeat purchase and never buys again.
    dead = truth["dropout_time"].notna()
    assert (truth.loc[dead, "dropout_time"] == per_customer.loc[dead, "max"]).all()
    assert (truth.loc[dead, "repeat_purchases"] >= 1).all()
