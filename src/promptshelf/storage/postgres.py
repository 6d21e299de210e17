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
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from .. import semver
from ..errors import (
    ChecksumMismatchError,
    ConfigurationError,
    ConnectionLostError,
    CorruptStoreError,
    DatabaseError,
    StoreNotFoundError,
    ValidationError,
    VersionConflictError,
)
from ..models import PromptVersion
from ..timestamps import as_utc
from .codec import decode_version, encode_version
from .sqlshared import SQLStorage

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 6

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
    4: [
        """CREATE TABLE IF NOT EXISTS {s}.promptshelf_documents (
            namespace text    NOT NULL,
            key       text    NOT NULL,
            revision  integer NOT NULL,
            data      bytea   NOT NULL,
            PRIMARY KEY (namespace, key)
        )""",
    ],
    5: [  # a label event's time as written (ISO 8601, with its offset when it has one)
        "ALTER TABLE {s}.promptshelf_label_events ALTER COLUMN at TYPE text "
        """USING to_char(at, 'YYYY-MM-DD"T"HH24:MI:SS.US')""",
    ],
    # every time a timestamptz, in UTC: a naive time (written before, or by the original
    # implementation) is taken as UTC; a label time written with an offset keeps its instant
    6: [
        "ALTER TABLE {s}.promptshelf_versions "
        "ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC'",
        "ALTER TABLE {s}.promptshelf_trash "
        "ALTER COLUMN created_at TYPE timestamptz USING created_at AT TIME ZONE 'UTC', "
        "ALTER COLUMN deleted_at TYPE timestamptz USING deleted_at AT TIME ZONE 'UTC'",
        "ALTER TABLE {s}.promptshelf_quarantine ALTER COLUMN quarantined_at TYPE timestamptz "
        "USING quarantined_at AT TIME ZONE 'UTC'",
        "ALTER TABLE {s}.promptshelf_label_events ALTER COLUMN at TYPE timestamptz USING "
        r"CASE WHEN at ~ '(Z|z|[+-]\d\d(:?\d\d)?)$' THEN at::timestamptz "
        "ELSE at::timestamp AT TIME ZONE 'UTC' END",
    ],
}

#: The checksum of a JSONB payload, computed by the server from its canonical text form.
_DIGEST = "encode(sha256(convert_to({}::text, 'UTF8')), 'hex')"

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


