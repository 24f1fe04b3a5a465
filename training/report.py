"""The text `patron train` prints: holdout metrics beside the baselines, and the promotion decision."""

from __future__ import annotations

from typing import Any

from models.intervals import INTERVAL_QUANTITIES, coverage_metric_name, pit_metric_name
from training.evaluate import (
    BASELINES,
    CHURN_METRICS,
    VALUE_METRICS,
    VALUE_SOURCE_LABELS,
    VALUE_SOURCE_METRICS,
)
from training.menu import BTYD_MENU, CHURN_CHOICES, inner_as_of

_BASELINE_LABELS = {"recency": "recency", "palive": "1-P(alive)", "rfm": "RFM score", "spend": "past spend"}


def _cell(value: float | None) -> str:
    return "-" if value is None or value != value else f"{value:.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(row: list[str]) -> str:
        cells = zip(row, widths, strict=True)
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

    return [line(header), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def format_report(result: Any) -> str:
    """Metrics tables (model vs baselines), the BTYD menu and the promotion decision of a TrainResult."""
    m = result.metrics
    plan = result.plan
    out = [
        f"run {result.run_id}  ({result.tracking_uri})",
        f"data to {plan.data_end.date()}; holdout: features at {plan.holdout_as_of.date()}, "
        f"labels ({plan.holdout_as_of.date()}, {plan.data_end.date()}]; "
        f"{int(m.get('holdout_customers', 0))} customers, churn rate {m.get('holdout_churn_rate', 0):.3f}",
        "",
        "churn (holdout)",
    ]
    header = ["metric", "model", *(_BASELINE_LABELS[b] for b in BASELINES)]
    rows = [[name, _cell(m.get(name)), *(_cell(m.get(f"baseline_{b}_{name}")) for b in BASELINES)] for name in CHURN_METRICS]
    out += _table(header, rows)
    out += ["", "value ranking vs holdout spend"]
    sources = [(VALUE_SOURCE_LABELS[s], VALUE_SOURCE_METRICS[s].removesuffix("clv_spearman")) for s in VALUE_SOURCE_METRICS] + [
        (_BASELINE_LABELS[b], f"baseline_{b}_") for b in (*BASELINES, "spend")
    ]
    header = ["metric", *(label for label, _ in sources)]
    rows = [[name, *(_cell(m.get(f"{prefix}{name}")) for _, prefix in sources)] for name in VALUE_METRICS]
    out += _table(header, rows)
    out.append(f"value_score from: {VALUE_SOURCE_LABELS.get(result.value_source, result.value_source)}")
    out += ["", "prediction intervals: share of holdout customers inside (nominal 80% / 90%); randomized PIT: the"]
    out += ["distributions' own calibration at the nominal levels, free of the counts' atoms (models.intervals)"]
    out += _table(
        ["quantity", "80%", "90%"],
        [
            [q, _cell(m.get(coverage_metric_name(q, 0.80))), _cell(m.get(coverage_metric_name(q, 0.90)))]
            for q in INTERVAL_QUANTITIES
        ]
        + [
            [f"{q}, randomized PIT", _cell(m.get(pit_metric_name(q, 0.80))), _cell(m.get(pit_metric_name(q, 0.90)))]
            for q in INTERVAL_QUANTITIES
        ],
    )
    out += ["", f"choices on the inner holdout (features at {inner_as_of(plan).date()}, labels to {plan.holdout_as_of.date()}]"]
    choice = result.choice
    rows = [[name + (" *" if name == choice.churn_level else ""), _cell(m.get(f"inner_churn_{name}_auc"))] for name in CHURN_CHOICES]
    out += _table(["churn model", "inner AUC"], rows)
    rows = [
        [VALUE_SOURCE_LABELS[s] + (" *" if s == result.value_source else ""), _cell(m.get(f"inner_{VALUE_SOURCE_METRICS[s]}"))]
        for s in VALUE_SOURCE_METRICS
    ]
    out += _table(["value source", "inner Spearman"], rows)
    out += [f"{what}: {reason}" for what, reason in choice.reasons.items()]
    out += ["", "BTYD menu (inner holdout)"]
    rows = []
    for name in BTYD_MENU:
        failure = result.params.get(f"btyd_{name}_failure")
        rows.append(
            [
                name + (" *" if name == result.btyd_model else ""),
                _cell(m.get(f"btyd_{name}_purchase_mae")),
                _cell(m.get(f"btyd_{name}_churn_auc")),
                failure or "",
            ]
        )
    out += _table(["model", "purchase MAE", "churn AUC", "note"], rows)
    out.append(
        f"purchases predicted/actual: {m.get('clv_predicted_purchases', 0):.0f} / {m.get('clv_actual_purchases', 0):.0f}; "
        f"spend predicted/actual: {m.get('clv_predicted_spend', 0):.0f} / {m.get('clv_actual_spend', 0):.0f}"
    )
    decision = result.decision
    out += [
        "",
        f"registered {result.model_name} version {result.model_version} (alias candidate)",
        f"promotion: {decision.label.upper()} - {decision.reason}",
    ]
    return "\n".join(out)
