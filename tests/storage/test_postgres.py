"""PostgreSQL backend: schema management, many processes, dropped connections."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from promptshelf import PostgresStorage, ValidationError, VersionManager
from promptshelf.errors import ConnectionLostError
from promptshelf.storage import postgres as pg_module

from conftest import fresh_schema
from helpers import make_analysis, make_prompt, make_result, make_version


@pytest.fixture
def schema(request: pytest.FixtureRequest) -> str:
    return fresh_schema(request)


def test_schema_is_created_and_versioned(postgres_url: str, schema: str) -> None:
    store = PostgresStorage(postgres_url, schema=schema)
    with psycopg.connect(postgres_url) as conn:
        version = conn.execute(
            f'SELECT value FROM "{schema}".promptshelf_meta WHERE key = %s', ("schema_version",)
        ).fetchone()
        kind = conn.execute(
            "SELECT data_type FROM information_schema.columns WHERE table_schema = %s "
            "AND table_name = 'promptshelf_versions' AND column_name = 'data'",
            (schema,),
        ).fetchone()
    assert version == (str(pg_module.SCHEMA_VERSION),)
    assert kind == ("jsonb",)
    store.close()
    PostgresStorage(postgres_url, schema=schema).close()  # re-opening changes nothing


def test_a_newer_schema_is_refused(postgres_url: str, schema: str) -> None:
    PostgresStorage(postgres_url, schema=schema).close()
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"UPDATE \"{schema}\".promptshelf_meta SET value = '99'")
    with pytest.raises(Exception) as caught:
        PostgresStorage(postgres_url, schema=schema)
    assert "upgrade promptshelf" in str(caught.value)


def test_payload_is_queryable_jsonb(postgres_url: str, schema: str) -> None:
    store = PostgresStorage(postgres_url, schema=schema)
    store.save_version(make_version("a", "1.0.0", score=77.5))
    with psycopg.connect(postgres_url) as conn:
        row = conn.execute(
            f"SELECT data->'analysis'->>'overall_score', major, minor, patch "
            f'FROM "{schema}".promptshelf_versions'
        ).fetchone()
    assert row == ("77.5", 1, 0, 0)
    store.close()


def test_nul_characters_are_refused_with_a_code(postgres_url: str, schema: str) -> None:
    store = PostgresStorage(postgres_url, schema=schema)
    with pytest.raises(ValidationError) as caught:
        store.save_version(make_version("a", "1.0.0", text="before\x00after"))
    assert caught.value.error_code == "PS-PG-NUL-001"
    assert store.list_prompts() == []
    store.close()


def _terminate_other_connections(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as admin:
        rows = admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
            "AND datname = current_database() AND backend_type = 'client backend'"
        ).fetchall()
    return len(rows)


@pytest.mark.parametrize("check", [False, True])
def test_a_dropped_connection_is_reported_then_recovered(
    postgres_url: str, schema: str, check: bool
) -> None:
    store = PostgresStorage(postgres_url, schema=schema, min_size=1, max_size=1, check=check)
    store.save_version(make_version("a", "1.0.0"))
    assert _terminate_other_connections(postgres_url) >= 1
    if check:  # the pool notices the dead connection before handing it out
        store.save_version(make_version("a", "1.1.0"))
    else:
        with pytest.raises(ConnectionLostError) as caught:
            store.save_version(make_version("a", "1.1.0"))
        assert caught.value.error_code == "DB-CONN-001"
        assert store.get_version("a", "1.1.0") is None  # the failed save left nothing
        store.save_version(make_version("a", "1.1.0"))  # the next call reconnects
    assert store.list_version_numbers("a") == ["1.0.0", "1.1.0"]  # nothing acknowledged lost
    store.close()


def test_missing_driver_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "psycopg_pool", None)
    with pytest.raises(Exception) as caught:
        PostgresStorage("postgresql://nowhere/db")
    assert "pip install 'promptshelf[postgres]'" in str(caught.value)


def _create_many(url: str, schema: str, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    manager = VersionManager(PostgresStorage(url, schema=schema))
    made = []
    for i in range(count):
        result = None if i % 3 else make_result()
        made.append(manager.create_version(make_prompt(), make_analysis(), result).version)
    queue.put(made)


def _run_creators(url: str, schema: str, processes: int, count: int) -> list[str]:
    """Versions made by ``processes`` separate processes, each creating ``count``."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [
        ctx.Process(target=_create_many, args=(url, schema, count, queue)) for _ in range(processes)
    ]
    for p in workers:
        p.start()
    made = [v for _ in workers for v in queue.get(timeout=180)]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    return made


def test_many_processes_opening_a_fresh_schema_at_once(postgres_url: str, schema: str) -> None:
    made = _run_creators(postgres_url, schema, processes=4, count=2)
    assert len(set(made)) == 8


