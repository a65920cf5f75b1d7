"""CloudEvents 1.0 (JSON format; OpenMeter's event format) in and out.

In: `to_event` maps one CloudEvent object to the workbench's event object — `type` →
event_name, `subject` → customer_id, `time` → timestamp, `id` → idempotency_key, `data` →
properties — before the usual event validation (`ingest.parse_records`), which then checks the
values; `rename` puts that validation's field names back into CloudEvents words. Rules, checked
against openmeterio/openmeter `api/openapi.yaml` (schema `Event`, commit 7e57a39): required
`id`, `source`, `specversion`, `type`, `subject`; optional `time` (RFC 3339), `datacontenttype`
(only "application/json" over HTTP), `dataschema`, `data` ("if present it must be a JSON
object"); optional attributes may be null. Beyond OpenMeter: `specversion` must be "1.0", and an
attribute the workbench would not keep (extension attributes, `data_base64`) is refused rather
than dropped, as unknown event fields are.

Out: `cloudevent_lines` writes stored event rows as CloudEvents JSON Lines (pure, one batch at
a time); `data` is the stored canonical properties text, so number literals stay exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from metering.peers.common import join_lines, json_strings
from metering.values import parse_decimal

SPEC_VERSION = "1.0"
ATTRIBUTES = ("specversion", "id", "source", "type", "subject", "time", "datacontenttype", "dataschema", "data")
REQUIRED = ("id", "source", "type", "subject")
# Our event field → the CloudEvents attribute it comes from.
ATTRIBUTE_OF = {"event_name": "type", "customer_id": "subject", "timestamp": "time", "idempotency_key": "id",
                "properties": "data"}
DEFAULT_SOURCE = "pricing-workbench"


class CloudEventError(ValueError):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def is_cloudevent(obj: Any) -> bool:
    """Files are read as CloudEvents object by object: an object with `specversion` is one."""
    return isinstance(obj, dict) and "specversion" in obj


def _is_text(value: Any) -> bool:
    from metering.ingest import is_number  # numbers arrive as marked text from ingest.loads_exact

    return isinstance(value, str) and not is_number(value)


def _reads_as_number(text: str) -> bool:
    return parse_decimal(text) is not None


def to_event(obj: Any, *, default_time: str | None = None) -> dict[str, Any]:
    """One CloudEvent → an event object for `ingest.parse_records`; raises CloudEventError.

    Without `time`, the event gets `default_time` (the API passes the time of receipt, as
    OpenMeter does); without a default (a file: there is no time of receipt) it is an error."""
    if not isinstance(obj, dict):
        raise CloudEventError("event", "each CloudEvent must be a JSON object")
    for name in obj:
        if name not in ATTRIBUTES:
            if name == "data_base64":
                raise CloudEventError(name, "binary data (data_base64) is not accepted: send data as a JSON object")
            raise CloudEventError(name, f"unknown attribute '{name[:40]}' (an extension attribute would not be kept): "
                                  "put custom values under data")
    if obj.get("specversion") != SPEC_VERSION or not _is_text(obj.get("specversion")):
        raise CloudEventError("specversion", 'specversion must be "1.0" (CloudEvents 1.0)')
    for name in REQUIRED:
        value = obj.get(name)
        if value is None or (isinstance(value, str) and not value.strip()):
            why = " (it is the customer)" if name == "subject" else ""
            raise CloudEventError(name, f"{name} is required{why}")
        if not _is_text(value):
            raise CloudEventError(name, f"{name} must be a string")
    stamp = obj.get("time")
    if stamp is None:
        if default_time is None:
            raise CloudEventError("time", "time is required in a file (an RFC 3339 timestamp; only the API can use "
                                  "the time of receipt)")
        stamp = default_time
    elif not _is_text(stamp) or _reads_as_number(stamp):
        raise CloudEventError("time", "time must be an RFC 3339 timestamp (text), e.g. 2026-10-03T12:00:00Z")
    kind = obj.get("datacontenttype")
    if kind is not None and (not _is_text(kind) or kind.split(";")[0].strip().lower() != "application/json"):
        raise CloudEventError("datacontenttype", 'datacontenttype must be "application/json" (or absent)')
    schema = obj.get("dataschema")
    if schema is not None and not _is_text(schema):
        raise CloudEventError("dataschema", "dataschema must be a string (a URI)")
    data = obj.get("data")
    if data is not None and not isinstance(data, dict):
        raise CloudEventError("data", "data must be a JSON object (its fields are the event's properties)")
    return {"event_name": obj["type"], "customer_id": obj["subject"], "timestamp": stamp,
            "idempotency_key": obj["id"], "properties": data if data is not None else {}}


def rename(field: str, reason: str) -> tuple[str, str]:
    """A validation error about a mapped event, in CloudEvents words (customer_id → subject)."""
    attribute = ATTRIBUTE_OF.get(field)
    if attribute is None:
        return field, reason
    if reason.startswith(field):
        reason = attribute + reason[len(field):]
    return attribute, reason


def map_records(records: Iterable[tuple[int, Any]], *, default_time: str | None = None
                ) -> tuple[list[tuple[int, Any]], list[tuple[int, str, str]], set[int]]:
    """Map the CloudEvents among (line or index, object) records; other objects pass as they are.

    Returns the records to validate, the (line, field, reason) of CloudEvents that could not be
    mapped, and the lines that were CloudEvents (so their later errors can be renamed)."""
    out: list[tuple[int, Any]] = []
    bad: list[tuple[int, str, str]] = []
    lines: set[int] = set()
    for line, obj in records:
        if not is_cloudevent(obj):
            out.append((line, obj))
            continue
        lines.add(line)
        try:
            out.append((line, to_event(obj, default_time=default_time)))
        except CloudEventError as exc:
            bad.append((line, exc.field, exc.reason))
    return out, bad, lines


# --------------------------------------------------------------------------- out


def iso_time(ts_us: int) -> str:
    """UTC epoch microseconds → RFC 3339 with Z (microseconds only when there are some)."""
    return iso_times(np.array([ts_us]))[0].as_py()


def iso_times(ts_us: np.ndarray) -> pa.Array:
    """`iso_time` for a column, computed column-wise (the seconds as Arrow writes a timestamp,
    then the microseconds when there are some)."""
    seconds, micros = np.divmod(np.asarray(ts_us, dtype=np.int64), 1_000_000)
    # A cast to text writes "YYYY-MM-DD HH:MM:SS" ~20x faster than strftime.
    base = pc.replace_substring(pa.array(seconds, type=pa.timestamp("s")).cast(pa.string()), " ", "T", max_replacements=1)
    fraction = pc.binary_join_element_wise(".", pc.utf8_lpad(pa.array(micros).cast(pa.string()), 6, "0"), "")
    fraction = pc.if_else(pa.array(micros != 0), fraction, "")
    return pc.binary_join_element_wise(base, fraction, "Z", "")


def cloudevent_lines(rows: Sequence[tuple[str, str, int, str, str]], *, source: str = DEFAULT_SOURCE) -> str:
    """Stored rows (event_name, customer_id, ts_us, idempotency_key, properties JSON text) →
    CloudEvents JSON Lines, built column-wise. `data` is the stored JSON text itself (exact
    number literals)."""
    if not rows:
        return ""
    names, customers, stamps, keys, properties = (list(col) for col in zip(*rows))
    head = '{"specversion":"1.0","id":'
    return join_lines(
        head, json_strings(keys), ',"source":' + json.dumps(source, ensure_ascii=False) + ',"type":',
        json_strings(names), ',"subject":', json_strings(customers), ',"time":"', iso_times(np.array(stamps)),
        '","datacontenttype":"application/json","data":', pa.array(properties, type=pa.string()), "}",
    )


def cloudevents(batches: Iterable[Sequence[tuple[str, str, int, str, str]]], *, source: str = DEFAULT_SOURCE
                ) -> Iterator[str]:
    """The JSON Lines text of each batch, one chunk per batch (streams: one batch in memory)."""
    for batch in batches:
        if batch:
            yield cloudevent_lines(batch, source=source)
