"""Start the real app (`streamlit run app.py`) on a free local port, for tests and the bench.

`running_server(data_dir)` is a context manager: it starts the server with DATABASE_URL set to
a fresh SQLite file under `data_dir` and METERING_API_KEY set to a known key, waits until
GET /api/v1/health answers, yields a `Server` (base URL, key, engine URL, log path) and stops
the process (SIGTERM, then SIGKILL) whatever happens. The server listens on 127.0.0.1 only.
`server` is the same as a pytest fixture (module scope: one server per test module).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
STREAMLIT = Path(sys.executable).with_name("streamlit")
START_TIMEOUT = 60.0


@dataclass(frozen=True)
class Server:
    base_url: str
    api_key: str
    database_url: str
    log_path: Path
    pid: int

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _healthy(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/api/v1/health", timeout=2) as response:
            return response.status == 200 and json.loads(response.read()).get("status") == "ok"
    except (OSError, urllib.error.URLError, ValueError):
        return False


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/", timeout=2) as response:
            return response.status == 200
    except (OSError, urllib.error.URLError, ValueError):
        return False


@contextmanager
def running_server(data_dir: Path, *, api_key: str | None = None, extra_env: dict[str, str] | None = None,
                   secrets_toml: str = "", address: str = "127.0.0.1", database_url: str | None = None,
                   wait_healthy: bool = True) -> Iterator[Server]:
    """`secrets_toml` is the text of the server's secrets.toml (none by default, so a developer's own
    .streamlit/secrets.toml never leaks into a test); "{port}" in it becomes the server's port.
    Without `wait_healthy` it waits for the root page only (a server whose store is broken)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    key = api_key or "mtr_test_" + secrets.token_urlsafe(24)
    database_url = database_url or f"sqlite:///{data_dir / 'server.db'}"
    port = free_port()
    secrets_path = data_dir / "secrets.toml"
    secrets_path.write_text(secrets_toml)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "METERING_DATA_DIR": str(data_dir),
        "METERING_API_KEY": key,
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
        **(extra_env or {}),
    }
    log_path = data_dir / "server.log"
    command = [
        str(STREAMLIT), "run", str(ROOT / "app.py"),
        "--server.headless", "true",
        "--server.address", address,
        "--server.port", str(port),
        "--secrets.files", str(secrets_path),
        "--server.fileWatcherType", "none",
        "--server.runOnSave", "false",
        "--server.scriptHealthCheckEnabled", "true",  # GET /_stcore/script-health-check runs app.py's main()
    ]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not (_healthy(base_url) if wait_healthy else _answers(base_url)):
            if process.poll() is not None:
                raise RuntimeError(f"the server exited with {process.returncode}:\n{log_path.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not answer within {START_TIMEOUT:.0f} s:\n{log_path.read_text(errors='replace')}")
            time.sleep(0.2)
        yield Server(base_url, key, database_url, log_path, process.pid)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # its own session: the server and nothing else
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with running_server(tmp_path_factory.mktemp("server")) as srv:
        yield srv