def test_url_password_is_never_shown(postgres_url: str, schema: str, tmp_path: Path) -> None:
    assert (
        pg_module._redact("postgresql://bob:s3cret@db:5432/x") == "postgresql://bob:***@db:5432/x"
    )
    store = PostgresStorage(postgres_url, schema=schema)
    assert "s3cret" not in repr(store)
    store.close()


def test_a_schema_1_database_is_upgraded(postgres_url: str, schema: str) -> None:
    old = make_version("p", "1.0.0")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".promptshelf_meta (key text PRIMARY KEY, value text NOT NULL)'
        )
        conn.execute(f"INSERT INTO \"{schema}\".promptshelf_meta VALUES ('schema_version', '1')")
        conn.execute(pg_module.MIGRATIONS[1][0].format(s=f'"{schema}"'))
        conn.execute(
            f'INSERT INTO "{schema}".promptshelf_versions (prompt_id, major, minor, patch, '
            "version, data, overall_score, created_at) "
            "VALUES ('p', 1, 0, 0, '1.0.0', %s::jsonb, 60, now())",
            (old.model_dump_json(),),
        )
    store = PostgresStorage(postgres_url, schema=schema)
    assert store.get_storage_stats()["schema_version"] == pg_module.SCHEMA_VERSION == 6
    assert store.get_version("p", "1.0.0") == old
    store.save_version(make_version("p", "1.1.0"))
    store.set_label("p", "production", "1.1.0")
    store.delete_version("p", "1.0.0")
    assert [e.version for e in store.list_trash()] == ["1.0.0"]
    assert store.verify().ok
    store.close()


def test_schema_6_holds_every_time_as_timestamptz_in_utc(postgres_url: str, schema: str) -> None:
    """Schema 5 kept a label event's time as text (naive, or with an offset) and the other
    times as naive ``timestamp``; schema 6 makes them all ``timestamptz``: a naive time is
    taken as UTC, one with an offset keeps its instant. The versions' JSONB (their bytes,
    their checksums) is not touched."""
    naive = datetime(2025, 3, 1, 9, 30, 15, 123456)
    old = make_version("p", "1.0.0")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(
            f'CREATE TABLE "{schema}".promptshelf_meta (key text PRIMARY KEY, value text NOT NULL)'
        )
        conn.execute(f"INSERT INTO \"{schema}\".promptshelf_meta VALUES ('schema_version', '5')")
        for number in (1, 2, 3, 4, 5):
            for statement in pg_module.MIGRATIONS[number]:
                conn.execute(statement.format(s=f'"{schema}"'))
        for seq, at in ((1, naive.isoformat()), (2, "2025-03-01T11:30:15.123456+02:00")):
            conn.execute(
                f'INSERT INTO "{schema}".promptshelf_label_events '
                "VALUES ('p', %s, 'production', %s, %s, '1.0.0', 'ci', NULL, %s)",
                (seq, "set" if seq == 1 else "move", None if seq == 1 else "1.0.0", at),
            )
        data = old.model_dump_json(indent=2)
        conn.execute(
            f'INSERT INTO "{schema}".promptshelf_versions (prompt_id, major, minor, patch, '
            "version, data, overall_score, created_at, sha256) "
            "VALUES ('p', 1, 0, 0, '1.0.0', %s::jsonb, 60, %s, "
            "encode(sha256(convert_to(%s::jsonb::text, 'UTF8')), 'hex'))",
            (data, naive, data),
        )
    store = PostgresStorage(postgres_url, schema=schema)
    assert store.get_storage_stats()["schema_version"] == 6
    utc = naive.replace(tzinfo=UTC)
    assert [e.at for e in store.label_history("p")] == [utc, utc]  # the same instant twice
    assert all(e.at.utcoffset() == timedelta(0) for e in store.label_history("p"))
    assert store.get_version("p", "1.0.0") == old and store.verify().ok
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        types = conn.execute(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = %s AND column_name IN "
            "('created_at', 'saved_at', 'at', 'deleted_at', 'quarantined_at') ORDER BY 1, 2",
            (schema,),
        ).fetchall()
        assert {t for _, _, t in types} == {"timestamp with time zone"}, types
        assert len(types) == 7
        (created,) = conn.execute(
            f'SELECT created_at FROM "{schema}".promptshelf_versions'
        ).fetchone()
        assert created == utc
    store.save_version(make_version("p", "1.1.0"))
    moved = store.set_label("p", "production", "1.1.0", actor="me")
    assert moved.at.utcoffset() == timedelta(0)
    store.delete_version("p", "1.0.0", force=True)
    [entry] = store.list_trash("p")
    assert entry.deleted_at.utcoffset() == timedelta(0)
    assert store.restore_version("p", "1.0.0") == old
    events = store.label_history("p")
    assert store.import_label_events("p", events) == 0  # read back exactly: nothing to append
    store.close()
