"""Feature pipeline: transaction logs in, point-in-time RFM and behaviour features out."""

from features.pipeline import build_features, feature_columns
from features.rfm import rfm_summary
from features.validate import LoadResult, load_transactions, validate_transactions

__all__ = [
    "LoadResult",
    "build_features",
    "feature_columns",
    "load_transactions",
    "rfm_summary",
    "validate_transactions",
]
