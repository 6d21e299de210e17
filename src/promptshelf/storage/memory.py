"""``InMemoryStorage``: every version in a dict, for tests and short-lived runs.

Versions are kept as their serialized JSON bytes, not as objects: each read
builds a fresh object, so no caller can change what another one sees, and
anything that cannot be stored on disk is refused here too.
"""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from .. import semver
from ..errors import VersionConflictError
from ..models import STORED, LabelEvent, PromptVersion, TrashEntry
from ..timestamps import utc_now
from .base import (
    StoreListing,
    TrashedVersion,
    VersionStorage,
    document_conflict,
    missing_version,
    not_in_trash,
    sorted_trash,
    trash_conflict,
)
from .codec import encode_version
from .documents import decode_document
from .labelevents import check_expected, events_to_import, labels_blocking, next_label_event


class InMemoryStorage(VersionStorage):
    backend_name = "memory"

    def __init__(self, create: bool = True) -> None:  # ``create`` is accepted for symmetry
        self._versions: dict[str, dict[str, bytes]] = {}
        self._events: dict[str, list[LabelEvent]] = {}
        self._trash: list[tuple[TrashEntry, bytes]] = []
        self._lock = threading.Lock()
        self._documents: dict[tuple[str, str], tuple[bytes, int]] = {}

    def _save(self, version: PromptVersion) -> None:
        data = encode_version(version)
        with self._lock:
            versions = self._versions.setdefault(version.prompt_id, {})
            if version.version in versions:
                raise VersionConflictError(version.prompt_id, version.version)
            versions[version.version] = data

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        with self._lock:
            data = self._versions.get(prompt_id, {}).get(version)
        return None if data is None else PromptVersion.model_validate_json(data, context=STORED)

    def _version_numbers(self, prompt_id: str) -> list[str]:
        with self._lock:
            numbers = list(self._versions.get(prompt_id, ()))
        return semver.sort_versions(numbers)

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        with self._lock:
            versions = self._versions.get(prompt_id)
            if versions is None or version not in versions:
                return False
            events = self._events.setdefault(prompt_id, [])
            events.extend(labels_blocking(events, prompt_id, version, force))
            entry = TrashEntry(prompt_id=prompt_id, version=version, deleted_at=utc_now())
            self._trash.append((entry, versions.pop(version)))
            if not versions:
                del self._versions[prompt_id]
            return True

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
        with self._lock:
            if version is not None and version not in self._versions.get(prompt_id, {}):
                raise missing_version(prompt_id, version)
            events = self._events.setdefault(prompt_id, [])
            check_expected(events, prompt_id, label, expected_seq)
            event = next_label_event(events, prompt_id, label, version, actor, reason)
            if event is not None:
                events.append(event)
            return event

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self._lock:
            return list(self._events.get(prompt_id, ()))

    def _history_prompts(self) -> list[str]:
        with self._lock:
            return [prompt_id for prompt_id, events in self._events.items() if events]

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        with self._lock:
            existing = self._events.setdefault(prompt_id, [])
            present = self._versions.get(prompt_id, {})
            new = events_to_import(existing, events, present.__contains__)
            existing.extend(new)
            return len(new)

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        with self._lock:
            return [e for e, _ in self._trash if prompt_id in (None, e.prompt_id)]

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        with self._lock:
            found = [(e, d) for e, d in self._trash if prompt_id in (None, e.prompt_id)]
        return [
            TrashedVersion(e, PromptVersion.model_validate_json(d, context=STORED))
            for e, d in found
        ]

    def _import_trashed(self, item: TrashedVersion) -> bool:
        data = encode_version(item.version)
        with self._lock:
            for entry, held in self._trash:
                if entry == item.entry:
                    if held != data:
                        raise trash_conflict(entry)
                    return False
            self._trash.append((item.entry, data))
            return True

    def _restore(self, prompt_id: str, version: str) -> None:
        with self._lock:
            copies = [
                (entry.deleted_at, i)
                for i, (entry, _) in enumerate(self._trash)
                if (entry.prompt_id, entry.version) == (prompt_id, version)
            ]
            if not copies:
                raise not_in_trash(prompt_id, version)
            newest = max(copies)[1]  # imported copies need not be in deletion order
            versions = self._versions.setdefault(prompt_id, {})
            if version in versions:
                raise VersionConflictError(prompt_id, version)
            versions[version] = self._trash.pop(newest)[1]

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        with self._lock:
            if trashed_at is None:
                versions = self._versions.get(prompt_id, {})
                if version not in versions:
                    return False
                labels_blocking(self._events.get(prompt_id, []), prompt_id, version, False)
                del versions[version]
                if not versions:
                    del self._versions[prompt_id]
                return True
            for i, (entry, _) in enumerate(self._trash):
                if (entry.prompt_id, entry.version, entry.deleted_at) == (
                    prompt_id,
                    version,
                    trashed_at,
                ):
                    del self._trash[i]
                    return True
            return False

    def _empty_trash(self, cutoff: datetime | None) -> int:
        with self._lock:
            keep = [(e, d) for e, d in self._trash if cutoff is not None and e.deleted_at >= cutoff]
            removed = len(self._trash) - len(keep)
            self._trash = keep
            return removed

    def _clear(self) -> None:
        with self._lock:
            self._versions.clear()
            self._events.clear()
            self._trash.clear()

    def _prompts(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        with self._lock:
            return self._documents.get((namespace, key))

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        with self._lock:
            return {k: v for (ns, k), v in self._documents.items() if ns == namespace}

    def _snapshot_listing(self) -> StoreListing:
        with self._lock:  # every write takes this lock: one instant
            versions = {p: list(v) for p, v in self._versions.items()}
            events = {p: list(e) for p, e in self._events.items() if e}
            trash = [e for e, _ in self._trash]
            documents = dict(self._documents)
        held: dict[str, tuple[list[LabelEvent], list[str], list[TrashEntry]]] = {}
        for prompt_id in set(versions) | set(events) | {e.prompt_id for e in trash}:
            held[prompt_id] = (
                events.get(prompt_id, []),
                semver.sort_versions(versions.get(prompt_id, [])),
                sorted_trash(e for e in trash if e.prompt_id == prompt_id),
            )
        docs: dict[str, dict[str, dict[str, Any]]] = {}
        for (namespace, key), (raw, _) in documents.items():
            docs.setdefault(namespace, {})[key] = decode_document(raw, f"{namespace}/{key}")
        return StoreListing(held, docs)

    def _doc_namespaces(self) -> list[str]:
        with self._lock:
            return list({ns for ns, _ in self._documents})

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        with self._lock:
            current = self._documents.get((namespace, key))
            if (current[1] if current else None) != expected:
                raise document_conflict(namespace, key, expected)
            revision = 1 if current is None else current[1] + 1
            self._documents[(namespace, key)] = (data, revision)
            return revision

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        with self._lock:
            current = self._documents.get((namespace, key))
            if current is None:
                return False
            if expected is not None and current[1] != expected:
                raise document_conflict(namespace, key, expected)
            del self._documents[(namespace, key)]
            return True
