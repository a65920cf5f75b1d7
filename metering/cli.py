"""The `metering` command: the engine, headless, printing JSON on stdout (contract §6).

Bad arguments or files give one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from metering import aggregation, backtest, billing, ingest, invoices, metrics, peers, store, timelines
from metering.engine import Events, read_only_reason, stored_events
from metering.engine.clickhouse.settings import ENV as EVENTS_URL_ENV
from metering.engine.clickhouse.settings import EventsUrlError
from metering.engine.clickhouse.settings import parse as parse_events_url
from metering.engine.clickhouse.writer import ReadOnlyEvents
from metering.engine.columns import from_us
from metering.engine.frame import EventFrame
from metering.models import MetricBase
from metering.peers import cloudevents, lago
from metering.peers.stored import stored_event_batches
from metering.workspace import (
    Workspace,
    WorkspaceError,
    export_workspace,
    import_document,
    import_workspace,
    load_workspace,
    read_document,
    workspace_from_store,
)


class UsageError(Exception):
    """Bad input from the person at the terminal: one line, exit 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line instead of usage + message
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _print(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def parse_time(value: str, flag: str) -> int:
    """--from/--to: ISO 8601 (no offset = UTC) or epoch seconds → epoch microseconds."""
    values, reasons = ingest.parse_timestamps([value.strip()])
    if 0 in reasons:
        raise UsageError(f"{flag}: {reasons[0]}")
    return int(values[0])


def read_event_files(paths: Sequence[str]) -> Events:
    """Events from files, without touching the store; bad rows are reported on stderr."""
    parsed = ingest.ParsedEvents()
    for path in paths:
        try:
            one = ingest.read_events(path)
        except ingest.UnreadableFile as exc:
            raise UsageError(f"{path}: {exc}") from None
        if one.errors:
            first = one.errors[0]
            sys.stderr.write(
                f"metering: warning: {path}: {len(one.errors)} bad row(s) left out"
                f" (first: line {first.line}, {first.field}: {first.reason})\n"
            )
        parsed.extend(one)
    return EventFrame.from_parsed(parsed)


def _frame(args: argparse.Namespace) -> Events:
    if args.events:
        return read_event_files(args.events)
    return stored_events(store.make_engine())


def _workspace(args: argparse.Namespace) -> Workspace:
    if args.workspace:
        return load_workspace(args.workspace)
    engine = store.make_engine()  # no file: the app's own metrics
    return Workspace(metrics=[metrics.validate_metric(m.model_dump()) for m in metrics.list_metrics(engine)])


def _metric(workspace: Workspace, code: str) -> MetricBase:
    return workspace.metric(code)


# --------------------------------------------------------------------------- commands


def cmd_import(args: argparse.Namespace) -> int:
    engine = store.make_engine()
    refused = read_only_reason(engine)
    if refused:  # events read from OpenMeter's table: nothing is imported here
        raise UsageError(refused)
    prepare = store.block_preparer(engine)
    opened = []
    for path in args.files:  # open every file first: an unreadable one stores nothing at all
        blocks = ingest.iter_events(path, prepare=prepare)
        try:
            first = next(blocks, None)  # checks the whole file's text, reads its first block
        except ingest.UnreadableFile as exc:
            raise UsageError(f"{path}: {exc}") from None
        opened.append((path, itertools.chain([first] if first is not None else [], blocks)))
    total = {"accepted": 0, "duplicates": 0, "rejected": 0, "future": 0, "errors": []}
    for path, blocks in opened:
        result = ingest.store_blocks(engine, blocks, source=path)
        for key in ("accepted", "duplicates", "rejected", "future"):
            total[key] += getattr(result, key)
        for err in result.errors:
            row = err.to_json()
            total["errors"].append({"file": path, **row} if len(opened) > 1 else row)
    _print(total)
    return 0


def cmd_aggregate(args: argparse.Namespace) -> int:
    workspace = _workspace(args)
    metric = _metric(workspace, args.metric)
    start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
    if end <= start:
        raise UsageError("--to must be later than --from")
    frame = _frame(args)
    result = aggregation.aggregate(
        frame, metric, start=start, end=end, customer_ids=[args.customer] if args.customer else None
    )
    _print(result.to_json())
    return 0


def _billing_workspace(args: argparse.Namespace) -> Workspace:
    """--workspace W, else the app's own metrics, plans, subscriptions and timezone."""
    if args.workspace:
        return load_workspace(args.workspace)
    return workspace_from_store(store.make_engine())


def cmd_invoice(args: argparse.Namespace) -> int:
    month = window = None
    if args.period is not None:
        if args.start is not None or args.end is not None:
            raise UsageError("give either --period or --from and --to, not both")
        try:
            month = invoices.parse_month(args.period)
        except invoices.InvoiceError as exc:
            raise UsageError(f"--period: {exc}") from None
    elif args.start is not None and args.end is not None:
        start, end = parse_time(args.start, "--from"), parse_time(args.end, "--to")
        if end <= start:
            raise UsageError("--to must be later than --from")
        window = (from_us(start), from_us(end))
    else:
        raise UsageError("give --period YYYY-MM, or --from and --to")
    workspace = _billing_workspace(args)
    if args.plan is not None:
        workspace.plan(args.plan)  # an unknown plan is a usage error before any event is read
    frame = _frame(args)
    try:
        result = invoices.run(
            frame, workspace, plan_code=args.plan, month=month, window=window, customer_id=args.customer
        )
    except invoices.InvoiceError as exc:
        raise UsageError(str(exc)) from None
    _print(invoices.report(result, window=window))
    return 0


MAX_PERIODS = timelines.MAX_PERIODS


def cmd_timeline(args: argparse.Namespace) -> int:
    try:
        count = int(args.periods)
    except ValueError:
        raise UsageError(f"--periods: '{args.periods}' is not a whole number") from None
    if not 1 <= count <= MAX_PERIODS:
        raise UsageError(f"--periods must be between 1 and {MAX_PERIODS}")
    workspace = _billing_workspace(args)
    try:
        plan, metric = timelines.plan_and_metric(workspace, args.plan, args.metric)  # before any event is read
        rows = timelines.customer_timelines(_frame(args), workspace, plan, metric, count, customer_id=args.customer)
    except (invoices.InvoiceError, timelines.TimelineError) as exc:
        raise UsageError(str(exc)) from None
    _print(billing.timeline_json(metric.code, rows))
    return 0


def cmd_backtest(args: argparse.Namespace) -> int:
    codes = [c.strip() for c in args.plans.split(",")]
    if not all(codes):
        raise UsageError("--plans: write plan codes separated by commas, e.g. --plans starter,growth")
    try:
        months = backtest.month_range(args.start, args.end)
        workspace = _billing_workspace(args)
        known = {p.code: p for p in workspace.plans}
        for code in codes:  # unknown or incompatible plans are usage errors before any event is read
            if code not in known:
                workspace.plan(code)
        plans = [known[c] for c in codes]
        backtest.check_plans(plans)
        frame = _frame(args)
        result = backtest.run(frame, workspace, plans, months, customer_ids=args.customer)
    except backtest.BacktestError as exc:
        raise UsageError(str(exc)) from None
    _print(result.to_json())
    return 0


def cmd_workspace_export(args: argparse.Namespace) -> int:
    _print(export_workspace(store.make_engine()))
    return 0


def cmd_workspace_import(args: argparse.Namespace) -> int:
    data = read_document(args.file)  # an unreadable file: WorkspaceError before the store is opened
    workspace = import_document(store.make_engine(), data, merge=args.merge)
    _print({"metrics": len(workspace.metrics), "plans": len(workspace.plans),
            "subscriptions": len(workspace.subscriptions)})
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    workspace = _billing_workspace(args)
    if args.plan is not None:
        workspace.plan(args.plan)  # an unknown plan: one line, exit 2
    _print(peers.export(workspace, args.to, plan=args.plan).to_json())
    return 0


def cmd_import_definitions(args: argparse.Namespace) -> int:
    doc = peers.import_files(args.source, args.files)
    if args.merge and not args.apply:
        raise UsageError("--merge goes with --apply")
    if not args.apply:
        _print(doc)
        return 0
    ws = import_workspace(store.make_engine(), doc, replace=not args.merge)
    _print({"metrics": len(ws.metrics), "plans": len(ws.plans), "subscriptions": len(ws.subscriptions)})
    return 0


EVENT_FORMATS = ("cloudevents", "lago")


def cmd_events_export(args: argparse.Namespace) -> int:
    """Stored events to stdout, batch by batch (never the whole store in memory)."""
    batches = stored_event_batches(store.make_engine(), args.batch_size)
    chunks = (cloudevents.cloudevents(batches, source=args.source) if args.format == "cloudevents"
              else lago.lago_events(batches))
    for chunk in chunks:
        sys.stdout.write(chunk)
    sys.stdout.flush()
    return 0


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="metering", description="Usage metering and billing, headless. Prints JSON.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser("import", help="import event files (CSV, JSON Lines, JSON) into the store")
    p.add_argument("files", nargs="+", metavar="EVENTS")
    p.set_defaults(run=cmd_import)

    p = sub.add_parser("aggregate", help="aggregate a metric over [--from, --to)")
    p.add_argument("--workspace", metavar="W", help="workspace JSON (default: the app's metrics)")
    p.add_argument("--events", action="append", metavar="E", help="event file (repeatable; default: the store)")
    p.add_argument("--metric", required=True, metavar="CODE")
    p.add_argument("--from", dest="start", required=True, metavar="T")
    p.add_argument("--to", dest="end", required=True, metavar="T")
    p.add_argument("--customer", metavar="ID")
    p.set_defaults(run=cmd_aggregate)

    p = sub.add_parser("invoice", help="invoices for a billing period (--period YYYY-MM) or a window")
    p.add_argument("--workspace", metavar="W", help="workspace JSON (default: the app's own setup)")
    p.add_argument("--events", action="append", metavar="E", help="event file (repeatable; default: the store)")
    p.add_argument("--plan", metavar="CODE", help="price every customer in the events under this plan (what-if)")
    p.add_argument("--period", metavar="YYYY-MM", help="the first billing period starting in that month")
    p.add_argument("--from", dest="start", metavar="T")
    p.add_argument("--to", dest="end", metavar="T")
    p.add_argument("--customer", metavar="ID")
    p.set_defaults(run=cmd_invoice)

    p = sub.add_parser("timeline", help="usage, quota and amount of one metric over the first N periods")
    p.add_argument("--workspace", metavar="W", help="workspace JSON (default: the app's own setup)")
    p.add_argument("--events", action="append", metavar="E", help="event file (repeatable; default: the store)")
    p.add_argument("--plan", required=True, metavar="CODE")
    p.add_argument("--metric", required=True, metavar="CODE")
    p.add_argument("--periods", required=True, metavar="N")
    p.add_argument("--customer", metavar="ID")
    p.set_defaults(run=cmd_timeline)

    p = sub.add_parser("backtest", help="price the same usage under 2-6 plans, month by month (the first is the baseline)")
    p.add_argument("--workspace", metavar="W", help="workspace JSON (default: the app's own setup)")
    p.add_argument("--events", action="append", metavar="E", help="event file (repeatable; default: the store)")
    p.add_argument("--plans", required=True, metavar="A,B[,...]", help="plan codes, baseline first")
    p.add_argument("--from", dest="start", required=True, metavar="YYYY-MM")
    p.add_argument("--to", dest="end", required=True, metavar="YYYY-MM")
    p.add_argument("--customer", action="append", metavar="ID", help="only this customer (repeatable)")
    p.set_defaults(run=cmd_backtest)

    p = sub.add_parser("workspace", help="export the store's workspace, or import a workspace file into it")
    ws_sub = p.add_subparsers(dest="action", metavar="ACTION", parser_class=_Parser)
    ws_sub.required = True
    q = ws_sub.add_parser("export", help="print the store's metrics, plans, subscriptions and timezone (contract §5)")
    q.set_defaults(run=cmd_workspace_export)
    q = ws_sub.add_parser("import", help="validate a workspace file, then load it into the store (events are kept)")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--merge", action="store_true",
                   help="add to the store's workspace, replacing the same codes and customers (default: replace it)")
    q.set_defaults(run=cmd_workspace_import)

    p = sub.add_parser("export", help="the workspace's metrics and plans as another system's create payloads")
    p.add_argument("--workspace", metavar="W", help="workspace JSON (default: the app's own setup)")
    p.add_argument("--to", required=True, choices=peers.TARGETS)
    p.add_argument("--plan", metavar="CODE", help="only this plan and the metrics it uses")
    p.set_defaults(run=cmd_export)

    p = sub.add_parser("import-definitions", help="Lago or OpenMeter metric and plan definitions → a workspace document")
    p.add_argument("--from", dest="source", required=True, choices=peers.IMPORT_SOURCES)
    p.add_argument("files", nargs="+", metavar="FILE", help="an export document or a JSON array of create payloads")
    p.add_argument("--apply", action="store_true", help="load the definitions into the app's store (replacing its "
                   "metrics, plans, subscriptions and timezone; events are kept) instead of printing them")
    p.add_argument("--merge", action="store_true", help="with --apply: add to the store's pricing, replacing same codes")
    p.set_defaults(run=cmd_import_definitions)

    p = sub.add_parser("events", help="stored events (export)")
    events_sub = p.add_subparsers(dest="events_command", metavar="ACTION", parser_class=_Parser)
    events_sub.required = True
    e = events_sub.add_parser("export", help="every stored event as CloudEvents or Lago event JSON Lines, streamed")
    e.add_argument("--format", required=True, choices=EVENT_FORMATS)
    e.add_argument("--source", default=cloudevents.DEFAULT_SOURCE, help="the CloudEvents source attribute")
    e.add_argument("--batch-size", type=_positive, default=10_000, metavar="N", help=argparse.SUPPRESS)
    e.set_defaults(run=cmd_events_export)
    _add_events_url(parser)
    return parser


