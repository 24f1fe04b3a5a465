"""Learning uplift from past campaigns: per lifecycle stage, shrunk toward the defaults (empirical Bayes).

For every campaign and stage with customers in both groups, the incremental conversion d = p_t - p_c and
its variance s^2 = p_t(1-p_t)/n_t + p_c(1-p_c)/n_c (rates taken as (x + 0.5)/(n + 1) so a cell without
buyers still has a variance) are divided by the mean channel lift of the treated customers (the policy's
uplift is per email contact). A stage's estimate pools its campaigns weighted by n_t n_c / (n_t + n_c)
(the precision of a difference of means up to the common variance: weights free of the outcomes, so
the pooled estimate is unbiased), its variance sum w^2 s^2 / (sum w)^2. The prior of a
stage's uplift is Normal(default, tau^2), with tau^2 estimated across the measured stages by the method of
moments, mean((estimate - default)^2 - s^2), floored at the largest default squared (the defaults are
known to their order of magnitude only). The learned uplift is the posterior mean

    learned = (default / tau^2 + estimate / s^2) / (1 / tau^2 + 1 / s^2)

so a stage measured on few customers stays near its default and a well measured one follows its data;
its 90% interval is the posterior mean +- z * posterior sd. Stages no campaign reached keep the default.

Within a measured stage, each value tier's pooled estimate y_j (standard error s_j) is shrunk toward the
stage's learned uplift m by the same rule, with the between-tier variance tau_s^2 of DerSimonian & Laird
(1986, "Meta-analysis in clinical trials"): with w_j = 1 / s_j^2 and ybar their weighted mean,

    Q = sum w_j (y_j - ybar)^2,   tau_s^2 = max(0, (Q - (k - 1)) / (sum w_j - sum w_j^2 / sum w_j))

over the stage's k measured tiers. tau_s^2 = 0 (the tiers differ no more than their noise says) gives
every tier its stage's figure; a large spread lets well measured tiers follow their data. A tier's interval
adds the stage's uncertainty carried by the shrinkage, B^2 var(m), B = s_j^2 / (s_j^2 + tau_s^2). The
policy keeps the measured tiers in `tier_uplift`; others use their stage's.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from scipy import stats

from core import defaults
from core.errors import DataError
from models.uplift import CustomerUpliftModel
from targeting.campaign_report import CampaignReport, campaign_outcomes, report_campaigns
from targeting.control import TREATMENT
from targeting.policy import DEFAULT, MEASURED, STAGES, TIER_SEPARATOR, TIERS, TargetingPolicy
from targeting.winback import email_uplift
from training.uplift_model import UpliftChoice, campaign_features, choose_learner, mean_lift

UPLIFT_TABLE_COLUMNS = (
    "lifecycle_stage",
    "value_tier",
    "campaigns",
    "customers_treatment",
    "customers_control",
    "estimate",
    "standard_error",
    "default",
    "learned",
    "learned_low",
    "learned_high",
    "spread",
    "source",
)
"""Rows: one per stage (`value_tier` `all`, `spread` empty), then one per measured stage x tier (`default`
is the stage's learned uplift, `spread` the stage's between-tier sd tau_s)."""
ALL = "all"


@dataclasses.dataclass
class LearnedUplift:
    """The policy with measured uplift, the table behind it, the campaigns that could not be used and the
    choice between the table and a per-customer model (`choice.model` when the model won)."""

    policy: TargetingPolicy
    table: pd.DataFrame
    problems: list[str]
    choice: UpliftChoice | None = None

    @property
    def customer_model(self) -> CustomerUpliftModel | None:
        """The per-customer uplift model when it beat the table on held-out campaign customers."""
        return None if self.choice is None else self.choice.model

    def lines(self) -> list[str]:
        """What the CLI prints: the campaigns left out, the uplift table, the held-out comparison."""
        out = [*self.problems, self.table.to_string(index=False, float_format=lambda v: f"{v:.4f}")]
        if self.choice is not None:
            figures = ", ".join(f"{k} {v:.4f}" for k, v in self.choice.metrics.items() if k != "holdout_customers")
            out.append(f"uplift learner: {self.choice.chosen} ({self.choice.reason}){': ' + figures if figures else ''}")
        return out


def stage_estimates(outcomes: pd.DataFrame, policy: TargetingPolicy, by: tuple[str, ...] = ("lifecycle_stage",)) -> pd.DataFrame:
    """Pooled incremental conversion (email-equivalent) with its standard error per group of `by`
    (stage, or stage and tier): campaign cells pooled by inverse variance."""
    keys = list(by)
    data = outcomes.assign(lift=outcomes["channel"].astype(str).map(policy.channel_response_lift).fillna(1.0))
    data["treated"] = data["group"] == TREATMENT
    cells = data.groupby(["campaign_id", *keys, "treated"]).agg(n=("bought", "size"), x=("bought", "sum"), lift=("lift", "mean"))
    wide = cells.unstack("treated").dropna()
    columns = [*keys, "campaigns", "customers_treatment", "customers_control", "estimate", "standard_error"]
    if wide.empty:
        return pd.DataFrame(columns=columns)
    n_t, x_t, n_c, x_c = wide[("n", True)], wide[("x", True)], wide[("n", False)], wide[("x", False)]
    lift = wide[("lift", True)].where(wide[("lift", True)] > 0, 1.0)
    diff = (x_t / n_t - x_c / n_c) / lift
    smooth_t, smooth_c = (x_t + 0.5) / (n_t + 1), (x_c + 0.5) / (n_c + 1)
    variance = (smooth_t * (1 - smooth_t) / n_t + smooth_c * (1 - smooth_c) / n_c) / lift**2
    # weights from the group sizes only: inverse estimated variances would depend on the outcomes
    # (p(1 - p) grows with the conversion), pulling the pooled uplift down when it is large
    weight = n_t * n_c / (n_t + n_c)
    cell = pd.DataFrame({"wd": weight * diff, "w": weight, "wwv": weight**2 * variance, "n_t": n_t, "n_c": n_c}).reset_index()
    per = cell.groupby(keys).agg(
        campaigns=("campaign_id", "nunique"), customers_treatment=("n_t", "sum"), customers_control=("n_c", "sum"),
        w=("w", "sum"), wd=("wd", "sum"), wwv=("wwv", "sum"),
    ).reset_index()
    per["customers_treatment"] = per["customers_treatment"].astype(np.int64)
    per["customers_control"] = per["customers_control"].astype(np.int64)
    per["estimate"] = per["wd"] / per["w"]
    per["standard_error"] = np.sqrt(per["wwv"]) / per["w"]
    return per[columns]


def between_variance(estimate: np.ndarray, standard_error: np.ndarray) -> float:
    """DerSimonian-Laird between-group variance tau^2 of estimates with known standard errors (0 for < 2)."""
    if estimate.size < 2:
        return 0.0
    w = 1 / standard_error**2
    mean = float(np.sum(w * estimate) / np.sum(w))
    q = float(np.sum(w * (estimate - mean) ** 2))
    c = float(np.sum(w) - np.sum(w**2) / np.sum(w))
    return max(0.0, (q - (estimate.size - 1)) / c) if c > 0 else 0.0


def shrink_tiers(tiers: pd.DataFrame, stages: pd.DataFrame, confidence: float = defaults.CAMPAIGN_CONFIDENCE) -> pd.DataFrame:
    """Tier rows (UPLIFT_TABLE_COLUMNS) of the measured stages: each tier shrunk toward its stage's learned
    uplift with the stage's DerSimonian-Laird between-tier variance (module docstring)."""
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    stage = stages.set_index("lifecycle_stage")
    rows = []
    for name, group in tiers.groupby("lifecycle_stage", sort=False):  # five stages at most
        if stage.loc[name, "source"] != MEASURED:
            continue
        est, se = group["estimate"].to_numpy(dtype=float), group["standard_error"].to_numpy(dtype=float)
        tau2 = between_variance(est, se)
        prior = float(stage.loc[name, "learned"])
        prior_var = ((float(stage.loc[name, "learned_high"]) - prior) / z) ** 2
        shrinkage = se**2 / (se**2 + tau2)  # B: 1 = all the stage's, 0 = all the tier's own
        learned = shrinkage * prior + (1 - shrinkage) * est
        sd = np.sqrt((1 - shrinkage) * se**2 + shrinkage**2 * prior_var)
        rows.append(
            group.assign(default=prior, learned=learned, learned_low=learned - z * sd, learned_high=learned + z * sd, spread=np.sqrt(tau2), source=MEASURED)
        )
    if not rows:
        return pd.DataFrame(columns=list(UPLIFT_TABLE_COLUMNS))
    out = pd.concat(rows, ignore_index=True)
    out["value_tier"] = pd.Categorical(out["value_tier"], categories=list(TIERS), ordered=True)
    out["lifecycle_stage"] = pd.Categorical(out["lifecycle_stage"], categories=list(STAGES), ordered=True)
    out = out.sort_values(["lifecycle_stage", "value_tier"]).astype({"value_tier": str, "lifecycle_stage": str})
    return out[list(UPLIFT_TABLE_COLUMNS)].reset_index(drop=True)


