"""Contact timing: when to contact each customer, and whom to leave out of a promotional offer.

`recommended_contact_date`, from the stage and the rhythm:

- a first-time buyer in the `new` stage (`frequency == 0`, `days_since_last < active_days`) gets a
  follow-up `first_follow_up_days` after the first purchase (default 21: inside the 30 days when
  repeat rates are highest), the as-of day if that is past;
- everyone else gets a reminder when they become overdue against their own cycle: the last purchase
  plus `overdue_gap_factor` x their usual gap (the shop's median gap for one-time buyers), the as-of
  day when that is already past;
- empty when there is nobody to contact: `negative_net_value` customers, and customers whose P(alive)
  is below `p_alive_floor` (`expected_next_order_date` is empty for them too).

Exclusions from promotional contact, added to the decisions' `exclude_reason` for customers not
already excluded (so `exclude_from_spend`, `action`, `channel`, `incentive` follow the decide rules):

- `within_repurchase_cycle`: the customer's last purchase was in a category whose median repurchase
  cycle has not passed yet (needs `category`; applied where the transaction rows are scored);
- `below_offer_price`: the customer's average order value is below `offer_min_aov_share` of the offer's
  price (an offer priced for the top tier does not go to a customer whose orders are a third of it;
  applied when a campaign is given an `offer_price`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from features.customer_rows import CustomerRows, as_of_day, sort_rows
from features.repurchase import last_category_codes, repurchase_cycles
from features.shop_facts import ShopFacts
from features.tags import (
    ROW_TAGS,
    TAG_NAMES,
    TAG_SEPARATOR,
    join_tags,
    row_tag_shares,
    tag_flags,
)
from targeting.policy import TargetingPolicy
from targeting.winback import NO_ACTION, NO_CHANNEL

WITHIN_REPURCHASE_CYCLE = "within_repurchase_cycle"
BELOW_OFFER_PRICE = "below_offer_price"
TIMING_REASONS = (WITHIN_REPURCHASE_CYCLE, BELOW_OFFER_PRICE)


def recommended_contact_offsets(
    frequency: np.ndarray,
    days_since_last: np.ndarray,
    usual_gap: np.ndarray,
    shop_gap: float,
    policy: TargetingPolicy,
) -> np.ndarray:
    """Days from the as-of day to the recommended contact (>= 0), by the rules in the module docstring."""
    first_timer = frequency == 0
    follow_up = first_timer & (days_since_last < policy.active_days)
    gap = np.where(np.isfinite(usual_gap), usual_gap, shop_gap if np.isfinite(shop_gap) else 0.0)
    reminder = policy.overdue_gap_factor * gap - days_since_last
    offset = np.where(follow_up, policy.first_follow_up_days - days_since_last, reminder)
    return np.maximum(offset, 0.0)


def exclude_from_promotion(scores: pd.DataFrame, mask: np.ndarray, reason: str) -> pd.DataFrame:
    """`scores` with customers in `mask` not already excluded marked excluded for `reason`."""
    already = scores["exclude_from_spend"].fillna(False).astype(bool).to_numpy()
    newly = np.asarray(mask, dtype=bool) & ~already
    if not newly.any():
        return scores
    out = scores.copy()
    out["exclude_from_spend"] = already | newly
    out["exclude_reason"] = np.where(newly, reason, out["exclude_reason"].fillna("").astype(str).to_numpy())
    out["action"] = np.where(newly, NO_ACTION, out["action"].astype(str).to_numpy())
    out["channel"] = np.where(newly, NO_CHANNEL, out["channel"].astype(str).to_numpy())
    out["incentive"] = np.where(newly, 0.0, pd.to_numeric(out["incentive"], errors="coerce").to_numpy(dtype=float))
    return out


def exclude_below_offer_price(scores: pd.DataFrame, offer_price: float, policy: TargetingPolicy) -> pd.DataFrame:
    """Leave out customers whose order value is below `offer_min_aov_share` of `offer_price`."""
    if not (np.isfinite(offer_price) and offer_price > 0):
        raise ValueError(f"offer_price must be a positive amount, got {offer_price}")
    source = "avg_order_value" if "avg_order_value" in scores.columns else "expected_order_value"
    aov = pd.to_numeric(scores[source], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return exclude_from_promotion(scores, np.nan_to_num(aov) < policy.offer_min_aov_share * offer_price, BELOW_OFFER_PRICE)


def add_transaction_signals(
    scores: pd.DataFrame,
    transactions: CustomerRows | pd.DataFrame,
    as_of: Any,
    policy: TargetingPolicy,
    reference: ShopFacts | Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """The scores with what needs the transaction rows: the `event_buyer` and `new_arrival_buyer` tags,
    and the `within_repurchase_cycle` exclusion (each only when its source column is there).

    `transactions` are the rows the scores were built from (`features.customer_rows.sort_rows`, coded
    once for the features and these signals). `reference` is the scorer's shop reference
    (`features.shop_facts`): the shop's event days, product first sales and category cycles learned at
    training, so that chunks of customers get what the whole shop would."""
    if scores.empty:
        return scores
    rows = transactions if isinstance(transactions, CustomerRows) else sort_rows(transactions)
    facts = reference if isinstance(reference, ShopFacts) else ShopFacts.from_reference(reference)
    end = as_of_day(as_of)
    code = rows.ids.get_indexer(scores["customer_id"].astype(str))
    found = code >= 0
    code = np.maximum(code, 0)  # a customer the rows do not hold (none when scored from them) gets no signal

    def per_customer(values: np.ndarray, missing: float) -> np.ndarray:
        return np.where(found, values[code], missing)

    shares = row_tag_shares(rows, end, policy, facts)
    if shares:
        flags = _flags_of(scores["tags"])
        repeat = {"frequency": scores["frequency"].to_numpy(dtype=float)}
        customer_shares = {name: per_customer(values, 0.0) for name, values in shares.items()}
        flags.update({k: v for k, v in tag_flags(repeat, policy, {}, customer_shares).items() if k in ROW_TAGS})
        scores = scores.assign(tags=join_tags(flags, len(scores)))
    # A model's reference holds the shop's cycles learned at training (none when it was trained without
    # categories): cycles of the scored rows would tie a customer's exclusion to the others scored with
    # them (chunks, partitions); without a reference (a bare call) the rows' own cycles are used.
    if "category" in rows.frame.columns and (not facts.learned or facts.category_cycles is not None):
        if facts.category_cycles is not None:
            cycles = facts.category_cycles
        else:
            cycles = repurchase_cycles(rows.frame, as_of).set_index("category")["median_days"]
        category, days_since, names = last_category_codes(rows, end)
        at = cycles.index.get_indexer(pd.Index(names, dtype="str"))
        cycle_of = np.append(np.where(at >= 0, cycles.to_numpy(dtype=float)[at], np.nan), np.nan)  # code -1: none
        cycle = per_customer(cycle_of[category], np.nan)
        within = np.isfinite(cycle) & (per_customer(days_since, np.inf) < cycle)
        scores = exclude_from_promotion(scores, within, WITHIN_REPURCHASE_CYCLE)
    return scores


def _flags_of(tags: pd.Series) -> dict[str, np.ndarray]:
    """A tags column back as one boolean array per tag name."""
    text = tags.fillna("").astype(str).to_numpy()
    combos, inverse = np.unique(text, return_inverse=True)
    names = [set(c.split(TAG_SEPARATOR)) for c in combos]
    return {tag: np.array([tag in n for n in names], dtype=bool)[inverse] for tag in TAG_NAMES}
