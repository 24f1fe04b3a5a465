"""The marketer's report: one self-contained HTML file from a scores file (and a campaign, when given).

`patron report --scores scores.parquet [--campaign campaign.csv] [--campaign-report report.csv]
[--cycles cycles.csv] --out report.html` writes it; `make demo` writes one for the demo's output.
Charts are matplotlib SVG inlined in the page and the styles are in the page: it opens with no network
access, no script and nothing fetched. Every figure comes from the files given; a section whose source
is absent says so instead of showing an empty chart.
"""

from __future__ import annotations

import datetime as dt
import html
import io
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import numpy as np
import pandas as pd

from core.errors import DataError
from features.tags import TAG_NAMES, tag_counts
from targeting.policy import STAGES, TIERS
from targeting.segments import tier_stage_matrix

TEMPLATE = Path(__file__).with_name("report_template.html")
SECTIONS = (
    ("tiers", "Customers by value tier and lifecycle stage"),
    ("clv", "Customer lifetime value"),
    ("risk", "Churn risk by lifecycle stage"),
    ("reasons", "Top reasons for churn risk"),
    ("tags", "Behaviour tags"),
    ("rhythm", "Next orders and contact timing"),
    ("cycles", "Repurchase cycles by category"),
    ("campaign", "Campaign"),
    ("result", "Campaign result (measured)"),
)
"""Section ids and titles, in page order; the browser test checks each one renders."""
REQUIRED_SCORE_COLUMNS = ("customer_id", "as_of", "value_tier", "lifecycle_stage", "clv", "churn_probability")
TAG_MEANINGS = {
    "promo_sensitive": "buys mostly on promotion or discount",
    "new_arrival_buyer": "buys products soon after their first sale",
    "high_end": "average order value in the shop's top share",
    "event_buyer": "buys mostly on the shop's event days",
    "full_price_loyal": "repeat buyer who rarely uses discounts: leave coupons out",
    "serial_returner": "returns far more often than the shop's customers",
}


@dataclass(frozen=True)
class ReportInputs:
    """What a report is made of: the scores, and optionally a campaign list, its result and the cycles."""

    scores: pd.DataFrame
    campaign: pd.DataFrame | None = None
    campaign_result: pd.DataFrame | None = None
    cycles: pd.DataFrame | None = None


def _svg(fig: Any) -> str:
    """A matplotlib figure as inline SVG markup (text drawn as paths: no font needed to view it)."""
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    plt.close(fig)
    text = buffer.getvalue()
    text = text[text.index("<svg") :]
    # the RDF block only names the tool and the image type: namespaces with URLs, nothing to show
    start, end = text.find("<metadata>"), text.find("</metadata>")
    return text[:start] + text[end + len("</metadata>") :] if start >= 0 <= end else text


