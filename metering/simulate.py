"""Realistic usage-event simulator (vectorised, deterministic per seed).

Generates usage events in the shape of CONTRACTS.md section 1 (``event_name``,
``customer_id``, ``timestamp`` and ``properties``) for the quick templates of
section 2, fast enough to produce a million events in about a second.

Model
-----
* ``daily_volume * days`` events exactly. They are spread over the days of the
  window ``[start, start + days)`` by the ``shape`` (``steady``: flat with a
  little day-to-day noise; ``growth``: rises linearly to ~2x; ``spiky``: a few
  burst days at 3-8x; ``weekly``: Saturdays and Sundays at ~40 % of weekdays)
  and within a day by a diurnal curve (busiest around 15:00 UTC).
* Customers ``{customer_prefix}{n}`` (zero-padded) have Zipf-like activity
  weights with lognormal noise: a few heavy customers and a long tail. The
  heaviest customer is not simply ``..001`` (ids are shuffled).
* Timestamps are unique per customer (nudged by one tick where two collide), so
  no two generated events share the content hash that the contract uses as the
  default idempotency key: importing a simulated file accepts every event.
* Property values are independent per event, except ``choice`` properties with
  ``per_customer=True`` (one value per customer, e.g. its region) and numeric
  properties with ``customer_sigma > 0`` (a per-customer scale factor).

Output is a :class:`pandas.DataFrame` with string (``str``) and ``int64``
columns; decimal properties are exact fixed-point strings (``"0.125"``), never
binary floats. :func:`to_csv`, :func:`to_jsonl` and :func:`to_json` write them
in the accepted import formats, building the text with Arrow kernels.
"""

from __future__ import annotations

import json
import math
import re
import zlib
from decimal import ROUND_HALF_UP, Decimal
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from os import PathLike
from typing import Callable, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

__all__ = [
    "DISTRIBUTIONS",
    "KINDS",
    "SHAPES",
    "TEMPLATES",
    "PropertySpec",
    "SimulationSpec",
    "simulate",
    "template_spec",
    "to_csv",
    "to_json",
    "to_jsonl",
]

Kind = Literal["int", "decimal", "choice"]
Distribution = Literal["uniform", "normal", "lognormal", "poisson", "constant"]
Shape = Literal["steady", "growth", "spiky", "weekly"]
Precision = Literal["s", "ms"]

KINDS: tuple[str, ...] = ("int", "decimal", "choice")
DISTRIBUTIONS: tuple[str, ...] = ("uniform", "normal", "lognormal", "poisson", "constant")
SHAPES: tuple[str, ...] = ("steady", "growth", "spiky", "weekly")
TEMPLATES: tuple[str, ...] = (
    "api_requests",
    "llm_tokens",
    "worker_duration",
    "storage_gb",
    "emails_sent",
    "unique_users",
)

#: Fields of an event that are not properties (a DataFrame column with one of
#: these names is written as the field, every other column as a property).
EVENT_FIELDS: tuple[str, ...] = ("event_name", "customer_id", "timestamp", "idempotency_key")

_EVENT_NAME_RE = re.compile(r"^[A-Za-z0-9_.:\-]{1,100}$")
_PATH_SEGMENT_RE = re.compile(r"^[^.\s][^.]*$")
# A JSON number token (what a CSV importer reads as a number and JSON Lines may carry bare).
_JSON_NUMBER_RE = r"^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?$"
_MS_PER_DAY = 86_400_000
_MAX_DECIMALS = 9


