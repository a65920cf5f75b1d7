"""Import metric and plan definitions from Lago or OpenMeter JSON into a workspace document.

A file is an export document of contract §9 (`{"target", "resources": [{"kind", "payload"}],
"unsupported"}`) or a JSON array of the peer's create payloads. Every resource of every file
is read first; the definitions are translated (`lago_import`, `openmeter_import`); the result
is checked by `workspace.parse_workspace`, the same validation as the workspace import. A
problem raises `DefinitionsError` (a `WorkspaceError`) naming the file, the resource and the
field, and nothing is imported.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from metering.peers.common import IMPORT_SOURCES
from metering.workspace import WorkspaceError, parse_workspace, workspace_json

MAX_BYTES = 20_000_000


class DefinitionsError(WorkspaceError):
    """The definitions cannot be imported; the message names the file, resource and field."""


@dataclass(frozen=True)
class Item:
    kind: str
    payload: Any
    where: str  # "lago.json: resources[2]" — where the person finds it

    def fail(self, message: str, field: str | None = None) -> DefinitionsError:
        return DefinitionsError(f"{self.where}{'.' + field if field else ''}: {message}")


def loads(text: str) -> Any:
    """JSON with every non-integer number as an exact Decimal (amounts never pass through float)."""
    return json.loads(text, parse_float=Decimal)


def read_items(source: str, data: bytes, name: str) -> list[Item]:
    """The resources of one file (its bytes), each with its kind, payload and location."""
    if len(data) > MAX_BYTES:
        raise DefinitionsError(f"{name} is larger than {MAX_BYTES // 1_000_000} MB")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DefinitionsError(f"{name} is not UTF-8 text (byte {exc.start})") from None
    if not text.strip():
        raise DefinitionsError(f"{name} is empty")
    try:
        doc = loads(text)
    except json.JSONDecodeError as exc:
        raise DefinitionsError(f"{name} is not valid JSON: line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:
        raise DefinitionsError(f"{name} is not valid JSON: {exc}") from None
    kind_of = _kinds(source)
    if isinstance(doc, dict) and "resources" in doc:
        target = doc.get("target")
        if target != source:
            raise DefinitionsError(f"{name}: this is an export for '{target}', not for {source}")
        unknown = sorted(set(doc) - {"target", "resources", "unsupported"})
        if unknown:
            raise DefinitionsError(f"{name}.{unknown[0]}: unknown field (an export document has target, resources, "
                                   "unsupported)")
        if not isinstance(doc["resources"], list):
            raise DefinitionsError(f"{name}.resources: must be a list")
        items = []
        for i, res in enumerate(doc["resources"]):
            where = f"{name}: resources[{i}]"
            if not isinstance(res, dict) or not {"kind", "payload"} <= set(res) <= {"kind", "payload", "ref"}:
                raise DefinitionsError(f"{where}: must be an object with kind and payload (and ref)")
            items.append(Item(str(res["kind"]), res["payload"], f"{where}.payload"))
        return items
    if isinstance(doc, list):
        return [Item(kind_of(p, f"{name}: [{i}]"), p, f"{name}: [{i}]") for i, p in enumerate(doc)]
    raise DefinitionsError(f"{name}: expected an export document ({{\"target\", \"resources\"}}) or a JSON array of "
                           f"{source} create payloads")


def _kinds(source: str):  # noqa: ANN202 - a small dispatcher
    if source == "lago":
        from metering.peers.lago_import import kind_of
    else:
        from metering.peers.openmeter_import import kind_of
    return kind_of


def import_definitions(source: str, files: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """Files (name, bytes) of one source → a checked workspace document (contract §5)."""
    if source not in IMPORT_SOURCES:
        raise DefinitionsError(f"cannot import from '{source}' (use {' or '.join(IMPORT_SOURCES)})")
    if not files:
        raise DefinitionsError("give at least one file")
    items = [item for name, data in files for item in read_items(source, data, name)]
    if source == "lago":
        from metering.peers.lago_import import to_workspace
    else:
        from metering.peers.openmeter_import import to_workspace
    doc = to_workspace(items)
    try:
        return workspace_json(parse_workspace(doc))
    except WorkspaceError as exc:
        raise DefinitionsError(f"the imported definitions break a workspace rule: {exc}") from None


def import_files(source: str, paths: Sequence[str]) -> dict[str, Any]:
    files = []
    for path in paths:
        try:
            files.append((path, Path(path).read_bytes()))
        except OSError as exc:
            raise DefinitionsError(f"cannot read {path}: {exc.strerror or exc}") from None
    return import_definitions(source, files)


# --------------------------------------------------------------------------- field helpers


def obj(item: Item, value: Any, field: str | None = None) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise item.fail("must be an object", field)
    return value


def check_fields(item: Item, value: dict[str, Any], known: set[str], ignored: set[str], field: str | None = None) -> None:
    """Unknown fields are refused (a typo must not change a price); `ignored` ones are
    fields that change nothing the workbench computes (display names, tax codes, timing)."""
    for key in value:
        if key not in known and key not in ignored:
            where = f"{field}.{key}" if field else key
            raise item.fail(f"unknown field (expected {', '.join(sorted(known))})", where)


def text(item: Item, value: Any, field: str, *, required: bool = True) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise item.fail("is required (text)" if value in (None, "") else "must be text", field)
    return value


def decimal(item: Item, value: Any, field: str) -> Decimal:
    """A decimal from a decimal string or a JSON number (never a bool)."""
    if isinstance(value, bool) or value is None:
        raise item.fail("must be a number or a decimal string", field)
    try:
        return Decimal(str(value).strip()) if isinstance(value, (str, int, Decimal)) else Decimal(repr(value))
    except ArithmeticError:
        raise item.fail(f"'{value}' is not a decimal number", field) from None


def refuse_if(item: Item, value: Any, field: str, why: str) -> None:
    """Refuse a set field that would change amounts the workbench cannot reproduce."""
    if value not in (None, False, 0, "", [], {}) and not (isinstance(value, Decimal) and not value):
        raise item.fail(f"{why}; remove it to import", field)
