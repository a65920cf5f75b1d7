"""The used amount per (customer, limit metric, period), kept in memory and kept right.

An entry is computed through `metering.engine.stored_events` exactly as the Timeline computes
that period (`limit_usage` for limit_metered, `window_usage` + `billing.carry_chain` for
limit_recurring) and is then advanced by the events this process's API accepts, without
reading the store again. It stays valid while the store's version (one row: event count,
delete generation, next store position) moves only by those events; anything else (a file
import, a delete, another process) makes every entry stale, and each is computed again from
the store the next time it is needed.

`Ledger.admission()` is the serialized check + insert of `POST /api/v1/events`: one lock per
store in the process, held from reading the used amounts to counting the inserted events, so
parallel requests can never together take a customer past a hard limit.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone
from decimal import Decimal, localcontext
from typing import Any

from sqlalchemy.engine import Engine

from metering import billing, periods
from metering.engine import event_writer, stored_events
from metering.engine.interface import Events
from metering.engine.store import StoreVersion
from metering.models import Aggregation, MetricBase
from metering.quotas import rules
from metering.quotas.config import Config, ConfigCache, Holder, aggregation, metric_type
from metering.values import EXACT, decimal_str

ZERO = Decimal(0)
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
MAX_ENTRIES = 200_000
QUOTA_LOCK = 7_270_015  # pg_advisory_lock key of the quota check (the store's write lock is …014)  # past this many, entries of stale epochs are dropped

EventRow = tuple[str, str, int, str, str]  # event_name, customer_id, ts_us, key, properties


class LazyEvents:
    """`stored_events(engine)`, fetched on first use only: in the steady state (entries valid,
    anchor known) a request reads no events and does not refresh the frame."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._events: Events | None = None

    def get(self) -> Events:
        if self._events is None:
            self._events = stored_events(self._engine)
        return self._events


class QuotaPeriodError(ValueError):
    """The subscription has not started at that instant (no period holds it)."""


def _instant(ts_us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=int(ts_us))


def _us(moment: datetime) -> int:
    return (moment - _EPOCH) // timedelta(microseconds=1)


@dataclass
class Entry:
    """One customer's usage of one limit metric in one period."""

    epoch: int
    kind: str  # limit_metered | limit_recurring
    agg: str
    start: datetime
    end: datetime
    limit: Decimal
    used: Decimal = ZERO
    carryover: Decimal | None = None  # limit_recurring: carried into this period
    known: set[str] | None = None  # limit_metered unique_count: the accepted distinct values
    accepted: int = 0  # events counted in `used` (max: whether there is a value at all)
    holder: Holder | None = field(default=None, compare=False, repr=False)
    schedule: billing.Schedule | None = field(default=None, compare=False, repr=False)
    k: int = 0

    @property
    def available(self) -> Decimal:
        with localcontext(EXACT):
            return self.limit + (self.carryover or ZERO)

    def copy(self) -> Entry:
        return replace(self, known=set(self.known) if self.known is not None else None)

    def add(self, reading: rules.Reading) -> bool:
        """Count an accepted event; False when the entry cannot follow it in memory (latest:
        which value is latest depends on times the entry does not keep)."""
        if reading.skipped:
            return True
        with localcontext(EXACT):
            if self.agg == "count":
                self.used += 1
            elif self.agg == "sum":
                self.used += reading.amount  # type: ignore[operator]
            elif self.agg == "unique_count":
                assert self.known is not None and reading.text is not None
                self.known.add(reading.text)
                self.used = Decimal(len(self.known))
            elif self.agg == "max":
                self.used = reading.amount if not self.accepted else max(self.used, reading.amount)  # type: ignore[assignment,type-var]
            else:
                return False
        self.accepted += 1
        return True


Key = tuple[str, str, int, int]  # customer, metric, period start µs, end µs


@dataclass
class Candidate:
    """An incoming event that feeds a quota: which entries it touches, with what."""

    index: int  # position in the rows handed to screen
    row: EventRow
    touches: list[tuple[Key, Holder, rules.Reading]] = field(default_factory=list)


