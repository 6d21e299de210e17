"""SQLite backend: its configuration, corruption handling and several processes at once."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from promptshelf import SQLiteStorage
from promptshelf.errors import CorruptStoreError

from helpers import make_version


def test_documented_pragmas(tmp_path: Path) -> None:
    durable = SQLiteStorage(tmp_path / "a.db")
    assert durable.pragma("journal_mode") == "wal"
    assert durable.pragma("synchronous") == 2  # FULL
    assert durable.pragma("busy_timeout") == 10_000
    fast = SQLiteStorage(tmp_path / "b.db", durable=False)
    assert fast.pragma("synchronous") == 1  # NORMAL
    stats = durable.get_storage_stats()
    assert (stats["journal_mode"], stats["schema_version"]) == ("wal", 4)


def test_latest_is_an_index_lookup(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "a.db")
    conn = sqlite3.connect(tmp_path / "a.db")
    plan = " ".join(
        str(row)
        for row in conn.execute(
            "EXPLAIN QUERY PLAN SELECT data FROM promptshelf_versions WHERE prompt_id = ? "
            "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
            ("p",),
        )
    )
    assert "USING PRIMARY KEY" in plan and "TEMP B-TREE" not in plan
    store.close()


def test_rows_hold_the_canonical_json(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "a.db")
    version = make_version("a", "1.10.2")
    store.save_version(version)
    row = (
        sqlite3.connect(tmp_path / "a.db")
        .execute("SELECT major, minor, patch, version, data FROM promptshelf_versions")
        .fetchone()
    )
    assert row[:4] == (1, 10, 2, "1.10.2")
    assert row[4] == version.model_dump_json(indent=2).encode()


@pytest.mark.parametrize("damage", ["garbage", "truncated-header", "flipped-header"])
def test_a_damaged_database_gives_a_coded_error(tmp_path: Path, damage: str) -> None:
    path = tmp_path / "a.db"
    store = SQLiteStorage(path)
    store.save_version(make_version("a", "1.0.0"))
    store.close()
    for suffix in ("-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    data = bytearray(path.read_bytes())
    if damage == "garbage":
        data = bytearray(b"this is not a database" * 200)
    elif damage == "truncated-header":
        data = data[:50]
    else:
        data[0:16] = b"\xff" * 16
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptStoreError) as caught:
        SQLiteStorage(path).get_version("a", "1.0.0")
    assert caught.value.error_code == "STORE-CORRUPT-001"


CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from helpers import make_version
from promptshelf import SQLiteStorage
store = SQLiteStorage(sys.argv[1])
major, i = sys.argv[3], 0
while True:
    store.save_version(make_version(f"p{i % 3}", f"{major}.{i}.0"))
    print(f"ACK p{i % 3} {major}.{i}.0", flush=True)  # only after the save returned
    i += 1
"""


def test_killed_writer_loses_no_acknowledged_save(tmp_path: Path) -> None:
    path = str(tmp_path / "a.db")
    here = str(Path(__file__).resolve().parents[1])
    acked: list[tuple[str, str]] = []
    for major in range(1, 4):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, path, here, str(major)], stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(5)]  # kill once it is mid-stream
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        lines += out.splitlines()
        acked += [tuple(line.split()[1:3]) for line in lines if line.startswith("ACK")]
    assert acked
    store = SQLiteStorage(path)
    assert store.integrity_check() == "ok"
    for prompt_id, number in acked:
        assert store.get_version(prompt_id, number) is not None


SCHEMA_1 = """
CREATE TABLE promptshelf_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO promptshelf_meta VALUES ('schema_version', '1');
CREATE TABLE promptshelf_versions (
    prompt_id TEXT NOT NULL, major INTEGER NOT NULL, minor INTEGER NOT NULL,
    patch INTEGER NOT NULL, version TEXT NOT NULL, data BLOB NOT NULL,
    overall_score REAL NOT NULL, created_at TEXT NOT NULL,
    PRIMARY KEY (prompt_id, major, minor, patch)
) WITHOUT ROWID;
"""


def test_a_schema_1_database_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = make_version("p", "1.0.0")
    conn = sqlite3.connect(path)
    conn.executescript(SCHEMA_1)
    conn.execute(
        "INSERT INTO promptshelf_versions VALUES (?, 1, 0, 0, '1.0.0', ?, 60.0, '2026-01-01')",
        ("p", old.model_dump_json(indent=2).encode()),
    )
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    assert store.get_storage_stats()["schema_version"] == 4
    assert store.get_version("p", "1.0.0") == old  # no checksum yet: read unverified
    store.save_version(make_version("p", "1.1.0"))
    store.set_label("p", "production", "1.1.0")
    store.delete_version("p", "1.0.0")
    assert [e.version for e in store.list_trash()] == ["1.0.0"]
    assert store.verify().ok


def test_a_schema_3_database_gets_its_times_in_utc(tmp_path: Path) -> None:
    """Schema 4: every time column holds UTC text (``+00:00``, microseconds), so equal
    times are equal texts; the naive times schema 3 wrote are taken as UTC. The versions'
    bytes (their checksums, their ETags) are not touched."""
    path = tmp_path / "old.db"
    with SQLiteStorage(path) as store:
        store.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
        store.set_label("p", "production", "1.1.0")
        store.delete_version("p", "1.0.0")
    naive = "2025-03-01T09:30:15.123456"
    conn = sqlite3.connect(path)
    before = conn.execute("SELECT data, sha256 FROM promptshelf_versions").fetchall()
    conn.execute("UPDATE promptshelf_meta SET value = '3' WHERE key = 'schema_version'")
    conn.execute("UPDATE promptshelf_label_events SET at = ?", (naive,))
    conn.execute("UPDATE promptshelf_trash SET deleted_at = ?", (naive,))
    conn.execute("UPDATE promptshelf_versions SET created_at = '2026-01-01T12:00:00'")
    conn.commit()
    conn.close()
    store = SQLiteStorage(path)
    assert store.get_storage_stats()["schema_version"] == 4
    utc = datetime(2025, 3, 1, 9, 30, 15, 123456, tzinfo=UTC)
    assert [e.at for e in store.label_history("p")] == [utc]
    [entry] = store.list_trash("p")
    assert entry.deleted_at == utc
    assert store.purge_trashed(entry) is True  # found by its time: texts match
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT data, sha256 FROM promptshelf_versions").fetchall() == before
    assert conn.execute("SELECT created_at FROM promptshelf_versions").fetchall() == [
        ("2026-01-01T12:00:00.000000+00:00",)
    ]
    assert conn.execute("SELECT at FROM promptshelf_label_events").fetchall() == [
        ("2025-03-01T09:30:15.123456+00:00",)
    ]
    conn.close()
    assert store.verify().ok
    store.close()
