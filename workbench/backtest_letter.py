"""The customer-facing comparison of a backtest: "your bill under each plan, month by month".

A self-contained HTML document (letterhead, the customer, one row per month and one column per
plan, totals and the difference against the current plan) with print rules, so the browser's
Print → Save as PDF gives just the letter: the sidebar, the page's controls and everything
else on the page are hidden in print, and the app's scrolling containers let the letter flow
over as many pages as it needs. Every figure is the backtest's (sums of invoice totals).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from datetime import timedelta

from metering.backtest import Backtest, percent
from metering.backtest.months import bounds
from metering.money import format_money, format_signed_money

LETTER_CLASS = "bt-letter"

PRINT_CSS = """
<style>
@media print {
  @page { size: A4; margin: 14mm; }
  html, body, #root, .stApp, [data-testid="stAppViewContainer"], [data-testid="stMain"],
  [data-testid="stMainBlockContainer"], [data-testid="stAppScrollToBottomContainer"] {
    overflow: visible !important; height: auto !important; min-height: 0 !important;
    position: static !important; padding: 0 !important; margin: 0 !important; background: #fff !important;
  }
  [data-testid="stSidebar"], [data-testid="stHeader"], [data-testid="stToolbar"], [data-testid="stDecoration"],
  [data-testid="stStatusWidget"], [data-testid="stBottom"], [data-testid="stSidebarCollapsedControl"],
  [data-baseweb="tab-list"], [data-baseweb="tab-border"], [data-baseweb="tab-highlight"], [role="tablist"],
  iframe { display: none !important; }
  /* everything on the page that does not hold the letter */
  [data-testid="stVerticalBlock"] > :not(:has(.bt-letter)),
  [data-testid="stHorizontalBlock"] > :not(:has(.bt-letter)) { display: none !important; }
  [data-testid="stVerticalBlock"] { gap: 0 !important; }
  .bt-letter { border: none !important; box-shadow: none !important; margin: 0 !important; max-width: none !important;
    padding: 0 !important; }
  .bt-letter tr { break-inside: avoid; }
}
</style>
"""

LETTER_CSS = """
<style>
.bt-letter { max-width: 860px; margin: 0.5rem auto; padding: 2.2rem 2.6rem; background: #fff; color: #1f2933;
  border: 1px solid #d9dee5; border-radius: 6px; font-family: "Source Sans Pro", "Helvetica Neue", Arial, sans-serif;
  box-shadow: 0 1px 6px rgba(16, 24, 40, .06); }
