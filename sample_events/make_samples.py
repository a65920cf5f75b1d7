"""(Re)generate the sample event files in this folder, deterministically.

    .venv/bin/python sample_events/make_samples.py

Every quick template gets a CSV and a JSON Lines file holding the *same* events (October
2026, 30 customers, timestamps to the second), plus a nested-properties JSON Lines file, a
small JSON array and a CSV with deliberately bad rows. README.md is rewritten with the
event counts. Running the script twice gives byte-identical files.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a fresh clone without installing

from metering import demo  # noqa: E402
from metering.simulate import (  # noqa: E402
    PropertySpec,
    SimulationSpec,
    simulate,
    template_spec,
    to_csv,
    to_json,
    to_jsonl,
)

SEED = 2026
START = datetime(2026, 10, 1, tzinfo=UTC)
DAYS = 31
CUSTOMERS = 30

# template -> (daily volume, contract quick template it feeds)
TEMPLATE_FILES: dict[str, tuple[int, str]] = {
    "api_requests": (90, "API Requests — count of `api.request`"),
    "llm_tokens": (60, "LLM Tokens — sum of `tokens` on `llm.tokens`"),
    "worker_duration": (50, "Worker Duration — sum of `duration_ms` on `worker.run`"),
    "storage_gb": (60, "Storage GB — max of `gb` on `storage.snapshot`"),
    "emails_sent": (80, "Emails Sent — count of `email.sent`"),
    "unique_users": (70, "Unique Users — unique_count of `user_id` on `user.active`"),
}

MAX_BYTES = 1_000_000


def spec_for(template: str, daily_volume: int) -> SimulationSpec:
    return template_spec(
        template,
        customers=CUSTOMERS,
        start=START,
        days=DAYS,
        daily_volume=daily_volume,
        seed=SEED,
        timestamp_precision="s",
    )


def make_template_files(rows: list[dict[str, str]]) -> None:
    for template, (volume, description) in TEMPLATE_FILES.items():
        spec = spec_for(template, volume)
        df = simulate(spec)
        for ext, writer in (("csv", to_csv), ("jsonl", to_jsonl)):
            name = f"{template}.{ext}"
            writer(df, HERE / name)
            rows.append(_row(name, description, spec, len(df)))


def make_nested(rows: list[dict[str, str]]) -> None:
    base = spec_for("llm_tokens", 40)
    spec = replace(
        base,
        properties=(
            PropertySpec("usage.input_tokens", kind="int", dist="lognormal", mean=650,
                         sigma=0.9, low=1, high=120_000),
            PropertySpec("usage.output_tokens", kind="int", dist="lognormal", mean=240,
                         sigma=0.8, low=1, high=16_000),
            *(p for p in base.properties if p.name in ("model", "region")),
        ),
    )
    df = simulate(spec)
    total = df["usage.input_tokens"] + df["usage.output_tokens"]
    df.insert(df.columns.get_loc("usage.output_tokens") + 1, "usage.total_tokens", total)
    name = "llm_tokens_nested.jsonl"
    to_jsonl(df, HERE / name)
    rows.append(_row(name, "LLM Tokens with nested `usage.input_tokens`, `usage.output_tokens`, "
                     "`usage.total_tokens` (dot-path demos)", spec, len(df)))


def make_json_array(rows: list[dict[str, str]]) -> None:
    spec = template_spec("api_requests", customers=5, start=START, days=25, daily_volume=2,
                         seed=SEED, timestamp_precision="s")
    df = simulate(spec)
    name = "api_requests.json"
    to_json(df, HERE / name)
    rows.append(_row(name, "API Requests as one JSON array", spec, len(df)))


LONG_EVENT_NAME = (
    "llm.tokens.chat-completions.gpt-4o.us-east.production.customer-facing-assistant"
    ".streaming.v2.retry-attempt-3"
)


def make_bad_rows(rows: list[dict[str, str]]) -> list[tuple[int, str, str]]:
    """31 LLM token rows: 6 are rejected by an import, 1 is an exact duplicate.

    Returns (line, field, note) for the README, line 1 being the header.
    """
    assert len(LONG_EVENT_NAME) > 100
    base = spec_for("llm_tokens", 10)
    spec = replace(
        base,
        customers=6,
        days=3,
        properties=(
            *base.properties,
            PropertySpec("feature", kind="choice",
                         values=("chat", "summarize", "code-review", "embed"),
                         weights=(0.5, 0.2, 0.2, 0.1)),
        ),
    )
    df = simulate(spec)  # 30 good events, in time order
    header = ["event_name", "customer_id", "timestamp", "tokens", "model", "region", "properties"]
    data: list[list[str]] = []
    notes: list[tuple[str, str] | None] = []  # per data row: (field, note) or None
    for i, rec in enumerate(df.to_dict("records")):
        # a `properties` JSON column on most rows (an empty cell on every fifth: no properties)
        props = "" if i % 5 == 4 else json.dumps({"feature": rec["feature"]})
        data.append([rec["event_name"], rec["customer_id"], rec["timestamp"], str(rec["tokens"]),
                     rec["model"], rec["region"], props])
        notes.append(None)

    def mark(index: int, column: str, value: str, note: str) -> None:
        data[index][header.index(column)] = value
        notes[index] = (column, note)

    # one valid row written with a +02:00 offset (the same instant)
    utc = datetime.fromisoformat(data[5][2].replace("Z", "+00:00"))
    local = utc.astimezone(timezone(timedelta(hours=2)))
    mark(5, "timestamp", local.isoformat(), "valid, accepted: a `+02:00` offset timestamp")

    mark(3, "customer_id", "", "missing customer_id (empty cell)")
    mark(8, "timestamp", "yesterday", "unparseable timestamp `yesterday`")
    mark(12, "event_name", "llm tokens", "event_name `llm tokens` contains a space")
    mark(17, "event_name", "llm.tokens/v2", "event_name `llm.tokens/v2` contains `/`")
    mark(21, "properties", '{"feature": "chat"',
         'properties cell `{"feature": "chat"` is not valid JSON (truncated)')
    mark(26, "event_name", LONG_EVENT_NAME,
         f"event_name is {len(LONG_EVENT_NAME)} characters long (max 100)")

    # an exact duplicate of a good row, a few rows later
    dup_of, dup_at = 10, 15
    assert notes[dup_of] is None
    data.insert(dup_at, list(data[dup_of]))
    notes.insert(dup_at, ("—", f"exact duplicate of line {dup_of + 2}: counted as a duplicate "
                               "(same content hash), not an error"))

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(data)
    (HERE / "bad_rows.csv").write_text(buf.getvalue(), encoding="utf-8")
    rows.append({
        "file": "bad_rows.csv",
        "template": "LLM Tokens with bad rows (see below)",
        "events": str(len(data)),
        "customers": str(spec.customers),
        "window": f"{spec.start:%Y-%m-%d} – {spec.end - timedelta(days=1):%Y-%m-%d}",
        "shape": spec.shape,
    })
    return [(i + 2, *note) for i, note in enumerate(notes) if note is not None]


def _row(name: str, description: str, spec: SimulationSpec, events: int) -> dict[str, str]:
    last = spec.end - timedelta(days=1)
    return {
        "file": name,
        "template": description,
        "events": str(events),
        "customers": str(spec.customers),
        "window": f"{spec.start:%Y-%m-%d} – {last:%Y-%m-%d}",
        "shape": spec.shape,
    }


def write_readme(rows: list[dict[str, str]], notes: list[tuple[int, str, str]]) -> None:
    total = int(next(r for r in rows if r["file"] == "bad_rows.csv")["events"])
    duplicates = sum(1 for n in notes if n[1] == "—")
    rejected = sum(1 for n in notes if n[1] != "—" and not n[2].startswith("valid"))
    accepted = total - duplicates - rejected
    lines = [
        "# Sample usage events",
        "",
        "Generated by `make_samples.py` with `metering.simulate` (seed "
        f"{SEED}); rerun `.venv/bin/python sample_events/make_samples.py` to rebuild them "
        "byte for byte. Do not edit by hand.",
        "",
        "| file | template | events | customers | window (UTC) | shape |",
        "|---|---|---:|---:|---|---|",
    ]
    for r in rows:
        size = (HERE / r["file"]).stat().st_size
        assert size < MAX_BYTES, f"{r['file']} is {size} bytes"
        lines.append(f"| `{r['file']}` | {r['template']} | {r['events']} | {r['customers']} | "
                     f"{r['window']} | {r['shape']} |")
    lines += [
        "",
        "Notes",
        "",
        "- `X.csv` and `X.jsonl` hold the same events: importing one after the other adds "
        "nothing the second time (every event is a duplicate by content hash).",
        "- Within a file no two events share a customer and a timestamp, so every good row "
        "has a distinct default idempotency key.",
        "- The month files share customers `cus_001` … `cus_030`: the same heavy customers "
        "(a few customers make most of the usage, then a long tail) and the same `region` per "
        "customer (us-east / eu-west / ap-south) in every template.",
        "- Decimal properties (`duration_ms`, `gb`) are exact decimals with a fixed number of "
        "places (`gb` has 3): bare CSV cells and bare JSON numbers such as `118.250`.",
        "- Timestamps are UTC to the second (`2026-10-03T12:00:00Z`).",
        "",
        "## bad_rows.csv",
        "",
        "LLM token events with a `properties` JSON column (an empty cell on some rows, which is "
        "fine). Line 1 is the header. An import should answer "
        f"accepted {accepted}, duplicates {duplicates}, rejected {rejected}.",
        "",
        "| line | field | what is special |",
        "|---:|---|---|",
    ]
    for line, fld, note in notes:
        lines.append(f"| {line} | {fld if fld == '—' else f'`{fld}`'} | {note} |")
    lines += ["", SMS_SECTION, ""]
    (HERE / "README.md").write_text("\n".join(lines), encoding="utf-8")


# The UniBee carryover example; the events come from metering.demo (the demo workspace loads them).
SMS_SECTION = """## sms_credits.csv

