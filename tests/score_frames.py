"""Model-like score frames for the targeting and campaign tests."""

from __future__ import annotations

import numpy as np
import pandas as pd


def make_scores(n: int = 500, seed: int = 0) -> pd.DataFrame:
    """A scores frame shaped like the models' output: skewed CLV, stages across the year, some returns."""
    rng = np.random.default_rng(seed)
    frequency = rng.poisson(2.0, n).astype(float)
    order_value = rng.gamma(2.0, 30.0, n)
    p_alive = rng.beta(2.0, 1.5, n)
    purchases = p_alive * rng.gamma(1.5, 1.5, n) * (frequency + 1) / 3
    clv = 0.30 * purchases * order_value * 0.95  # margin on discounted spend, as models.clv computes it
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(n)],
            "frequency": frequency,
            "clv": clv,
            "value_score": clv,
            "p_alive": p_alive,
            "churn_probability": np.clip(1 - p_alive + rng.normal(0, 0.1, n), 0, 1),
            "expected_purchases_clv_horizon": purchases,
            "expected_order_value": order_value,
            "days_since_last": rng.integers(0, 700, n).astype(float),
            "avg_order_value": order_value * rng.uniform(0.8, 1.2, n),
            "return_rate": np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 1, n), 0.0),
            "return_value_share": np.where(rng.uniform(size=n) < 0.2, rng.uniform(0, 0.6, n), 0.0),
            "order_count": frequency + 1,
        }
    )
    return frame