class PostgresStorage(SQLStorage):
    backend_name = "postgres"
    _placeholder = "%s"
    _copy_columns = (
        "prompt_id, major, minor, patch, version, data, overall_score, created_at, saved_at"
    )
    _insert_columns = SQLStorage._insert_columns + ", saved_at"
    #: What every read selects: the payload, its version, and its stored and current checksums.
    _read_columns = f"data, version, sha256, {_DIGEST.format('data')}"

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
        connect_timeout: float = 2.0,
    ) -> None:
        """``check`` verifies a pooled connection before each use (one round trip); without
        it a connection the server dropped surfaces once as ``ConnectionLostError``.
        ``connect_timeout``: how long opening waits for an unreachable server (a
        ``connect_timeout`` in the URL wins). Without ``create`` a schema with no
        promptshelf tables is refused and nothing is written."""
        psycopg, psycopg_pool = _driver()
        if not _IDENTIFIER.fullmatch(schema):
            raise ConfigurationError(
                f"schema must be a lower-case SQL identifier, got {schema!r}",
                context={"schema": schema},
            )
        self._psycopg = psycopg
        self.schema = schema
        self.durable = durable
        self._versions_t = f'"{schema}".promptshelf_versions'
        self._events_t = f'"{schema}".promptshelf_label_events'
        self._trash_t = f'"{schema}".promptshelf_trash'
        self._quarantine_t = f'"{schema}".promptshelf_quarantine'
        self._documents_t = f'"{schema}".promptshelf_documents'
        self._unique_errors = (psycopg.errors.UniqueViolation,)
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
        self.url_display = _redact(url)
        self._probe(url, connect_timeout)
        with self._errors("connect"):
            self._pool.open(wait=True, timeout=timeout)
        try:
            if not create and not self._exists():
                raise StoreNotFoundError(
                    f"no promptshelf tables in schema {schema!r} of {self.url_display}; "
                    "nothing was written",
                    context={"schema": schema},
                )
            if self._current_version() != SCHEMA_VERSION:  # reads only, unless an upgrade
                self._migrate()
        except BaseException:
            self._pool.close()
            raise

    def _probe(self, url: str, connect_timeout: float) -> None:
        """One direct connection first: a server that is down or unreachable is reported
        once, within ``connect_timeout`` seconds, instead of the pool retrying (and the
        driver warning) until ``timeout``."""
        conninfo = self._psycopg.conninfo
        params = conninfo.conninfo_to_dict(url)
        params.setdefault("connect_timeout", max(1, round(connect_timeout)))
        try:
            self._psycopg.connect(**params).close()
        except self._psycopg.OperationalError as exc:
            why = " ".join(str(exc).split())
            if "refused" in why.lower():
                why = f"connection refused ({why})"
            raise ConnectionLostError(
                f"cannot connect to PostgreSQL at {self.url_display}: {why}",
                context={"action": "connect", "schema": self.schema},
            ) from None

    def _current_version(self) -> int:
        with self._connection("open") as conn:
            if not self._exists_in(conn, "promptshelf_meta"):
                return 0
            row = conn.execute(
                f"SELECT value FROM \"{self.schema}\".promptshelf_meta WHERE key = 'schema_version'"
            ).fetchone()
        return int(row[0]) if row else 0

    def _exists_in(self, conn: psycopg.Connection[Any], table: str) -> bool:
        row = conn.execute("SELECT to_regclass(%s)", (f'"{self.schema}".{table}',)).fetchone()
        return bool(row and row[0])

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

    # -- the dialect (the algorithms are SQLStorage's) ---------------------------------

    def _reading(self, action: str) -> Any:
        return self._connection(action)

    @contextmanager
    def _snapshot(self, action: str) -> Iterator[psycopg.Connection[Any]]:
        """A REPEATABLE READ, READ ONLY transaction: one snapshot for every read in it."""
        with self._connection(action) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield conn

    @contextmanager
    def _writing(self, action: str, prompt_id: str | None) -> Iterator[psycopg.Connection[Any]]:
        """A transaction; with a ``prompt_id`` it holds the prompt's advisory lock, so label
        changes, deletes and restores of one prompt happen one at a time, on every host."""
        with self._connection(action) as conn, conn.transaction():
            if prompt_id is not None:
                conn.execute(
                    "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                    (f"promptshelf:{self.schema}:{prompt_id}",),
                )
            yield conn

    def _insert_values(self, version: PromptVersion) -> tuple[list[str], tuple[Any, ...]]:
        data = encode_version(version).decode()
        params = (
            version.prompt_id,
            *semver.parse(version.version),
            version.version,
            data,
            version.analysis.overall_score,
            as_utc(version.created_at),
            data,
        )
        values = ["?"] * 5 + ["?::jsonb", "?", "?", _DIGEST.format("?::jsonb"), "now()"]
        return values, params

    def _decode(self, row: tuple[Any, ...], prompt_id: str) -> PromptVersion:
        data, version, stored, current = row
        where = f"{self._versions_t}:{prompt_id}@{version}"
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

    def _where(self) -> str:
        return self._versions_t

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        with self._connection("stats") as conn:
            counts = conn.execute(
                f"SELECT COUNT(DISTINCT prompt_id), COUNT(*), "
                f"COALESCE(SUM(pg_column_size(data)), 0) FROM {self._versions_t}"
            ).fetchone()
            relation = conn.execute(
                "SELECT pg_total_relation_size(%s::regclass)", (self._versions_t,)
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