SMS Credits, a `limit_recurring` count of `sms.sent` (UniBee's "1000 SMS credits per month"
example): 9160 events, 4 customers, 2026-10-01 – 2026-12-31 (UTC), one `country` property.
Written by this script through `metering/demo.py` (also `.venv/bin/python -m metering.demo`);
the demo workspace (Workspace page → *Load demo workspace*) loads the same events.

| customer | Oct 2026 | Nov 2026 | Dec 2026 | demo plan (SMS quota) |
|---|---:|---:|---:|---|
| `cus_unibee` | 700 | 900 | 450 | Starter (limit 1000, no cap on carryover) |
| `cus_wonka` | 820 | 1450 | 640 | Starter (limit 1000) |
| `cus_wayne` | 150 | 90 | 210 | Starter (limit 1000) |
| `cus_acme` | 1100 | 1400 | 1250 | Growth (limit 5000, carryover capped at 2500) |

With a quota of limit 1000, `cus_unibee`'s timeline is the contract's worked example:
available 1000 (used 700, carry 300) → 1300 (used 900, carry 400) → 1400. `cus_wonka`
carries 180 into November, has 1180 available, uses 1450 and so has an overage of 270."""


def main() -> None:
    demo.write_sms_csv(HERE / "sms_credits.csv")
    rows: list[dict[str, str]] = []
    make_template_files(rows)
    make_nested(rows)
    make_json_array(rows)
    notes = make_bad_rows(rows)
    write_readme(rows, notes)
    for r in rows:
        size = (HERE / r["file"]).stat().st_size
        print(f"{r['file']:<28} {int(r['events']):>6} events {size:>9,} bytes")


if __name__ == "__main__":
    main()
