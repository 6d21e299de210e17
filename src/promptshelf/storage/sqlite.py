"""``SQLiteStorage``: every version in one SQLite database, for one host and many processes.

WAL mode lets readers run beside a writer; ``synchronous=FULL`` makes every
committed save survive a power cut (``durable=False`` selects ``NORMAL``:
still crash-safe, but the last commits may be lost on power loss). Each
thread gets its own connection. The primary key ``(prompt_id, major, minor,
patch)`` makes create-once a constraint of the database and the latest
version one descending index lookup.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from .. import semver
from ..errors import (
    ConfigurationError,
    CorruptStoreError,
    CorruptVersionError,
    DatabaseError,
    LockTimeoutError,
    StoreNotFoundError,
    VersionConflictError,
)
from ..models import LabelEvent, PromptVersion, TrashEntry
from . import integrity
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
from .verify import Action, Problem, RepairReport, VerifyReport

SCHEMA_VERSION = 3

_COLUMNS = "prompt_id, major, minor, patch, version, data, overall_score, created_at, sha256"

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


class SQLiteStorage(VersionStorage):
    backend_name = "sqlite"

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
        with self._errors("open"):
            conn = self._conn()
            conn.executescript(_SCHEMA)
            conn.execute(
                "INSERT OR IGNORE INTO promptshelf_meta VALUES ('schema_version', ?)",
                (str(SCHEMA_VERSION),),
            )
            found = conn.execute(
                "SELECT value FROM promptshelf_meta WHERE key = 'schema_version'"
            ).fetchone()[0]
            columns = {r[1] for r in conn.execute("PRAGMA table_info(promptshelf_versions)")}
            if "sha256" not in columns:  # a schema 1 or 2 database
                conn.execute("ALTER TABLE promptshelf_versions ADD COLUMN sha256 TEXT")
            if int(found) < SCHEMA_VERSION:  # the script above created what was missing
                conn.execute(
                    "UPDATE promptshelf_meta SET value = ? WHERE key = 'schema_version'",
                    (str(SCHEMA_VERSION),),
                )
        if int(found) > SCHEMA_VERSION:
            raise ConfigurationError(
                f"{self.path} has schema version {found}; this promptshelf knows up to "
                f"{SCHEMA_VERSION}: upgrade promptshelf",
                context={"path": str(self.path), "schema_version": found},
            )

    # -- connections and errors ------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                str(self.path),
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=False,
            )
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
            if str(self.path) != ":memory:":
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
        except sqlite3.DatabaseError as exc:  # "file is not a database", malformed image
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

    # -- the contract ---------------------------------------------------------------

    def _save(self, version: PromptVersion) -> None:
        self._insert([version])

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions in one transaction: all of them, or (on any error) none."""
        self._check_open()
        return self._insert([checked_version(v) for v in versions])

    def _insert(self, versions: list[PromptVersion]) -> int:
        rows = []
        for v in versions:
            data = encode_version(v)
            rows.append(
                (
                    v.prompt_id,
                    *semver.parse(v.version),
                    v.version,
                    data,
                    v.analysis.overall_score,
                    v.created_at.isoformat(),
                    integrity.digest(data),
                )
            )
        with self._transaction("save") as conn:
            for row in rows:
                try:
                    conn.execute(
                        f"INSERT INTO promptshelf_versions ({_COLUMNS}) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        row,
                    )
                except sqlite3.IntegrityError:
                    raise VersionConflictError(str(row[0]), str(row[4])) from None
        return len(rows)

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        major, minor, patch = semver.parse(version)
        with self._errors("read"):
            row = (
                self._conn()
                .execute(
                    "SELECT data, version, sha256 FROM promptshelf_versions "
                    "WHERE prompt_id = ? AND major = ? AND minor = ? AND patch = ?",
                    (prompt_id, major, minor, patch),
                )
                .fetchone()
            )
        return None if row is None else self._decode(row, prompt_id)

    def _decode(self, row: tuple[Any, ...], prompt_id: str) -> PromptVersion:
        """A ``(data, version, sha256)`` row as a version, its checksum checked."""
        data, version, sha256 = row
        where = f"{self.path}:{prompt_id}@{version}"
        if isinstance(data, str):  # a row someone rewrote as TEXT: check the same bytes
            data = data.encode("utf-8", "surrogatepass")
        if sha256 is not None:
            integrity.check(data, sha256, where)
        return decode_version(data, prompt_id, version, where)

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        with self._errors("read"):
            row = (
                self._conn()
                .execute(
                    "SELECT data, version, sha256 FROM promptshelf_versions WHERE prompt_id = ? "
                    "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
                    (prompt_id,),
                )
                .fetchone()
            )
        return None if row is None else self._decode(row, prompt_id)

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        with self._errors("read"):
            rows = (
                self._conn()
                .execute(
                    "SELECT data, version, sha256 FROM promptshelf_versions WHERE prompt_id = ? "
                    "ORDER BY major, minor, patch",
                    (prompt_id,),
                )
                .fetchall()
            )
        return [self._decode(row, prompt_id) for row in rows]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        with self._errors("read"):
            rows = (
                self._conn()
                .execute(
                    "SELECT version FROM promptshelf_versions WHERE prompt_id = ? "
                    "ORDER BY major, minor, patch",
                    (prompt_id,),
                )
                .fetchall()
            )
        return [r[0] for r in rows]

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        key = semver.parse(version)
        with self._transaction("delete") as conn:
            if not self._has(conn, prompt_id, key):
                return False
            removals = labels_blocking(self._events(conn, prompt_id), prompt_id, version, force)
            self._record(conn, removals)
            where = "WHERE prompt_id = ? AND major = ? AND minor = ? AND patch = ?"
            conn.execute(
                f"INSERT INTO promptshelf_trash ({_COLUMNS}, deleted_at) "
                f"SELECT {_COLUMNS}, ? FROM promptshelf_versions {where}",
                (datetime.now().isoformat(), prompt_id, *key),
            )
            conn.execute(f"DELETE FROM promptshelf_versions {where}", (prompt_id, *key))
        return True

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        with self._errors("read"):
            rows = (
                self._conn()
                .execute(
                    "SELECT prompt_id, version, deleted_at FROM promptshelf_trash "
                    "WHERE ? IS NULL OR prompt_id = ?",
                    (prompt_id, prompt_id),
                )
                .fetchall()
            )
        return [TrashEntry(prompt_id=r[0], version=r[1], deleted_at=r[2]) for r in rows]

    def _restore(self, prompt_id: str, version: str) -> None:
        key = semver.parse(version)
        where = "WHERE prompt_id = ? AND major = ? AND minor = ? AND patch = ?"
        with self._transaction("restore") as conn:
            newest = conn.execute(
                f"SELECT MAX(deleted_at) FROM promptshelf_trash {where}", (prompt_id, *key)
            ).fetchone()[0]
            if newest is None:
                raise not_in_trash(prompt_id, version)
            if self._has(conn, prompt_id, key):
                raise VersionConflictError(prompt_id, version)
            conn.execute(
                f"INSERT INTO promptshelf_versions ({_COLUMNS}) SELECT {_COLUMNS} "
                f"FROM promptshelf_trash {where} AND deleted_at = ?",
                (prompt_id, *key, newest),
            )
            conn.execute(
                f"DELETE FROM promptshelf_trash {where} AND deleted_at = ?",
                (prompt_id, *key, newest),
            )

    def _empty_trash(self, cutoff: datetime | None) -> int:
        with self._transaction("empty trash") as conn:
            cursor = conn.execute(
                "DELETE FROM promptshelf_trash WHERE ? IS NULL OR deleted_at < ?",
                (cutoff and cutoff.isoformat(), cutoff and cutoff.isoformat()),
            )
        return cursor.rowcount

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` (the write lock, so reads inside are current) ... ``COMMIT``."""
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

    @staticmethod
    def _has(conn: sqlite3.Connection, prompt_id: str, key: tuple[int, int, int]) -> bool:
        return (
            conn.execute(
                "SELECT 1 FROM promptshelf_versions "
                "WHERE prompt_id = ? AND major = ? AND minor = ? AND patch = ?",
                (prompt_id, *key),
            ).fetchone()
            is not None
        )

    @staticmethod
    def _events(conn: sqlite3.Connection, prompt_id: str) -> list[LabelEvent]:
        rows = conn.execute(
            f"SELECT {EVENT_COLUMNS} "
            "FROM promptshelf_label_events WHERE prompt_id = ? ORDER BY seq",
            (prompt_id,),
        ).fetchall()
        return [event_from_row(prompt_id, r) for r in rows]

    @staticmethod
    def _record(conn: sqlite3.Connection, events: list[LabelEvent]) -> None:
        conn.executemany(
            "INSERT INTO promptshelf_label_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [event_row(e, e.at.isoformat()) for e in events],
        )

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
    ) -> LabelEvent | None:
        with self._transaction("label") as conn:
            if version is not None and not self._has(conn, prompt_id, semver.parse(version)):
                raise missing_version(prompt_id, version)
            events = self._events(conn, prompt_id)
            event = next_label_event(events, prompt_id, label, version, actor, reason)
            if event is not None:
                self._record(conn, [event])
        return event

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self._errors("read"):
            return self._events(self._conn(), prompt_id)

    def _clear(self) -> None:
        with self._transaction("clear") as conn:
            conn.execute("DELETE FROM promptshelf_versions")
            conn.execute("DELETE FROM promptshelf_label_events")
            conn.execute("DELETE FROM promptshelf_trash")

    def _prompts(self) -> list[str]:
        with self._errors("read"):
            rows = (
                self._conn()
                .execute("SELECT DISTINCT prompt_id FROM promptshelf_versions ORDER BY prompt_id")
                .fetchall()
            )
        return [r[0] for r in rows]

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

    def _repair(self, report: RepairReport) -> None:
        """Rows that fail their checksum or validation move to ``promptshelf_quarantine``."""
        with self._errors("repair"):
            rows = (
                self._conn()
                .execute("SELECT prompt_id, version, data, sha256 FROM promptshelf_versions")
                .fetchall()
            )
        for prompt_id, version, data, sha256 in rows:
            try:
                self._decode((data, version, sha256), prompt_id)
            except CorruptVersionError as exc:
                key = semver.parse(version)
                with self._transaction("repair") as conn:
                    events = self._events(conn, prompt_id)
                    self._record(conn, labels_blocking(events, prompt_id, version, force=True))
                    conn.execute(
                        "INSERT INTO promptshelf_quarantine VALUES (?, ?, ?, ?, ?, ?)",
                        (prompt_id, version, data, sha256, exc.message, datetime.now().isoformat()),
                    )
                    conn.execute(
                        "DELETE FROM promptshelf_versions "
                        "WHERE prompt_id = ? AND major = ? AND minor = ? AND patch = ?",
                        (prompt_id, *key),
                    )
                report.actions.append(
                    Action(
                        exc.error_code,
                        f"{self.path}:{prompt_id}@{version}",
                        "moved to promptshelf_quarantine",
                    )
                )

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