class Ledger:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.configs = ConfigCache(engine)
        self.lock = threading.RLock()
        self.entries: dict[Key, Entry] = {}
        self.version: Any = None
        self.epoch = 0
        self._config: Config | None = None
        self._earliest: tuple[int, int | None] | None = None  # (epoch, earliest event µs)
        # (customer, metric) → (epoch, period start µs, end µs, key): the period of the last event
        self._periods: dict[tuple[str, str], tuple[int, int, int, Key]] = {}
        self._by_metric: dict[tuple[str, str], set[Key]] = {}  # (customer, metric) → its entries' keys
        self._pg: Any = None  # PostgreSQL: the connection holding the cross-process advisory lock
        # callbacks(ledger, config, touched keys) after API events counted: the alert recorder
        from metering.quotas.alerts import Recorder

        self.on_advance: list[Any] = [Recorder()]

    # ---- staleness

    def _store_version(self) -> Any:
        """The store's version row (events, delete generation, next position, compactions)."""
        version = getattr(event_writer(self.engine), "version", None)
        return version() if version is not None else object()  # unknown: never equal, always recompute

    def sync(self, config: Config) -> None:
        """Compare the store's version (and the config) with what the entries were made from."""
        version = self._store_version()
        if version != self.version or config is not self._config:
            self.version, self._config = version, config
            self.epoch += 1
            if len(self.entries) > MAX_ENTRIES:
                self.entries = {k: e for k, e in self.entries.items() if e.epoch == self.epoch}
                self._by_metric.clear()
                for k in self.entries:
                    self._by_metric.setdefault((k[0], k[1]), set()).add(k)

    # ---- periods

    def _default_anchor(self, config: Config, events: LazyEvents, fallback_us: int) -> datetime:
        """Contract §3's default anchor: the month (workspace timezone) of the earliest stored
        event; with no events at all, the month of the event or instant being checked."""
        if self._earliest is None or self._earliest[0] != self.epoch:
            bounds = events.get().time_bounds()
            self._earliest = (self.epoch, None if bounds is None else int(bounds[0]))
        earliest = self._earliest[1]
        first = fallback_us if earliest is None else earliest
        return periods.default_anchor(_instant(first), tz=config.tz)

    def schedule(self, config: Config, holder: Holder, events: LazyEvents, at_us: int) -> billing.Schedule:
        if holder.start is not None:
            anchor = periods.parse_subscription_start(holder.start, tz=config.tz)
        else:
            anchor = self._default_anchor(config, events, at_us)
        return billing.Schedule(anchor, holder.plan.interval, config.tz)

    def period(self, config: Config, holder: Holder, events: LazyEvents, at_us: int) -> tuple[billing.Schedule, int]:
        """(schedule, k) of the period holding the instant; QuotaPeriodError before the anchor."""
        schedule = self.schedule(config, holder, events, at_us)
        k = periods.period_index(schedule.anchor, schedule.interval, _instant(at_us), tz=schedule.tz)
        if k < 0:
            raise QuotaPeriodError(
                f"the subscription of '{holder.customer_id}' starts {billing.iso(schedule.anchor)}: "
                "no billing period holds that time yet")
        return schedule, k

    def resolve(self, config: Config, holder: Holder, events: LazyEvents, at_us: int) -> Key:
        """The key of the (fresh) entry for the period holding the instant; the period of the
        customer's last event on this metric is remembered (events come in time order), so the
        calendar is worked out once per period, not per event. QuotaPeriodError before the start."""
        memo_key = (holder.customer_id, holder.metric.code)
        memo = self._periods.get(memo_key)
        if memo is not None and memo[0] == self.epoch and memo[1] <= at_us < memo[2]:
            entry = self.entries.get(memo[3])
            if entry is not None and entry.epoch == self.epoch:
                return memo[3]
        schedule, k = self.period(config, holder, events, at_us)
        key, _ = self.entry(config, holder, schedule, k, events)
        if len(self._periods) > MAX_ENTRIES:
            self._periods.clear()
        self._periods[memo_key] = (self.epoch, key[2], key[3], key)
        return key

    # ---- entries

    def entry(self, config: Config, holder: Holder, schedule: billing.Schedule, k: int, events: LazyEvents | None = None) -> tuple[Key, Entry]:
        start, end = schedule.bounds(k)
        key = (holder.customer_id, holder.metric.code, _us(start), _us(end))
        found = self.entries.get(key)
        if found is None or found.epoch != self.epoch:
            found = self.entries[key] = self._compute(holder, schedule, k, (events or LazyEvents(self.engine)).get())
            self._by_metric.setdefault((key[0], key[1]), set()).add(key)
        return key, found

    def current(self, key: Key) -> Entry:
        """The entry of a key, computed again from the store if it is stale."""
        entry = self.entries[key]
        if entry.epoch != self.epoch:
            assert entry.holder is not None and entry.schedule is not None
            entry = self.entries[key] = self._compute(entry.holder, entry.schedule, entry.k, stored_events(self.engine))
        return entry

    def _compute(self, holder: Holder, schedule: billing.Schedule, k: int, events: Events) -> Entry:
        metric, quota, cid = holder.metric, holder.quota, holder.customer_id
        kind, agg = metric_type(metric), aggregation(metric)
        start, end = schedule.bounds(k)
        limit = Decimal(quota.limit)
        if kind == "limit_recurring":
            chain = schedule.first(k + 1)
            found = events.window_usage(metric, chain, [cid])
            used = [ZERO if v is None else v for v in found.values[0]]
            available, _, _ = billing.carry_chain(used, limit=limit, max_carryover=quota.max_carryover)[-1]
            with localcontext(EXACT):
                carry = available - limit
            return Entry(self.epoch, kind, agg, start, end, limit, used[-1], carryover=carry,
                         accepted=int(found.events[0][-1]), holder=holder, schedule=schedule, k=k)
        row = events.limit_usage(metric, [(start, end)], [cid], limit).get((0, 0))
        used = row.usage if row is not None else ZERO
        accepted = (row.events - row.skipped - row.rejected) if row is not None else 0
        entry = Entry(self.epoch, kind, agg, start, end, limit, used, accepted=accepted,
                      holder=holder, schedule=schedule, k=k)
        if agg == Aggregation.unique_count.value:
            entry.known = _accepted_values(events, metric, cid, start, end, int(used))
        return entry

    # ---- the events API

    @contextmanager
    def admission(self) -> Iterator[Gate]:
        """Hold the store's quota lock around screening and inserting one request's events."""
        config = self.configs.get()
        if not config.any_quota:
            yield Gate(self, config, active=False)
            return
        with self.lock, self._across_processes():
            self.sync(config)
            gate = Gate(self, config, active=True)
            yield gate

    @contextmanager
    def _across_processes(self) -> Iterator[None]:
        """PostgreSQL: also a session advisory lock, so several server processes on one store
        take turns too (each sees the others' events through the version row and computes its
        entries again). SQLite has no such lock that would not block the store's own write:
        there, one server process per store."""
        if self.engine.dialect.name != "postgresql":
            yield
            return
        for attempt in range(2):
            try:
                if self._pg is None:
                    self._pg = self.engine.raw_connection()
                cur = self._pg.cursor()
                cur.execute("SELECT pg_advisory_lock(%s)", (QUOTA_LOCK,))
                self._pg.commit()
                break
            except Exception:  # noqa: BLE001 - a connection gone bad: a new one, once
                self._drop_pg()
                if attempt:
                    raise
        try:
            yield
        finally:
            try:
                cur.execute("SELECT pg_advisory_unlock(%s)", (QUOTA_LOCK,))
                self._pg.commit()  # type: ignore[union-attr]
            except Exception:  # noqa: BLE001 - closing the session releases the lock
                self._drop_pg()

    def _drop_pg(self) -> None:
        conn, self._pg = self._pg, None
        if conn is not None:
            try:
                conn.invalidate()  # type: ignore[attr-defined]
            except Exception:  # noqa: BLE001 - thrown away anyway
                pass

    # ---- entitlements

    def state(self, customer_id: str, metric_code: str, now: datetime) -> tuple[Holder, Entry]:
        """The customer's quota and its entry for the period holding `now` (KeyError: no quota)."""
        config = self.configs.get()
        holder = config.holder(customer_id, metric_code)
        if holder is None:
            raise KeyError(metric_code)
        with self.lock:
            self.sync(config)
            events = LazyEvents(self.engine)
            at = _us(now.astimezone(timezone.utc))
            schedule, k = self.period(config, holder, events, at)
            _, entry = self.entry(config, holder, schedule, k, events)
            return holder, entry.copy()


