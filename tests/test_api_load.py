"""Load on the real server: 8 concurrent clients for 10 s (127.0.0.1 only, bounded), sending
single events, batches, resends and usage queries. Every acknowledged event must be stored
exactly once, and the server must never answer 5xx."""

from __future__ import annotations

import random
import threading
import time
from dataclasses import dataclass, field

import requests
from sqlalchemy import text

from metering import metrics, store
from tests.server import Server, server  # noqa: F401  (the real-server fixture)

CLIENTS = 8
SECONDS = 10.0
MAX_REQUESTS_PER_CLIENT = 20_000  # a bound, should the server be very fast
BATCH = 100


@dataclass
class Tally:
    requests: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    acknowledged: set[str] = field(default_factory=set)  # keys the server answered 200 for
    accepted: int = 0
    duplicates: int = 0
    expected_duplicates: int = 0


def event(key: str, n: int) -> dict:
    return {
        "event_name": "load.test",
        "customer_id": f"cus_{n % 17}",
        "timestamp": f"2026-10-{1 + n % 28:02d}T{n % 24:02d}:00:00Z",
        "idempotency_key": key,
        "properties": {"units": n % 7 + 1, "region": random.choice(["us", "eu"])},
    }


def client(server: Server, worker: int, deadline: float, tally: Tally, lock: threading.Lock) -> None:
    session = requests.Session()
    session.headers.update(server.headers)
    mine = Tally()
    n = 0
    sent: list[dict] = []
    rng = random.Random(worker)
    try:
        while time.monotonic() < deadline and mine.requests < MAX_REQUESTS_PER_CLIENT:
            step = mine.requests % 12
            try:
                if step == 11:  # a reader among the writers
                    response = session.get(f"{server.base_url}/api/v1/usage", params={"metric": "load_units"}, timeout=30)
                    mine.requests += 1
                    mine.statuses[response.status_code] = mine.statuses.get(response.status_code, 0) + 1
                    if response.status_code != 200:
                        mine.failures.append(f"usage {response.status_code}: {response.text[:200]}")
                    continue
                if step in (4, 8):  # a batch; with one key repeated inside it
                    events = [event(f"w{worker}-{n + i}", n + i) for i in range(BATCH)]
                    n += BATCH
                    events.append(dict(events[0]))
                    expected_dup = 1
                elif step == 9 and sent:  # resend something acknowledged before
                    events = [rng.choice(sent)]
                    expected_dup = 1
                else:
                    events = [event(f"w{worker}-{n}", n)]
                    n += 1
                    expected_dup = 0
                body = {"events": events} if len(events) > 1 else events[0]
                response = session.post(f"{server.base_url}/api/v1/events", json=body, timeout=30)
            except requests.RequestException as exc:
                mine.failures.append(f"request failed: {exc!r}")
                continue
            mine.requests += 1
            mine.statuses[response.status_code] = mine.statuses.get(response.status_code, 0) + 1
            if response.status_code != 200:
                mine.failures.append(f"events {response.status_code}: {response.text[:200]}")
                continue
            answer = response.json()
            if answer["rejected"] or answer["accepted"] + answer["duplicates"] != len(events):
                mine.failures.append(f"unexpected answer {answer}")
            mine.accepted += answer["accepted"]
            mine.duplicates += answer["duplicates"]
            mine.expected_duplicates += expected_dup
            for e in events:
                mine.acknowledged.add(e["idempotency_key"])
            if len(sent) < 500:
                sent.append(events[0])
    finally:
        session.close()
        with lock:
            tally.requests += mine.requests
            for status, count in mine.statuses.items():
                tally.statuses[status] = tally.statuses.get(status, 0) + count
            tally.failures.extend(mine.failures)
            tally.acknowledged |= mine.acknowledged
            tally.accepted += mine.accepted
            tally.duplicates += mine.duplicates
            tally.expected_duplicates += mine.expected_duplicates


def test_concurrent_clients_every_acknowledged_event_stored_once(server: Server):
    assert server.base_url.startswith("http://127.0.0.1:")
    engine = store.make_engine(server.database_url)
    metrics.create_metric(engine, data={"name": "Load units", "code": "load_units", "unit": "units", "aggregation": "sum",
                                        "event_name": "load.test", "value_property": "units", "group_by": ["region"]})
    tally = Tally()
    lock = threading.Lock()
    deadline = time.monotonic() + SECONDS
    threads = [threading.Thread(target=client, args=(server, w, deadline, tally, lock)) for w in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=SECONDS + 120)
    assert not any(t.is_alive() for t in threads), "a client did not finish"

    assert not [s for s in tally.statuses if s >= 500], tally.statuses
    assert tally.failures == [], tally.failures[:5]
    assert tally.requests > 100, f"only {tally.requests} requests in {SECONDS} s"
    assert tally.duplicates == tally.expected_duplicates

    try:
        keys = [r[4] for r in store.event_rows(engine) if r[1] == "load.test"]
        with engine.connect() as conn:
            imports = conn.execute(text("SELECT sum(accepted), sum(duplicates) FROM import_batch")).one()
    finally:
        engine.dispose()
    assert len(keys) == len(set(keys))  # once
    assert set(keys) == tally.acknowledged  # every acknowledged event, and nothing else
    assert len(keys) == tally.accepted
    assert tuple(imports) == (tally.accepted, tally.duplicates)  # the day's import record counted each request

    final = requests.get(f"{server.base_url}/api/v1/usage", params={"metric": "load_units"}, headers=server.headers, timeout=30).json()
    assert final["events"] == len(keys)
    print(f"\nload: {tally.requests} requests, {len(keys)} events stored, statuses {tally.statuses}")
