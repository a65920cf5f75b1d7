"""Chart builders of the Backtest page: pure functions, DataFrame in → Altair chart out.

Money arrives as exact Decimals: marks take floats, tooltips the exact text. Plans keep the
order given (baseline first), so colours and legends match the tables.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

PALETTE = ["#1c83e1", "#ff8c1a", "#2ca02c", "#9467bd", "#d62728", "#8c564b"]
GUARDRAIL_COLOR = "#d62728"


def _floats(values: pd.Series) -> list[float]:
    return [float(v) for v in values]


def _plan_color(plans: list[str], title: str = "Plan") -> alt.Color:
    return alt.Color("plan:N", title=title, sort=plans, legend=alt.Legend(orient="top", labelLimit=0),
                     scale=alt.Scale(domain=plans, range=PALETTE[: len(plans)]))


def revenue_by_month_chart(df: pd.DataFrame, *, currency: str, plans: list[str], height: int = 300) -> alt.Chart:
    """One line per plan: revenue per month. `df` has one row per (month, plan) with `total`
    (Decimal) and optionally `total_text` (exact, for the tooltip); `plans` orders the legend."""
    data = pd.DataFrame({
        "month": df["month"].astype(str).to_numpy(),
        "plan": df["plan"].astype(str).to_numpy(),
        "total": _floats(df["total"]),
        "total_text": df["total_text"].astype(str).to_numpy() if "total_text" in df.columns else df["total"].astype(str).to_numpy(),
    })
    months = list(dict.fromkeys(data["month"]))
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=60, filled=True), strokeWidth=2.5)
        .encode(
            x=alt.X("month:O", title="Month", sort=months, axis=alt.Axis(labelAngle=0)),
            y=alt.Y("total:Q", title=f"Revenue ({currency})"),
            color=_plan_color(plans),
            tooltip=[alt.Tooltip("month:N", title="Month"), alt.Tooltip("plan:N", title="Plan"),
                     alt.Tooltip("total_text:N", title=f"Revenue ({currency})")],
        )
        .properties(height=height)
    )


def revenue_by_line_chart(df: pd.DataFrame, *, currency: str, plans: list[str]) -> alt.Chart:
    """Horizontal bars: each line's revenue (a metric, the base fee, a fixed charge, an
    overage, the credit as a negative bar) under each plan, side by side. `df` columns: `line`,
    `kind`, `plan`, `amount` (Decimal), optionally `amount_text`."""
    data = pd.DataFrame({
        "line": df["line"].astype(str).to_numpy(),
        "kind": df["kind"].astype(str).to_numpy(),
        "plan": df["plan"].astype(str).to_numpy(),
        "amount": _floats(df["amount"]),
        "amount_text": df["amount_text"].astype(str).to_numpy() if "amount_text" in df.columns else df["amount"].astype(str).to_numpy(),
    })
    data["label"] = data["line"] + " · " + data["kind"]
    order = list(dict.fromkeys(data["label"]))
    return (
        alt.Chart(data)
        .mark_bar(cornerRadiusEnd=2)
        .encode(
            y=alt.Y("label:N", title=None, sort=order, axis=alt.Axis(labelLimit=260)),
            yOffset=alt.YOffset("plan:N", sort=plans),
            x=alt.X("amount:Q", title=f"Revenue over the months ({currency})"),
            color=_plan_color(plans),
            tooltip=[alt.Tooltip("line:N", title="Line"), alt.Tooltip("kind:N", title="Kind"),
                     alt.Tooltip("plan:N", title="Plan"), alt.Tooltip("amount_text:N", title=f"Revenue ({currency})")],
        )
        .properties(height=alt.Step(max(8, 36 // max(len(plans), 1))))
    )


def change_histogram_chart(df: pd.DataFrame, *, guardrail: float | None = None, height: int = 260) -> alt.Chart | alt.LayerChart:
    """Customers per bin of % change against the baseline. `df` has one row per bin: `lo`,
    `hi` (percent, floats or Decimals), `count`; a red rule marks the guardrail when given."""
    data = pd.DataFrame({
        "lo": _floats(df["lo"]),
        "hi": _floats(df["hi"]),
        "count": df["count"].astype("int64").to_numpy(),
    })
    pct = lambda v: "0 %" if v == 0 else f"{v:+g} %"  # noqa: E731
    data["range"] = [f"{pct(lo)} to {pct(hi)}" for lo, hi in zip(data["lo"], data["hi"])]
    bars = (
        alt.Chart(data)
        .mark_bar(color=PALETTE[1], stroke="white", strokeWidth=1)
        .encode(
            x=alt.X("lo:Q", title="Change against the baseline (%)", bin="binned"),
            x2="hi:Q",
            y=alt.Y("count:Q", title="Customers", axis=alt.Axis(tickMinStep=1)),
            tooltip=[alt.Tooltip("range:N", title="Change"), alt.Tooltip("count:Q", title="Customers")],
        )
    )
    if guardrail is None:
        return bars.properties(height=height)
    rule = (
        alt.Chart(pd.DataFrame({"guardrail": [guardrail]}))
        .mark_rule(color=GUARDRAIL_COLOR, strokeDash=[6, 4], strokeWidth=2)
        .encode(x="guardrail:Q", tooltip=[alt.Tooltip("guardrail:Q", title="Guardrail (%)")])
    )
    return alt.layer(bars, rule).properties(height=height)
