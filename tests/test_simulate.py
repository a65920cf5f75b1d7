"""Tests for metering.simulate: the usage-event generator and its CSV / JSON writers."""

from __future__ import annotations

import csv
import json
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metering.simulate import (
    TEMPLATES,
    PropertySpec,
    SimulationSpec,
    simulate,
    template_spec,
    to_csv,
    to_json,
    to_jsonl,
)

START = datetime(2026, 10, 1, tzinfo=UTC)  # a Thursday
TS_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TS_S = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$")


def make_spec(**overrides: object) -> SimulationSpec:
    base = SimulationSpec(
        event_name="llm.tokens",
        customers=25,
        start=START,
        days=28,
        daily_volume=500,
        shape="steady",
        properties=(
            PropertySpec("tokens", kind="int", dist="lognormal", mean=800, sigma=0.9, low=1),
            PropertySpec("cost", kind="decimal", dist="uniform", low=0, high=2, decimals=3),
            PropertySpec("model", kind="choice", values=("gpt-4o", "claude-sonnet", "llama3.1"),
                         weights=(0.5, 0.3, 0.2)),
            PropertySpec("region", kind="choice", values=("us-east", "eu-west", "ap-south"),
                         per_customer=True),
        ),
        seed=7,
    )
    return replace(base, **overrides)  # type: ignore[arg-type]


def parse_ts(series: pd.Series) -> pd.Series:
    return pd.to_datetime(series, utc=True, format="ISO8601")


