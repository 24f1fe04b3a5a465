"""The per-customer uplift model against the segment table, on held-out campaign customers.

`campaign_features` builds each campaign customer's features as a nightly batch before the send would
have (`features.build_features` as of the day before the send date: purchases before it only). The
customers of the reported campaigns are split at random (seeded) into a training part and a held-out
`HOLDOUT_SHARE`, by customer (`held_out_rows`: a customer in several campaigns is learned on or judged on,
never both); the segment table (stage x tier, empirical Bayes) and the two-model learner
(`models.uplift.CustomerUpliftModel`) are both fitted on the training part and ranked on the held-out
customers by Qini AUC and uplift at the top `TOP_SHARE` (`training.uplift_metrics`). The learner is chosen
only when it wins on both; it is then refitted on every campaign customer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from core import defaults
from features.pipeline import build_features
from models.uplift import CustomerUpliftModel
from targeting.control import TREATMENT
from training.uplift_metrics import qini_auc_score, uplift_at_k

HOLDOUT_SHARE = 0.3
TOP_SHARE = 0.3
MIN_CUSTOMERS = 2000
"""Fewer campaign customers than this: no per-customer model is tried (the table is all the data carry)."""
SEGMENT_TABLE = "segment_table"
CUSTOMER_MODEL = "customer_model"


@dataclass
class UpliftChoice:
    """The chosen learner (`customer_model` or `segment_table`), the fitted model when chosen, the held-out figures."""

    chosen: str
    model: CustomerUpliftModel | None
    metrics: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def summary(self) -> dict[str, float | str]:
        """What /v1/model and the training run show."""
        return {"chosen": self.chosen, "reason": self.reason, **self.metrics}


def campaign_features(outcomes: pd.DataFrame, transactions: pd.DataFrame) -> pd.DataFrame:
    """Features of each row of `outcomes` (campaign customers) as of the day before its send date, in its order."""
    parts = []
    ids = outcomes["customer_id"].astype(str).to_numpy()
    for send, rows in outcomes.groupby("send_ts", sort=True).indices.items():  # one feature build per send date
        members = ids[rows]
        before = transactions[(transactions["timestamp"] < send) & transactions["customer_id"].isin(members)]
        frame = build_features(before, as_of=pd.Timestamp(send) - pd.Timedelta(days=1))
        parts.append(frame.reindex(members).set_axis(rows))
    return pd.concat(parts).sort_index()


def mean_lift(outcomes: pd.DataFrame, channel_lift: dict[str, float]) -> float:
    """Mean channel lift of the treated customers (the model's outputs are divided by it)."""
    treated = outcomes[outcomes["group"] == TREATMENT]
    lift = treated["channel"].astype(str).map(channel_lift).fillna(1.0)
    return float(lift.mean()) if len(lift) else 1.0


def held_out_rows(customer_ids: pd.Series, seed: int) -> np.ndarray:
    """Rows of the held-out customers: `HOLDOUT_SHARE` of the distinct customers, drawn at random (seeded),
    with every campaign row of a drawn customer. Customers are numbered in id order, so the draw does not
    depend on the rows' order."""
    codes, customers = pd.factorize(customer_ids.astype(str), sort=True)
    held_customers = np.random.default_rng([seed, 13]).random(len(customers)) < HOLDOUT_SHARE
    return held_customers[codes]


def choose_learner(
    outcomes: pd.DataFrame,
    features: pd.DataFrame,
    segment_scores: Callable[[pd.DataFrame, pd.DataFrame], np.ndarray],
    lift: float = 1.0,
    seed: int = defaults.SEED,
) -> UpliftChoice:
    """Segment table or per-customer model, by held-out Qini AUC and uplift@k (module docstring).

    `segment_scores(train_outcomes, held_outcomes)` fits the segment table on the first and returns its
    uplift for each row of the second.
    """
    n = len(outcomes)
    if n < MIN_CUSTOMERS:
        return UpliftChoice(SEGMENT_TABLE, None, reason=f"{n} campaign customers: fewer than {MIN_CUSTOMERS}, no per-customer model tried")
    held = held_out_rows(outcomes["customer_id"], seed)
    treated = (outcomes["group"] == TREATMENT).to_numpy()
    bought = outcomes["bought"].to_numpy(dtype=bool)
    fit_rows = outcomes[~held]
    model = CustomerUpliftModel(seed=seed).fit(features[~held], treated[~held], bought[~held], lift)
    scores = {SEGMENT_TABLE: segment_scores(fit_rows, outcomes[held]), CUSTOMER_MODEL: model.predict(features[held])}
    metrics: dict[str, float] = {"holdout_customers": float(held.sum())}
    for name, score in scores.items():
        metrics[f"{name}_qini_auc"] = qini_auc_score(bought[held], score, treated[held])
        metrics[f"{name}_uplift_at_{int(TOP_SHARE * 100)}"] = uplift_at_k(bought[held], score, treated[held], TOP_SHARE)
    at_k = f"uplift_at_{int(TOP_SHARE * 100)}"
    wins = [metrics[f"{CUSTOMER_MODEL}_{m}"] > metrics[f"{SEGMENT_TABLE}_{m}"] for m in ("qini_auc", at_k)]
    if not all(wins):
        return UpliftChoice(SEGMENT_TABLE, None, metrics, "the per-customer model does not beat the table on both held-out measures")
    final = CustomerUpliftModel(seed=seed).fit(features, treated, bought, lift)
    return UpliftChoice(CUSTOMER_MODEL, final, metrics, "the per-customer model beats the table on held-out Qini AUC and uplift@k")
