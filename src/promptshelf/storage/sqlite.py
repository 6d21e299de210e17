"""``SQLiteStorage``: every version in one SQLite database, for one host and many processes.

WAL mode lets readers run beside a writer; ``synchronous=FULL`` makes every
committed save survive a power cut (``durable=False`` selects ``NORMAL``:
still crash-safe, but the last commits may be lost on power loss). Each
thread gets its own connection. The primary key ``(prompt_id, major, minor,
patch)`` makes create-once a constraint of the database and the latest
version one descending index lookup.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import semver
from ..errors import (
    ConfigurationError,
    CorruptStoreError,
    DatabaseError,
    LockTimeoutError,
    StoreNotFoundError,
)
from ..models import PromptVersion
from ..timestamps import parse, to_text
from . import integrity
from .codec import decode_version, encode_version
from .sqlshared import SQLStorage
from .verify import Problem, VerifyReport

SCHEMA_VERSION = 4

#: The tables of the current schema (a store missing one is upgraded when opened).
_TABLES = {
    "promptshelf_meta",
    "promptshelf_versions",
    "promptshelf_trash",
    "promptshelf_quarantine",
    "promptshelf_label_events",
}

_SCHEMA = """
CREATE TABLE IF NOT EXISTS promptshelf_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promptshelf_versions (
    prompt_id     TEXT    NOT NULL,
    major         INTEGER NOT NULL,
    minor         INTEGER NOT NULL,
    patch         INTEGER NOT NULL,
    version       TEXT    NOT NULL,
    data          BLOB    NOT NULL,   -- the canonical JSON of the PromptVersion
    overall_score REAL    NOT NULL,
    created_at    TEXT    NOT NULL,
    sha256        TEXT,               -- schema 3: checked on every read
    PRIMARY KEY (prompt_id, major, minor, patch)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promptshelf_trash (   -- schema 3: deleted versions
    prompt_id     TEXT    NOT NULL,   -- the key's columns come first: SQLite 3.40's
    major         INTEGER NOT NULL,   -- integrity_check misreads a WITHOUT ROWID table
    minor         INTEGER NOT NULL,   -- whose key columns are declared out of order
    patch         INTEGER NOT NULL,
    deleted_at    TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    data          BLOB    NOT NULL,
    overall_score REAL    NOT NULL,
    created_at    TEXT    NOT NULL,
    sha256        TEXT,
    PRIMARY KEY (prompt_id, major, minor, patch, deleted_at)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promptshelf_quarantine (   -- schema 3: damaged rows repair() set aside
    prompt_id      TEXT NOT NULL,
    version        TEXT NOT NULL,
    data           BLOB,
    sha256         TEXT,
    reason         TEXT NOT NULL,
    quarantined_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS promptshelf_documents (   -- API keys, settings (see documents.py)
    namespace TEXT    NOT NULL,
    key       TEXT    NOT NULL,
    revision  INTEGER NOT NULL,
    data      BLOB    NOT NULL,
    PRIMARY KEY (namespace, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promptshelf_label_events (   -- schema 2: append-only
    prompt_id    TEXT    NOT NULL,
    seq          INTEGER NOT NULL,
    label        TEXT    NOT NULL,
    action       TEXT    NOT NULL,
    from_version TEXT,
    to_version   TEXT,
    actor        TEXT,
    reason       TEXT,
    at           TEXT    NOT NULL,
    PRIMARY KEY (prompt_id, seq)
) WITHOUT ROWID;
"""


#: The time columns (TEXT) schema 4 holds as :func:`promptshelf.timestamps.to_text`.
_TIME_COLUMNS = {
    "promptshelf_versions": ("created_at",),
    "promptshelf_trash": ("created_at", "deleted_at"),
    "promptshelf_quarantine": ("quarantined_at",),
    "promptshelf_label_events": ("at",),
}


def _utc_text(value: str | None) -> str | None:
    """A stored time as canonical UTC text; what does not read as a time is left alone."""
    if value is None:
        return None
    try:
        return to_text(parse(value))
    except ValueError:
        return value


def _times_to_utc(conn: sqlite3.Connection) -> None:
    """Rewrite the time columns of an older store (naive local texts, or ISO texts with an
    offset) as UTC texts; the versions' data is never touched. Idempotent."""
    conn.create_function("ps_utc", 1, _utc_text, deterministic=True)
    for table, columns in _TIME_COLUMNS.items():
        for column in columns:
            conn.execute(
                f"UPDATE {table} SET {column} = ps_utc({column}) "
                f"WHERE {column} IS NOT ps_utc({column})"
            )


class SQLiteStorage(SQLStorage):
    backend_name = "sqlite"
    _unique_errors = (sqlite3.IntegrityError,)

    def __init__(
        self,
        path: str | Path = "promptshelf.db",
        *,
        durable: bool = True,
        busy_timeout: float = 10.0,
        create: bool = True,
    ) -> None:
        self.path = Path(path).absolute() if str(path) != ":memory:" else Path(":memory:")
        self.durable = durable
        self.busy_timeout = busy_timeout
        if not create and str(self.path) != ":memory:" and not self.path.is_file():
            raise StoreNotFoundError(
                f"no database at {str(self.path)!r}", context={"path": str(self.path)}
            )
        if str(self.path) != ":memory:":
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot create the directory of {str(self.path)!r}: {exc}",
                    context={"path": str(self.path)},
                ) from exc
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._connections_lock = threading.Lock()
        # Nothing is written before the file is known to be a promptshelf store (or one is
        # being created): not even the WAL switch, which rewrites a foreign file's header.
        self._read_only = not create and self.path.is_file() and not os.access(self.path, os.W_OK)
        self._wal = False
        try:
            self._open(create)
        except BaseException:
            self.close()  # a refused open leaves no connection behind
            raise

    def _open(self, create: bool) -> None:
        """Check the schema; create or upgrade it when needed and allowed."""
        with self._errors("open"):
            conn = self._conn()
            tables = {
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name LIKE 'promptshelf%'"
                )
            }
            if "promptshelf_versions" not in tables and not create:
                raise StoreNotFoundError(
                    f"{self.path} is not a promptshelf store (an SQLite database without "
                    "promptshelf tables); nothing was written",
                    context={"path": str(self.path)},
                )
            found = self._schema_version(conn, tables)
            if found > SCHEMA_VERSION:
                raise ConfigurationError(
                    f"{self.path} has schema version {found}; this promptshelf knows up to "
                    f"{SCHEMA_VERSION}: upgrade promptshelf",
                    context={"path": str(self.path), "schema_version": found},
                )
            if found < SCHEMA_VERSION or _TABLES - tables:
                if self._read_only:
                    raise ConfigurationError(
                        f"{self.path} is read-only and needs a schema upgrade "
                        f"({found} to {SCHEMA_VERSION}): open it once with write access",
                        context={"path": str(self.path), "schema_version": found},
                    )
                self._upgrade(conn, found)
            if not self._read_only and str(self.path) != ":memory:":
                self._wal = True
                conn.execute("PRAGMA journal_mode = WAL")

    @staticmethod
    def _schema_version(conn: sqlite3.Connection, tables: set[str]) -> int:
        if "promptshelf_meta" not in tables:
            return 0
        row = conn.execute(
            "SELECT value FROM promptshelf_meta WHERE key = 'schema_version'"
        ).fetchone()
        return int(row[0]) if row else 0

    @staticmethod
    def _upgrade(conn: sqlite3.Connection, found: int) -> None:
        """Create what is missing (a new store, or one of an older schema)."""
        conn.executescript(_SCHEMA)
        conn.execute(
            "INSERT OR IGNORE INTO promptshelf_meta VALUES ('schema_version', ?)",
            (str(SCHEMA_VERSION),),
        )
        columns = {r[1] for r in conn.execute("PRAGMA table_info(promptshelf_versions)")}
        if "sha256" not in columns:  # a schema 1 or 2 database
            conn.execute("ALTER TABLE promptshelf_versions ADD COLUMN sha256 TEXT")
        if 0 < found < 4:  # schema 4: every time as UTC text (naive ones taken as UTC)
            _times_to_utc(conn)
        if found < SCHEMA_VERSION:  # the script above created what was missing
            conn.execute(
                "UPDATE promptshelf_meta SET value = ? WHERE key = 'schema_version'",
                (str(SCHEMA_VERSION),),
            )

    # -- connections and errors ------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            target = str(self.path)
            if self._read_only:
                target = f"{self.path.as_uri()}?mode=ro"
            conn = sqlite3.connect(
                target,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
                uri=self._read_only,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if self._wal:
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute(f"PRAGMA synchronous = {'FULL' if self.durable else 'NORMAL'}")
            self._local.conn = conn
            with self._connections_lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn sqlite3's exceptions into promptshelf's, with codes."""
        try:
            yield
        except sqlite3.IntegrityError:
            raise
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise LockTimeoutError(
                    f"database {self.path} stayed locked for {self.busy_timeout} s during {action}",
                    context={"path": str(self.path), "action": action},
                ) from exc
            raise DatabaseError(
                f"{action} failed on {self.path}: {exc}", context={"path": str(self.path)}
            ) from exc
        except (sqlite3.DatabaseError, UnicodeDecodeError) as exc:  # not a database, damaged
            # (a damaged schema text surfaces as UnicodeDecodeError while sqlite3 decodes it)
            raise CorruptStoreError(
                f"{self.path} is damaged or not a promptshelf database: {exc}",
                context={"path": str(self.path), "action": action},
            ) from exc

    def pragma(self, name: str) -> Any:
        """The current value of a PRAGMA on this thread's connection (for checks and tests)."""
        if not name.isidentifier():
            raise ConfigurationError(f"not a pragma name: {name!r}")
        with self._errors("pragma"):
            return self._conn().execute(f"PRAGMA {name}").fetchone()[0]

    # -- the dialect (the algorithms are SQLStorage's) ---------------------------------

    @contextmanager
    def _reading(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._errors(action):
            yield self._conn()

    @contextmanager
    def _snapshot(self, action: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN`` (deferred): in WAL mode the first read fixes the snapshot every later
        read of the transaction sees, while writers go on."""
        conn = self._conn()
        with self._errors(action):
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")

    @contextmanager
    def _writing(self, action: str, prompt_id: str | None) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (the database's write lock, so reads inside are current) ...
        ``COMMIT``; SQLite has one writer at a time, whatever the prompt."""
        conn = self._conn()
        with self._errors(action):
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise

    def _insert_values(self, version: PromptVersion) -> tuple[list[str], tuple[Any, ...]]:
        data = encode_version(version)
        params = (
            version.prompt_id,
            *semver.parse(version.version),
            version.version,
            data,
            version.analysis.overall_score,
            to_text(version.created_at),
            integrity.digest(data),
        )
        return ["?"] * len(params), params

    def _decode(self, row: tuple[Any, ...], prompt_id: str) -> PromptVersion:
        """A ``(data, version, sha256)`` row as a version, its checksum checked."""
        data, version, sha256 = row
        where = f"{self.path}:{prompt_id}@{version}"
        if isinstance(data, str):  # a row someone rewrote as TEXT: check the same bytes
            data = data.encode("utf-8", "surrogatepass")
        if sha256 is not None:
            integrity.check(data, sha256, where)
        return decode_version(data, prompt_id, version, where)

    def _ts(self, moment: datetime) -> Any:
        """The canonical UTC text (``+00:00``, microseconds): equal times, equal texts, and
        texts sort as times (``deleted_at < ?``)."""
        return to_text(moment)

    def _where(self) -> str:
        return str(self.path)

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        with self._errors("stats"):
            conn = self._conn()
            prompts, versions, size = conn.execute(
                "SELECT COUNT(DISTINCT prompt_id), COUNT(*), COALESCE(SUM(LENGTH(data)), 0) "
                "FROM promptshelf_versions"
            ).fetchone()
            pages = conn.execute("PRAGMA page_count").fetchone()[0]
            page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        return {
            "backend": self.backend_name,
            "path": str(self.path),
            "total_prompts": prompts,
            "total_versions": versions,
            "total_size_bytes": size,
            "database_bytes": pages * page_size,
            "durable": self.durable,
            "journal_mode": self.pragma("journal_mode"),
            "schema_version": SCHEMA_VERSION,
        }

    def _verify_more(self, report: VerifyReport) -> None:
        result = self.integrity_check()
        if result != "ok":
            report.problems.append(Problem("STORE-CORRUPT-001", str(self.path), result))

    def integrity_check(self) -> str:
        """SQLite's own check of the database file: ``"ok"`` when it is sound."""
        with self._errors("integrity check"):
            return str(self._conn().execute("PRAGMA integrity_check").fetchone()[0])

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
            self._connections.clear()
        self._local = threading.local()
        super().close()

    def __repr__(self) -> str:
        return f"SQLiteStorage({str(self.path)!r})"
