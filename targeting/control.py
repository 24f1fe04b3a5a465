"""Control groups: a random, stratified, reproducible share of a campaign's customers held back uncontacted.

Each customer gets a uniform draw from a hash of (campaign id, customer id), so a re-run of the same
campaign gives the same groups, and different campaigns draw independently. Within each stratum (value
tier x lifecycle stage) the customers with the smallest draws form the control group; its size is
`share * n` rounded up or down at random (by a hash of the campaign id and the stratum), so every
stratum holds back `share` of its customers in expectation and exactly `floor` or `ceil` of it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from core.errors import DataError

TREATMENT = "treatment"
CONTROL = "control"
GROUPS = (TREATMENT, CONTROL)
_HASH_KEY = "patron-control-1"  # 16 characters: pandas' hash key; changing it changes every group


def uniform_draws(campaign_id: str, keys: Sequence[object]) -> np.ndarray:
    """A reproducible uniform in [0, 1) per key, from a hash of (campaign id, key)."""
    text = pd.Series(np.asarray(keys, dtype=object)).astype(str)
    hashed = pd.util.hash_pandas_object(f"{campaign_id}\x1f" + text, index=False, hash_key=_HASH_KEY)
    return (hashed.to_numpy(dtype=np.uint64) >> np.uint64(11)).astype(float) / float(2**53)


def control_mask(campaign_id: str, ids: Sequence[object], stratum: np.ndarray, share: float) -> np.ndarray:
    """True for the customers held back as control: per stratum, the smallest hash draws, `share` of it."""
    if not 0 <= share < 1:
        raise ValueError(f"control share must lie in [0, 1), got {share}")
    if not str(campaign_id).strip():
        raise DataError("a campaign needs a non-empty campaign_id")
    stratum = np.asarray(stratum, dtype=np.int64)
    n = stratum.size
    if n == 0 or share == 0:
        return np.zeros(n, dtype=bool)
    draw = uniform_draws(campaign_id, ids)
    order = np.lexsort((draw, stratum))
    cells, start, size = np.unique(stratum[order], return_index=True, return_counts=True)
    rounding = uniform_draws(campaign_id, [f"stratum {c}" for c in cells])
    quota = np.floor(share * size + rounding).astype(np.int64)
    rank = np.arange(n) - np.repeat(start, size)
    mask = np.empty(n, dtype=bool)
    mask[order] = rank < np.repeat(quota, size)
    return mask