def shrink(estimates: pd.DataFrame, policy: TargetingPolicy, confidence: float = defaults.CAMPAIGN_CONFIDENCE) -> pd.DataFrame:
    """The uplift table (UPLIFT_TABLE_COLUMNS): every stage, measured ones shrunk toward the defaults."""
    table = pd.DataFrame({"lifecycle_stage": STAGES}).merge(estimates.drop(columns="value_tier", errors="ignore"), on="lifecycle_stage", how="left")
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
    table["value_tier"] = ALL
    table["spread"] = np.nan
    for column in ("campaigns", "customers_treatment", "customers_control"):
        table[column] = table[column].fillna(0).astype(np.int64)
    return table[list(UPLIFT_TABLE_COLUMNS)]


def learn_uplift(
    assignments: pd.DataFrame,
    transactions: pd.DataFrame,
    policy: TargetingPolicy,
    window_days: int = defaults.CAMPAIGN_WINDOW_DAYS,
    customer_model: bool = True,
    seed: int = defaults.SEED,
) -> LearnedUplift:
    """The policy with uplift learned from the campaigns (assignments validated by `read_assignments`) whose
    windows have ended in `transactions`; with `customer_model`, a per-customer model is tried against the
    table on held-out campaign customers (`training.uplift_model`)."""
    report: CampaignReport = report_campaigns(
        assignments, transactions, margin_rate=policy.margin_rate, contact_costs=policy.contact_costs, window_days=window_days, detail=False
    )
    usable = set(report.table["campaign_id"])
    if not usable:
        raise DataError("no campaign could be measured: " + "; ".join(report.problems))
    outcomes = campaign_outcomes(assignments[assignments["campaign_id"].isin(usable)], transactions, window_days)
    table = segment_table(outcomes, policy)
    choice = None
    if customer_model:
        features = campaign_features(outcomes, transactions)
        lift = mean_lift(outcomes, dict(policy.channel_response_lift))
        choice = choose_learner(outcomes, features, lambda fit, held: segment_scores(fit, held, policy), lift, seed)
    return LearnedUplift(policy=segment_policy(table, policy), table=table, problems=report.problems, choice=choice)


