"""Carry everything a store holds to another store, any backend to any backend.

Everything is: every version, the append-only label history of every prompt
(in order, with its actors, reasons and original times; the current labels
are that history replayed), and the trash (each deleted version with its
deletion time). The building blocks, for ``migrate``, ``export``, and
backup or sync tools::

    report = MigrationReport()
    for record in read_store(source):             # one PromptRecord per prompt
        apply_record(destination, record, report)  # idempotent, never overwrites
    assert report.ok and not compare_stores(source, destination)

Documents (the server's API keys and settings, see :mod:`.storage.documents`)
are carried too, every namespace: ``read_documents`` / ``apply_documents``. A
document is compared by its data; its revision is the compare-and-swap counter
of the store that holds it (a copy starts at 1), so it is not carried.

``read_store`` yields one :class:`PromptRecord` at a time (memory is bounded
by the largest prompt). ``apply_record`` writes versions first, then the
trash, then the label history (whose labels must point at versions that are
there). Re-applying a record changes nothing: a version or trashed copy
already in the destination is compared with the record's and skipped when
identical; one that differs is reported as a conflict and never overwritten;
a label history is appended to only when the destination's is a prefix of it,
and a history that diverged is reported, never rewritten.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import (
    DocumentConflictError,
    LabelHistoryDivergedError,
    VersionConflictError,
    VersionNotFoundError,
)
from .models import LabelEvent, PromptVersion
from .progress import Progress as _Progress
from .progress import Tally
from .storage.base import TrashedVersion, VersionStorage
from .storage.codec import encode_version
from .storage.documents import SYNC_NAMESPACE
from .timestamps import to_text

#: ``progress(done, total)`` is called after each prompt, counted in versions (``total``: the
#: source's version count when the copy starts; see :mod:`promptshelf.progress`).
Progress = _Progress

BATCH = 500


@dataclass(frozen=True)
class PromptRecord:
    """Everything a store holds of one prompt."""

    prompt_id: str
    versions: list[PromptVersion]  # oldest first
    label_events: list[LabelEvent]  # the whole history, seq 1, 2, ...
    trash: list[TrashedVersion]  # oldest deletion first


@dataclass
class MigrationReport:
    prompts: int = 0
    copied: int = 0
    skipped_identical: int = 0
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    missing_after: list[tuple[str, str]] = field(default_factory=list)
    label_events_copied: int = 0
    #: ``(prompt_id, why)`` for each prompt whose label history was not imported.
    label_conflicts: list[tuple[str, str]] = field(default_factory=list)
    trash_copied: int = 0
    trash_skipped_identical: int = 0
    trash_conflicts: list[tuple[str, str, str]] = field(default_factory=list)
    documents_copied: int = 0
    documents_skipped_identical: int = 0
    #: ``(namespace, key)`` of each document the destination holds with other data
    document_conflicts: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when everything of the source is in the destination, identical."""
        return not (
            self.conflicts
            or self.missing_after
            or self.label_conflicts
            or self.trash_conflicts
            or self.document_conflicts
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "prompts": self.prompts,
            "copied": self.copied,
            "skipped_identical": self.skipped_identical,
            "conflicts": [list(c) for c in self.conflicts],
            "missing_after": [list(m) for m in self.missing_after],
            "label_events_copied": self.label_events_copied,
            "label_conflicts": [list(c) for c in self.label_conflicts],
            "trash_copied": self.trash_copied,
            "trash_skipped_identical": self.trash_skipped_identical,
            "trash_conflicts": [list(c) for c in self.trash_conflicts],
            "documents_copied": self.documents_copied,
            "documents_skipped_identical": self.documents_skipped_identical,
            "document_conflicts": [list(c) for c in self.document_conflicts],
            "ok": self.ok,
        }


def read_prompt(store: VersionStorage, prompt_id: str) -> PromptRecord:
    return PromptRecord(
        prompt_id,
        store.list_versions(prompt_id),
        store.label_history(prompt_id),
        store.read_trash(prompt_id),
    )


def read_store(
    store: VersionStorage, prompts: Iterable[str] | None = None
) -> Iterator[PromptRecord]:
    """A record per prompt (of ``prompts``, or of every prompt the store holds anything of)."""
    for prompt_id in store.list_held_prompts() if prompts is None else prompts:
        yield read_prompt(store, prompt_id)


#: Every document of a store: ``{namespace: {key: data}}``.
Documents = dict[str, dict[str, dict[str, Any]]]


def read_documents(store: VersionStorage) -> Documents:
    """Every document of every namespace ``store`` holds (for an HTTP store: those it serves),
    except sync's record of what it copied into that store (``SYNC_NAMESPACE``)."""
    return {
        namespace: {doc.key: doc.data for doc in store.list_documents(namespace)}
        for namespace in store.list_document_namespaces()
        if namespace != SYNC_NAMESPACE
    }


def apply_documents(
    destination: VersionStorage, documents: Documents, report: MigrationReport
) -> None:
    """Create the documents ``destination`` lacks; one it holds with the same data is
    skipped, one with other data is a conflict, never overwritten."""
    for namespace, docs in sorted(documents.items()):
        for key, data in sorted(docs.items()):
            held = destination.get_document(namespace, key)
            if held is None:
                try:
                    destination.put_document(namespace, key, data)
                    report.documents_copied += 1
                    continue
                except DocumentConflictError:  # created meanwhile: compare with that
                    held = destination.get_document(namespace, key)
            if held is not None and held.data == data:
                report.documents_skipped_identical += 1
            else:
                report.document_conflicts.append((namespace, key))