def _figure(width: float = 7.0, height: float = 3.2) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.fonttype": "path", "svg.hashsalt": "patron-report", "font.size": 9})
    fig, ax = plt.subplots(figsize=(width, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _table(frame: pd.DataFrame, money: tuple[str, ...] = (), shares: tuple[str, ...] = ()) -> str:
    """A frame as an escaped HTML table with thousands separators, money to 2 decimals, shares in %."""
    shown = frame.copy()
    for column in shown.columns:
        values = shown[column]
        if column in shares:
            shown[column] = values.map(lambda v: "" if pd.isna(v) else f"{v:.1%}")
        elif column in money:
            shown[column] = values.map(lambda v: "" if pd.isna(v) else f"{v:,.2f}")
        elif pd.api.types.is_float_dtype(values):
            shown[column] = values.map(lambda v: "" if pd.isna(v) else f"{v:,.1f}")
        elif pd.api.types.is_integer_dtype(values):
            shown[column] = values.map(lambda v: f"{v:,}")
    return shown.to_html(index=False, escape=True, border=0, classes="data", na_rep="")


def _note(text: str) -> str:
    return f'<p class="note">{html.escape(text)}</p>'


def tiers_section(scores: pd.DataFrame) -> str:
    """Customers, CLV and churn risk per tier x stage, and a heat map of customers."""
    matrix = tier_stage_matrix(scores)
    counts = (
        matrix.pivot(index="value_tier", columns="lifecycle_stage", values="customers")
        .reindex(index=list(TIERS), columns=list(STAGES))
        .fillna(0)
    )
    fig, ax = _figure(6.0, 2.6)
    ax.imshow(counts.to_numpy(), cmap="Blues", aspect="auto")
    ax.set_xticks(range(len(STAGES)), list(STAGES))
    ax.set_yticks(range(len(TIERS)), list(TIERS))
    peak = counts.to_numpy().max() or 1
    for (i, j), value in np.ndenumerate(counts.to_numpy()):
        ax.text(j, i, f"{int(value):,}", ha="center", va="center", color="white" if value > peak / 2 else "black")
    ax.set_title("customers")
    return _svg(fig) + _table(matrix, money=("clv_total", "clv_mean"), shares=("churn_risk_mean",))


def clv_section(scores: pd.DataFrame) -> str:
    """Histogram of predicted CLV (the top 1% folded into the last bar) and its quantiles."""
    clv = pd.to_numeric(scores["clv"], errors="coerce").dropna().to_numpy(dtype=float)
    cap = float(np.quantile(clv, 0.99)) if len(clv) else 1.0
    fig, ax = _figure()
    ax.hist(np.minimum(clv, cap), bins=40, color="#3b6ea5")
    ax.set_xlabel("predicted CLV (the top 1% shown in the last bar)")
    ax.set_ylabel("customers")
    quantiles = pd.DataFrame(
        {
            "statistic": ["customers", "total", "mean", "median", "90th percentile", "99th percentile"],
            "clv": [len(clv), clv.sum(), clv.mean(), *np.quantile(clv, [0.5, 0.9, 0.99])] if len(clv) else [0] * 6,
        }
    )
    quantiles["clv"] = [f"{quantiles['clv'][0]:,.0f}", *(f"{v:,.2f}" for v in quantiles["clv"][1:])]
    return _svg(fig) + _table(quantiles)


def risk_section(scores: pd.DataFrame) -> str:
    """Churn probability by lifecycle stage: mean and quartiles per stage."""
    stage = pd.Categorical(scores["lifecycle_stage"], categories=list(STAGES), ordered=True)
    churn = pd.to_numeric(scores["churn_probability"], errors="coerce")
    grouped = churn.groupby(stage, observed=False)
    table = pd.DataFrame(
        {
            "lifecycle_stage": list(STAGES),
            "customers": grouped.size().reindex(list(STAGES)).fillna(0).astype(np.int64).to_numpy(),
            "mean": grouped.mean().reindex(list(STAGES)).to_numpy(),
            "q1": grouped.quantile(0.25).reindex(list(STAGES)).to_numpy(),
            "median": grouped.median().reindex(list(STAGES)).to_numpy(),
            "q3": grouped.quantile(0.75).reindex(list(STAGES)).to_numpy(),
        }
    )
    fig, ax = _figure(6.0, 2.8)
    present = table["customers"].to_numpy() > 0
    ax.bar(table["lifecycle_stage"][present], table["mean"][present], color="#c0504d")
    ax.errorbar(
        table["lifecycle_stage"][present],
        table["median"][present],
        yerr=[table["median"][present] - table["q1"][present], table["q3"][present] - table["median"][present]],
        fmt="o",
        color="black",
        capsize=4,
    )
    ax.set_ylim(0, 1)
    ax.set_ylabel("churn probability (bar: mean; dot: median, quartiles)")
    return _svg(fig) + _table(table, shares=("mean", "q1", "median", "q3"))


def reasons_section(scores: pd.DataFrame) -> str:
    """The first churn reason of the customers at risk (churn probability >= 0.5), counted."""
    churn = pd.to_numeric(scores["churn_probability"], errors="coerce").fillna(0.0)
    if "churn_reason_1" not in scores.columns:
        return _note("The scores carry no churn reasons.")
    at_risk = scores.loc[churn >= 0.5, "churn_reason_1"].fillna("").astype(str)
    at_risk = at_risk[at_risk != ""]
    if at_risk.empty:
        return _note("No customer has a churn probability of 50% or more.")
    counts = at_risk.value_counts().head(10).rename_axis("reason").reset_index(name="customers")
    counts["share"] = counts["customers"] / len(at_risk)
    fig, ax = _figure(6.5, 0.35 * len(counts) + 0.8)
    ax.barh(counts["reason"][::-1], counts["customers"][::-1], color="#c0504d")
    ax.set_xlabel(f"customers at risk (churn probability >= 50%: {len(at_risk):,}) by their main reason")
    return _svg(fig) + _table(counts, shares=("share",))


def tags_section(scores: pd.DataFrame) -> str:
    """Customers per behaviour tag, with each tag's meaning."""
    if "tags" not in scores.columns:
        return _note("The scores carry no tags (scored by an older model).")
    counts = tag_counts(scores["tags"])
    counts["meaning"] = [TAG_MEANINGS[t] for t in counts["tag"]]
    fig, ax = _figure(6.5, 2.4)
    ax.barh(list(TAG_NAMES)[::-1], counts["customers"][::-1], color="#4f8a4f")
    ax.set_xlabel("customers")
    note = _note(
        "A tag whose source column is absent from the data is not computed (e.g. promo_sensitive needs "
        "promo or discount, new_arrival_buyer needs product_id): its count is then 0."
    )
    return _svg(fig) + _table(counts, shares=("share",)) + note


def rhythm_section(scores: pd.DataFrame) -> str:
    """How many customers are expected to order, and are due a contact, within 7, 30 and 90 days."""
    if "expected_next_order_date" not in scores.columns:
        return _note("The scores carry no next-order dates (scored by an older model).")
    as_of = pd.to_datetime(scores["as_of"]).max()
    rows = []
    for column, label in (("expected_next_order_date", "expected next order"), ("recommended_contact_date", "recommended contact")):
        days = (pd.to_datetime(scores[column]) - as_of).dt.days
        rows.append(
            {
                "what": label,
                "within 7 days": int((days <= 7).sum()),
                "within 30 days": int((days <= 30).sum()),
                "within 90 days": int((days <= 90).sum()),
                "later": int((days > 90).sum()),
                "none expected": int(days.isna().sum()),
            }
        )
    gaps = pd.to_numeric(scores["avg_days_between_orders"], errors="coerce").dropna()
    text = (
        f"Counted from {as_of:%Y-%m-%d}. Repeat buyers' usual gap between orders: median {gaps.median():,.0f} days "
        f"(quartiles {gaps.quantile(0.25):,.0f} and {gaps.quantile(0.75):,.0f}) over {len(gaps):,} customers."
        if len(gaps)
        else f"Counted from {as_of:%Y-%m-%d}. No customer has a repeat purchase yet."
    )
    return _note(text) + _table(pd.DataFrame(rows))


def cycles_section(cycles: pd.DataFrame | None) -> str:
    """The repurchase cycle of each category (median and quartiles of days between purchases)."""
    if cycles is None or cycles.empty:
        return _note("No repurchase cycles: the transaction data has no category column.")
    top = cycles.head(15)
    fig, ax = _figure(6.5, 0.35 * len(top) + 0.8)
    names = top["category"].astype(str)[::-1]
    median = top["median_days"].to_numpy(dtype=float)[::-1]
    low = top["q1_days"].to_numpy(dtype=float)[::-1]
    high = top["q3_days"].to_numpy(dtype=float)[::-1]
    ax.barh(names, high - low, left=low, color="#9bb7d4")
    ax.plot(median, names, "k|", markersize=14)
    ax.set_xlabel("days between a customer's purchases in the category (box: quartiles; mark: median)")
    return _svg(fig) + _table(cycles)


def campaign_section(scores: pd.DataFrame, campaign: pd.DataFrame | None) -> str:
    """Who is contacted, with which action and channel, at what spend and expected profit; and who not."""
    parts = []
    if campaign is None:
        parts.append(_note("No campaign file given (--campaign)."))
    elif campaign.empty:
        parts.append(_note("The campaign selects nobody."))
    else:
        spend = pd.to_numeric(campaign.get("spend", 0.0), errors="coerce").fillna(0.0)
        profit = pd.to_numeric(campaign["expected_profit"], errors="coerce").fillna(0.0)
        frame = campaign.assign(spend=spend, expected_profit=profit)
        keys = [c for c in ("action", "channel") if c in frame.columns]
        by_action = (
            frame.groupby(keys, dropna=False)
            .agg(customers=("customer_id", "size"), spend=("spend", "sum"), expected_profit=("expected_profit", "sum"))
            .reset_index()
            .sort_values("expected_profit", ascending=False)
        )
        parts.append(
            _note(
                f"{len(campaign):,} customers, spend {spend.sum():,.2f}, expected incremental profit "
                f"{profit.sum():,.2f}" + (f" (ROI {profit.sum() / spend.sum():.2f})" if spend.sum() > 0 else "") + "."
            )
        )
        parts.append(_table(by_action, money=("spend", "expected_profit")))
        shown = [c for c in ("customer_id", "value_tier", "lifecycle_stage", "action", "channel", "incentive", "spend", "expected_profit", "reason") if c in frame.columns]
        parts.append("<h3>Top 20 contacts by expected profit</h3>")
        parts.append(_table(frame.sort_values("expected_profit", ascending=False).head(20)[shown], money=("incentive", "spend", "expected_profit")))
    if "exclude_reason" in scores.columns:
        reasons = scores["exclude_reason"].fillna("").astype(str)
        left_out = reasons[reasons != ""].value_counts().rename_axis("reason").reset_index(name="customers")
        parts.append("<h3>Left out of promotional contact, by reason</h3>")
        parts.append(_table(left_out) if len(left_out) else _note("Nobody is excluded."))
    return "".join(parts)


def result_section(result: pd.DataFrame | None) -> str:
    """The campaign's measured result as given (--campaign-report), or a note that none was given."""
    if result is None:
        return _note("No measured result given (--campaign-report): run the campaign with a control group first.")
    return _table(result)


def render_report(inputs: ReportInputs, generated: dt.datetime | None = None) -> str:
    """The report's HTML text."""
    scores = inputs.scores
    missing = [c for c in REQUIRED_SCORE_COLUMNS if c not in scores.columns]
    if missing:
        raise DataError(f"the scores lack columns {missing}; pass a file written by `patron score`")
    if scores.empty:
        raise DataError("the scores file holds no customers")
    bodies = {
        "tiers": tiers_section(scores),
        "clv": clv_section(scores),
        "risk": risk_section(scores),
        "reasons": reasons_section(scores),
        "tags": tags_section(scores),
        "rhythm": rhythm_section(scores),
        "cycles": cycles_section(inputs.cycles),
        "campaign": campaign_section(scores, inputs.campaign),
        "result": result_section(inputs.campaign_result),
    }
    sections = "\n".join(
        f'<section id="{key}" class="report-section"><h2>{html.escape(title)}</h2>{bodies[key]}</section>'
        for key, title in SECTIONS
    )
    as_of = pd.to_datetime(scores["as_of"]).max()
    model = ""
    if "model_name" in scores.columns:
        model = f"{scores['model_name'].iloc[0]} version {scores['model_version'].iloc[0]}"
    generated = generated or dt.datetime.now(dt.timezone.utc)
    return Template(TEMPLATE.read_text()).substitute(
        title="Patron customer report",
        subtitle=html.escape(
            f"{len(scores):,} customers scored at {as_of:%Y-%m-%d}" + (f" with {model}" if model else "")
            + f"; generated {generated:%Y-%m-%d %H:%M} UTC"
        ),
        contents="".join(f'<li><a href="#{key}">{html.escape(title)}</a></li>' for key, title in SECTIONS),
        sections=sections,
    )


def _numbers_where_numeric(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose every non-empty value is a number, as floats (CSV files are read as text)."""
    out = frame.copy()
    for column in out.columns:
        if out[column].dtype.kind in "biufcmM":
            continue
        parsed = pd.to_numeric(out[column], errors="coerce")
        given = out[column].notna() & (out[column].astype(str) != "")
        if given.any() and parsed[given].notna().all():
            out[column] = parsed
    return out


def write_report(
    scores_path: str | Path,
    out: str | Path,
    *,
    campaign_path: str | Path | None = None,
    campaign_report_path: str | Path | None = None,
    cycles_path: str | Path | None = None,
) -> Path:
    """Read the files, render the report and write it to `out` (atomically); returns the path."""
    from features.io import read_table

    def typed(path: str | Path | None) -> pd.DataFrame | None:
        if path is None:
            return None
        if not Path(path).exists():
            raise DataError(f"{path} does not exist")
        return _numbers_where_numeric(read_table(path))

    scores_file = Path(scores_path)
    if not scores_file.exists():
        raise DataError(f"{scores_file} does not exist; write it with `patron score`")
    scores = pd.read_parquet(scores_file) if scores_file.suffix in (".parquet", ".pq") else typed(scores_file)
    assert scores is not None
    text = render_report(
        ReportInputs(scores=scores, campaign=typed(campaign_path), campaign_result=typed(campaign_report_path), cycles=typed(cycles_path))
    )
    target = Path(out)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)
    return target
