"""``SQLStorage``: the algorithms the two SQL backends share, written once.

A subclass (SQLite, PostgreSQL) supplies the dialect: how to connect and
translate errors, a read context and a write transaction that holds the
prompt's lock, the table names, how a version becomes row values and back,
and how a time is passed. SQL here uses ``?`` placeholders; a subclass whose
driver wants another style sets ``_placeholder``.

Tables (created by each backend's schema code): ``versions`` and ``trash``
keyed by ``(prompt_id, major, minor, patch)`` (the trash adds ``deleted_at``),
the append-only ``label_events`` keyed by ``(prompt_id, seq)``, and
``quarantine`` for rows ``repair`` set aside.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from .. import semver
from ..errors import CorruptVersionError, VersionConflictError
from ..models import LabelEvent, PromptVersion, TrashEntry
from ..progress import Tally
from ..timestamps import as_utc, parse, utc_now
from .base import (
    StoreListing,
    TrashedVersion,
    VersionStorage,
    checked_version,
    document_conflict,
    missing_version,
    not_in_trash,
    sorted_trash,
    trash_conflict,
)
from .codec import encode_version
from .documents import decode_document
from .labelevents import check_expected, events_to_import, labels_blocking, next_label_event
from .verify import Action, RepairReport

#: The columns a label event is read from, after ``prompt_id``.
EVENT_COLUMNS = "seq, label, action, from_version, to_version, actor, reason, at"

_KEY = "prompt_id = ? AND major = ? AND minor = ? AND patch = ?"


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Connection(Protocol):
    """What both drivers' connections offer: ``execute`` returning a cursor."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...


def event_from_row(prompt_id: str, row: tuple[Any, ...]) -> LabelEvent:
    seq, label, action, from_version, to_version, actor, reason, at = row
    return LabelEvent(
        seq=seq,
        prompt_id=prompt_id,
        label=label,
        action=action,
        from_version=from_version,
        to_version=to_version,
        actor=actor,
        reason=reason,
        at=parse(at),  # UTC, whatever the session's time zone (PostgreSQL) or the text
    )


def event_row(event: LabelEvent, at: Any) -> tuple[Any, ...]:
    """``(prompt_id, <EVENT_COLUMNS>)`` for an INSERT; ``at`` as the driver wants it."""
    return (
        event.prompt_id,
        event.seq,
        event.label,
        event.action.value,
        event.from_version,
        event.to_version,
        event.actor,
        event.reason,
        at,
    )


