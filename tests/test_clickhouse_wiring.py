"""The events setting end to end: METERING_EVENTS_URL / --events-url parsed (bad ones: one
line, exit 2), the CLI importing into ClickHouse and answering from it exactly as from the
same file, the HTTP API writing and reading ClickHouse events, the app's pages on ClickHouse
(and saying why when the setting is bad), and a real server when METERING_TEST_CLICKHOUSE_URL
names one (skipped with the reason otherwise)."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.testclient import TestClient

from metering import aggregation, api, apikeys, cli, ingest, metrics, store
from metering.engine import event_writer, events_problem, stored_events
from metering.engine.clickhouse import settings, wiring
from metering.engine.clickhouse.settings import EventsUrlError, parse
from metering.engine.clickhouse.writer import ClickHouseWriter
from tests.clickhouse_env import events_url, raw_count, sql_engine  # noqa: F401 (fixtures)
from tests.test_cli_billing import WORKSPACE, _events

SERVER_ENV = "METERING_TEST_CLICKHOUSE_URL"
KEY = "mtr_clickhouse_wiring_key_0123456789abcdef"
AUTH = {"Authorization": f"Bearer {KEY}"}


# --------------------------------------------------------------------------- the setting


@pytest.mark.parametrize("url, fields", [
    ("clickhouse://bob:s3cr%40t@ch.example:9000/usage", dict(kind="server", host="ch.example", port=9000, username="bob",
                                                            password="s3cr@t", database="usage", secure=False, openmeter=False)),
    ("clickhouse://ch.example", dict(kind="server", port=8123, username="default", password="", database="metering")),
    ("clickhouses://u:p@ch.example/x", dict(kind="server", port=8443, secure=True, database="x")),
    ("chdb:///var/lib/events", dict(kind="chdb", path="/var/lib/events", database="metering", table="events")),
    ("chdb:///tmp/e?database=team_a", dict(kind="chdb", path="/tmp/e", database="team_a")),
    ("openmeter+clickhouse://u:p@ch:8123", dict(openmeter=True, database="openmeter", table="om_events", namespace="default")),
    ("openmeter+chdb:///d?database=om&table=events_v2&namespace=acme", dict(openmeter=True, kind="chdb", database="om",
                                                                          table="events_v2", namespace="acme")),
])
def test_events_urls_are_read(url, fields):
    setting = parse(url)
    assert setting is not None
    for name, value in fields.items():
        assert getattr(setting, name) == value, name
    assert setting.read_only is setting.openmeter
    assert "s3cr" not in setting.shown() and ":p@" not in setting.shown()


@pytest.mark.parametrize("url", ["", "  ", "embedded", "EMBEDDED", None])
def test_unset_or_embedded_is_the_embedded_engine(url):
    assert parse(url) is None


@pytest.mark.parametrize("url, says", [
    ("postgresql://x/y", "unknown scheme postgresql:"),
    ("chdb://events", "names a directory, not a host"),
    ("chdb://", "needs a directory"),
    ("clickhouse:///db", "needs a host"),
    ("clickhouse://u:topsecret@h:notaport/db", "not a valid URL"),
    ("clickhouse://h/db-with-dash", "not a plain name"),
    ("clickhouse://h/db?table=x", "unknown option 'table'"),
    ("chdb:///d?datbase=x", "unknown option 'datbase'"),
    ("openmeter+chdb:///d?table=om;drop", "not a plain table name"),
    ("openmeter+chdb:///d?namespace=", "namespace must not be empty"),
    ("/just/a/path", "unknown scheme (none)"),
])
def test_a_bad_url_is_one_line_saying_what_is_wrong(url, says):
    with pytest.raises(EventsUrlError) as caught:
        parse(url)
    message = str(caught.value)
    assert says in message and "\n" not in message
    assert "topsecret" not in message


@given(st.text(max_size=60))
def test_any_text_is_a_setting_or_one_clear_error(text):
    try:
        setting = parse(text)
    except EventsUrlError as exc:
        assert str(exc).startswith("events URL ") and "\n" not in str(exc)
    else:
        assert setting is None or setting.kind in ("server", "chdb")


@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="@/:?#[]%"), min_size=3, max_size=20))
def test_a_password_never_appears_in_a_message(password):
    for url in (f"clickhouse://u:{password}@h:x/db", f"clickhouse://u:{password}@h/bad-db", f"nope://u:{password}@h/db"):
        try:
            parse(url)
        except EventsUrlError as exc:
            assert f":{password}@" not in str(exc)


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def cli_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    ws = tmp_path / "workspace.json"
    ws.write_text(json.dumps(WORKSPACE))
    ev = tmp_path / "events.csv"
    ev.write_text(_events())
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    return {"ws": str(ws), "ev": str(ev)}


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, object, str]:
    code = cli.main(args)
    out, err = capsys.readouterr()
    return code, (json.loads(out) if out.strip() else None), err


def test_cli_imports_into_clickhouse_and_answers_as_from_the_file(events_url, cli_files, capsys, monkeypatch):
    monkeypatch.delenv(settings.ENV)  # the flag alone selects ClickHouse
    code, first, _ = run(["--events-url", events_url, "import", cli_files["ev"]], capsys)
    assert code == 0 and first["accepted"] == 3010 and first["rejected"] == 0
    code, again, _ = run(["import", "--events-url", events_url, cli_files["ev"]], capsys)  # after the name too
    assert code == 0 and (again["accepted"], again["duplicates"]) == (0, 3010)
    assert os.environ.get(settings.ENV) is None  # the flag holds for the command only
    assert raw_count(events_url) == 3010
    assert store.event_count(store.make_engine()) == 0  # nothing went into the embedded store
    ws, ev = cli_files["ws"], cli_files["ev"]
    commands = [
        ["aggregate", "--workspace", ws, "--metric", "api", "--from", "2026-10-01", "--to", "2026-11-01"],
        ["aggregate", "--workspace", ws, "--metric", "storage", "--from", "2026-10-01", "--to", "2027-01-01", "--customer", "acme"],
        ["invoice", "--workspace", ws, "--period", "2026-10"],
        ["invoice", "--workspace", ws, "--plan", "payg", "--period", "2026-10"],
        ["timeline", "--workspace", ws, "--plan", "pro", "--metric", "sms", "--periods", "3"],
        ["timeline", "--workspace", ws, "--plan", "pro", "--metric", "seats", "--periods", "2"],
        ["backtest", "--workspace", ws, "--plans", "pro,payg", "--from", "2026-10", "--to", "2026-12"],
    ]
    for command in commands:
        code, from_clickhouse, err = run(["--events-url", events_url, *command], capsys)
        assert code == 0, err
        code, from_file, err = run([*command, "--events", ev], capsys)
        assert code == 0, err
        assert from_clickhouse == from_file, command


def test_cli_events_export_streams_clickhouse_events(events_url, cli_files, capsys):
    assert cli.main(["import", cli_files["ev"]]) == 0
    capsys.readouterr()
    assert cli.main(["events", "export", "--format", "cloudevents", "--batch-size", "700"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3010 and len({json.loads(line)["id"] for line in lines}) == 3010


@pytest.mark.parametrize("args", [
    ["--events-url", "mysql://x", "aggregate", "--metric", "a", "--from", "2026-01-01", "--to", "2026-02-01"],
    ["import", "--events-url", "chdb://relative", "x.csv"],
])
def test_a_bad_events_url_exits_2_with_one_line(args, cli_files, capsys, tmp_path):
    (tmp_path / "x.csv").write_text("event_name,customer_id,timestamp\ne,c,2026-10-01\n")
    args = [str(tmp_path / "x.csv") if a == "x.csv" else a for a in args]
    code, out, err = run(args, capsys)
    assert code == 2 and out is None
    assert err.startswith("metering: error: events URL ") and err.count("\n") == 1


def test_a_bad_variable_exits_2_and_embedded_overrides_it(cli_files, capsys, monkeypatch):
    monkeypatch.setenv(settings.ENV, "clickhouse://u:hunter2@/db")
    code, _, err = run(["import", cli_files["ev"]], capsys)
    assert code == 2 and "needs a host" in err and "hunter2" not in err and err.count("\n") == 1
    sample = str(Path(__file__).resolve().parent.parent / "sample_events" / "llm_tokens.csv")
    code, result, err = run(["--events-url", "embedded", "import", sample], capsys)
    assert code == 0 and result["accepted"] == 1860, err
    monkeypatch.delenv(settings.ENV)
    assert store.event_count(store.make_engine()) == 1860


# --------------------------------------------------------------------------- the HTTP API


@pytest.fixture
def http(sql_engine, monkeypatch) -> Iterator[TestClient]:
    monkeypatch.setenv(apikeys.ENV_VAR, KEY)
    with TestClient(Starlette(routes=api.api_routes(sql_engine)), raise_server_exceptions=False) as client:
        yield client


def test_api_writes_and_reads_clickhouse_events(events_url, sql_engine, http):
    metric = {"name": "Tokens", "code": "tokens", "unit": "tokens", "event_name": "llm", "aggregation": "sum",
              "value_property": "t", "group_by": ["model"]}
    metrics.create_metric(sql_engine, data=metric)
    body = {"events": [{"event_name": "llm", "customer_id": f"c{i % 3}", "timestamp": f"2026-10-0{1 + i % 9}T00:00:00Z",
                        "idempotency_key": f"k{i}", "properties": {"t": f"{i}.1", "model": "m" + str(i % 2)}} for i in range(40)]}
    first = http.post("/api/v1/events", json=body, headers=AUTH).json()
    assert (first["accepted"], first["duplicates"]) == (40, 0)
    again = http.post("/api/v1/events", json=body, headers=AUTH).json()
    assert (again["accepted"], again["duplicates"]) == (0, 40)
    assert raw_count(events_url) == 40 and isinstance(event_writer(sql_engine), ClickHouseWriter)
    usage = http.get("/api/v1/usage", params={"metric": "tokens", "customer_id": "c1"}, headers=AUTH).json()
    want = sum(i + 0.1 for i in range(40) if i % 3 == 1)
    assert usage["value"] == f"{want:.1f}" and usage["events"] == len([i for i in range(40) if i % 3 == 1])
    assert {g["group"]["model"] for g in usage["groups"]} == {"m0", "m1"}
    cloud = http.post("/api/v1/events", content=json.dumps({"specversion": "1.0", "id": "ce-1", "source": "s", "type": "llm",
                                                            "subject": "c1", "time": "2026-10-02T00:00:00Z", "data": {"t": 1}}),
                      headers={**AUTH, "Content-Type": "application/cloudevents+json"}).json()
    assert cloud["accepted"] == 1
    assert http.get("/api/v1/usage", params={"metric": "tokens", "customer_id": "c1"}, headers=AUTH).json()["value"] == f"{want + 1:.1f}"


def test_api_says_when_the_events_engine_cannot_be_used(sql_engine, http, monkeypatch):
    monkeypatch.setenv(settings.ENV, "clickhouse://nobody:pw@/x")
    response = http.post("/api/v1/events", json={"event_name": "e", "customer_id": "c", "timestamp": 1}, headers=AUTH)
    assert response.status_code == 503 and response.json()["error"] == "events_unavailable"
    assert "needs a host" in response.json()["detail"] and "pw@" not in response.json()["detail"]


# --------------------------------------------------------------------------- the app


@pytest.fixture
def app_on_clickhouse(events_url, tmp_path, monkeypatch) -> Iterator[object]:
    from tests.app.conftest import _use_store

    yield from _use_store(tmp_path / "app.db", tmp_path, monkeypatch)


def test_events_page_imports_browses_and_deletes_in_clickhouse(app_on_clickhouse, events_url):
    from tests.app.conftest import page
    from tests.app.test_events_page import dataframe, imports_of, sample, upload

    engine = app_on_clickhouse
    at = upload(page("events"), sample("llm_tokens.csv"), sample("api_requests.csv"))
    summary = dataframe(at, "summary")
    assert summary["Accepted"].tolist() == [1860, 2790]
    assert raw_count(events_url) == 4650 and len(stored_events(engine)) == 4650
    assert store.event_count(engine) == 4650
    at = upload(at, sample("llm_tokens.csv"))  # the same file again: duplicates only
    assert dataframe(at, "summary")["Duplicates"].tolist() == [1860] and raw_count(events_url) == 4650
    assert "of 4,650, newest first" in " ".join(m.value for m in at.markdown)
    ids = {source: i for i, source, *_ in imports_of(engine)}
    at.selectbox(key="events:delete_choice").set_value(ids["api_requests.csv"]).run()
    at.button(key="events:delete").click().run()
    at.button(key="events:delete_confirm").click().run()
    assert not at.exception, at.exception
    assert "Deleted 2,790 events of import" in at.success[-1].value
    assert len(stored_events(engine)) == 1860 == raw_count(events_url)


def test_usage_page_shows_the_clickhouse_answers(app_on_clickhouse, events_url):
    from metering.engine.frame import EventFrame
    from tests.app.conftest import ROOT, page
    from tests.app.test_usage_page import OCT, metric_values
    from workbench import usage as us

    engine = app_on_clickhouse
    path = ROOT / "sample_events" / "llm_tokens.csv"
    ingest.import_file(engine, path)
    m = metrics.create_metric(engine, data=metrics.TEMPLATES["llm_tokens"].form())
    at = page("usage")
    assert not at.exception, at.exception
    reference = aggregation.aggregate(EventFrame.from_parsed(ingest.read_events(path)), m, start=OCT[0], end=OCT[1])
    values = metric_values(at)
    assert values[f"{m.name} ({m.unit})"] == f"{us.fmt(reference.value)} tokens"
    assert values["Events"] == f"{reference.events:,}" and len(stored_events(engine)) == 1860


def test_every_page_says_why_when_the_events_url_is_bad(tmp_path, monkeypatch):
    from tests.app.conftest import _use_store, page

    gen = _use_store(tmp_path / "app.db", tmp_path, monkeypatch)
    next(gen)
    monkeypatch.setenv(settings.ENV, "chdb://oops")
    try:
        for name in ("metrics", "events", "usage"):
            at = page(name)
            assert not at.exception, at.exception
            assert any("events engine cannot be used" in e.value and "names a directory" in e.value for e in at.error), name
        assert events_problem() is not None
    finally:
        next(gen, None)


# --------------------------------------------------------------------------- a real server


@pytest.fixture
def server_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    raw = os.environ.get(SERVER_ENV, "").strip()
    if not raw:
        pytest.skip(f"{SERVER_ENV} not set (e.g. clickhouse://default:@127.0.0.1:8123/default)")
    base = parse(raw)
    if base is None or base.kind != "server":
        pytest.skip(f"{SERVER_ENV} does not name a ClickHouse server: {raw!r}")
    database = f"w_{uuid.uuid4().hex[:12]}"
    scheme = "clickhouses" if base.secure else "clickhouse"
    url = f"{scheme}://{base.username}:{base.password}@{base.host}:{base.port}/{database}"
    monkeypatch.setenv(settings.ENV, url)
    problem = events_problem()
    if problem:
        pytest.skip(f"ClickHouse server not usable: {problem}")
    yield url
    setting = parse(url)
    assert setting is not None
    place = wiring.place_for(setting)
    place.client.command(f"DROP DATABASE IF EXISTS `{database}`")
    wiring.forget(setting)


def test_writes_on_a_real_server(server_url, sql_engine, tmp_path):
    path = tmp_path / "e.csv"
    path.write_text(_events())
    first = ingest.import_file(sql_engine, path)
    again = ingest.import_file(sql_engine, path)
    assert (first.accepted, again.accepted, again.duplicates) == (3010, 0, 3010)
    assert raw_count(server_url) == 3010 == len(stored_events(sql_engine))
    writer = event_writer(sql_engine)
    assert writer.insert_rows([("e", "c", 1, "k", "{}"), ("e", "c", 2, "k", "{}")], import_id=None).added == 1
    assert store.delete_import(sql_engine, first.import_id) == 3010
    assert store.delete_event(sql_engine, "k") and len(stored_events(sql_engine)) == 0