def segment_scores(fit: pd.DataFrame, held: pd.DataFrame, policy: TargetingPolicy) -> np.ndarray:
    """Email uplift of the `held` customers from the segment table learned on the `fit` customers."""
    learned = segment_policy(segment_table(fit, policy), policy)
    return email_uplift(held["lifecycle_stage"].astype(str), held["value_tier"].astype(str), learned)


def segment_table(outcomes: pd.DataFrame, policy: TargetingPolicy) -> pd.DataFrame:
    """The uplift table of campaign outcomes: stages shrunk toward the defaults, tiers toward their stage."""
    stages = shrink(stage_estimates(outcomes, policy), policy)
    tiers = shrink_tiers(stage_estimates(outcomes, policy, ("lifecycle_stage", "value_tier")), stages)
    return pd.concat([stages, tiers], ignore_index=True) if len(tiers) else stages


def segment_policy(table: pd.DataFrame, policy: TargetingPolicy) -> TargetingPolicy:
    """`policy` with the table's learned stage uplift (`uplift`, `measured_uplift`) and tier uplift (`tier_uplift`)."""
    stages = table[table["value_tier"] == ALL]
    tiers = table[table["value_tier"] != ALL]
    measured = tuple(stages.loc[stages["source"] == MEASURED, "lifecycle_stage"])
    cells = {f"{s}{TIER_SEPARATOR}{t}": float(v) for s, t, v in zip(tiers["lifecycle_stage"], tiers["value_tier"], tiers["learned"], strict=True)}
    uplift = dict(zip(stages["lifecycle_stage"], stages["learned"].astype(float), strict=True))
    return dataclasses.replace(policy, uplift=uplift, measured_uplift=measured, tier_uplift=cells)


def log_uplift(policy: TargetingPolicy, choice: UpliftChoice | None = None) -> None:
    """Log the policy's uplift per stage and tier with its source (measured or default) on the active
    MLflow run, and the held-out comparison of the table and the per-customer model as metrics."""
    import mlflow

    mlflow.log_dict({**policy.uplift_sources(), **({"learner": choice.summary()} if choice else {})}, "uplift.json")
    if choice is not None:
        mlflow.log_metrics({f"uplift_{k}": v for k, v in choice.metrics.items() if np.isfinite(v)})
        mlflow.set_tag("uplift_learner", choice.chosen)