def apply_record(
    destination: VersionStorage, record: PromptRecord, report: MigrationReport | None = None
) -> MigrationReport:
    """Write ``record`` into ``destination`` (see the module docstring); returns ``report``."""
    report = report if report is not None else MigrationReport()
    _copy_versions(destination, record.prompt_id, record.versions, report)
    for item in record.trash:
        try:
            if destination.import_trashed(item):
                report.trash_copied += 1
            else:
                report.trash_skipped_identical += 1
        except VersionConflictError:
            e = item.entry
            report.trash_conflicts.append((e.prompt_id, e.version, to_text(e.deleted_at)))
    if record.label_events:
        try:
            appended = destination.import_label_events(record.prompt_id, record.label_events)
            report.label_events_copied += appended
        except (LabelHistoryDivergedError, VersionNotFoundError) as exc:
            report.label_conflicts.append((record.prompt_id, exc.message))
    report.prompts += 1
    return report


def _copy_versions(
    destination: VersionStorage,
    prompt_id: str,
    versions: list[PromptVersion],
    report: MigrationReport,
) -> None:
    present = set(destination.list_version_numbers(prompt_id))
    pending = []
    for version in versions:
        if version.version not in present:
            pending.append(version)
        else:
            _compare_one(destination, version, report)
    for start in range(0, len(pending), BATCH):
        chunk = pending[start : start + BATCH]
        try:
            report.copied += destination.save_versions(chunk)
        except VersionConflictError:
            # Someone wrote one of these meanwhile: fall back to one at a time.
            for version in chunk:
                try:
                    destination.save_version(version)
                    report.copied += 1
                except VersionConflictError:
                    _compare_one(destination, version, report)


def _compare_one(
    destination: VersionStorage, version: PromptVersion, report: MigrationReport
) -> None:
    held = destination.get_version(version.prompt_id, version.version)
    # Equal as data counts as identical: PostgreSQL's JSONB returns a free dict (a config,
    # a context) with its keys in its own order, so the canonical bytes can differ.
    if held is not None and (held == version or encode_version(held) == encode_version(version)):
        report.skipped_identical += 1
    else:
        report.conflicts.append((version.prompt_id, version.version))


def migrate(
    source: VersionStorage,
    destination: VersionStorage,
    progress: Progress | None = None,
    *,
    documents: bool = True,
) -> MigrationReport:
    """Copy everything ``source`` holds into ``destination``; see the module docstring.
    ``documents=False`` leaves the documents (an export in the original's layout).

    At the end every source version is checked to be present in the destination
    (``missing_after``); :func:`compare_stores` checks everything, byte for byte.
    """
    report = MigrationReport()
    if documents:
        apply_documents(destination, read_documents(source), report)
    prompts = source.list_held_prompts()
    total = int(source.get_storage_stats().get("total_versions", 0)) if progress else 0
    tally = Tally(progress, total)
    for record in read_store(source, prompts):
        apply_record(destination, record, report)
        tally.add(len(record.versions))
    tally.finish()
    for prompt_id in prompts:
        have = set(destination.list_version_numbers(prompt_id))
        for number in source.list_version_numbers(prompt_id):
            if number not in have:
                report.missing_after.append((prompt_id, number))
    return report


def compare_stores(source: VersionStorage, destination: VersionStorage) -> list[str]:
    """What of ``source`` the destination does not hold identically, one line each: versions
    (canonical bytes), label histories (every field of every event), the trash (entries
    and canonical bytes) and the documents (their data). Empty when ``destination`` holds
    everything ``source`` does; call it both ways to check two stores are equal."""
    differences: list[str] = []
    theirs_docs = read_documents(destination)
    for namespace, docs in sorted(read_documents(source).items()):
        for key, data in sorted(docs.items()):
            held = theirs_docs.get(namespace, {}).get(key)
            if held != data:
                why = "missing" if held is None else "differs"
                differences.append(f"document {namespace}/{key}: {why}")
    for record in read_store(source):
        theirs = read_prompt(destination, record.prompt_id)
        held = {v.version: encode_version(v) for v in theirs.versions}
        for version in record.versions:
            if held.get(version.version) != encode_version(version):
                why = "missing" if version.version not in held else "differs"
                differences.append(f"{record.prompt_id} {version.version}: {why}")
        if theirs.label_events != record.label_events:
            differences.append(
                f"{record.prompt_id}: label history differs ({len(record.label_events)} "
                f"event(s) here, {len(theirs.label_events)} there)"
            )
        trashed = {(t.entry.version, t.entry.deleted_at): t.version for t in theirs.trash}
        for item in record.trash:
            copy = trashed.get((item.entry.version, item.entry.deleted_at))
            if copy is None or encode_version(copy) != encode_version(item.version):
                differences.append(
                    f"{record.prompt_id} {item.entry.version} in the trash "
                    f"(deleted {to_text(item.entry.deleted_at)}): "
                    f"{'missing' if copy is None else 'differs'}"
                )
    return differences
