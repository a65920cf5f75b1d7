"""The store's files are private: the SQLite database, its -wal / -shm files and the event
engine's columnar files beside it are 0600, their folders 0700."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from metering import store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes(folder: Path) -> dict[str, int]:
    """Every file and folder under `folder` with its mode (relative names)."""
    return {str(p.relative_to(folder)): mode(p) for p in folder.rglob("*")}


def private(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): 0o700 if p.is_dir() else 0o600 for p in folder.rglob("*")}


def test_new_database_and_its_wal_files_are_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask, which would make 0644 files
    try:
        db = tmp_path / "fresh" / "metering.db"
        engine = store.make_engine(f"sqlite:///{db}")
        store.insert_events(engine, [("e", "c", 1, "k1", "{}")], import_id=None)
        with engine.connect() as conn:  # a reader keeps the -shm file in use
            conn.exec_driver_sql("SELECT count(*) FROM event").scalar_one()
            files = sorted(p.name for p in db.parent.iterdir())
            assert {"metering.db", "metering.db-wal", "metering.db-shm"} <= set(files)
            assert modes(db.parent) == private(db.parent)
        assert mode(db.parent) == 0o700  # the folder made for it
        engine.dispose()
    finally:
        os.umask(old)


def test_existing_world_readable_files_are_tightened(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    engine = store.make_engine(f"sqlite:///{db}")
    store.insert_events(engine, [("e", "c", 1, "k1", "{}")], import_id=None)
    engine.dispose()
    for p in tmp_path.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)
    engine = store.make_engine(f"sqlite:///{db}")
    assert modes(tmp_path) == private(tmp_path)
    engine.dispose()


def test_data_dir_and_private_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("METERING_DATA_DIR", str(tmp_path / "data"))
    assert mode(store.data_dir()) == 0o700
    path = store.private_file(store.data_dir() / "columns.bin")
    assert path.exists() and mode(path) == 0o600
    path.write_bytes(b"x")
    os.chmod(path, 0o666)
    store.private_file(path)
    assert mode(path) == 0o600 and path.read_bytes() == b"x"  # tightened, not truncated


def _locks_held(path: Path) -> int:
    """POSIX locks this process holds on `path` (from /proc/locks)."""
    inode = path.stat().st_ino
    count = 0
    for line in Path("/proc/locks").read_text().splitlines():
        parts = line.split()
        if len(parts) > 5 and parts[4] == str(os.getpid()) and parts[5].endswith(f":{inode}"):
            count += 1
    return count


def test_a_second_engine_does_not_drop_the_first_ones_locks(tmp_path: Path) -> None:
    # Closing any descriptor of a file drops all of a process's POSIX locks on it; SQLite's locks
    # are such locks, so making another engine must not open the database file.
    if not Path("/proc/locks").exists():  # pragma: no cover - Linux only
        return
    db = tmp_path / "locks.db"
    first = store.make_engine(f"sqlite:///{db}")
    raw = first.raw_connection()
    try:
        raw.execute("BEGIN")
        raw.execute("SELECT count(*) FROM event").fetchall()  # a read transaction: a SHARED lock on the file
        held = _locks_held(db)
        assert held > 0
        second = store.make_engine(f"sqlite:///{db}")
        assert _locks_held(db) == held
        second.dispose()
    finally:
        raw.rollback()
        raw.close()
        first.dispose()