class Gate:
    """One request's pass through the ledger (see Ledger.admission)."""

    def __init__(self, ledger: Ledger, config: Config, *, active: bool) -> None:
        self.ledger, self.config, self.active = ledger, config, active
        self.before: Any = ledger.version
        self._accepted: list[Candidate] = []
        self._checked_duplicates = False

    def _candidates(self, rows: Sequence[EventRow]) -> list[Candidate]:
        config, out = self.config, []
        parsed: dict[int, rules.Props] = {}
        for i, row in enumerate(rows):
            codes = config.by_event.get(row[0])
            if not codes:
                continue
            cand = Candidate(i, row)
            for code in codes:
                holder = config.holder(row[1], code)
                if holder is None:
                    continue
                props = parsed.get(i)
                if props is None:
                    props = parsed[i] = rules.properties_of(row[4])
                if rules.matches(holder.metric, row[0], props):
                    cand.touches.append(((row[1], code, 0, 0), holder, rules.read(holder.metric, props)))
            if cand.touches:
                out.append(cand)
        return out

    def screen(self, rows: Sequence[EventRow]) -> tuple[list[EventRow], list[tuple[int, str]]]:
        """The rows to insert, and (position in rows, reason) for those a hard limit refuses.
        Events are taken in time order (then request order), as the Timeline takes them."""
        if not self.active or not rows:
            return list(rows), []
        candidates = self._candidates(rows)
        if not candidates:
            return list(rows), []
        candidates.sort(key=lambda c: (c.row[2], c.index))
        ledger = self.ledger
        events = LazyEvents(ledger.engine)
        # Resolve each touch's period and entry once.
        resolved: list[tuple[Candidate, list[tuple[Key, Holder, rules.Reading]]]] = []
        for cand in candidates:
            touches = []
            for _, holder, reading in cand.touches:
                try:
                    key = ledger.resolve(self.config, holder, events, cand.row[2])
                except QuotaPeriodError:
                    continue  # before the subscription starts: no quota applies yet
                touches.append((key, holder, reading))
            cand.touches = touches
            resolved.append((cand, touches))
        refused = self._walk(resolved, skip=set())
        if refused and not self._checked_duplicates:
            # An event the store already holds is a duplicate, never a quota error, and must not
            # count twice: look the keys up (only when something would be refused).
            self._checked_duplicates = True
            skip = _duplicates([c for c, _ in resolved], events.get())
            if skip:
                refused = self._walk(resolved, skip=skip)
        reasons = {index: reason for index, reason in refused}
        kept = [row for i, row in enumerate(rows) if i not in reasons]
        return kept, sorted(reasons.items())

    def _walk(self, resolved: list[tuple[Candidate, list[tuple[Key, Holder, rules.Reading]]]], *, skip: set[int]) -> list[tuple[int, str]]:
        shadow: dict[Key, Entry] = {}
        refused: list[tuple[int, str]] = []
        self._accepted = []
        entries = self.ledger.entries
        for cand, touches in resolved:
            if cand.index in skip or not touches:
                continue
            reason = None
            for key, holder, reading in touches:
                entry = shadow.get(key) or entries[key]
                if entry.kind == "limit_metered" and not rules.admits(entry.agg, entry.limit, entry.used, entry.known, reading):
                    reason = _reason(holder, entry, reading)
                    break
            if reason is not None:
                refused.append((cand.index, reason))
                continue
            for key, _, reading in touches:
                entry = shadow.get(key)
                if entry is None:
                    entry = shadow[key] = entries[key].copy()
                entry.add(reading)
            self._accepted.append(cand)
        self._shadow = shadow
        return refused

    def stored(self, rows: Sequence[EventRow], added: int) -> None:
        """After the insert: count the accepted events in the entries when the store moved by
        exactly them; otherwise leave every entry to be computed again."""
        if not self.active:
            return
        ledger = self.ledger
        after = ledger._store_version()
        before = ledger.version
        shadow: dict[Key, Entry] = getattr(self, "_shadow", {})
        # Exact when nothing but this request's events moved the store, and every event
        # counted in the shadow entries was really added (no duplicates among them).
        exact = (
            isinstance(before, StoreVersion) and isinstance(after, StoreVersion)
            and after.generation == before.generation and after.events - before.events == added
            and (added == len(rows) or self._checked_duplicates)
        )
        touched = list(shadow)
        if exact:
            for key, entry in shadow.items():
                if entry.agg == "latest" and entry.kind == "limit_metered":
                    entry.epoch = -1  # which value is latest needs the events' times: recompute
                ledger.entries[key] = entry
                if entry.kind == "limit_recurring":
                    # usage in a period changes what it carries into the later ones: recompute those
                    for other in ledger._by_metric.get((key[0], key[1]), ()):
                        if other[2] > key[2] and other in ledger.entries:
                            ledger.entries[other].epoch = -1
            ledger.version = after
            if rows and ledger._earliest is not None and ledger._earliest[0] == ledger.epoch:
                first = min(row[2] for row in rows)
                known = ledger._earliest[1]
                if known is not None and first < known:
                    ledger._periods.clear()  # the default anchor may move
                ledger._earliest = (ledger.epoch, first if known is None else min(known, first))
        else:
            ledger.version = None
            ledger.sync(self.config)  # a new epoch: entries are computed from the store again
        if touched:
            for callback in ledger.on_advance:
                callback(ledger, self.config, touched)


