"""``PostgresStorage``: one store shared by optimizer workers on many hosts.

psycopg 3 with a ``psycopg_pool`` connection pool. The library creates and
upgrades its schema itself (``promptshelf_meta.schema_version``, under an
advisory lock so that many workers starting at once do not race). The
payload is JSONB; the version's major/minor/patch are integer columns of the
primary key, so create-once is a constraint of the database and the latest
version is one descending index lookup. A connection that drops mid-operation
raises ``ConnectionLostError``; the pool discards it and the next call gets a
fresh one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import semver
from ..errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ConnectionLostError,
    CorruptStoreError,
    CorruptVersionError,
    DatabaseError,
    StoreNotFoundError,
    ValidationError,
    VersionConflictError,
)
from ..models import LabelEvent, PromptVersion, TrashEntry
from .base import (
    VersionStorage,
    checked_version,
    decode_version,
    encode_version,
    labels_blocking,
    missing_version,
    next_label_event,
    not_in_trash,
)
from .sqlshared import EVENT_COLUMNS, event_from_row, event_row
from .verify import Action, RepairReport

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 3

#: Each entry upgrades the schema from the previous version; ``{s}`` is the schema name.
MIGRATIONS: dict[int, list[str]] = {
    1: [
        """CREATE TABLE IF NOT EXISTS {s}.promptshelf_versions (
            prompt_id     text             NOT NULL,
            major         integer          NOT NULL,
            minor         integer          NOT NULL,
            patch         integer          NOT NULL,
            version       text             NOT NULL,
            data          jsonb            NOT NULL,
            overall_score double precision NOT NULL,
            created_at    timestamp        NOT NULL,
            saved_at      timestamptz      NOT NULL DEFAULT now(),
            PRIMARY KEY (prompt_id, major, minor, patch)
        )""",
    ],
    2: [
        """CREATE TABLE IF NOT EXISTS {s}.promptshelf_label_events (
            prompt_id    text        NOT NULL,
            seq          integer     NOT NULL,
            label        text        NOT NULL,
            action       text        NOT NULL,
            from_version text,
            to_version   text,
            actor        text,
            reason       text,
            at           timestamp   NOT NULL,
            PRIMARY KEY (prompt_id, seq)
        )""",
    ],
    3: [
        "ALTER TABLE {s}.promptshelf_versions ADD COLUMN IF NOT EXISTS sha256 text",
        """CREATE TABLE IF NOT EXISTS {s}.promptshelf_trash (
            LIKE {s}.promptshelf_versions,
            deleted_at timestamp NOT NULL,
            PRIMARY KEY (prompt_id, major, minor, patch, deleted_at)
        )""",
        """CREATE TABLE IF NOT EXISTS {s}.promptshelf_quarantine (
            prompt_id text NOT NULL, version text NOT NULL, data jsonb, sha256 text,
            reason text NOT NULL, quarantined_at timestamp NOT NULL
        )""",
    ],
}

#: The checksum of a JSONB payload, computed by the server from its canonical text form.
_DIGEST = "encode(sha256(convert_to({}::text, 'UTF8')), 'hex')"
_COLUMNS = (
    "prompt_id, major, minor, patch, version, data, overall_score, created_at, saved_at, sha256"
)

_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_MIGRATION_LOCK = 0x70736866  # "pshf": the advisory lock key for schema changes


def _driver() -> tuple[Any, Any]:
    try:
        import psycopg
        import psycopg_pool
    except ImportError as exc:
        raise ConfigurationError(
            "PostgresStorage needs psycopg 3 and psycopg_pool: pip install 'promptshelf[postgres]'",
            context={"missing": exc.name},
        ) from exc
    return psycopg, psycopg_pool


class PostgresStorage(VersionStorage):
    backend_name = "postgres"

    def __init__(
        self,
        url: str,
        *,
        schema: str = "public",
        min_size: int = 1,
        max_size: int = 8,
        timeout: float = 10.0,
        durable: bool = True,
        check: bool = True,
        create: bool = True,
    ) -> None:
        """``check`` verifies a pooled connection before each use (one round trip); without
        it a connection the server dropped surfaces once as ``ConnectionLostError``."""
        psycopg, psycopg_pool = _driver()
        if not _IDENTIFIER.fullmatch(schema):
            raise ConfigurationError(
                f"schema must be a lower-case SQL identifier, got {schema!r}",
                context={"schema": schema},
            )
        self._psycopg = psycopg
        self.schema = schema
        self.durable = durable
        self._t = f'"{schema}".promptshelf_versions'
        self._events_table = f'"{schema}".promptshelf_label_events'
        self._trash = f'"{schema}".promptshelf_trash'
        self._pool = psycopg_pool.ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            timeout=timeout,
            kwargs={"autocommit": True, "connect_timeout": max(1, int(timeout))},
            configure=self._configure,
            check=psycopg_pool.ConnectionPool.check_connection if check else None,
            open=False,
            name="promptshelf",
        )
        with self._errors("connect"):
            self._pool.open(wait=True, timeout=timeout)
        self.url_display = _redact(url)
        if not create and not self._exists():
            self._pool.close()
            raise StoreNotFoundError(
                f"no promptshelf tables in schema {schema!r} of {self.url_display}",
                context={"schema": schema},
            )
        self._migrate()

    def _exists(self) -> bool:
        with self._connection("open") as conn:
            row = conn.execute(
                "SELECT to_regclass(%s)", (f'"{self.schema}".promptshelf_versions',)
            ).fetchone()
        return bool(row and row[0])

    def _configure(self, conn: psycopg.Connection[Any]) -> None:
        if not self.durable:
            conn.execute("SET synchronous_commit = off")

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn psycopg's exceptions into promptshelf's, with codes."""
        psycopg = self._psycopg
        from psycopg_pool import PoolTimeout

        try:
            yield
        except (VersionConflictError, ValidationError):
            raise
        except (psycopg.OperationalError, PoolTimeout) as exc:
            raise ConnectionLostError(
                f"PostgreSQL connection failed during {action}: {exc}; nothing was acknowledged, "
                "retry the call",
                context={"action": action, "schema": self.schema},
            ) from exc
        except psycopg.errors.UntranslatableCharacter as exc:
            raise ValidationError(
                "PostgreSQL JSONB cannot hold the NUL character (U+0000) in a version",
                error_code="PS-PG-NUL-001",
            ) from exc
        except psycopg.errors.UndefinedTable as exc:
            raise CorruptStoreError(
                f"the promptshelf tables in schema {self.schema!r} are missing: {exc}",
                context={"schema": self.schema},
            ) from exc
        except psycopg.Error as exc:
            raise DatabaseError(
                f"PostgreSQL error during {action}: {exc}",
                context={"action": action, "sqlstate": getattr(exc, "sqlstate", None)},
            ) from exc

    @contextmanager
    def _connection(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        with self._errors(action), self._pool.connection() as conn:
            yield conn

    def _migrate(self) -> None:
        s = f'"{self.schema}"'
        with self._connection("schema upgrade") as conn, conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            conn.execute(f"CREATE SCHEMA IF NOT EXISTS {s}")
            conn.execute(
                f"CREATE TABLE IF NOT EXISTS {s}.promptshelf_meta "
                "(key text PRIMARY KEY, value text NOT NULL)"
            )
            row = conn.execute(
                f"SELECT value FROM {s}.promptshelf_meta WHERE key = 'schema_version'"
            ).fetchone()
            current = int(row[0]) if row else 0
            if current > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"schema {self.schema!r} is at version {current}; this promptshelf knows up "
                    f"to {SCHEMA_VERSION}: upgrade promptshelf",
                    context={"schema": self.schema, "schema_version": current},
                )
            for number in range(current + 1, SCHEMA_VERSION + 1):
                for statement in MIGRATIONS[number]:
                    conn.execute(statement.format(s=s))
            conn.execute(
                f"INSERT INTO {s}.promptshelf_meta VALUES ('schema_version', %s) "
                "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                (str(SCHEMA_VERSION),),
            )

    # -- the contract ---------------------------------------------------------------

    def _save(self, version: PromptVersion) -> None:
        self._insert([version])

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions in one transaction: all of them, or (on any error) none."""
        self._check_open()
        return self._insert([checked_version(v) for v in versions])

    def _insert(self, versions: list[PromptVersion]) -> int:
        rows = [
            (
                v.prompt_id,
                *semver.parse(v.version),
                v.version,
                encode_version(v).decode(),
                v.analysis.overall_score,
                v.created_at,
            )
            for v in versions
        ]
        unique = self._psycopg.errors.UniqueViolation
        with self._connection("save") as conn, conn.transaction():
            for row in rows:
                try:
                    with conn.transaction():
                        conn.execute(
                            f"INSERT INTO {self._t} (prompt_id, major, minor, patch, version, "
                            "data, overall_score, created_at, sha256) "
                            "VALUES (%s, %s, %s, %s, %s, %s::jsonb, %s, %s, "
                            f"{_DIGEST.format('%s::jsonb')})",
                            (*row, row[5]),
                        )
                except unique:
                    raise VersionConflictError(str(row[0]), str(row[4])) from None
        return len(rows)

    #: What every read selects: the payload, its version, and its stored and current checksums.
    _READ = f"SELECT data, version, sha256, {_DIGEST.format('data')}"

    def _decode(self, row: tuple[Any, ...], prompt_id: str) -> PromptVersion:
        data, version, stored, current = row
        where = f"{self._t}:{prompt_id}@{version}"
        if stored is not None and stored != current:
            raise ChecksumMismatchError(
                f"checksum mismatch in {where}: the stored version is damaged",
                context={
                    "path": where,
                    "expected": stored,
                    "actual": current,
                    "reason": "checksum mismatch",
                },
            )
        return decode_version(data, prompt_id, version, where)

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        with self._connection("read") as conn:
            row = conn.execute(
                f"{self._READ} FROM {self._t} "
                "WHERE prompt_id = %s AND major = %s AND minor = %s AND patch = %s",
                (prompt_id, *semver.parse(version)),
            ).fetchone()
        return None if row is None else self._decode(row, prompt_id)

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        with self._connection("read") as conn:
            row = conn.execute(
                f"{self._READ} FROM {self._t} WHERE prompt_id = %s "
                "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
                (prompt_id,),
            ).fetchone()
        return None if row is None else self._decode(row, prompt_id)

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        with self._connection("read") as conn:
            rows = conn.execute(
                f"{self._READ} FROM {self._t} WHERE prompt_id = %s ORDER BY major, minor, patch",
                (prompt_id,),
            ).fetchall()
        return [self._decode(row, prompt_id) for row in rows]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        with self._connection("read") as conn:
            rows = conn.execute(
                f"SELECT version FROM {self._t} WHERE prompt_id = %s ORDER BY major, minor, patch",
                (prompt_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        key = semver.parse(version)
        with self._prompt_transaction("delete", prompt_id) as conn:
            if not self._has(conn, prompt_id, key):
                return False
            removals = labels_blocking(self._events(conn, prompt_id), prompt_id, version, force)
            self._record(conn, removals)
            where = "WHERE prompt_id = %s AND major = %s AND minor = %s AND patch = %s"
            conn.execute(
                f"INSERT INTO {self._trash} ({_COLUMNS}, deleted_at) "
                f"SELECT {_COLUMNS}, localtimestamp FROM {self._t} {where}",
                (prompt_id, *key),
            )
            conn.execute(f"DELETE FROM {self._t} {where}", (prompt_id, *key))
        return True

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        with self._connection("read") as conn:
            rows = conn.execute(
                f"SELECT prompt_id, version, deleted_at FROM {self._trash} "
                "WHERE %s::text IS NULL OR prompt_id = %s",
                (prompt_id, prompt_id),
            ).fetchall()
        return [TrashEntry(prompt_id=r[0], version=r[1], deleted_at=r[2]) for r in rows]

    def _restore(self, prompt_id: str, version: str) -> None:
        key = semver.parse(version)
        where = "WHERE prompt_id = %s AND major = %s AND minor = %s AND patch = %s"
        with self._prompt_transaction("restore", prompt_id) as conn:
            row = conn.execute(
                f"SELECT MAX(deleted_at) FROM {self._trash} {where}", (prompt_id, *key)
            ).fetchone()
            if row is None or row[0] is None:
                raise not_in_trash(prompt_id, version)
            if self._has(conn, prompt_id, key):
                raise VersionConflictError(prompt_id, version)
            conn.execute(
                f"INSERT INTO {self._t} ({_COLUMNS}) SELECT {_COLUMNS} FROM {self._trash} "
                f"{where} AND deleted_at = %s",
                (prompt_id, *key, row[0]),
            )
            conn.execute(
                f"DELETE FROM {self._trash} {where} AND deleted_at = %s", (prompt_id, *key, row[0])
            )

    def _empty_trash(self, cutoff: datetime | None) -> int:
        with self._connection("empty trash") as conn:
            cursor = conn.execute(
                f"DELETE FROM {self._trash} WHERE %s::timestamp IS NULL OR deleted_at < %s",
                (cutoff, cutoff),
            )
            return cursor.rowcount

    @contextmanager
    def _prompt_transaction(self, action: str, prompt_id: str) -> Iterator[psycopg.Connection[Any]]:
        """A transaction holding the prompt's advisory lock: label changes and deletes of one
        prompt happen one at a time, on every host."""
        with self._connection(action) as conn, conn.transaction():
            conn.execute(
                "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                (f"promptshelf:{self.schema}:{prompt_id}",),
            )
            yield conn

    def _has(self, conn: psycopg.Connection[Any], prompt_id: str, key: tuple[int, ...]) -> bool:
        return (
            conn.execute(
                f"SELECT 1 FROM {self._t} "
                "WHERE prompt_id = %s AND major = %s AND minor = %s AND patch = %s",
                (prompt_id, *key),
            ).fetchone()
            is not None
        )

    def _events(self, conn: psycopg.Connection[Any], prompt_id: str) -> list[LabelEvent]:
        rows = conn.execute(
            f"SELECT {EVENT_COLUMNS} FROM {self._events_table} WHERE prompt_id = %s ORDER BY seq",
            (prompt_id,),
        ).fetchall()
        return [event_from_row(prompt_id, r) for r in rows]

    def _record(self, conn: psycopg.Connection[Any], events: list[LabelEvent]) -> None:
        for e in events:
            conn.execute(
                f"INSERT INTO {self._events_table} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                event_row(e, e.at),
            )

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
    ) -> LabelEvent | None:
        with self._prompt_transaction("label", prompt_id) as conn:
            if version is not None and not self._has(conn, prompt_id, semver.parse(version)):
                raise missing_version(prompt_id, version)
            event = next_label_event(
                self._events(conn, prompt_id), prompt_id, label, version, actor, reason
            )
            if event is not None:
                self._record(conn, [event])
        return event

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self._connection("read") as conn:
            return self._events(conn, prompt_id)

    def _clear(self) -> None:
        with self._connection("clear") as conn, conn.transaction():
            conn.execute(f"DELETE FROM {self._t}")
            conn.execute(f"DELETE FROM {self._events_table}")
            conn.execute(f"DELETE FROM {self._trash}")

    def _prompts(self) -> list[str]:
        with self._connection("read") as conn:
            rows = conn.execute(
                f"SELECT DISTINCT prompt_id FROM {self._t} ORDER BY prompt_id"
            ).fetchall()
        return [r[0] for r in rows]

    def _repair(self, report: RepairReport) -> None:
        """Rows that fail their checksum or validation move to ``promptshelf_quarantine``."""
        with self._connection("repair") as conn:
            rows = conn.execute(
                f"SELECT prompt_id, data, version, sha256, {_DIGEST.format('data')} FROM {self._t}"
            ).fetchall()
        for prompt_id, *row in rows:
            try:
                self._decode(tuple(row), prompt_id)
            except CorruptVersionError as exc:
                version = row[1]
                where = "WHERE prompt_id = %s AND major = %s AND minor = %s AND patch = %s"
                key = (prompt_id, *semver.parse(version))
                with self._prompt_transaction("repair", prompt_id) as conn:
                    events = self._events(conn, prompt_id)
                    self._record(conn, labels_blocking(events, prompt_id, version, force=True))
                    conn.execute(
                        f'INSERT INTO "{self.schema}".promptshelf_quarantine SELECT prompt_id, '
                        f"version, data, sha256, %s, localtimestamp FROM {self._t} {where}",
                        (exc.message, *key),
                    )
                    conn.execute(f"DELETE FROM {self._t} {where}", key)
                report.actions.append(
                    Action(
                        exc.error_code,
                        f"{self._t}:{prompt_id}@{version}",
                        "moved to promptshelf_quarantine",
                    )
                )

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        with self._connection("stats") as conn:
            counts = conn.execute(
                f"SELECT COUNT(DISTINCT prompt_id), COUNT(*), "
                f"COALESCE(SUM(pg_column_size(data)), 0) FROM {self._t}"
            ).fetchone()
            relation = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (self._t,)
            ).fetchone()
        prompts, versions, size = counts or (0, 0, 0)
        table_bytes = relation[0] if relation else 0
        return {
            "backend": self.backend_name,
            "url": self.url_display,
            "schema": self.schema,
            "total_prompts": prompts,
            "total_versions": versions,
            "total_size_bytes": int(size),
            "table_bytes": int(table_bytes),
            "durable": self.durable,
            "schema_version": SCHEMA_VERSION,
            "pool": dict(self._pool.get_stats()),
        }

    def close(self) -> None:
        self._pool.close()
        super().close()

    def __repr__(self) -> str:
        return f"PostgresStorage({self.url_display!r}, schema={self.schema!r})"


def _redact(url: str) -> str:
    """The URL without its password, for messages and statistics."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)