class SQLStorage(VersionStorage):
    """Every contract primitive in SQL; the dialect hooks are the abstract methods below."""

    _placeholder = "?"
    #: Table names as they appear in SQL (a schema-qualified name for PostgreSQL).
    _versions_t = "promptshelf_versions"
    _trash_t = "promptshelf_trash"
    _events_t = "promptshelf_label_events"
    _quarantine_t = "promptshelf_quarantine"
    _documents_t = "promptshelf_documents"
    #: The columns a version row is copied by between ``versions`` and ``trash``.
    _copy_columns = "prompt_id, major, minor, patch, version, data, overall_score, created_at"
    #: What a read selects, in the order ``_decode`` takes it.
    _read_columns = "data, version, sha256"
    #: The drivers' exceptions for a duplicate primary key.
    _unique_errors: tuple[type[BaseException], ...] = ()

    # -- the dialect ------------------------------------------------------------------

    @abc.abstractmethod
    def _reading(self, action: str) -> AbstractContextManager[Connection]:
        """A connection for reads; driver errors become promptshelf's."""

    @abc.abstractmethod
    def _snapshot(self, action: str) -> AbstractContextManager[Connection]:
        """A read-only transaction: every read inside sees the database at one instant."""

    @abc.abstractmethod
    def _writing(self, action: str, prompt_id: str | None) -> AbstractContextManager[Connection]:
        """A transaction; with a ``prompt_id`` it excludes every other writer of that prompt
        until it commits (so what it reads stays current), with None the database's own
        constraints are all it needs."""

    @abc.abstractmethod
    def _insert_values(self, version: PromptVersion) -> tuple[list[str], tuple[Any, ...]]:
        """``(one SQL expression per column of _insert_columns, params)``."""

    _insert_columns = (
        "prompt_id, major, minor, patch, version, data, overall_score, created_at, sha256"
    )

    @abc.abstractmethod
    def _decode(self, row: tuple[Any, ...], prompt_id: str) -> PromptVersion:
        """A row of ``_read_columns`` as a version, its checksum checked."""

    def _ts(self, moment: datetime) -> Any:
        """A time as the driver stores it: UTC (see :mod:`promptshelf.timestamps`)."""
        return as_utc(moment)

    # -- helpers ------------------------------------------------------------------------

    def _run(self, conn: Connection, sql: str, params: Iterable[Any] = ()) -> Cursor:
        if self._placeholder != "?":
            sql = sql.replace("?", self._placeholder)
        cursor: Cursor = conn.execute(sql, tuple(params))
        return cursor

    def _has(self, conn: Connection, prompt_id: str, version: str) -> bool:
        row = self._run(
            conn,
            f"SELECT 1 FROM {self._versions_t} WHERE {_KEY}",
            (prompt_id, *semver.parse(version)),
        ).fetchone()
        return row is not None

    def _events(self, conn: Connection, prompt_id: str) -> list[LabelEvent]:
        rows = self._run(
            conn,
            f"SELECT {EVENT_COLUMNS} FROM {self._events_t} WHERE prompt_id = ? ORDER BY seq",
            (prompt_id,),
        ).fetchall()
        return [event_from_row(prompt_id, tuple(r)) for r in rows]

    def _record(self, conn: Connection, events: list[LabelEvent]) -> None:
        for event in events:
            self._run(
                conn,
                f"INSERT INTO {self._events_t} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                event_row(event, self._ts(event.at)),
            )

    # -- versions -------------------------------------------------------------------------

    def _save(self, version: PromptVersion) -> None:
        self._insert([version])

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions in one transaction: all of them, or (on any error) none."""
        self._check_open()
        return self._insert(self._refuse_retired_all([checked_version(v) for v in versions]))

    def _insert(self, versions: list[PromptVersion]) -> int:
        rows = [(v, self._insert_values(v)) for v in versions]  # encode before the transaction
        with self._writing("save", None) as conn:  # the primary key makes each version once
            for version, (values, params) in rows:
                try:
                    self._run(
                        conn,
                        f"INSERT INTO {self._versions_t} ({self._insert_columns}) "
                        f"VALUES ({', '.join(values)})",
                        params,
                    )
                except self._unique_errors:
                    raise VersionConflictError(version.prompt_id, version.version) from None
        return len(rows)

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        with self._reading("read") as conn:
            row = self._run(
                conn,
                f"SELECT {self._read_columns} FROM {self._versions_t} WHERE {_KEY}",
                (prompt_id, *semver.parse(version)),
            ).fetchone()
        return None if row is None else self._decode(tuple(row), prompt_id)

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        with self._reading("read") as conn:
            row = self._run(
                conn,
                f"SELECT {self._read_columns} FROM {self._versions_t} WHERE prompt_id = ? "
                "ORDER BY major DESC, minor DESC, patch DESC LIMIT 1",
                (prompt_id,),
            ).fetchone()
        return None if row is None else self._decode(tuple(row), prompt_id)

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        with self._reading("read") as conn:
            rows = self._run(
                conn,
                f"SELECT {self._read_columns} FROM {self._versions_t} WHERE prompt_id = ? "
                "ORDER BY major, minor, patch",
                (prompt_id,),
            ).fetchall()
        return [self._decode(tuple(row), prompt_id) for row in rows]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        with self._reading("read") as conn:
            rows = self._run(
                conn,
                f"SELECT version FROM {self._versions_t} WHERE prompt_id = ? "
                "ORDER BY major, minor, patch",
                (prompt_id,),
            ).fetchall()
        return [r[0] for r in rows]

    def _prompts(self) -> list[str]:
        with self._reading("read") as conn:
            rows = self._run(
                conn, f"SELECT DISTINCT prompt_id FROM {self._versions_t} ORDER BY prompt_id"
            ).fetchall()
        return [r[0] for r in rows]

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        key = (prompt_id, *semver.parse(version))
        with self._writing("delete", prompt_id) as conn:
            if not self._has(conn, prompt_id, version):
                return False
            self._record(
                conn, labels_blocking(self._events(conn, prompt_id), prompt_id, version, force)
            )
            self._run(
                conn,
                f"INSERT INTO {self._trash_t} ({self._copy_columns}, sha256, deleted_at) "
                f"SELECT {self._copy_columns}, sha256, ? FROM {self._versions_t} WHERE {_KEY}",
                (self._ts(utc_now()), *key),
            )
            self._run(conn, f"DELETE FROM {self._versions_t} WHERE {_KEY}", key)
        return True

    def _clear(self) -> None:
        with self._writing("clear", None) as conn:
            for table in (self._versions_t, self._events_t, self._trash_t):
                self._run(conn, f"DELETE FROM {table}")

    # -- the trash ------------------------------------------------------------------------

    def _trash_rows(self, columns: str, prompt_id: str | None) -> list[Any]:
        where, params = ("", ()) if prompt_id is None else (" WHERE prompt_id = ?", (prompt_id,))
        with self._reading("read") as conn:
            return self._run(
                conn, f"SELECT {columns} FROM {self._trash_t}{where}", params
            ).fetchall()

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        rows = self._trash_rows("prompt_id, version, deleted_at", prompt_id)
        return [TrashEntry(prompt_id=r[0], version=r[1], deleted_at=r[2]) for r in rows]

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        rows = self._trash_rows(f"prompt_id, deleted_at, {self._read_columns}", prompt_id)
        found = []
        for pid, deleted_at, *row in rows:
            version = self._decode(tuple(row), pid)
            entry = TrashEntry(prompt_id=pid, version=version.version, deleted_at=deleted_at)
            found.append(TrashedVersion(entry, version))
        return found

    def _import_trashed(self, item: TrashedVersion) -> bool:
        entry = item.entry
        key = (entry.prompt_id, *semver.parse(entry.version), self._ts(entry.deleted_at))
        values, params = self._insert_values(item.version)
        with self._writing("import trash", entry.prompt_id) as conn:
            row = self._run(
                conn,
                f"SELECT {self._read_columns} FROM {self._trash_t} WHERE {_KEY} AND deleted_at = ?",
                key,
            ).fetchone()
            if row is not None:
                held = self._decode(tuple(row), entry.prompt_id)
                if encode_version(held) != encode_version(item.version):
                    raise trash_conflict(entry)
                return False
            self._run(
                conn,
                f"INSERT INTO {self._trash_t} ({self._insert_columns}, deleted_at) "
                f"VALUES ({', '.join(values)}, ?)",
                (*params, key[-1]),
            )
        return True

    def _restore(self, prompt_id: str, version: str) -> None:
        key = (prompt_id, *semver.parse(version))
        with self._writing("restore", prompt_id) as conn:
            row = self._run(
                conn, f"SELECT MAX(deleted_at) FROM {self._trash_t} WHERE {_KEY}", key
            ).fetchone()
            if row is None or row[0] is None:
                raise not_in_trash(prompt_id, version)
            if self._has(conn, prompt_id, version):
                raise VersionConflictError(prompt_id, version)
            copy = f"{self._copy_columns}, sha256"
            self._run(
                conn,
                f"INSERT INTO {self._versions_t} ({copy}) SELECT {copy} FROM {self._trash_t} "
                f"WHERE {_KEY} AND deleted_at = ?",
                (*key, row[0]),
            )
            self._run(
                conn, f"DELETE FROM {self._trash_t} WHERE {_KEY} AND deleted_at = ?", (*key, row[0])
            )

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        key = (prompt_id, *semver.parse(version))
        with self._writing("purge", prompt_id) as conn:
            if trashed_at is not None:
                cursor = self._run(
                    conn,
                    f"DELETE FROM {self._trash_t} WHERE {_KEY} AND deleted_at = ?",
                    (*key, self._ts(trashed_at)),
                )
                return bool(cursor.rowcount)
            if not self._has(conn, prompt_id, version):
                return False
            labels_blocking(self._events(conn, prompt_id), prompt_id, version, False)
            self._run(conn, f"DELETE FROM {self._versions_t} WHERE {_KEY}", key)
        return True

    def _empty_trash(self, cutoff: datetime | None) -> int:
        with self._writing("empty trash", None) as conn:
            if cutoff is None:
                cursor = self._run(conn, f"DELETE FROM {self._trash_t}")
            else:
                cursor = self._run(
                    conn, f"DELETE FROM {self._trash_t} WHERE deleted_at < ?", (self._ts(cutoff),)
                )
            return cursor.rowcount

    # -- labels ---------------------------------------------------------------------------

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
        *,
        expected_seq: int | None = None,
    ) -> LabelEvent | None:
        with self._writing("label", prompt_id) as conn:
            if version is not None and not self._has(conn, prompt_id, version):
                raise missing_version(prompt_id, version)
            events = self._events(conn, prompt_id)
            check_expected(events, prompt_id, label, expected_seq)
            event = next_label_event(events, prompt_id, label, version, actor, reason)
            if event is not None:
                self._record(conn, [event])
        return event

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self._reading("read") as conn:
            return self._events(conn, prompt_id)

    def _history_prompts(self) -> list[str]:
        with self._reading("read") as conn:
            rows = self._run(conn, f"SELECT DISTINCT prompt_id FROM {self._events_t}").fetchall()
        return [r[0] for r in rows]

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        with self._writing("import labels", prompt_id) as conn:
            existing = self._events(conn, prompt_id)
            new = events_to_import(existing, events, lambda v: self._has(conn, prompt_id, v))
            self._record(conn, new)
        return len(new)

    # -- repair ---------------------------------------------------------------------------

    def _repair(self, report: RepairReport, tally: Tally) -> None:
        """Rows that fail their checksum or validation move to the quarantine table."""
        with self._reading("repair") as conn:
            rows = self._run(
                conn, f"SELECT prompt_id, {self._read_columns} FROM {self._versions_t}"
            ).fetchall()
        for prompt_id, *row in rows:
            tally.add()
            try:
                self._decode(tuple(row), prompt_id)
            except CorruptVersionError as exc:
                self._quarantine(prompt_id, row[1], exc.message)
                report.actions.append(
                    Action(
                        exc.error_code,
                        f"{self._where()}:{prompt_id}@{row[1]}",
                        f"moved to {self._quarantine_t}",
                    )
                )

    def _quarantine(self, prompt_id: str, version: str, reason: str) -> None:
        key = (prompt_id, *semver.parse(version))
        with self._writing("repair", prompt_id) as conn:
            events = self._events(conn, prompt_id)
            self._record(conn, labels_blocking(events, prompt_id, version, force=True))
            self._run(
                conn,
                f"INSERT INTO {self._quarantine_t} SELECT prompt_id, version, data, sha256, ?, ? "
                f"FROM {self._versions_t} WHERE {_KEY}",
                (reason, self._ts(utc_now()), *key),
            )
            self._run(conn, f"DELETE FROM {self._versions_t} WHERE {_KEY}", key)

    @abc.abstractmethod
    def _where(self) -> str:
        """The database, as messages name it."""

    # -- documents: each write is one statement, so the compare-and-swap is atomic ------

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        with self._reading("read") as conn:
            row = self._run(
                conn,
                f"SELECT data, revision FROM {self._documents_t} WHERE namespace = ? AND key = ?",
                (namespace, key),
            ).fetchone()
        return None if row is None else (bytes(row[0]), int(row[1]))

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        with self._reading("read") as conn:
            rows = self._run(
                conn,
                f"SELECT key, data, revision FROM {self._documents_t} WHERE namespace = ?",
                (namespace,),
            ).fetchall()
        return {r[0]: (bytes(r[1]), int(r[2])) for r in rows}

    def _snapshot_listing(self) -> StoreListing:
        with self._snapshot("read a snapshot") as conn:
            event_rows = self._run(
                conn,
                f"SELECT prompt_id, {EVENT_COLUMNS} FROM {self._events_t} ORDER BY prompt_id, seq",
            ).fetchall()
            version_rows = self._run(
                conn,
                f"SELECT prompt_id, version FROM {self._versions_t} "
                "ORDER BY prompt_id, major, minor, patch",
            ).fetchall()
            trash_rows = self._run(
                conn, f"SELECT prompt_id, version, deleted_at FROM {self._trash_t}"
            ).fetchall()
            doc_rows = self._run(
                conn, f"SELECT namespace, key, data FROM {self._documents_t}"
            ).fetchall()
        events: dict[str, list[LabelEvent]] = {}
        for row in event_rows:
            events.setdefault(row[0], []).append(event_from_row(row[0], tuple(row[1:])))
        numbers: dict[str, list[str]] = {}
        for prompt_id, version in version_rows:
            numbers.setdefault(prompt_id, []).append(version)
        trash: dict[str, list[TrashEntry]] = {}
        for prompt_id, version, deleted_at in trash_rows:
            entry = TrashEntry(prompt_id=prompt_id, version=version, deleted_at=deleted_at)
            trash.setdefault(prompt_id, []).append(entry)
        held = {
            prompt_id: (
                events.get(prompt_id, []),
                numbers.get(prompt_id, []),
                sorted_trash(trash.get(prompt_id, [])),
            )
            for prompt_id in set(events) | set(numbers) | set(trash)
        }
        docs: dict[str, dict[str, dict[str, Any]]] = {}
        for namespace, key, raw in doc_rows:
            data = decode_document(bytes(raw), f"{namespace}/{key}")
            docs.setdefault(namespace, {})[key] = data
        return StoreListing(held, docs)

    def _doc_namespaces(self) -> list[str]:
        with self._reading("read") as conn:
            rows = self._run(
                conn, f"SELECT DISTINCT namespace FROM {self._documents_t}", ()
            ).fetchall()
        return [str(r[0]) for r in rows]

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        with self._writing("document", None) as conn:
            if expected is None:
                cursor = self._run(
                    conn,
                    f"INSERT INTO {self._documents_t} (namespace, key, revision, data) "
                    "VALUES (?, ?, 1, ?) ON CONFLICT (namespace, key) DO NOTHING",
                    (namespace, key, data),
                )
            else:
                cursor = self._run(
                    conn,
                    f"UPDATE {self._documents_t} SET data = ?, revision = revision + 1 "
                    "WHERE namespace = ? AND key = ? AND revision = ?",
                    (data, namespace, key, expected),
                )
            if cursor.rowcount != 1:
                raise document_conflict(namespace, key, expected)
        return 1 if expected is None else expected + 1

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        with self._writing("document", None) as conn:
            if expected is None:
                cursor = self._run(
                    conn,
                    f"DELETE FROM {self._documents_t} WHERE namespace = ? AND key = ?",
                    (namespace, key),
                )
                return cursor.rowcount == 1
            cursor = self._run(
                conn,
                f"DELETE FROM {self._documents_t} WHERE namespace = ? AND key = ? AND revision = ?",
                (namespace, key, expected),
            )
            if cursor.rowcount == 1:
                return True
            row = self._run(
                conn,
                f"SELECT 1 FROM {self._documents_t} WHERE namespace = ? AND key = ?",
                (namespace, key),
            ).fetchone()
        if row is not None:
            raise document_conflict(namespace, key, expected)
        return False