# --------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class PropertySpec:
    """How one property of the simulated events is drawn.

    ``name`` is a dot path (``usage.input_tokens`` is ``{"usage": {"input_tokens": …}}``).

    ``kind``:
      * ``"int"`` – whole numbers (an ``int64`` column);
      * ``"decimal"`` – rounded to ``decimals`` places and emitted as exact fixed-point
        strings with exactly that many places (``"12.500"``; no dot when ``decimals`` is 0);
      * ``"choice"`` – one of ``values`` (strings), weighted by ``weights``.

    An ``int``/``decimal`` property with ``values`` is a weighted choice among those numbers
    (e.g. HTTP status codes). Otherwise ``dist`` draws the number:
      * ``uniform``: between ``low`` and ``high`` (both inclusive for ints);
      * ``normal``: ``mean`` ± ``sigma``;
      * ``lognormal``: median ``mean``, log-space standard deviation ``sigma`` (heavy tail);
      * ``poisson``: rate ``mean``;
      * ``constant``: ``mean`` (or ``low`` when ``mean`` is unset).
    Drawn numbers are clipped to ``[low, high]`` where those are set.

    ``customer_sigma`` (numeric kinds) multiplies each customer's values by a fixed factor
    ``exp(N(0, customer_sigma))`` so customers differ in size. ``per_customer`` (choice
    kinds) gives every customer one value for all its events (a customer's region).
    """

    name: str
    kind: Kind = "int"
    dist: Distribution = "uniform"
    low: float | None = None
    high: float | None = None
    mean: float | None = None
    sigma: float | None = None
    decimals: int = 2
    values: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None
    per_customer: bool = False
    customer_sigma: float = 0.0

    def __post_init__(self) -> None:
        segments = self.name.split(".")
        if not self.name or not all(_PATH_SEGMENT_RE.match(s) for s in segments):
            raise ValueError(f"property name {self.name!r} is not a dot path of non-empty keys")
        if self.name in EVENT_FIELDS:
            raise ValueError(f"property name {self.name!r} clashes with an event field")
        if self.kind not in KINDS:
            raise ValueError(f"property {self.name}: kind must be one of {KINDS}, not {self.kind!r}")
        if self.dist not in DISTRIBUTIONS:
            raise ValueError(
                f"property {self.name}: dist must be one of {DISTRIBUTIONS}, not {self.dist!r}"
            )
        if not isinstance(self.decimals, int) or not 0 <= self.decimals <= _MAX_DECIMALS:
            raise ValueError(f"property {self.name}: decimals must be an int in 0..{_MAX_DECIMALS}")
        object.__setattr__(self, "values", tuple(str(v) for v in self.values))
        if self.weights is not None:
            object.__setattr__(self, "weights", tuple(float(w) for w in self.weights))
            if len(self.weights) != len(self.values):
                raise ValueError(f"property {self.name}: weights and values differ in length")
            if any(w < 0 or not math.isfinite(w) for w in self.weights) or sum(self.weights) <= 0:
                raise ValueError(f"property {self.name}: weights must be >= 0 with a positive sum")
        if self.kind == "choice":
            if not self.values:
                raise ValueError(f"property {self.name}: a choice needs values")
            return
        if self.per_customer and not self.values:
            raise ValueError(f"property {self.name}: per_customer applies to choices only")
        if self.values:
            for v in self.values:
                try:
                    float(v) if self.kind == "decimal" else int(v)
                except ValueError:
                    raise ValueError(
                        f"property {self.name}: value {v!r} is not a valid {self.kind}"
                    ) from None
            return
        if self.customer_sigma < 0:
            raise ValueError(f"property {self.name}: customer_sigma must be >= 0")
        if self.low is not None and self.high is not None and self.low > self.high:
            raise ValueError(f"property {self.name}: low > high")
        need: dict[str, tuple[str, ...]] = {
            "uniform": ("low", "high"),
            "normal": ("mean", "sigma"),
            "lognormal": ("mean", "sigma"),
            "poisson": ("mean",),
            "constant": (),
        }
        for param in need[self.dist]:
            if getattr(self, param) is None:
                raise ValueError(f"property {self.name}: {self.dist} needs {param}")
        if self.dist == "constant" and self.mean is None and self.low is None:
            raise ValueError(f"property {self.name}: constant needs mean (or low)")
        if self.dist == "lognormal" and (self.mean or 0) <= 0:
            raise ValueError(f"property {self.name}: lognormal needs a positive mean (median)")
        if self.dist in ("normal", "lognormal") and (self.sigma or 0) < 0:
            raise ValueError(f"property {self.name}: sigma must be >= 0")
        if self.dist == "poisson" and (self.mean or 0) < 0:
            raise ValueError(f"property {self.name}: poisson needs mean >= 0")


@dataclass(frozen=True)
class SimulationSpec:
    """What to simulate: ``daily_volume * days`` events of one ``event_name``.

    ``start`` must be timezone-aware (it is converted to UTC); the events fall in
    ``[start, start + days)``. ``customer_skew`` is the Zipf exponent of customer activity
    (0 = all customers alike; ~1.1 = a few heavy customers and a long tail).
    ``timestamp_precision`` is ``"ms"`` (``2026-10-03T12:00:00.123Z``) or ``"s"``
    (``2026-10-03T12:00:00Z``).
    """

    event_name: str
    customers: int
    start: datetime
    days: int
    daily_volume: int
    shape: Shape = "steady"
    properties: tuple[PropertySpec, ...] = ()
    seed: int = 0
    customer_prefix: str = "cus_"
    customer_skew: float = 1.1
    timestamp_precision: Precision = "ms"

    def __post_init__(self) -> None:
        if not _EVENT_NAME_RE.match(self.event_name):
            raise ValueError(
                f"event_name {self.event_name!r} must be 1-100 chars of A-Z a-z 0-9 _ . : -"
            )
        if self.customers < 1:
            raise ValueError("customers must be >= 1")
        if self.days < 1:
            raise ValueError("days must be >= 1")
        if self.daily_volume < 0:
            raise ValueError("daily_volume must be >= 0")
        if self.shape not in SHAPES:
            raise ValueError(f"shape must be one of {SHAPES}, not {self.shape!r}")
        if self.timestamp_precision not in ("s", "ms"):
            raise ValueError("timestamp_precision must be 's' or 'ms'")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError("seed must be a non-negative int")
        if self.customer_skew < 0:
            raise ValueError("customer_skew must be >= 0")
        if not isinstance(self.start, datetime) or self.start.utcoffset() is None:
            raise ValueError("start must be a timezone-aware datetime")
        object.__setattr__(self, "start", self.start.astimezone(UTC))
        object.__setattr__(self, "properties", tuple(self.properties))
        names = [p.name for p in self.properties]
        if len(set(names)) != len(names):
            raise ValueError("property names must be unique")
        _check_paths(names)

    @property
    def end(self) -> datetime:
        """Exclusive end of the simulated window."""
        return self.start + timedelta(days=self.days)

    @property
    def total_events(self) -> int:
        return self.daily_volume * self.days