.bt-letter .head { display: flex; justify-content: space-between; align-items: flex-start; gap: 1rem;
  border-bottom: 3px solid #1c83e1; padding-bottom: 1rem; margin-bottom: 1.3rem; }
.bt-letter .seller { font-size: 1.4rem; font-weight: 700; }
.bt-letter .doc { text-align: right; }
.bt-letter .doc .title { font-size: 1.25rem; font-weight: 300; letter-spacing: .12em; color: #1c83e1; text-transform: uppercase; }
.bt-letter .meta { display: flex; flex-wrap: wrap; gap: 1.2rem 2.6rem; margin-bottom: 1.3rem; font-size: .95rem; }
.bt-letter .label { color: #6b7785; font-size: .72rem; text-transform: uppercase; letter-spacing: .08em; }
.bt-letter p { margin: 0 0 1rem 0; line-height: 1.45; }
.bt-letter table { width: 100%; border-collapse: collapse; font-size: .95rem; }
.bt-letter th { text-align: right; color: #6b7785; font-size: .72rem; text-transform: uppercase; letter-spacing: .06em;
  border-bottom: 1px solid #d9dee5; padding: .45rem .4rem; vertical-align: bottom; }
.bt-letter th:first-child, .bt-letter td:first-child { text-align: left; }
.bt-letter td { padding: .5rem .4rem; border-bottom: 1px solid #eef1f4; text-align: right; white-space: nowrap;
  font-variant-numeric: tabular-nums; }
.bt-letter .current { color: #1c83e1; font-weight: 600; }
.bt-letter tr.total td { border-top: 2px solid #1f2933; border-bottom: none; font-weight: 700; }
.bt-letter tr.diff td { color: #4a5563; font-size: .9rem; border-bottom: none; }
.bt-letter ul { margin: 1.1rem 0 0 1.1rem; padding: 0; }
.bt-letter li { margin-bottom: .3rem; }
.bt-letter .foot { margin-top: 1.6rem; color: #6b7785; font-size: .8rem; }
</style>
"""


def _span(bt: Backtest, joiner: str = " – ") -> str:
    first, _ = bounds(bt.months[0], bt.tz)
    _, last = bounds(bt.months[-1], bt.tz)
    last = last - timedelta(days=1)
    return f"{first:%B %Y}" if bt.months[0] == bt.months[-1] else f"{first:%B %Y}{joiner}{last:%B %Y}"


def letter_html(
    bt: Backtest, customer: str, names: Mapping[str, str], *, seller: str, current: str | None = None,
) -> str:
    """The letter for ``customer``: its bill under each plan in each month (the months in which
    it has a billing period), the totals and each plan's difference against ``current`` (the
    customer's plan when it is one of them, else the baseline)."""
    e = html.escape
    cur = bt.currency
    reference = current if current in bt.codes else bt.baseline
    heads = "".join(
        f"<th class='{'current' if code == reference else ''}'>{e(names.get(code, code))}"
        + ("<br>(your plan)" if code == current else "") + "</th>"
        for code in bt.codes
    )
    rows = []
    for i, month in enumerate(bt.month_labels):
        if not bt.priced[bt.baseline].months[customer][i].periods:
            continue
        cells = "".join(f"<td>{e(format_money(bt.customer_month_totals[c][customer][i], cur))}</td>" for c in bt.codes)
        first, _ = bounds(bt.months[i], bt.tz)
        rows.append(f"<tr><td>{e(f'{first:%B %Y}')}</td>{cells}</tr>")
    totals = {code: bt.customer_totals[code][customer] for code in bt.codes}
    total_row = "".join(f"<td>{e(format_money(totals[c], cur))}</td>" for c in bt.codes)
    diff_row = "".join(
        f"<td>{'—' if c == reference else e(format_signed_money(totals[c] - totals[reference], cur))}</td>" for c in bt.codes)
    notes = []
    for code in bt.codes:
        if code == reference:
            continue
        change = totals[code] - totals[reference]
        name = e(names.get(code, code))
        if change > 0:
            text = f"Under <b>{name}</b> you would have paid {e(format_money(change, cur))} more"
        elif change < 0:
            text = f"Under <b>{name}</b> you would have paid {e(format_money(-change, cur))} less"
        else:
            text = f"Under <b>{name}</b> you would have paid the same"
        pct = percent(change, totals[reference])
        if pct is not None and change:
            text += f" ({'+' if pct > 0 else '−'}{abs(pct)} %)"
        notes.append(f"<li>{text}.</li>")
    ref_name = e(names.get(reference, reference))
    intro = (f"This is what your usage {'in' if len(bt.months) == 1 else 'from'} {e(_span(bt, ' to '))} would have cost under each plan, month by month, "
             f"compared with {'your current plan' if reference == current else 'the first plan'}, {ref_name}.")
    return (
        LETTER_CSS
        + f"<div class='{LETTER_CLASS}'>"
        + f"<div class='head'><div class='seller'>{e(seller or 'Your company')}</div>"
        + "<div class='doc'><div class='title'>Plan comparison</div>"
        + f"<div class='label'>{e(_span(bt))}</div></div></div>"
        + "<div class='meta'>"
        + f"<div><div class='label'>Prepared for</div><div>{e(customer)}</div></div>"
        + f"<div><div class='label'>Compared with</div><div>{ref_name}</div></div>"
        + f"<div><div class='label'>Currency</div><div>{e(cur)}</div></div>"
        + "</div>"
        + f"<p>{intro}</p>"
        + f"<table><thead><tr><th>Month</th>{heads}</tr></thead><tbody>"
        + "".join(rows)
        + f"<tr class='total'><td>Total</td>{total_row}</tr>"
        + f"<tr class='diff'><td>Difference</td>{diff_row}</tr>"
        + "</tbody></table>"
        + ("<ul>" + "".join(notes) + "</ul>" if notes else "")
        + f"<div class='foot'>Computed from the usage recorded for {e(customer)}, priced exactly as each plan invoices it"
        + f" (base fees, included usage, tiers and credit), in {e(cur)}, before taxes.</div>"
        + "</div>"
    )