def _reason(holder: Holder, entry: Entry, reading: rules.Reading) -> str:
    metric = holder.metric
    unit = getattr(metric, "unit", "") or ""
    limit, used = decimal_str(entry.limit), decimal_str(entry.used)
    if entry.agg in ("max", "latest"):
        what = f"its {metric.value_property} of {decimal_str(reading.amount or ZERO)} is over the limit"
    elif entry.agg == "unique_count":
        what = f"a new {metric.distinct_by} '{(reading.text or '')[:60]}' would make {int(entry.used) + 1} distinct"
    elif entry.agg == "sum":
        what = f"adding {decimal_str(reading.amount or ZERO)} would take usage to {decimal_str(entry.used + (reading.amount or ZERO))}"
    else:
        what = f"one more would take usage to {decimal_str(entry.used + 1)}"
    return (f"quota exceeded: metric '{metric.code}' has a hard limit of {limit} {unit} per period on plan "
            f"'{holder.plan.code}' ({used} used); {what}. The period ends {billing.iso(entry.end)}")


def _duplicates(candidates: Sequence[Candidate], events: Events) -> set[int]:
    """Positions of candidate events whose key the store already holds, or that repeat an
    earlier key of the same request (the first of repeated keys is stored)."""
    out: set[int] = set()
    seen: set[str] = set()
    for cand in sorted(candidates, key=lambda c: c.index):
        key = cand.row[3]
        if key in seen or events.find_event(key) is not None:
            out.add(cand.index)
        seen.add(key)
    return out