def _check_paths(names: list[str]) -> None:
    """A path may not be both a value and an object (``usage`` and ``usage.input``)."""
    taken = set(names)
    for name in names:
        parts = name.split(".")
        for i in range(1, len(parts)):
            if ".".join(parts[:i]) in taken:
                raise ValueError(f"property {name!r} nests inside property {'.'.join(parts[:i])!r}")


# --------------------------------------------------------------------------- simulate


def simulate(spec: SimulationSpec) -> pd.DataFrame:
    """Generate the events of ``spec`` as a DataFrame sorted by timestamp.

    Columns: ``event_name``, ``customer_id``, ``timestamp`` (ISO 8601 ``…Z``), then one
    column per property named by its path (``int64`` for ints, exact decimal strings for
    decimals, strings for choices). The same spec (seed included) gives the same frame.
    """
    n = spec.total_events
    # Customer sizes (and per-customer property values) depend on the seed only, so the
    # same seed gives the same heavy customers in every template; the event stream also
    # depends on the event name and the volume, so two templates (or two sizes) do not
    # share their timestamps or values.
    rng_customers = np.random.default_rng(np.random.SeedSequence([spec.seed, 0]))
    name_key = zlib.crc32(
        f"{spec.event_name}|{spec.customers}|{spec.days}|{spec.daily_volume}".encode()
    )
    stream = np.random.SeedSequence([spec.seed, 1, name_key])
    rng_days, rng_times, rng_assign = (np.random.default_rng(s) for s in stream.spawn(3))

    tick = 1 if spec.timestamp_precision == "ms" else 1000  # ms per tick
    start_ms = _epoch_ms(spec.start)
    base = -(-start_ms // tick)  # first tick at or after start
    end_tick = (start_ms + spec.days * _MS_PER_DAY) // tick  # exclusive (end is whole ms)
    if (start_ms + spec.days * _MS_PER_DAY) % tick:
        end_tick += 1
    span = max(end_tick - base, 1)

    # Customers: Zipf-like weights with noise, ids shuffled so the heaviest is anywhere.
    width = max(3, len(str(spec.customers)))
    customer_ids = np.array(
        [f"{spec.customer_prefix}{i:0{width}d}" for i in range(1, spec.customers + 1)], dtype=object
    )
    ranks = np.arange(1, spec.customers + 1, dtype=np.float64)
    cw = ranks ** (-spec.customer_skew) * rng_customers.lognormal(0.0, 0.35, spec.customers)
    cw = cw[rng_customers.permutation(spec.customers)]
    cw /= cw.sum()

    # Days: shape weights -> exact multinomial split of the n events.
    day_weights = _day_weights(spec, rng_days)
    per_day = rng_days.multinomial(n, day_weights / day_weights.sum())
    day_of_event = np.repeat(np.arange(spec.days, dtype=np.int64), per_day)

    # Time of day: a diurnal curve (quiet around 03:00 UTC, busy around 15:00 UTC).
    hours = np.arange(24)
    hw = 1.0 + 0.65 * np.cos((hours + 0.5 - 15.0) / 24.0 * 2.0 * np.pi)
    hour = rng_times.choice(24, size=n, p=hw / hw.sum())
    within = rng_times.integers(0, 3_600_000, size=n)
    offset_ms = day_of_event * _MS_PER_DAY + hour * 3_600_000 + within
    ticks = (start_ms + offset_ms) // tick - base
    np.clip(ticks, 0, span - 1, out=ticks)

    cust = rng_assign.choice(spec.customers, size=n, p=cw).astype(np.int64)
    ticks = _unique_per_customer(cust, ticks, span)
    order = np.argsort(ticks, kind="stable")
    ticks = ticks[order]
    cust = cust[order]

    columns: dict[str, pa.Array] = {
        "event_name": pa.array([spec.event_name], pa.string()).take(np.zeros(n, np.int64)),
        "customer_id": pa.array(customer_ids, pa.string()).take(cust),
        "timestamp": _format_timestamps((ticks + base) * tick, spec.timestamp_precision),
    }
    for prop in spec.properties:
        key = zlib.crc32(prop.name.encode())
        per_event = np.random.default_rng(np.random.SeedSequence([spec.seed, 2, name_key, key]))
        per_customer = np.random.default_rng(np.random.SeedSequence([spec.seed, 3, key]))
        columns[prop.name] = _draw_property(prop, n, cust, spec.customers, per_event, per_customer)
    return pa.table(columns).to_pandas()


def _epoch_ms(dt: datetime) -> int:
    delta = dt.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


def _day_weights(spec: SimulationSpec, rng: np.random.Generator) -> np.ndarray:
    days = spec.days
    noise = rng.lognormal(0.0, 0.08, days)  # a little day-to-day jitter for every shape
    d = np.arange(days, dtype=np.float64)
    if spec.shape == "growth":
        w = 1.0 + (d / (days - 1) if days > 1 else np.zeros(days))  # 1x -> 2x
    elif spec.shape == "weekly":
        weekday = (spec.start.weekday() + np.arange(days)) % 7
        w = np.where(weekday >= 5, 0.4, 1.0)
    elif spec.shape == "spiky":
        w = np.ones(days)
        k = min(days, max(1, round(days / 8)))
        spikes = rng.choice(days, size=k, replace=False)
        w[spikes] = rng.uniform(3.0, 8.0, k)
    else:
        w = np.ones(days)
    return w * noise


def _unique_per_customer(cust: np.ndarray, ticks: np.ndarray, span: int) -> np.ndarray:
    """Nudge colliding ticks so each customer's timestamps are distinct and in the window."""
    n = len(ticks)
    if n < 2:
        return ticks
    big = np.int64(span + n + 1)
    c_key = cust * big
    order = np.argsort(c_key + ticks, kind="stable")  # by customer, then time
    c = c_key[order]
    t = ticks[order]
    idx = np.arange(n, dtype=np.int64)
    # forward: s_i = max(t_i, s_{i-1} + 1) within a customer
    s = np.maximum.accumulate(c + t - idx) - c + idx
    np.minimum(s, span - 1, out=s)
    # backward: r_i = min(s_i, r_{i+1} - 1) within a customer (keeps the end of the window)
    r = np.minimum.accumulate((c + s - idx)[::-1])[::-1] - c + idx
    np.maximum(r, 0, out=r)  # only a customer with more events than ticks could need this
    out = np.empty_like(ticks)
    out[order] = r
    return out


def _format_timestamps(ms: np.ndarray, precision: Precision) -> pa.Array:
    """Epoch milliseconds -> ``YYYY-MM-DDTHH:MM:SS[.mmm]Z`` (fixed-width byte building)."""
    n = len(ms)
    width = 24 if precision == "ms" else 20
    if n == 0:
        return pa.array([], pa.string())
    day = ms // _MS_PER_DAY
    rem = ms - day * _MS_PER_DAY
    d0 = int(day.min())
    dates = np.arange(d0, int(day.max()) + 1).astype("datetime64[D]").astype("S10")
    date_bytes = np.frombuffer(dates.tobytes(), dtype=np.uint8).reshape(-1, 10)
    out = np.empty((n, width), dtype=np.uint8)
    out[:, :10] = date_bytes[day - d0]
    out[:, 10] = ord("T")
    out[:, 13] = out[:, 16] = ord(":")
    hh = rem // 3_600_000
    mm = rem // 60_000 % 60
    ss = rem // 1000 % 60
    for col, val in ((11, hh), (14, mm), (17, ss)):
        out[:, col] = 48 + val // 10
        out[:, col + 1] = 48 + val % 10
    if precision == "ms":
        frac = rem % 1000
        out[:, 19] = ord(".")
        out[:, 20] = 48 + frac // 100
        out[:, 21] = 48 + frac // 10 % 10
        out[:, 22] = 48 + frac % 10
    out[:, width - 1] = ord("Z")
    return _fixed_width_strings(out)


def _fixed_width_strings(mat: np.ndarray) -> pa.Array:
    n, width = mat.shape
    data = np.ascontiguousarray(mat)
    if n * width < 2**31 - 1:
        offsets = np.arange(0, n * width + 1, width, dtype=np.int32)
        typ = pa.string()
    else:
        offsets = np.arange(0, n * width + 1, width, dtype=np.int64)
        typ = pa.large_string()
    return pa.Array.from_buffers(typ, n, [None, pa.py_buffer(offsets), pa.py_buffer(data)])


def _draw_property(
    prop: PropertySpec,
    n: int,
    cust: np.ndarray,
    customers: int,
    rng: np.random.Generator,
    rng_customer: np.random.Generator,
) -> pa.Array:
    if prop.values:
        p = None
        if prop.weights is not None:
            w = np.asarray(prop.weights, dtype=np.float64)
            p = w / w.sum()
        if prop.per_customer:
            idx = rng_customer.choice(len(prop.values), size=customers, p=p)[cust]
        else:
            idx = rng.choice(len(prop.values), size=n, p=p)
        if prop.kind == "int":
            return pa.array(np.array([int(v) for v in prop.values], dtype=np.int64)[idx])
        if prop.kind == "decimal":
            scaled = np.array([_scaled(v, prop.decimals) for v in prop.values], dtype=np.int64)
            return _format_fixed(scaled[idx], prop.decimals)
        return pa.array(list(prop.values), pa.string()).take(idx)

    x = _draw_numbers(prop, n, rng)
    if prop.customer_sigma > 0:
        x = x * rng_customer.lognormal(0.0, prop.customer_sigma, customers)[cust]
    if prop.low is not None or prop.high is not None:
        x = np.clip(x, prop.low if prop.low is not None else -np.inf,
                    prop.high if prop.high is not None else np.inf)
    if prop.kind == "int":
        if n and np.abs(x).max() >= 2**62:
            raise ValueError(f"property {prop.name}: values too large for an int64")
        return pa.array(np.rint(x).astype(np.int64))
    scaled = np.rint(x * 10**prop.decimals)
    if n and np.abs(scaled).max() >= 2**62:
        raise ValueError(f"property {prop.name}: values too large for {prop.decimals} decimals")
    return _format_fixed(scaled.astype(np.int64), prop.decimals)


def _draw_numbers(prop: PropertySpec, n: int, rng: np.random.Generator) -> np.ndarray:
    if prop.dist == "uniform":
        assert prop.low is not None and prop.high is not None
        if prop.kind == "int":
            lo, hi = math.ceil(prop.low), math.floor(prop.high)
            return rng.integers(lo, max(hi, lo) + 1, size=n).astype(np.float64)
        return rng.uniform(prop.low, prop.high, size=n)
    if prop.dist == "normal":
        return rng.normal(prop.mean, prop.sigma, size=n)
    if prop.dist == "lognormal":
        assert prop.mean is not None
        return rng.lognormal(math.log(prop.mean), prop.sigma, size=n)
    if prop.dist == "poisson":
        return rng.poisson(prop.mean, size=n).astype(np.float64)
    value = prop.mean if prop.mean is not None else prop.low
    return np.full(n, float(value or 0.0))


def _scaled(text: str, decimals: int) -> int:
    return int((Decimal(text) * 10**decimals).to_integral_value(ROUND_HALF_UP))


def _format_fixed(scaled: np.ndarray, decimals: int) -> pa.Array:
    """Integers counted in 10**-decimals units -> exact fixed-point strings."""
    neg = scaled < 0
    mag = np.abs(scaled)
    if decimals == 0:
        text = pc.cast(pa.array(mag), pa.string())
    else:
        unit = 10**decimals
        whole = pc.cast(pa.array(mag // unit), pa.string())
        frac = pc.utf8_lpad(pc.cast(pa.array(mag % unit), pa.string()), width=decimals, padding="0")
        text = pc.binary_join_element_wise(whole, frac, ".")
    if neg.any():
        text = pc.if_else(pa.array(neg), pc.binary_join_element_wise("-", text, ""), text)
    return text


# --------------------------------------------------------------------------- templates


def _region(per_customer: bool = True) -> PropertySpec:
    return PropertySpec(
        "region",
        kind="choice",
        values=("us-east", "eu-west", "ap-south"),
        weights=(0.5, 0.33, 0.17),
        per_customer=per_customer,
    )


def template_spec(
    template: str,
    *,
    customers: int = 40,
    start: datetime = datetime(2026, 10, 1, tzinfo=UTC),
    days: int = 30,
    daily_volume: int | None = None,
    seed: int = 0,
    shape: Shape | None = None,
    timestamp_precision: Precision = "ms",
) -> SimulationSpec:
    """Realistic defaults for a quick template of CONTRACTS.md section 2.

    ``template`` is one of :data:`TEMPLATES` (``"LLM Tokens"`` style names work too).
    ``daily_volume`` and ``shape`` default per template.
    """
    key = re.sub(r"[^a-z0-9]+", "_", template.strip().lower()).strip("_")
    if key not in TEMPLATES:
        raise ValueError(f"unknown template {template!r}; expected one of {', '.join(TEMPLATES)}")

    props: tuple[PropertySpec, ...]
    if key == "api_requests":
        event, volume, default_shape = "api.request", 5000, "weekly"
        props = (
            PropertySpec(
                "endpoint",
                kind="choice",
                values=("/v1/search", "/v1/users", "/v1/orders", "/v1/payments",
                        "/v1/reports", "/v1/webhooks"),
                weights=(0.34, 0.22, 0.18, 0.12, 0.08, 0.06),
            ),
            PropertySpec("method", kind="choice", values=("GET", "POST", "PUT", "DELETE"),
                         weights=(0.62, 0.28, 0.06, 0.04)),
            _region(),
            PropertySpec("status", kind="int",
                         values=("200", "201", "204", "400", "401", "404", "429", "500"),
                         weights=(0.80, 0.06, 0.03, 0.03, 0.015, 0.04, 0.02, 0.005)),
        )
    elif key == "llm_tokens":
        event, volume, default_shape = "llm.tokens", 2000, "growth"
        props = (
            PropertySpec("tokens", kind="int", dist="lognormal", mean=850, sigma=0.9,
                         low=1, high=128_000),
            PropertySpec("model", kind="choice",
                         values=("gpt-4o", "claude-sonnet", "llama3.1", "llama3.2"),
                         weights=(0.36, 0.30, 0.20, 0.14)),
            _region(),
        )
    elif key == "worker_duration":
        event, volume, default_shape = "worker.run", 1500, "spiky"
        props = (
            PropertySpec("duration_ms", kind="decimal", dist="lognormal", mean=140, sigma=1.0,
                         decimals=2, low=0.5, high=900_000),
            PropertySpec("worker", kind="choice",
                         values=("image-resize", "pdf-render", "etl-sync", "webhook-relay",
                                 "thumbnail", "report-export"),
                         weights=(0.28, 0.18, 0.16, 0.20, 0.12, 0.06)),
            _region(),
        )
    elif key == "storage_gb":
        event, volume, default_shape = "storage.snapshot", customers * 24, "steady"
        props = (
            PropertySpec("gb", kind="decimal", dist="lognormal", mean=120, sigma=0.25,
                         decimals=3, low=0.001, customer_sigma=1.3),
            PropertySpec("bucket", kind="choice",
                         values=("backups", "media", "logs", "datasets", "archive"),
                         weights=(0.30, 0.25, 0.20, 0.15, 0.10)),
            _region(),
        )
    elif key == "emails_sent":
        event, volume, default_shape = "email.sent", 3000, "weekly"
        props = (
            PropertySpec("template", kind="choice",
                         values=("receipt", "password_reset", "welcome", "invoice",
                                 "newsletter", "weekly_digest"),
                         weights=(0.30, 0.08, 0.10, 0.12, 0.25, 0.15)),
            PropertySpec("domain", kind="choice",
                         values=("gmail.com", "outlook.com", "yahoo.com", "icloud.com",
                                 "proton.me", "hey.com"),
                         weights=(0.46, 0.20, 0.12, 0.12, 0.06, 0.04)),
        )
    else:  # unique_users
        event, volume, default_shape = "user.active", 1200, "weekly"
        n_users = 300
        user_rank = np.arange(1, n_users + 1, dtype=np.float64)
        props = (
            PropertySpec("user_id", kind="choice",
                         values=tuple(f"usr_{i:04d}" for i in range(1, n_users + 1)),
                         weights=tuple(float(w) for w in user_rank**-0.8)),
            PropertySpec("plan", kind="choice", values=("free", "pro", "team", "enterprise"),
                         weights=(0.55, 0.25, 0.14, 0.06)),
            _region(),
        )
    return SimulationSpec(
        event_name=event,
        customers=customers,
        start=start,
        days=days,
        daily_volume=volume if daily_volume is None else daily_volume,
        shape=shape or default_shape,  # type: ignore[arg-type]
        properties=props,
        seed=seed,
        timestamp_precision=timestamp_precision,
    )


# --------------------------------------------------------------------------- writers


_LS = pa.large_string()


def _ls(part: object) -> object:
    """A large_string scalar or array (Arrow's string kernels do not mix string widths)."""
    if isinstance(part, str):
        return pa.scalar(part, _LS)
    if isinstance(part, (pa.Array, pa.ChunkedArray)) and part.type != _LS:
        return part.cast(_LS)
    return part


def _join(*parts: object, sep: str = "", null_handling: str = "emit_null",
          null_replacement: str = "") -> pa.ChunkedArray | pa.Array:
    return pc.binary_join_element_wise(
        *(_ls(p) for p in parts), _ls(sep),
        null_handling=null_handling, null_replacement=null_replacement,
    )


def _if_else(cond: object, a: object, b: object) -> pa.ChunkedArray | pa.Array:
    return pc.if_else(cond, _ls(a), _ls(b))


def to_csv(df: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write events as CSV (header row, ``\\n`` line ends, minimal quoting).

    Every property column is a top-level column named by its path, except dotted
    (nested) paths: a top-level CSV column is a top-level property, so nested
    properties go into one ``properties`` column holding a JSON object as text.
    Missing values are empty cells.
    """
    table = _to_table(df)
    flat = [c for c in table.column_names if c in EVENT_FIELDS or "." not in c]
    nested = [c for c in table.column_names if c not in EVENT_FIELDS and "." in c]
    if "properties" in table.column_names and nested:
        raise ValueError("a 'properties' column and dotted property columns cannot be combined")
    header = [*flat, *(["properties"] if nested else [])]
    cells = [_csv_cell(_text_of(table.column(c))) for c in flat]
    if nested:
        obj = _json_object(table, nested)
        cells.append(_csv_cell(obj))
    n = table.num_rows
    row = _join(*cells, sep=",", null_handling="replace")
    lines = _join(row, "\n")
    head = ",".join(_csv_quote(h) for h in header) + "\n"
    _write_lines(path, head, lines if n else None)


def to_jsonl(df: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write events as JSON Lines: one ``{"event_name", "customer_id", "timestamp",
    "properties": {…}}`` object a line, dotted names expanded into nested objects,
    numbers (ints, and strings that read as JSON numbers) written bare."""
    _write_lines(path, "", _json_lines(df, "\n") if len(df) else None)


def to_json(df: pd.DataFrame, path: str | PathLike[str]) -> None:
    """Write events as one JSON array, one event object a line."""
    if not len(df):
        _write_lines(path, "[]\n", None)
        return
    lines = _json_lines(df, ",\n")
    # drop the trailing ",\n" of the last event
    body = _buffer_of(lines)
    with open(path, "wb") as fh:
        fh.write(b"[\n")
        fh.write(memoryview(body)[: len(body) - 2])
        fh.write(b"\n]\n")


def _to_table(df: pd.DataFrame) -> pa.Table:
    missing = [c for c in ("event_name", "customer_id", "timestamp") if c not in df.columns]
    if missing:
        raise ValueError(f"missing event column(s): {', '.join(missing)}")
    if len(set(map(str, df.columns))) != len(df.columns):
        raise ValueError("duplicate column names")
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in df.columns:
        s = df[name]
        if name == "timestamp" and pd.api.types.is_datetime64_any_dtype(s.dtype):
            ser = s.dt.tz_convert("UTC").dt.tz_localize(None) if s.dt.tz is not None else s
            missing = ser.isna().to_numpy()
            ms = ser.astype("datetime64[ms]").to_numpy().astype(np.int64)
            ms[missing] = 0
            arr = _format_timestamps(ms, "ms")
            if missing.any():
                arr = _if_else(pa.array(missing), pa.scalar(None, _LS), arr)
            cols[str(name)] = arr
        else:
            cols[str(name)] = pa.Table.from_pandas(
                pd.DataFrame({"c": s}), preserve_index=False).column("c")
    _check_paths([c for c in cols if c not in EVENT_FIELDS])
    return pa.table(cols)


def _text_of(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Text of each cell (numbers in their shortest exact form, null for missing)."""
    t = col.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return col
    if pa.types.is_dictionary(t):
        return _text_of(col.cast(t.value_type))
    if pa.types.is_boolean(t):
        return _if_else(col, "true", "false")
    if pa.types.is_floating(t):
        col = pc.if_else(pc.is_finite(col), col, pa.scalar(None, t))
    if pa.types.is_null(t):
        return pa.chunked_array([pa.nulls(len(col), _LS)])
    return pc.cast(col, _LS)


def _csv_quote(text: str) -> str:
    if any(ch in text for ch in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_cell(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    needs = pc.match_substring_regex(text, r'[,"\r\n]')
    if not pc.any(needs).as_py():
        return text
    quoted = _join('"', pc.replace_substring(text, '"', '""'), '"')
    return _if_else(needs, quoted, text)


def _json_string(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """Vectorised ``json.dumps`` of a string column (nulls stay null)."""
    needs = pc.match_substring_regex(text, r'["\\\x00-\x1f]')
    if pc.any(needs).as_py():
        # rare: escape those cells one by one, the rest are wrapped in quotes
        flags = needs.to_numpy(zero_copy_only=False) if isinstance(needs, pa.Array) else \
            needs.combine_chunks().to_numpy(zero_copy_only=False)
        values = text.to_pylist()
        out = [json.dumps(v, ensure_ascii=False) if (f and v is not None) else None
               for v, f in zip(values, flags, strict=True)]
        escaped = pa.array(out, _LS)
        plain = _join('"', text, '"')
        return _if_else(needs, escaped, plain)
    return _join('"', text, '"')


def _json_value(col: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    t = col.type
    if pa.types.is_dictionary(t):
        return _json_value(col.cast(t.value_type))
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _per_distinct(col, _json_token)
    return _text_of(col)  # ints, floats, bools: already JSON tokens


def _json_token(text: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """A string that reads as a JSON number is written bare, any other as a JSON string."""
    is_num = pc.match_substring_regex(text, _JSON_NUMBER_RE)
    return _if_else(is_num, text, _json_string(text))


def _per_distinct(
    col: pa.ChunkedArray | pa.Array,
    fn: Callable[[pa.Array], pa.ChunkedArray | pa.Array],
) -> pa.ChunkedArray | pa.Array:
    """``fn(col)``, computed once per distinct value when a column repeats a lot."""
    n = len(col)
    if n < 4096:
        return fn(col)
    sample = col.slice(0, 4096)
    if pc.count_distinct(sample).as_py() > 1024:  # mostly distinct (ids, timestamps)
        return fn(col)
    enc = pc.dictionary_encode(col)
    if isinstance(enc, pa.ChunkedArray):
        enc = enc.unify_dictionaries().combine_chunks() if enc.num_chunks else enc
    if isinstance(enc, pa.ChunkedArray):
        return fn(col)
    if len(enc.dictionary) * 4 > n:
        return fn(col)
    out = fn(enc.dictionary)
    if isinstance(out, pa.ChunkedArray):
        out = out.combine_chunks()
    return out.take(enc.indices)


def _json_object(table: pa.Table, names: list[str]) -> pa.ChunkedArray | pa.Array:
    """``{…}`` text per row for the property columns ``names`` (dot paths nest)."""
    tree: dict[str, object] = {}
    for name in names:
        node = tree
        parts = name.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[parts[-1]] = name

    def joined(items: list[pa.ChunkedArray | pa.Array]) -> pa.ChunkedArray | pa.Array:
        # pyarrow's binary_join_element_wise with null_handling="skip" drops the rows where
        # every value is null (the result comes out shorter: pyarrow 26). An always-present ""
        # keeps every row; the separator it brings is cut off again (a piece is "key":value,
        # which never ends with a comma; a row of nulls gives "").
        out = _join(*items, "", sep=",", null_handling="skip")
        return pc.utf8_slice_codeunits(out, 0, -1)

    def pieces(node: dict[str, object]) -> list[pa.ChunkedArray | pa.Array]:
        out = []
        for key, child in node.items():
            prefix = json.dumps(key, ensure_ascii=False) + ":"
            if isinstance(child, str):
                out.append(_join(prefix, _json_value(table.column(child))))
            else:
                sub = pieces(child)  # type: ignore[arg-type]
                inner = joined(sub)
                present = sub[0].is_valid()
                for s in sub[1:]:
                    present = pc.or_(present, s.is_valid())
                obj = _join(prefix + "{", inner, "}")
                out.append(_if_else(present, obj, pa.scalar(None, _LS)))
        return out

    if not names:
        return pa.array(["{}"], _LS).take(np.zeros(table.num_rows, np.int64))
    parts = pieces(tree)
    inner = joined(parts)
    return _join("{", inner, "}")


def _json_lines(df: pd.DataFrame, terminator: str) -> pa.ChunkedArray | pa.Array:
    table = _to_table(df)
    props = [c for c in table.column_names if c not in EVENT_FIELDS]
    if "properties" in props:
        raise ValueError("a 'properties' column is not supported by the JSON writers")
    fields: list[pa.ChunkedArray | pa.Array] = []
    for name in ("event_name", "customer_id", "timestamp", "idempotency_key"):
        if name not in table.column_names:
            continue
        col = table.column(name)
        if name == "timestamp" and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            value = _text_of(col)  # epoch seconds stay a number
        else:
            value = _per_distinct(_text_of(col), _json_string)
        fields.append(_join(f'"{name}":', value))
    fields.append(_join('"properties":', _json_object(table, props)))
    body = _join(*fields, sep=",", null_handling="skip")
    return _join("{", body, "}" + terminator)


def _buffer_of(lines: pa.ChunkedArray | pa.Array) -> pa.Buffer:
    """The UTF-8 bytes of all strings of ``lines`` back to back (zero-copy when possible)."""
    arr = lines.combine_chunks() if isinstance(lines, pa.ChunkedArray) else lines
    if arr.null_count:
        arr = pc.fill_null(arr, "")
    if pa.types.is_string(arr.type):
        off_type = np.int32
    else:
        off_type = np.int64
    _, off_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(off_buf, dtype=off_type)[arr.offset : arr.offset + len(arr) + 1]
    return data_buf.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))


def _write_lines(
    path: str | PathLike[str], head: str, lines: pa.ChunkedArray | pa.Array | None
) -> None:
    with open(path, "wb") as fh:
        if head:
            fh.write(head.encode("utf-8"))
        if lines is not None:
            for chunk in (lines.chunks if isinstance(lines, pa.ChunkedArray) else [lines]):
                if len(chunk):
                    fh.write(memoryview(_buffer_of(chunk)))