EVENTS_URL_HELP = ("where events live: chdb:///dir, clickhouse://user:password@host:8123/db, or "
                   "openmeter+clickhouse://…?table=om_events (read-only); default: $METERING_EVENTS_URL, "
                   "else the embedded engine")


def _add_events_url(parser: argparse.ArgumentParser, top: bool = True) -> None:
    """--events-url on the command and on every subcommand (before or after its name)."""
    parser.add_argument("--events-url", metavar="URL", help=EVENTS_URL_HELP,
                        default=None if top else argparse.SUPPRESS)
    for action in parser._actions:  # noqa: SLF001 - argparse keeps subparsers only here
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            for child in dict.fromkeys(action.choices.values()):
                _add_events_url(child, top=False)


def _run(args: argparse.Namespace) -> int:
    """Run the command, with --events-url in effect for it (it wins over the variable)."""
    url = getattr(args, "events_url", None)
    if url is None:
        return int(args.run(args))
    parse_events_url(url)  # a bad URL: one line, exit 2, before anything is read
    old = os.environ.get(EVENTS_URL_ENV)
    os.environ[EVENTS_URL_ENV] = url
    try:
        return int(args.run(args))
    finally:
        if old is None:
            os.environ.pop(EVENTS_URL_ENV, None)
        else:
            os.environ[EVENTS_URL_ENV] = old


def main(argv: Sequence[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return _run(args)
    except (UsageError, WorkspaceError, ingest.UnreadableFile, metrics.InvalidMetric, EventsUrlError,
            ReadOnlyEvents) as exc:
        sys.stderr.write(f"metering: error: {exc}\n")
        return 2
    except KeyboardInterrupt:
        sys.stderr.write("metering: interrupted\n")
        return 130
    except BrokenPipeError:  # `metering events export … | head`: the reader left, not an error
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - so the interpreter's final flush is quiet
        except OSError:
            pass
        return 0
    except Exception as exc:  # a bug, or the database is down: still one line, no traceback
        sys.stderr.write(f"metering: error: {type(exc).__name__}: {exc}\n".replace("\n", " ").rstrip() + "\n")
        return 1


if __name__ == "__main__":
    sys.exit(main())
