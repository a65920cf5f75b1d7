"""Pricing and events in other systems' shapes (contract §9): Lago, OpenMeter, Stripe, Orb.

- `export(workspace, target, plan=None)` → an `Export` (`.to_json()` is the §9 document:
  target, resources, unsupported; `.compatibility()` the table the app shows).
- `import_definitions(source, files)` / `import_files(source, paths)`: Lago or OpenMeter
  definitions → a checked workspace document.
- `cloudevents`: CloudEvents in (API, files) and out; `lago.lago_events`: Lago event payloads;
  `stored.stored_event_batches`: the stored events, batch by batch.
"""

from __future__ import annotations

from metering.peers import lago, openmeter, orb, stripe
from metering.peers.common import IMPORT_SOURCES, TARGETS, Export
from metering.peers.definitions import DefinitionsError, import_definitions, import_files
from metering.workspace import Workspace

__all__ = ["IMPORT_SOURCES", "TARGETS", "DefinitionsError", "Export", "export", "import_definitions", "import_files"]

_EXPORTERS = {"lago": lago.export, "openmeter": openmeter.export, "stripe": stripe.export, "orb": orb.export}


def export(workspace: Workspace, target: str, *, plan: str | None = None) -> Export:
    """The workspace (or one plan and the metrics it uses) as `target`'s create payloads."""
    if target not in _EXPORTERS:
        raise ValueError(f"unknown target '{target}' (use {', '.join(TARGETS)})")
    return _EXPORTERS[target](workspace, plan=plan)
