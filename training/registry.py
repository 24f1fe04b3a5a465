"""Model registry: the `candidate` and `champion` aliases and the promotion gate between them.

The gate. A candidate gets the alias `champion` only when, on the newest holdout (features at E-H,
churn labels from (E-H, E]):

1. its churn ROC-AUC beats every baseline's (recency, 1 - P(alive), RFM score), strictly; and
2. there is no champion yet, or it *improves* on the champion scored on that same holdout.

"Improves" means a holdout churn AUC higher than the champion's by more than `IMPROVEMENT_EPSILON`
(numerical noise), or -- when the candidate was trained on fresher data than the champion -- an AUC
no lower than the champion's minus `tolerance` (a fresher model within noise of the old one should
replace it). A tie on the same data is not an improvement, so retraining on unchanged data never moves
the alias. `force=True` (`--force-promote`) promotes regardless and says so in the tags.

The champion is scored fairly: if its training data ended on or before the holdout's as-of date, the
registered model itself is scored; otherwise (it has seen the holdout's labels) the out-of-time model
of the champion's own run is scored instead (the `evaluation_scorer` artifact every run logs, trained
on data up to that run's holdout date). A champion trained on newer data than the candidate cannot be
compared and is kept.
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from core.errors import ModelError

logger = logging.getLogger(__name__)

CANDIDATE_ALIAS = "candidate"
CHAMPION_ALIAS = "champion"
EVALUATION_SCORER_PATH = "evaluation_scorer"
IMPROVEMENT_EPSILON = 1e-6
TAG_DATA_END = "patron.data_end"
TAG_PROMOTION = "patron.promotion"
TAG_PROMOTION_REASON = "patron.promotion_reason"


@dataclass(frozen=True)
class Holdout:
    """The newest holdout: features at `as_of` (= E-H) with their `churned` label, built from transactions."""

    features: pd.DataFrame
    as_of: pd.Timestamp
    time_unit_days: int
    horizon_days: int
    transactions: pd.DataFrame | None = None

    def features_in(self, time_unit_days: int) -> pd.DataFrame:
        """The holdout features in another time unit (a champion may count in weeks)."""
        if time_unit_days == self.time_unit_days:
            return self.features
        if self.transactions is None:
            raise ModelError(f"the champion needs features in {time_unit_days}-day units; no transactions given")
        from features import build_features

        return build_features(
            self.transactions, self.as_of, time_unit_days=time_unit_days, horizon_days=self.horizon_days
        )


@dataclass(frozen=True)
class ChampionScore:
    """The current champion scored on the candidate's holdout."""

    version: str
    auc: float | None
    data_end: pd.Timestamp | None
    note: str


@dataclass(frozen=True)
class PromotionDecision:
    """What the gate decided and why (printed by `patron train`, logged as tags)."""

    promoted: bool
    forced: bool
    reason: str
    candidate_version: str
    candidate_auc: float
    champion_version: str | None = None
    champion_auc: float | None = None
    baseline_aucs: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """One word for tags and tables: promoted, forced or rejected."""
        if self.forced:
            return "forced"
        return "promoted" if self.promoted else "rejected"


def decide_promotion(
    candidate_auc: float,
    baseline_aucs: dict[str, float],
    champion: ChampionScore | None = None,
    candidate_data_end: pd.Timestamp | None = None,
    tolerance: float = 0.005,
) -> tuple[bool, str]:
    """The gate's rule (see the module docstring) as a pure function: (promote?, reason)."""
    if not np.isfinite(candidate_auc):
        return False, "the candidate's holdout churn AUC is undefined (one class only in the holdout)"
    beaten = {name: auc for name, auc in baseline_aucs.items() if not candidate_auc > auc}
    if beaten:
        name, auc = max(beaten.items(), key=lambda item: item[1])
        return False, f"churn AUC {candidate_auc:.4f} does not beat baseline {name} ({auc:.4f})"
    best_name, best_auc = max(baseline_aucs.items(), key=lambda item: item[1]) if baseline_aucs else ("none", float("nan"))
    if champion is None:
        return True, f"no champion yet; churn AUC {candidate_auc:.4f} beats every baseline (best {best_name} {best_auc:.4f})"
    if champion.auc is None:
        return False, f"champion v{champion.version} kept: {champion.note}"
    delta = candidate_auc - champion.auc
    versus = f"churn AUC {candidate_auc:.4f} vs champion v{champion.version} {champion.auc:.4f} ({champion.note})"
    if delta > IMPROVEMENT_EPSILON:
        return True, f"improves on the champion: {versus}"
    fresher = (
        candidate_data_end is not None and champion.data_end is not None and candidate_data_end > champion.data_end
    )
    if fresher and delta >= -tolerance:
        return True, f"fresher data, within tolerance {tolerance}: {versus}"
    if abs(delta) <= IMPROVEMENT_EPSILON:
        return False, f"no improvement (a tie keeps the champion): {versus}"
    return False, f"worse than the champion: {versus}"


