"""Learning uplift from past campaigns: per lifecycle stage, shrunk toward the defaults (empirical Bayes).

For every campaign and stage with customers in both groups, the incremental conversion d = p_t - p_c and
its variance s^2 = p_t(1-p_t)/n_t + p_c(1-p_c)/n_c (rates taken as (x + 0.5)/(n + 1) so a cell without
buyers still has a variance) are divided by the mean channel lift of the treated customers (the policy's
uplift is per email contact). A stage's estimate pools its campaigns by inverse variance. The prior of a
stage's uplift is Normal(default, tau^2), with tau^2 estimated across the measured stages by the method of
moments, mean((estimate - default)^2 - s^2), floored at the largest default squared (the defaults are
known to their order of magnitude only). The learned uplift is the posterior mean

    learned = (default / tau^2 + estimate / s^2) / (1 / tau^2 + 1 / s^2)

so a stage measured on few customers stays near its default and a well measured one follows its data;
its 90% interval is the posterior mean +- z * posterior sd. Stages no campaign reached keep the default.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from core import defaults
from core.errors import DataError
from targeting.campaign_report import CampaignReport, campaign_outcomes, report_campaigns
from targeting.control import TREATMENT
from targeting.policy import DEFAULT, MEASURED, STAGES, TargetingPolicy

UPLIFT_TABLE_COLUMNS = (
    "lifecycle_stage",
    "campaigns",
    "customers_treatment",
    "customers_control",
    "estimate",
    "standard_error",
    "default",
    "learned",
    "learned_low",
    "learned_high",
    "source",
)


@dataclasses.dataclass
class LearnedUplift:
    """The policy with measured uplift, the table behind it and the campaigns that could not be used."""

    policy: TargetingPolicy
    table: pd.DataFrame
    problems: list[str]

    def lines(self) -> list[str]:
        """What the CLI prints: the campaigns left out, then the uplift table."""
        return [*self.problems, self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}")]


def stage_estimates(outcomes: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """Pooled incremental conversion per stage (email-equivalent) with its standard error."""
    data = outcomes.assign(lift=outcomes["channel"].astype(str).map(policy.channel_response_lift).fillna(1.0))
    data["treated"] = data["group"] == TREATMENT
    cells = data.groupby(["campaign_id", "lifecycle_stage", "treated"]).agg(n=("bought", "size"), x=("bought", "sum"), lift=("lift", "mean"))
    wide = cells.unstack("treated").dropna()
    if wide.empty:
        return pd.DataFrame(columns=["lifecycle_stage", "campaigns", "customers_treatment", "customers_control", "estimate", "standard_error"])
    n_t, x_t, n_c, x_c = wide[("n", True)], wide[("x", True)], wide[("n", False)], wide[("x", False)]
    lift = wide[("lift", True)].where(wide[("lift", True)] > 0, 1.0)
    diff = (x_t / n_t - x_c / n_c) / lift
    smooth_t, smooth_c = (x_t + 0.5) / (n_t + 1), (x_c + 0.5) / (n_c + 1)
    variance = (smooth_t * (1 - smooth_t) / n_t + smooth_c * (1 - smooth_c) / n_c) / lift**2
    cell = pd.DataFrame({"diff": diff, "w": 1 / variance, "n_t": n_t, "n_c": n_c}).reset_index()
    cell["wd"] = cell["w"] * cell["diff"]
    per = cell.groupby("lifecycle_stage").agg(
        campaigns=("campaign_id", "nunique"), customers_treatment=("n_t", "sum"), customers_control=("n_c", "sum"), w=("w", "sum"), wd=("wd", "sum")
    )
    return pd.DataFrame(
        {
            "lifecycle_stage": per.index,
            "campaigns": per["campaigns"].to_numpy(),
            "customers_treatment": per["customers_treatment"].to_numpy(dtype=np.int64),
            "customers_control": per["customers_control"].to_numpy(dtype=np.int64),
            "estimate": (per["wd"] / per["w"]).to_numpy(),
            "standard_error": np.sqrt(1 / per["w"]).to_numpy(),
        }
    )


def shrink(estimates: pd.DataFrame, policy: TargetingPolicy, confidence: float = defaults.CAMPAIGN_CONFIDENCE) -> pd.DataFrame:
    """The uplift table (UPLIFT_TABLE_COLUMNS): every stage, measured ones shrunk toward the defaults."""
    table = pd.DataFrame({"lifecycle_stage": STAGES}).merge(estimates, on="lifecycle_stage", how="left")
    table["default"] = table["lifecycle_stage"].map(policy.uplift).astype(float)
    measured = table["estimate"].notna().to_numpy()
    est, se, prior = table["estimate"].to_numpy(), table["standard_error"].to_numpy(), table["default"].to_numpy()
    floor = float(np.max(np.abs(prior))) ** 2
    excess = (est - prior) ** 2 - se**2
    tau2 = max(floor, float(np.mean(excess[measured]))) if measured.any() else floor
    precision = 1 / tau2 + np.where(measured, 1 / np.where(measured, se, 1.0) ** 2, 0.0)
    learned = (prior / tau2 + np.where(measured, est / np.where(measured, se, 1.0) ** 2, 0.0)) / precision
    half = float(stats.norm.ppf(0.5 + confidence / 2)) / np.sqrt(precision)
    table["learned"] = np.where(measured, learned, prior)
    table["learned_low"] = np.where(measured, learned - half, np.nan)
    table["learned_high"] = np.where(measured, learned + half, np.nan)
    table["source"] = np.where(measured, MEASURED, DEFAULT)
    for column in ("campaigns", "customers_treatment", "customers_control"):
        table[column] = table[column].fillna(0).astype(np.int64)
    return table[list(UPLIFT_TABLE_COLUMNS)]


def learn_uplift(
    assignments: pd.DataFrame,
    transactions: pd.DataFrame,
    policy: TargetingPolicy,
    window_days: int = defaults.CAMPAIGN_WINDOW_DAYS,
) -> LearnedUplift:
    """The policy with uplift learned from the campaigns (assignments validated by `read_assignments`) whose
    windows have ended in `transactions`."""
    report: CampaignReport = report_campaigns(
        assignments, transactions, margin_rate=policy.margin_rate, contact_costs=policy.contact_costs, window_days=window_days, detail=False
    )
    usable = set(report.table["campaign_id"])
    if not usable:
        raise DataError("no campaign could be measured: " + "; ".join(report.problems))
    outcomes = campaign_outcomes(assignments[assignments["campaign_id"].isin(usable)], transactions, window_days)
    table = shrink(stage_estimates(outcomes, policy), policy)
    measured = tuple(table.loc[table["source"] == MEASURED, "lifecycle_stage"])
    learned = dict(zip(table["lifecycle_stage"], table["learned"], strict=True))
    new_policy = dataclasses.replace(policy, uplift=learned, measured_uplift=measured)
    return LearnedUplift(policy=new_policy, table=table, problems=report.problems)


def log_uplift(policy: TargetingPolicy) -> None:
    """Log the policy's uplift per stage and its source (measured or default) on the active MLflow run."""
    import mlflow

    mlflow.log_dict(policy.uplift_sources(), "uplift.json")
