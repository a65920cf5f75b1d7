"""Request heads are limited (count and size) on the real server: while uvicorn reads them and
again in the ASGI middleware; ordinary requests and kept-alive connections are unaffected."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from metering.api.headers import MAX_HEAD_BYTES, MAX_HEADERS, HeaderLimitMiddleware, too_large
from tests.server import Server, running_server


def test_too_large_rule() -> None:
    assert not too_large([(b"host", b"x")] * MAX_HEADERS)
    assert too_large([(b"host", b"x")] * (MAX_HEADERS + 1))
    assert not too_large([(b"cookie", b"x" * (MAX_HEAD_BYTES - 100))])
    assert too_large([(b"cookie", b"x" * MAX_HEAD_BYTES)])


def test_middleware_answers_431() -> None:
    app = Starlette(routes=[Route("/", lambda r: PlainTextResponse("ok"))], middleware=[Middleware(HeaderLimitMiddleware)])
    client = TestClient(app)
    assert client.get("/", headers={"x-a": "1"}).text == "ok"
    many = {f"x-h{i}": "1" for i in range(MAX_HEADERS + 5)}
    response = client.get("/", headers=many)
    assert response.status_code == 431 and "at most 100 header fields" in response.text
    assert client.get("/", headers={"cookie": "c" * (MAX_HEAD_BYTES + 1)}).status_code == 431


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("headers")) as srv:
        yield srv


def raw(server: Server, head: bytes, *, chunk: int = 16_384, pause: float = 0.0, sent: list[int] | None = None) -> bytes:
    """Send a request head over a plain socket (in chunks) and read the answer until closed;
    `sent` gets how many bytes went out before the server closed the connection."""
    host, port = server.base_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        try:
            for start in range(0, len(head), chunk):
                sock.sendall(head[start:start + chunk])
                if sent is not None:
                    sent.append(start + chunk)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server closed the connection early: read what it said
        answer = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
                if b"\r\n\r\n" in answer and b"connection: close" not in answer.lower():
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return answer


def test_an_ordinary_request_passes(server: Server) -> None:
    answer = raw(server, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 200")


def test_a_huge_head_is_refused_while_it_is_read(server: Server) -> None:
    # 4 MiB of header sent slowly: the server answers 431 and closes long before the end
    head = b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * (4 * 1024 * 1024) + b"\r\n\r\n"
    sent: list[int] = []
    answer = raw(server, head, chunk=65536, pause=0.01, sent=sent)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    assert max(sent) < 2 * 1024 * 1024  # refused while the head was still coming, not after all of it


def test_too_many_fields_get_431(server: Server) -> None:
    fields = b"".join(b"X-H%d: 1\r\n" % i for i in range(MAX_HEADERS + 10))
    answer = raw(server, b"GET /api/v1/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n")
    assert answer.startswith(b"HTTP/1.1 431"), answer[:200]
    page = raw(server, b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + fields + b"\r\n")
    assert page.startswith(b"HTTP/1.1 431"), page[:200]


def test_kept_alive_connection_with_many_requests_and_bodies(server: Server) -> None:
    import requests

    with requests.Session() as session:
        for _ in range(50):
            response = session.post(f"{server.base_url}/api/v1/events", headers=server.headers,
                                    data=b"[" + b" " * 200_000 + b"]")
            assert response.status_code == 422  # read in full (body larger than the head limit), then judged
        assert session.get(f"{server.base_url}/api/v1/health").status_code == 200