def _client(tracking_uri: str | None = None):  # type: ignore[no-untyped-def]
    from mlflow import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)


def champion_version(model_name: str, tracking_uri: str | None = None) -> str | None:
    """The version the `champion` alias points at, or None when there is no champion."""
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        return str(client.get_model_version_by_alias(model_name, CHAMPION_ALIAS).version)
    except MlflowException:
        return None


def _holdout_auc(scorer, holdout: Holdout) -> float:  # type: ignore[no-untyped-def]
    features = holdout.features_in(int(scorer.time_unit_days))
    scores = scorer.score(features, holdout.as_of)
    labels = features["churned"].reindex(scores["customer_id"].astype(str)).to_numpy(dtype=int)
    if not 0 < labels.sum() < len(labels):
        return float("nan")
    return float(roc_auc_score(labels, scores["churn_probability"].to_numpy(dtype=float)))


def score_champion(model_name: str, holdout: Holdout, tracking_uri: str | None = None) -> ChampionScore | None:
    """Score the current champion on `holdout` without letting it see its own labels; None if no champion."""
    import mlflow

    from models.pyfunc import load_scorer
    from models.scorer import PatronScorer

    version = champion_version(model_name, tracking_uri)
    if version is None:
        return None
    client = _client(tracking_uri)
    model_version = client.get_model_version(model_name, version)
    tag = (model_version.tags or {}).get(TAG_DATA_END)
    scorer = None
    if tag is None:
        scorer = load_scorer(f"models:/{model_name}/{version}")
        tag = scorer.metadata.get("data_end")
    data_end = pd.Timestamp(tag) if tag else None
    if data_end is not None and data_end <= holdout.as_of:
        scorer = scorer or load_scorer(f"models:/{model_name}/{version}")
        return ChampionScore(version, _holdout_auc(scorer, holdout), data_end, "registered model scored")
    if not model_version.run_id:
        return ChampionScore(version, None, data_end, "it has seen this holdout and has no run to take an out-of-time model from")
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(
                run_id=model_version.run_id, artifact_path=EVALUATION_SCORER_PATH, dst_path=tmp
            )
        except Exception as exc:  # an old or foreign run without the artifact: cannot compare fairly
            logger.warning("champion run %s has no %s: %s", model_version.run_id, EVALUATION_SCORER_PATH, exc)
            return ChampionScore(version, None, data_end, "it has seen this holdout and has no out-of-time model")
        evaluation = PatronScorer.load(path)
    evaluated_end = pd.Timestamp(evaluation.metadata["data_end"])
    if evaluated_end > holdout.as_of:
        return ChampionScore(
            version, None, data_end, f"it was trained on newer data (to {data_end.date() if data_end is not None else '?'})"
        )
    return ChampionScore(version, _holdout_auc(evaluation, holdout), data_end, "its out-of-time model scored")


def set_alias(model_name: str, alias: str, version: str, tracking_uri: str | None = None) -> None:
    """Point `alias` of `model_name` at `version`."""
    _client(tracking_uri).set_registered_model_alias(model_name, alias, str(version))


def promote_if_better(
    model_name: str,
    candidate_version: str,
    candidate_auc: float,
    baseline_aucs: dict[str, float],
    holdout: Holdout,
    candidate_data_end: pd.Timestamp,
    tolerance: float = 0.005,
    force: bool = False,
    tracking_uri: str | None = None,
) -> PromotionDecision:
    """Run the promotion gate for a registered candidate; move `champion` to it when it earns it.

    The decision and its reason are logged and written as tags on the candidate's model version.
    """
    champion = score_champion(model_name, holdout, tracking_uri)
    if champion is not None and champion.version == str(candidate_version):
        champion = None  # re-running the gate on the champion itself
    promoted, reason = decide_promotion(candidate_auc, baseline_aucs, champion, candidate_data_end, tolerance)
    forced = bool(force and not promoted)
    if forced:
        reason = f"forced by --force-promote (the gate said: {reason})"
    decision = PromotionDecision(
        promoted=promoted or forced,
        forced=forced,
        reason=reason,
        candidate_version=str(candidate_version),
        candidate_auc=float(candidate_auc),
        champion_version=champion.version if champion else None,
        champion_auc=champion.auc if champion else None,
        baseline_aucs=dict(baseline_aucs),
    )
    client = _client(tracking_uri)
    if decision.promoted:
        client.set_registered_model_alias(model_name, CHAMPION_ALIAS, str(candidate_version))
    client.set_model_version_tag(model_name, str(candidate_version), TAG_PROMOTION, decision.label)
    client.set_model_version_tag(model_name, str(candidate_version), TAG_PROMOTION_REASON, reason)
    logger.info("promotion of %s v%s: %s (%s)", model_name, candidate_version, decision.label, reason)
    return decision
