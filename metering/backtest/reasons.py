"""One customer's invoices side by side: each line's difference and the reason for it.

Lines are matched by what they bill (the base fee, a fixed charge by name, a metric's usage
charge, a metric's overage); the credit applied is compared as a line of its own (negative).
For every line whose amount differs, the reasons say which part of the price made it differ,
read from the charge arithmetic (:class:`metering.pricing.ChargeResult` steps) and the
invoice lines: the charge model, free units, a unit price, which tier (entered, left, priced
differently, or for volume the tier that prices every unit), a package, a rate or per-event
fee, the quota (available units and overage) or its price, the base fee, a fixed charge, the
included credit. Each reason names its ``factor`` so a page (or a test) can group them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from metering.backtest.results import ZERO, Backtest
from metering.billing import EXACT
from metering.invoices import Invoice, InvoiceLine
from metering.money import format_money
from metering.plans import Plan
from metering.preview import fmt
from metering.pricing import ChargeResult, EventFeeStep, PackageStep, PercentageStep, TierStep, UnitStep

KIND_ORDER = {"base_fee": 0, "fixed_charge": 1, "usage": 2, "overage": 3, "credit": 4}


@dataclass(frozen=True)
class Reason:
    factor: str  # model | free_units | unit_price | tier | package | rate | event_fee | quota | overage_price
    #              | base_fee | fixed_charge | credit | only_baseline | only_candidate | usage
    text: str


@dataclass(frozen=True)
class LineDiff:
    kind: str  # base_fee | fixed_charge | usage | overage | credit
    description: str
    metric: str | None
    baseline: Decimal | None  # None: the baseline invoice has no such line
    candidate: Decimal | None
    reasons: tuple[Reason, ...] = ()
    baseline_detail: tuple[str, ...] = ()
    candidate_detail: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        with localcontext(EXACT):
            return (self.candidate or ZERO) - (self.baseline or ZERO)

    @property
    def changed(self) -> bool:
        return self.difference != 0


class _Fmt:
    def __init__(self, currency: str) -> None:
        self.currency = currency

    def cash(self, value: Decimal) -> str:
        return format_money(value, self.currency)

    def price(self, value: Decimal | None) -> str:
        return format_money(value or ZERO, self.currency, exact=True)


def _key(line: InvoiceLine, nth: int) -> tuple[str, str | None, int]:
    if line.kind == "fixed_charge":
        return (line.kind, line.description, nth)
    return (line.kind, line.metric, 0)


def _keyed(inv: Invoice | None) -> dict[tuple[str, str | None, int], InvoiceLine]:
    out: dict[tuple[str, str | None, int], InvoiceLine] = {}
    if inv is None:
        return out
    seen: dict[str, int] = {}
    for line in inv.lines:
        nth = seen.get(line.description, 0)
        seen[line.description] = nth + 1
        out[_key(line, nth)] = line
    return out


def _span(step: TierStep) -> str:
    return f"above {fmt(step.lower)}" if step.upper is None else f"{fmt(step.lower)}–{fmt(step.upper)}"


def _tier_text(step: TierStep, f: _Fmt) -> str:
    text = f"{fmt(step.units)} × {f.price(step.unit_price)}"
    if step.flat_fee:
        text += f" + {f.price(step.flat_fee)} flat"
    return f"{text} = {f.price(step.amount)}"


def _graduated(a: ChargeResult, b: ChargeResult, f: _Fmt) -> list[Reason]:
    sa = {s.index: s for s in a.steps if isinstance(s, TierStep)}
    sb = {s.index: s for s in b.steps if isinstance(s, TierStep)}
    out = []
    for i in sorted(set(sa) | set(sb)):
        x, y = sa.get(i), sb.get(i)
        if x is None and y is not None:
            out.append(Reason("tier", f"tier {i + 1} ({_span(y)}) is entered: {_tier_text(y, f)}"))
        elif y is None and x is not None:
            out.append(Reason("tier", f"tier {i + 1} ({_span(x)}) is no longer entered (was {_tier_text(x, f)})"))
        elif x is not None and y is not None and x.amount != y.amount:
            bounds = "" if (x.lower, x.upper) == (y.lower, y.upper) else f", bounds {_span(x)} → {_span(y)}"
            out.append(Reason("tier", f"tier {i + 1} ({_span(y)}{bounds}): {_tier_text(x, f)} → {_tier_text(y, f)}"))
    return out


def _volume(a: ChargeResult, b: ChargeResult, f: _Fmt) -> list[Reason]:
    x = next((s for s in a.steps if isinstance(s, TierStep)), None)
    y = next((s for s in b.steps if isinstance(s, TierStep)), None)
    if x is None or y is None:
        return []  # nothing billable on one side: the free units or the usage say why
    if x.index != y.index:
        return [Reason("tier", f"every unit is priced by tier {y.index + 1} ({_span(y)}) instead of tier "
                                f"{x.index + 1} ({_span(x)}): {_tier_text(x, f)} → {_tier_text(y, f)}")]
    if x.amount != y.amount:
        return [Reason("tier", f"tier {y.index + 1} ({_span(y)}) prices every unit: {_tier_text(x, f)} → {_tier_text(y, f)}")]
    return []


def _steps(a: ChargeResult, b: ChargeResult, f: _Fmt) -> list[Reason]:
    if a.model in ("graduated",):
        return _graduated(a, b, f)
    if a.model == "volume":
        return _volume(a, b, f)
    out = []
    pairs: dict[type, list] = {}
    for s in a.steps:
        pairs.setdefault(type(s), [None, None])[0] = s
    for s in b.steps:
        pairs.setdefault(type(s), [None, None])[1] = s
    for kind, (x, y) in pairs.items():
        if x is not None and y is not None and x.amount == y.amount:
            continue
        if kind is UnitStep:
            if x is not None and y is not None and x.unit_price != y.unit_price:
                out.append(Reason("unit_price", f"unit price {f.price(x.unit_price)} → {f.price(y.unit_price)} on "
                                                f"{fmt(y.units)} billable units"))
        elif kind is PackageStep:
            left = "nothing" if x is None else f"{x.packages} × {f.price(x.package_price)} (packages of {fmt(x.package_size)})"
            right = "nothing" if y is None else f"{y.packages} × {f.price(y.package_price)} (packages of {fmt(y.package_size)})"
            out.append(Reason("package", f"packages {left} → {right}"))
        elif kind is PercentageStep:
            if x is not None and y is not None and x.rate != y.rate:
                out.append(Reason("rate", f"rate {fmt(x.rate)}% → {fmt(y.rate)}% of {fmt(y.units)}"))
        elif kind is EventFeeStep:
            fee_x = ZERO if x is None else x.fixed_fee
            fee_y = ZERO if y is None else y.fixed_fee
            n = (y or x).event_count
            out.append(Reason("event_fee", f"fee per event {f.price(fee_x)} → {f.price(fee_y)} × {fmt(Decimal(n))} events"))
    return out


def _usage_reasons(a: InvoiceLine, b: InvoiceLine, f: _Fmt) -> list[Reason]:
    ca, cb = a.charge, b.charge
    if ca is None or cb is None:
        return []
    out = []
    if ca.units != cb.units:  # the same metric over the same periods: only a quota can change usage
        out.append(Reason("usage", f"usage {fmt(ca.units)} → {fmt(cb.units)}"))
    if ca.free_units != cb.free_units:
        out.append(Reason("free_units", f"free units {fmt(ca.free_units)} → {fmt(cb.free_units)}: billable "
                                        f"{fmt(ca.billable)} → {fmt(cb.billable)}"))
    if ca.model != cb.model:
        out.append(Reason("model", f"charge model {ca.model} → {cb.model}: {f.price(ca.amount)} → {f.price(cb.amount)}"
                                   f" on {fmt(cb.billable)} billable units"))
    else:
        out += _steps(ca, cb, f)
    return out


def _overage_reasons(a: InvoiceLine, b: InvoiceLine, base: Plan, cand: Plan, f: _Fmt) -> list[Reason]:
    out = []
    ua, ub = a.usage, b.usage
    qa, qb = base.quota_for(a.metric or ""), cand.quota_for(b.metric or "")
    if ua is not None and ub is not None and (ua.available, ua.overage) != (ub.available, ub.overage):
        limits = ""
        if qa is not None and qb is not None and qa.limit != qb.limit:
            limits = f"limit {fmt(qa.limit)} → {fmt(qb.limit)}; "
        if qa is not None and qb is not None and qa.max_carryover != qb.max_carryover:
            cap = lambda q: "no cap" if q.max_carryover is None else fmt(q.max_carryover)  # noqa: E731
            limits += f"carryover cap {cap(qa)} → {cap(qb)}; "
        out.append(Reason("quota", f"quota {limits}available {fmt(ua.available or ZERO)} → {fmt(ub.available or ZERO)}"
                                   f" for usage {fmt(ub.usage)}: overage {fmt(a.units)} → {fmt(b.units)}"))
    if a.unit_price != b.unit_price:
        out.append(Reason("overage_price", f"overage price {f.price(a.unit_price)} → {f.price(b.unit_price)} per unit"))
    return out


def _reasons(a: InvoiceLine | None, b: InvoiceLine | None, base: Plan, cand: Plan, f: _Fmt) -> list[Reason]:
    if a is None and b is not None:
        return [Reason("only_candidate", f"only {cand.code} bills this: " + "; ".join(b.explain(f.currency)))]
    if b is None and a is not None:
        return [Reason("only_baseline", f"{cand.code} does not bill this (the baseline {base.code} did: "
                                        + "; ".join(a.explain(f.currency)) + ")")]
    assert a is not None and b is not None
    if a.kind == "base_fee":
        return [Reason("base_fee", f"base fee {f.price(a.exact)} → {f.price(b.exact)}")]
    if a.kind == "fixed_charge":
        return [Reason("fixed_charge", f"{a.description}: {fmt(a.units)} × {f.price(a.unit_price)} → "
                                       f"{fmt(b.units)} × {f.price(b.unit_price)}")]
    if a.kind == "usage":
        return _usage_reasons(a, b, f)
    return _overage_reasons(a, b, base, cand, f)


def _usage_total(inv: Invoice) -> Decimal:
    with localcontext(EXACT):
        return sum((line.amount for line in inv.lines if line.is_usage), ZERO)


def _credit_diff(a: Invoice, b: Invoice, f: _Fmt) -> LineDiff:
    reasons = []
    if a.credit != b.credit:
        parts = []
        if a.included_credit != b.included_credit:
            parts.append(f"included credit {f.cash(a.included_credit)} → {f.cash(b.included_credit)}")
        ua, ub = _usage_total(a), _usage_total(b)
        if ua != ub and (a.credit == ua or b.credit == ub):
            parts.append(f"the credit covers at most the usage lines: {f.cash(ua)} → {f.cash(ub)}")
        text = "; ".join(parts) or "credit applied"
        reasons.append(Reason("credit", f"{text} (credit applied {f.cash(a.credit)} → {f.cash(b.credit)})"))
    detail = lambda inv: tuple(x for x in inv.explain() if x.startswith("credit"))  # noqa: E731
    return LineDiff("credit", "Included credit", None, -a.credit, -b.credit, tuple(reasons), detail(a), detail(b))


def diff_invoices(base: Invoice, cand: Invoice, base_plan: Plan, cand_plan: Plan) -> list[LineDiff]:
    """Every line of either invoice, baseline order first, with the difference and its reasons
    (reasons only for lines whose amounts differ), then the credit."""
    f = _Fmt(base.currency)
    ka, kb = _keyed(base), _keyed(cand)
    keys = list(ka) + [k for k in kb if k not in ka]
    keys.sort(key=lambda k: KIND_ORDER[k[0]])  # stable: baseline order within a kind
    out = []
    for key in keys:
        a, b = ka.get(key), kb.get(key)
        line = a or b
        assert line is not None
        amount_a = None if a is None else a.amount
        amount_b = None if b is None else b.amount
        reasons: list[Reason] = []
        if (amount_a or ZERO) != (amount_b or ZERO):
            reasons = _reasons(a, b, base_plan, cand_plan, f)
        out.append(LineDiff(
            line.kind, line.description, line.metric, amount_a, amount_b, tuple(reasons),
            () if a is None else tuple(a.explain(f.currency)), () if b is None else tuple(b.explain(f.currency)),
        ))
    out.append(_credit_diff(base, cand, f))
    return out


def customer_diffs(bt: Backtest, customer: str, code: str, month: int, period: int = 0) -> list[LineDiff]:
    """The baseline's and ``code``'s invoices of ``customer`` for the ``period``-th billing period
    starting in ``bt.months[month]``, line by line. [] when it has no such period."""
    base_cell = bt.invoices_of(bt.baseline, customer)[month]
    cand_cell = bt.invoices_of(code, customer)[month]
    if period >= len(base_cell):
        return []
    return diff_invoices(base_cell[period], cand_cell[period], bt.plan(bt.baseline), bt.plan(code))


def factors(diffs: Sequence[LineDiff]) -> list[str]:
    """The distinct factors behind the differences, in order of appearance."""
    return list(dict.fromkeys(r.factor for d in diffs for r in d.reasons))