def _accepted_values(events: Events, metric: MetricBase, cid: str, start: datetime, end: datetime, n: int) -> set[str]:
    """The distinct values a limit_metered unique_count walk accepted in [start, end): the
    first `n` values by first use. All values of the window when there are no more than `n`
    (the usual case); otherwise the values first used before the instant the n-th appears."""
    grouper = MetricBase.model_validate({
        **{name: getattr(metric, name) for name in MetricBase.model_fields},
        "aggregation": "count", "group_by": [metric.distinct_by], "metric_type": "charge_metered",
        "value_property": None,
    })
    path = metric.distinct_by or ""

    def values_in(until: int) -> set[str]:
        result = events.aggregate(grouper, start=start, end=until, customer_ids=[cid])
        return {g.group.get(path) for g in result.groups if g.group.get(path) is not None}  # type: ignore[misc]

    everything = values_in(_us(end))
    if len(everything) <= n:
        return everything
    lo, hi = _us(start), _us(end)  # the smallest cut with ≥ n values before it
    while lo < hi:
        mid = (lo + hi) // 2
        if len(values_in(mid + 1)) >= n:
            hi = mid
        else:
            lo = mid + 1
    return values_in(lo + 1)


_ledgers: dict[object, Ledger] = {}
_ledgers_lock = threading.Lock()


def ledger_for(engine: Engine) -> Ledger:
    """The process's ledger for this store (an in-memory database: kept on its engine)."""
    from metering.engine.frame import store_key

    found = getattr(engine, "_metering_quota_ledger", None)
    if found is not None:
        return found
    with _ledgers_lock:
        if engine.url.get_backend_name() == "sqlite" and engine.url.database in (None, "", ":memory:"):
            found = getattr(engine, "_metering_quota_ledger", None)
            if found is None:
                found = Ledger(engine)
                engine._metering_quota_ledger = found  # type: ignore[attr-defined]
            return found
        key = store_key(engine)
        found = _ledgers.get(key)
        if found is None:
            found = _ledgers[key] = Ledger(engine)
        engine._metering_quota_ledger = found  # type: ignore[attr-defined]
        return found