def daily_counts(df: pd.DataFrame, spec: SimulationSpec) -> np.ndarray:
    ts = parse_ts(df["timestamp"])
    day = ((ts - pd.Timestamp(spec.start)) // pd.Timedelta(days=1)).to_numpy()
    return np.bincount(day, minlength=spec.days)


# --------------------------------------------------------------------------- generation


def test_deterministic_per_seed() -> None:
    spec = make_spec()
    a = simulate(spec)
    b = simulate(spec)
    pd.testing.assert_frame_equal(a, b)
    c = simulate(replace(spec, seed=8))
    assert not a.equals(c)
    assert not a["timestamp"].equals(c["timestamp"])


def test_columns_dtypes_and_exact_count() -> None:
    spec = make_spec()
    df = simulate(spec)
    assert list(df.columns) == ["event_name", "customer_id", "timestamp", "tokens", "cost",
                                "model", "region"]
    assert len(df) == spec.daily_volume * spec.days == spec.total_events
    assert (df["event_name"] == "llm.tokens").all()
    assert df["tokens"].dtype == np.int64
    assert set(df["customer_id"]) <= {f"cus_{i:03d}" for i in range(1, 26)}
    assert df["customer_id"].nunique() >= 20
    counts = daily_counts(df, spec)
    # steady: every day near the average volume
    assert counts.sum() == len(df)
    assert np.all(np.abs(counts - spec.daily_volume) < 0.35 * spec.daily_volume)


def test_customer_prefix_and_width() -> None:
    df = simulate(make_spec(customers=1500, daily_volume=200, days=3, customer_prefix="acct-"))
    assert df["customer_id"].str.fullmatch(r"acct-\d{4}").all()


def test_timestamps_in_window_sorted_and_unique_per_customer() -> None:
    spec = make_spec()
    df = simulate(spec)
    assert df["timestamp"].str.fullmatch(TS_MS.pattern).all()
    ts = parse_ts(df["timestamp"])
    assert ts.is_monotonic_increasing
    assert ts.min() >= pd.Timestamp(spec.start)
    assert ts.max() < pd.Timestamp(spec.end)
    # no two events of a customer share a timestamp: default idempotency keys stay distinct
    assert not df.duplicated(["customer_id", "timestamp"]).any()


def test_second_precision_and_unaligned_start() -> None:
    start = datetime(2026, 10, 3, 14, 0, 30, 500_000, tzinfo=timezone(timedelta(hours=2)))
    spec = make_spec(start=start, days=2, daily_volume=40_000, customers=3,
                     timestamp_precision="s")
    assert spec.start.tzinfo == UTC
    df = simulate(spec)
    assert df["timestamp"].str.fullmatch(TS_S.pattern).all()
    ts = parse_ts(df["timestamp"])
    assert ts.min() >= pd.Timestamp(start)
    assert ts.max() < pd.Timestamp(start + timedelta(days=2))
    assert ts.is_monotonic_increasing
    # 80k events for 3 customers in 172,800 seconds: collisions are nudged apart
    assert not df.duplicated(["customer_id", "timestamp"]).any()


def test_growth_shape_rises() -> None:
    spec = make_spec(shape="growth", days=35, daily_volume=1000)
    counts = daily_counts(simulate(spec), spec)
    first, last = counts[:7].sum(), counts[-7:].sum()
    assert last > first
    assert 1.5 < last / first < 2.5  # ~2x over the period


def test_weekly_shape_has_quiet_weekends() -> None:
    spec = make_spec(shape="weekly", days=28, daily_volume=1000)
    counts = daily_counts(simulate(spec), spec)
    weekday = np.array([(spec.start + timedelta(days=d)).weekday() for d in range(spec.days)])
    weekend = counts[weekday >= 5]
    weekdays = counts[weekday < 5]
    assert weekend.max() < weekdays.min()
    assert 0.25 < weekend.mean() / weekdays.mean() < 0.6  # ~40 %


def test_spiky_shape_has_bursts() -> None:
    spec = make_spec(shape="spiky", days=30, daily_volume=1000)
    counts = daily_counts(simulate(spec), spec)
    assert counts.max() > 2.5 * np.median(counts)
    assert (counts > 2 * np.median(counts)).sum() <= 8  # a few days, not all


def test_customer_activity_is_skewed() -> None:
    df = simulate(make_spec(customers=40, daily_volume=2000))
    shares = df["customer_id"].value_counts(normalize=True).to_numpy()
    assert shares[0] > 4 / 40  # the top customer uses several times an average share
    assert shares[:8].sum() > 0.5  # top 20 % of customers make most of the usage
    assert shares[-1] < 1 / 40  # and there is a long tail


def test_decimals_are_exact_strings_with_fixed_places() -> None:
    spec = make_spec(properties=(
        PropertySpec("gb", kind="decimal", dist="lognormal", mean=120, sigma=1.0, decimals=3),
        PropertySpec("price", kind="decimal", dist="normal", mean=0, sigma=1, decimals=2),
        PropertySpec("ratio", kind="decimal", dist="uniform", low=0.1, high=0.3, decimals=1),
        PropertySpec("whole", kind="decimal", dist="constant", mean=42.4, decimals=0),
        PropertySpec("fee", kind="decimal", values=("0.1", "0.2", "0.30"), decimals=2),
    ))
    df = simulate(spec)
    assert df["gb"].str.fullmatch(r"\d+\.\d{3}").all()
    assert df["price"].str.fullmatch(r"-?\d+\.\d{2}").all()
    assert (df["price"].str.startswith("-")).any()
    assert not df["price"].isin(["-0.00"]).any()  # a value rounding to zero has no sign
    assert set(df["ratio"]) <= {"0.1", "0.2", "0.3"}
    assert set(df["whole"]) == {"42"}
    assert set(df["fee"]) <= {"0.10", "0.20", "0.30"}
    for col, places in (("gb", 3), ("price", 2), ("ratio", 1)):
        for text in df[col].head(500):
            d = Decimal(text)
            assert d == d.quantize(Decimal(1).scaleb(-places))
            assert str(d) == text  # exact text, no float artefacts like 0.30000000000000004
    assert not df["gb"].str.contains("e").any()


def test_numeric_distributions() -> None:
    spec = make_spec(daily_volume=2000, days=10, properties=(
        PropertySpec("u", kind="int", dist="uniform", low=3, high=7),
        PropertySpec("c", kind="int", dist="constant", mean=5),
        PropertySpec("p", kind="int", dist="poisson", mean=12),
        PropertySpec("ln", kind="int", dist="lognormal", mean=1000, sigma=0.5),
        PropertySpec("n", kind="int", dist="normal", mean=50, sigma=10, low=40, high=60),
        PropertySpec("status", kind="int", values=("200", "404", "500"), weights=(8, 1, 1)),
    ))
    df = simulate(spec)
    assert set(df["u"]) == {3, 4, 5, 6, 7}
    assert set(df["c"]) == {5}
    assert 11 < df["p"].mean() < 13
    assert 900 < df["ln"].median() < 1100
    assert df["n"].between(40, 60).all()
    assert df["status"].dtype == np.int64
    assert set(df["status"]) == {200, 404, 500}
    assert 0.75 < (df["status"] == 200).mean() < 0.85


def test_choices_weights_and_per_customer() -> None:
    df = simulate(make_spec(daily_volume=2000, days=10))
    assert set(df["model"]) == {"gpt-4o", "claude-sonnet", "llama3.1"}
    share = df["model"].value_counts(normalize=True)
    assert abs(share["gpt-4o"] - 0.5) < 0.03
    assert (df.groupby("customer_id")["region"].nunique() == 1).all()
    assert df["region"].nunique() > 1


def test_large_generation_is_correct() -> None:
    """200k events with every kind of property (the generator has no per-event loop)."""
    spec = make_spec(daily_volume=10_000, days=20, shape="growth", properties=(
        PropertySpec("usage.input_tokens", kind="int", dist="lognormal", mean=700, sigma=1),
        PropertySpec("usage.output_tokens", kind="int", dist="poisson", mean=250),
        PropertySpec("duration_ms", kind="decimal", dist="lognormal", mean=140, sigma=1,
                     decimals=2),
        PropertySpec("model", kind="choice", values=("a", "b")),
    ))
    df = simulate(spec)
    assert len(df) == 200_000
    assert list(df.columns[3:]) == ["usage.input_tokens", "usage.output_tokens", "duration_ms",
                                    "model"]
    assert df["timestamp"].is_monotonic_increasing  # ISO strings sort like their instants
    assert df["timestamp"].str.fullmatch(TS_MS.pattern).all()
    assert df["duration_ms"].str.fullmatch(r"\d+\.\d\d").all()
    assert (df["usage.input_tokens"] >= 0).all()
    assert not df.duplicated(["customer_id", "timestamp"]).any()


def test_zero_volume() -> None:
    df = simulate(make_spec(daily_volume=0))
    assert len(df) == 0
    assert list(df.columns[:3]) == ["event_name", "customer_id", "timestamp"]


@pytest.mark.parametrize("kwargs", [
    {"event_name": "llm tokens"},
    {"event_name": "x" * 101},
    {"customers": 0},
    {"days": 0},
    {"shape": "sideways"},
    {"start": datetime(2026, 10, 1)},
    {"seed": -1},
    {"properties": (PropertySpec("a", kind="int", dist="constant", mean=1),
                    PropertySpec("a.b", kind="int", dist="constant", mean=1))},
])
def test_spec_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        make_spec(**kwargs)


@pytest.mark.parametrize("kwargs", [
    {"name": "x", "kind": "choice"},
    {"name": "x", "kind": "int", "dist": "normal", "mean": 1},
    {"name": "x", "kind": "decimal", "dist": "uniform", "low": 1, "high": 0},
    {"name": "x", "kind": "decimal", "dist": "constant", "mean": 1, "decimals": 12},
    {"name": "x", "kind": "choice", "values": ("a", "b"), "weights": (1,)},
    {"name": "x", "kind": "float"},
    {"name": "a..b", "kind": "int", "dist": "constant", "mean": 1},
    {"name": "timestamp", "kind": "int", "dist": "constant", "mean": 1},
    {"name": "status", "kind": "int", "values": ("200", "ok")},
])
def test_property_validation(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        PropertySpec(**kwargs)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- templates

EXPECTED_TEMPLATES = {
    "api_requests": ("api.request", {"endpoint", "method", "region", "status"}),
    "llm_tokens": ("llm.tokens", {"tokens", "model", "region"}),
    "worker_duration": ("worker.run", {"duration_ms", "worker", "region"}),
    "storage_gb": ("storage.snapshot", {"gb", "bucket", "region"}),
    "emails_sent": ("email.sent", {"template", "domain"}),
    "unique_users": ("user.active", {"user_id", "plan", "region"}),
}


@pytest.mark.parametrize("template", TEMPLATES)
def test_templates(template: str) -> None:
    event_name, props = EXPECTED_TEMPLATES[template]
    spec = template_spec(template, customers=12, days=7, daily_volume=300, seed=3)
    assert spec.event_name == event_name
    assert {p.name for p in spec.properties} == props
    assert spec.start == datetime(2026, 10, 1, tzinfo=UTC)
    df = simulate(spec)
    assert len(df) == 2100
    assert set(df.columns) == {"event_name", "customer_id", "timestamp", *props}
    assert df["customer_id"].nunique() <= 12


def test_template_details() -> None:
    llm = simulate(template_spec("llm_tokens", daily_volume=500, days=10))
    assert llm["tokens"].dtype == np.int64 and (llm["tokens"] >= 1).all()
    assert set(llm["model"]) == {"gpt-4o", "claude-sonnet", "llama3.1", "llama3.2"}
    gb = simulate(template_spec("storage_gb", days=5))
    assert gb["gb"].str.fullmatch(r"\d+\.\d{3}").all()
    api = simulate(template_spec("api_requests", daily_volume=500, days=5))
    assert api["status"].dtype == np.int64 and 200 in set(api["status"])
    assert set(api["region"]) <= {"us-east", "eu-west", "ap-south"}
    users = simulate(template_spec("unique_users", daily_volume=2000, days=5))
    assert 100 < users["user_id"].nunique() <= 300
    assert sum("region" in EXPECTED_TEMPLATES[t][1] for t in TEMPLATES) >= 3


def test_template_names_and_overrides() -> None:
    assert template_spec("LLM Tokens").event_name == "llm.tokens"
    assert template_spec("llm_tokens", shape="weekly").shape == "weekly"
    spec = template_spec("emails_sent", customers=5, days=3, daily_volume=10, seed=9)
    assert (spec.customers, spec.days, spec.daily_volume, spec.seed) == (5, 3, 10, 9)
    with pytest.raises(ValueError):
        template_spec("custom")


def test_same_seed_same_heavy_customers_across_templates() -> None:
    a = simulate(template_spec("api_requests", daily_volume=3000, days=10, seed=1))
    b = simulate(template_spec("llm_tokens", daily_volume=3000, days=10, seed=1))
    assert a["customer_id"].value_counts().index[0] == b["customer_id"].value_counts().index[0]
    assert not a["timestamp"].equals(b["timestamp"])


# --------------------------------------------------------------------------- writers


def _roundtrip_df() -> pd.DataFrame:
    return simulate(make_spec(daily_volume=300, days=10))


def test_csv_roundtrip(tmp_path: Path) -> None:
    df = _roundtrip_df()
    path = tmp_path / "events.csv"
    to_csv(df, path)
    text = path.read_text(encoding="utf-8")
    assert text.splitlines()[0] == "event_name,customer_id,timestamp,tokens,cost,model,region"
    assert text.endswith("\n") and "\r" not in text
    back = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert list(back.columns) == list(df.columns)
    assert len(back) == len(df)
    for col in df.columns:
        assert back[col].tolist() == df[col].astype(str).tolist(), col
    # numbers are bare cells (a CSV importer reads them as numbers)
    first = text.splitlines()[1].split(",")
    assert first[4] == df["cost"].iloc[0] and re.fullmatch(r"\d+\.\d{3}", first[4])


def test_jsonl_roundtrip(tmp_path: Path) -> None:
    df = _roundtrip_df()
    path = tmp_path / "events.jsonl"
    to_jsonl(df, path)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(df)
    for line, rec in zip(lines, df.to_dict("records"), strict=True):
        obj = json.loads(line, parse_float=Decimal)
        assert list(obj) == ["event_name", "customer_id", "timestamp", "properties"]
        assert obj["event_name"] == rec["event_name"]
        assert obj["customer_id"] == rec["customer_id"]
        assert obj["timestamp"] == rec["timestamp"]
        props = obj["properties"]
        assert props["tokens"] == rec["tokens"] and isinstance(props["tokens"], int)
        assert isinstance(props["cost"], Decimal)  # a JSON number, not a string
        assert str(props["cost"]) == rec["cost"]  # exact text, e.g. 1.250
        assert props["model"] == rec["model"]
        assert props["region"] == rec["region"]
    # the decimal text is written verbatim
    assert f'"cost":{df["cost"].iloc[0]}' in lines[0]


def test_nested_paths(tmp_path: Path) -> None:
    spec = make_spec(daily_volume=50, days=2, properties=(
        PropertySpec("usage.input_tokens", kind="int", dist="poisson", mean=300),
        PropertySpec("usage.output_tokens", kind="int", dist="poisson", mean=100),
        PropertySpec("meta.price.usd", kind="decimal", dist="uniform", low=0, high=1,
                     decimals=4),
        PropertySpec("model", kind="choice", values=("gpt-4o",)),
    ))
    df = simulate(spec)
    to_jsonl(df, tmp_path / "n.jsonl")
    first = json.loads((tmp_path / "n.jsonl").read_text().splitlines()[0], parse_float=Decimal)
    row = df.iloc[0]
    assert first["properties"] == {
        "usage": {"input_tokens": int(row["usage.input_tokens"]),
                  "output_tokens": int(row["usage.output_tokens"])},
        "meta": {"price": {"usd": Decimal(row["meta.price.usd"])}},
        "model": "gpt-4o",
    }
    # CSV: a column is a top-level property, so nested paths travel in a `properties` JSON cell
    to_csv(df, tmp_path / "n.csv")
    with open(tmp_path / "n.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["event_name", "customer_id", "timestamp", "model", "properties"]
    nested = json.loads(rows[0]["properties"], parse_float=Decimal)
    assert nested == {k: v for k, v in first["properties"].items() if k != "model"}


def test_json_array(tmp_path: Path) -> None:
    df = simulate(make_spec(daily_volume=5, days=10))
    to_json(df, tmp_path / "a.json")
    data = json.loads((tmp_path / "a.json").read_text(), parse_float=Decimal)
    assert isinstance(data, list) and len(data) == 50
    assert [e["timestamp"] for e in data] == df["timestamp"].tolist()
    assert str(data[0]["properties"]["cost"]) == df["cost"].iloc[0]
    to_json(df.iloc[:0], tmp_path / "empty.json")
    assert json.loads((tmp_path / "empty.json").read_text()) == []


def test_writers_escape_and_skip_missing(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "event_name": ["api.request"] * 4,
        "customer_id": ['cus "quoted"', "cus,comma", "cus\nline", "cüs_ünï"],
        "timestamp": ["2026-10-01T00:00:00Z"] * 4,
        "note": ['say "hi"', "back\\slash", None, "tab\there"],
        "amount": ["0.125", None, "12", "-3.50"],
        "code": ["007", "1e3", "12.5", "abc"],
        "count": [1, 2, 3, 4],
    })
    to_jsonl(df, tmp_path / "e.jsonl")
    objs = [json.loads(line, parse_float=Decimal)
            for line in (tmp_path / "e.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [o["customer_id"] for o in objs] == df["customer_id"].tolist()
    assert objs[0]["properties"] == {"note": 'say "hi"', "amount": Decimal("0.125"),
                                     "code": "007", "count": 1}
    assert objs[1]["properties"] == {"note": "back\\slash", "code": Decimal("1E+3"), "count": 2}
    assert objs[2]["properties"] == {"amount": 12, "code": Decimal("12.5"), "count": 3}
    assert objs[3]["properties"]["note"] == "tab\there"
    assert str(objs[3]["properties"]["amount"]) == "-3.50"

    to_csv(df, tmp_path / "e.csv")
    with open(tmp_path / "e.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["customer_id"] for r in rows] == df["customer_id"].tolist()
    assert [r["note"] for r in rows] == ['say "hi"', "back\\slash", "", "tab\there"]
    assert [r["amount"] for r in rows] == ["0.125", "", "12", "-3.50"]


def test_writers_accept_datetime_timestamps(tmp_path: Path) -> None:
    df = pd.DataFrame({
        "event_name": ["a", "a"],
        "customer_id": ["c1", "c2"],
        "timestamp": pd.to_datetime(["2026-10-01T12:00:00.250Z", "2026-10-02T00:00:00.000Z"],
                                    utc=True),
    })
    to_jsonl(df, tmp_path / "t.jsonl")
    objs = [json.loads(x) for x in (tmp_path / "t.jsonl").read_text().splitlines()]
    assert [o["timestamp"] for o in objs] == ["2026-10-01T12:00:00.250Z",
                                              "2026-10-02T00:00:00.000Z"]
    assert objs[0]["properties"] == {}


def test_writers_reject_missing_columns(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        to_csv(pd.DataFrame({"event_name": ["a"], "timestamp": ["2026-10-01"]}),
               tmp_path / "x.csv")


def test_writers_handle_large_frames(tmp_path: Path) -> None:
    df = simulate(make_spec(daily_volume=10_000, days=20))
    to_csv(df, tmp_path / "big.csv")
    to_jsonl(df, tmp_path / "big.jsonl")
    back = pd.read_csv(tmp_path / "big.csv", dtype=str, keep_default_na=False)
    assert back["cost"].tolist() == df["cost"].tolist()
    assert back["timestamp"].tolist() == df["timestamp"].tolist()
    with open(tmp_path / "big.jsonl", encoding="utf-8") as fh:
        n = 0
        for n, line in enumerate(fh, 1):
            if n in (1, 100_000, 200_000):
                obj = json.loads(line, parse_float=Decimal)
                assert str(obj["properties"]["cost"]) == df["cost"].iloc[n - 1]
    assert n == 200_000


# --------------------------------------------------------------------------- sample files

SAMPLES = Path(__file__).resolve().parent.parent / "sample_events"


@pytest.mark.skipif(not (SAMPLES / "llm_tokens.csv").exists(), reason="samples not generated")
def test_sample_files_are_small_and_consistent() -> None:
    for template in TEMPLATES:
        csv_path, jsonl_path = SAMPLES / f"{template}.csv", SAMPLES / f"{template}.jsonl"
        assert csv_path.stat().st_size < 1_000_000 and jsonl_path.stat().st_size < 1_000_000
        csv_df = pd.read_csv(csv_path, dtype=str, keep_default_na=False)
        objs = [json.loads(x, parse_float=Decimal)
                for x in jsonl_path.read_text(encoding="utf-8").splitlines()]
        assert len(csv_df) == len(objs) and 300 <= len(objs) <= 5000
        for rec, obj in zip(csv_df.head(50).to_dict("records"), objs[:50], strict=True):
            assert rec["timestamp"] == obj["timestamp"]
            for key, value in obj["properties"].items():
                assert rec[key] == str(value)
    bad = list(csv.reader((SAMPLES / "bad_rows.csv").open(encoding="utf-8", newline="")))
    assert 25 <= len(bad) - 1 <= 35
