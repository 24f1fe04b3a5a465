"""Feature pipeline: transaction logs in, point-in-time RFM and behaviour features out."""

from features.pipeline import build_features
from features.validate import LoadResult, load_transactions, validate_transactions

__all__ = ["LoadResult", "build_features", "load_transactions", "validate_transactions"]
