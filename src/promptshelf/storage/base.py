"""``VersionStorage``: the contract every backend keeps.

A backend stores immutable :class:`PromptVersion` records keyed by
``(prompt_id, version)``. It knows nothing of ``VersionManager``: numbering,
rollback and "best" live above it. The public methods here validate ids and
versions once (through :mod:`promptshelf.ids` and :mod:`promptshelf.semver`)
and then call the backend's ``_``-prefixed primitives, so no backend can
forget a check.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any

from .. import semver
from ..errors import (
    DocumentConflictError,
    LabelNotFoundError,
    OptimizerError,
    StorageError,
    ValidationError,
    VersionConflictError,
    VersionNotFoundError,
)
from ..ids import validate_name, validate_prompt_id
from ..models import LabelEvent, PromptVersion, TrashEntry, labels_after
from ..progress import Progress, Tally
from ..timestamps import utc_now
from .codec import version_sha256
from .documents import (
    CLEARED_KEY,
    RETIRED_NAMESPACE,
    STORE_NAMESPACE,
    Document,
    check_names,
    check_revision,
    decode_document,
    encode_document,
)
from .labelevents import checked_history
from .verify import Action, Problem, RepairReport, VerifyReport

if TYPE_CHECKING:
    from ..retention import RetentionPolicy, RetentionReport


@dataclass(frozen=True)
class TrashedVersion:
    """A deleted version in the trash: when it was deleted, and what it held."""

    entry: TrashEntry
    version: PromptVersion


@dataclass(frozen=True)
class StoreListing:
    """What a store held at one instant, without version bodies (see ``snapshot_listing``)."""

    #: prompt id -> (label history, version numbers oldest first, trash entries as
    #: ``list_trash`` orders them), for every prompt the store holds anything of
    prompts: dict[str, tuple[list[LabelEvent], list[str], list[TrashEntry]]]
    #: namespace -> key -> data, every document
    documents: dict[str, dict[str, dict[str, Any]]]


class VersionStorage(abc.ABC):
    """Abstract store of prompt versions. Use as a context manager to close it."""

    # -- the public contract -------------------------------------------------

    def save_version(self, version: PromptVersion) -> None:
        """Store ``version``; raise ``VersionConflictError`` if it already exists.

        When this returns the version is durable (unless the backend was opened
        with ``durable=False``) and visible to every reader in every process.
        """
        self._check_open()
        checked = checked_version(version)
        self._refuse_retired(checked)
        self._save(checked)

    def get_version(self, prompt_id: str, version: str) -> PromptVersion | None:
        self._check_open()
        validate_prompt_id(prompt_id)
        semver.parse(version)
        return self._get(prompt_id, version)

    def get_latest_version(self, prompt_id: str) -> PromptVersion | None:
        """The highest version by semantic order, or None when there is none."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._get_latest(prompt_id)

    def list_versions(self, prompt_id: str) -> list[PromptVersion]:
        """Every version of a prompt, oldest first by semantic version."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._list(prompt_id)

    def list_version_numbers(self, prompt_id: str) -> list[str]:
        """Version strings only, oldest first; cheaper than ``list_versions``."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._version_numbers(prompt_id)

    def delete_version(self, prompt_id: str, version: str, *, force: bool = False) -> bool:
        """Remove one version; True if it existed.

        A version that a label points at is kept (``LabelInUseError``) unless
        ``force=True``, which also removes those labels and records that in
        the label history.
        """
        self._check_open()
        validate_prompt_id(prompt_id)
        semver.parse(version)
        return self._delete(prompt_id, version, force)

    # -- labels: named, movable pointers with an append-only history -------------

    def set_label(
        self,
        prompt_id: str,
        label: str,
        version: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> LabelEvent:
        """Point ``label`` at ``version`` (which must exist); returns the recorded event.

        A label that already points at ``version`` is left alone and nothing is
        recorded (the returned event is the one that put it there).

        ``expected_seq`` makes it a compare-and-swap, checked atomically with the change in
        every process: 0 means the label must be unset, ``n`` that event ``n`` (the ``seq``
        of a :class:`LabelEvent`) set or moved it and nothing touched it since. Otherwise
        ``LabelMovedError`` (``LABEL-MOVED``) and nothing changes."""
        self._check_open()
        validate_prompt_id(prompt_id)
        validate_name(label, "label")
        semver.parse(version)
        expected = _expected_seq(expected_seq)
        event = self._change_label(
            prompt_id, label, version, _text(actor), _text(reason), expected_seq=expected
        )
        if event is None:  # it already pointed there: nothing recorded; the event that did it
            return [e for e in self._label_events(prompt_id) if e.label == label][-1]
        return event

    def remove_label(
        self,
        prompt_id: str,
        label: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> bool:
        """Remove ``label``; True if it existed (and the removal was recorded).
        ``expected_seq``: as for :meth:`set_label` (``LabelMovedError`` when it does not hold)."""
        self._check_open()
        validate_prompt_id(prompt_id)
        validate_name(label, "label")
        expected = _expected_seq(expected_seq)
        changed = self._change_label(
            prompt_id, label, None, _text(actor), _text(reason), expected_seq=expected
        )
        return changed is not None

    def get_label(self, prompt_id: str, label: str) -> str | None:
        """The version ``label`` points at, or None."""
        return self.list_labels(prompt_id).get(validate_name(label, "label"))

    def list_labels(self, prompt_id: str) -> dict[str, str]:
        """Every label of the prompt and the version it points at."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._labels(prompt_id)

    def get_version_by_label(self, prompt_id: str, label: str) -> PromptVersion | None:
        version = self.get_label(prompt_id, label)
        return None if version is None else self._get(prompt_id, version)

    def label_history(self, prompt_id: str, label: str | None = None) -> list[LabelEvent]:
        """Every set, move and removal, oldest first (of one label, or of all)."""
        self._check_open()
        validate_prompt_id(prompt_id)
        if label is not None:
            validate_name(label, "label")
        events = self._label_events(prompt_id)
        return [e for e in events if label is None or e.label == label]

    def clear_all(self) -> None:
        """Remove every version, label, label event and trash copy (documents stay). The
        clear is noted in a document before and after, for ``sync`` (see :mod:`.documents`)."""
        self._check_open()
        token = secrets.token_hex(16)
        self._note_clear(token, done=False)
        self._clear()
        if not self._retires_remotely:  # a cleared store starts over: numbers are free again
            for key in self._doc_list(RETIRED_NAMESPACE):
                self._doc_delete(RETIRED_NAMESPACE, key, None)
        self._note_clear(token, done=True)

    def _note_clear(self, token: str, *, done: bool) -> None:
        at = utc_now().isoformat()
        raw = encode_document({"token": token, "at": at, "done": done})
        for attempt in range(10):
            current = self._doc_get(STORE_NAMESPACE, CLEARED_KEY)
            try:
                expected = None if current is None else current[1]
                self._doc_put(STORE_NAMESPACE, CLEARED_KEY, raw, expected)
                return
            except DocumentConflictError:  # another clear at the same moment: noted too
                if attempt == 9:
                    raise

    # -- the trash: deleted versions are kept until it is emptied ---------------------

    def list_trash(self, prompt_id: str | None = None) -> list[TrashEntry]:
        """Deleted versions still in the trash, oldest deletion first."""
        self._check_open()
        if prompt_id is not None:
            validate_prompt_id(prompt_id)
        return sorted_trash(self._trash_entries(prompt_id))

    def restore_version(self, prompt_id: str, version: str) -> PromptVersion:
        """Bring back the most recently deleted copy of a version from the trash.

        ``VersionConflictError`` if the version exists again (it is never
        overwritten); ``VersionNotFoundError`` if the trash has no copy.
        """
        self._check_open()
        validate_prompt_id(prompt_id)
        semver.parse(version)
        self._restore(prompt_id, version)
        restored = self._get(prompt_id, version)
        if restored is None:  # deleted again in the meantime
            raise not_in_trash(prompt_id, version)
        return restored

    def empty_trash(self, older_than: timedelta | None = None) -> int:
        """Delete for good what was deleted more than ``older_than`` ago (everything if None);
        returns how many versions were removed."""
        self._check_open()
        cutoff = None if older_than is None else utc_now() - older_than
        if not self._retires_remotely:
            self._retire_trashed(
                [e for e in self._trash_entries(None) if cutoff is None or e.deleted_at < cutoff]
            )
        return self._empty_trash(cutoff)

    def apply_retention(
        self, policy: RetentionPolicy, *, dry_run: bool = True, progress: Progress | None = None
    ) -> RetentionReport:
        """Remove into the trash the versions ``policy`` does not keep (see
        :mod:`promptshelf.retention`); with ``dry_run`` (the default) only report them.
        ``progress(done, total)`` counts the versions decided on."""
        from ..retention import apply_retention

        self._check_open()
        return apply_retention(self, policy, dry_run=dry_run, progress=progress)

    def version_token(self, prompt_id: str, version: str) -> Hashable | None:
        """A cheap identity of what is stored for a version, for caches above the store.

        Two calls that return equal tokens (not None) saw the same stored bytes, in any
        process. None means the backend cannot tell cheaply (the default), or the version
        is missing or changed too recently to vouch for: read it instead. Optional: not
        part of the contract every backend keeps.
        """
        self._check_open()
        validate_prompt_id(prompt_id)
        semver.parse(version)
        return self._version_token(prompt_id, version)

    def _version_token(self, prompt_id: str, version: str) -> Hashable | None:
        return None

    def label_token(self, prompt_id: str) -> Hashable | None:
        """A cheap identity of a prompt's label state, for caches above the store (the
        server's label answers). Two calls that return equal tokens (not None) saw the same
        labels, in any process, and no version a label points at was deleted or replaced in
        between (that needs a label event). None: cannot tell cheaply, or changed too recently
        to vouch for: read the labels. Optional, like :meth:`version_token`."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._label_token(prompt_id)

    def _label_token(self, prompt_id: str) -> Hashable | None:
        return None

    def list_prompts(self) -> list[str]:
        """Ids of the prompts that have at least one version, sorted."""
        self._check_open()
        return self._prompts()

    # -- carrying a whole store (what migrate, export, backup and sync build on) ------------

    def list_held_prompts(self) -> list[str]:
        """Ids of every prompt the store holds anything of, sorted: versions, label
        history, or deleted versions in the trash (``list_prompts`` names only the first)."""
        self._check_open()
        held = set(self._prompts()) | set(self._history_prompts())
        held |= {e.prompt_id for e in self._trash_entries(None)}
        return sorted(held)

    def read_trash(self, prompt_id: str | None = None) -> list[TrashedVersion]:
        """The trash with what each deleted version held, oldest deletion first
        (the order of ``list_trash``); a damaged copy raises ``CorruptVersionError``."""
        self._check_open()
        if prompt_id is not None:
            validate_prompt_id(prompt_id)
        items = self._read_trash(prompt_id)
        return sorted(
            items,
            key=lambda t: (t.entry.deleted_at, t.entry.prompt_id, semver.parse(t.entry.version)),
        )

    def import_label_events(self, prompt_id: str, events: Sequence[LabelEvent]) -> int:
        """Make ``events`` (a prompt's whole label history, from ``seq`` 1, as another
        store's ``label_history`` returned it) this store's history of the prompt, verbatim:
        sequence numbers, actors, reasons and times are kept. Returns how many were appended.

        Idempotent: the history this store already has must be a prefix of ``events``
        (then only the rest is appended; 0 when it is all there). A history that differs
        raises ``LabelHistoryDivergedError`` and nothing is written. ``events`` must be a
        consistent history (``ValidationError`` otherwise), and every label it leaves set
        must point at a version this store has (``VersionNotFoundError``).
        """
        self._check_open()
        validate_prompt_id(prompt_id)
        incoming = checked_history(prompt_id, events)
        if not incoming:
            return 0
        return self._import_events(prompt_id, incoming)

    def import_trashed(self, item: TrashedVersion) -> bool:
        """Put a deleted version into the trash verbatim, with its deletion time (as another
        store's ``read_trash`` returned it; every deletion time is UTC, a naive one is taken as
        UTC: see :mod:`promptshelf.timestamps`). True if added; False if an
        identical copy is already there. A different copy with the same prompt, version and
        deletion time raises ``VersionConflictError`` and is never overwritten."""
        self._check_open()
        version = checked_version(item.version)
        entry = item.entry
        if (entry.prompt_id, entry.version) != (version.prompt_id, version.version):
            raise ValidationError(
                f"trash entry {entry.prompt_id} {entry.version} holds "
                f"{version.prompt_id} {version.version}",
                context={"prompt_id": entry.prompt_id, "version": entry.version},
            )
        return self._import_trashed(item)

    def purge_version(self, prompt_id: str, version: str) -> bool:
        """Remove a live version for good, keeping no copy in the trash; True if it existed.

        For replication (``promptshelf sync``): the source's trash entry is imported
        verbatim first, then the live copy is purged. Unlike ``empty_trash`` it retires no
        number (see :meth:`retired_versions`): a replica takes its source's record, carried
        as a document, and must accept whatever its source holds. ``LabelInUseError`` if a label
        points at it (move the labels first: a purge never records label events).
        """
        self._check_open()
        validate_prompt_id(prompt_id)
        semver.parse(version)
        return self._purge(prompt_id, version, None)

    def purge_trashed(self, entry: TrashEntry) -> bool:
        """Remove one copy from the trash for good (the one deleted at ``entry.deleted_at``);
        True if it was there. For replication of an emptied trash (retires no number, as
        :meth:`purge_version`)."""
        self._check_open()
        validate_prompt_id(entry.prompt_id)
        semver.parse(entry.version)
        return self._purge(entry.prompt_id, entry.version, entry.deleted_at)

    # -- retired numbers: a version removed for good leaves its number used for ever ---------

    #: True when another store below does the recording and the refusing (the HTTP backend:
    #: its server's store does both), so this one does neither.
    _retires_remotely = False

    def retired_versions(self, prompt_id: str) -> dict[str, list[str]]:
        """Version numbers of ``prompt_id`` removed for good, each with the SHA-256 of the
        copies removed ({} when none). ``save_version`` refuses them; see
        :data:`.documents.RETIRED_NAMESPACE`."""
        self._check_open()
        validate_prompt_id(prompt_id)
        return self._retired(prompt_id)[0]

    def _retired(self, prompt_id: str) -> tuple[dict[str, list[str]], int | None]:
        found = self._doc_get(RETIRED_NAMESPACE, prompt_id)
        if found is None:
            return {}, None
        data = decode_document(found[0], f"{RETIRED_NAMESPACE}/{prompt_id}")
        versions = data.get("versions")
        if not isinstance(versions, dict):
            return {}, found[1]
        return {str(k): [str(d) for d in v] for k, v in versions.items()}, found[1]

    def _refuse_retired(self, version: PromptVersion) -> None:
        if not self._retires_remotely:
            _check_not_retired(version, self._retired(version.prompt_id)[0])

    def _refuse_retired_all(self, versions: Iterable[PromptVersion]) -> list[PromptVersion]:
        """``_refuse_retired`` for a batch (one record read per prompt); returns the batch."""
        batch = list(versions)
        if self._retires_remotely:
            return batch
        records: dict[str, dict[str, list[str]]] = {}
        for version in batch:
            if not isinstance(version, PromptVersion):
                continue  # the save itself refuses it
            if version.prompt_id not in records:
                records[version.prompt_id] = self._retired(validate_prompt_id(version.prompt_id))[0]
            _check_not_retired(version, records[version.prompt_id])
        return batch

    def _retire_trashed(self, entries: Sequence[TrashEntry]) -> None:
        """Record (before they go) the numbers and digests of trash copies about to be
        removed for good; a copy that cannot be read is recorded by number alone."""
        by_prompt: dict[str, dict[str, set[str]]] = {}
        for entry in entries:
            by_prompt.setdefault(entry.prompt_id, {}).setdefault(entry.version, set())
        for prompt_id, numbers in by_prompt.items():
            try:
                copies = self._read_trash(prompt_id)
            except StorageError:
                copies = []
            wanted = {(e.version, e.deleted_at) for e in entries if e.prompt_id == prompt_id}
            for item in copies:
                if (item.entry.version, item.entry.deleted_at) in wanted:
                    numbers[item.entry.version].add(version_sha256(item.version))
            for number, digests in numbers.items():
                # saved again after the delete (before this fix refused that): the live copy
                # holds the number now, and copies of the store must still carry it
                try:
                    live = self._get(prompt_id, number)
                except StorageError:
                    live = None
                if live is not None:
                    digests.add(version_sha256(live))
            self._retire(prompt_id, numbers)

    def _retire(self, prompt_id: str, numbers: dict[str, set[str]]) -> None:
        """Add ``numbers`` (number -> digests) to the prompt's retired record (compare-and-swap,
        retried when another writer moved it)."""
        for attempt in range(20):
            current, revision = self._retired(prompt_id)
            merged = {k: set(v) for k, v in current.items()}
            for number, digests in numbers.items():
                merged.setdefault(number, set()).update(digests)
            if all(k in current and set(current[k]) == merged[k] for k in merged):
                return
            data = {"versions": {k: sorted(merged[k]) for k in sorted(merged, key=semver.parse)}}
            try:
                self._doc_put(RETIRED_NAMESPACE, prompt_id, encode_document(data), revision)
                return
            except DocumentConflictError:
                if attempt == 19:
                    raise

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions; returns how many were saved.

        The generic form saves one at a time and stops at the first error:
        the versions before it are saved, the rest are not.
        """
        count = 0
        for version in versions:
            self.save_version(version)
            count += 1
        return count

    def snapshot_listing(self) -> StoreListing | None:
        """Every prompt's label history, version numbers and trash entries, and every
        document, all read at one instant (one read transaction, one lock), for backup and
        sync's watermark; None when the backend cannot (then they read prompt by prompt).
        Optional: SQLite, PostgreSQL and memory stores answer; the others return None."""
        self._check_open()
        return self._snapshot_listing()

    def _snapshot_listing(self) -> StoreListing | None:
        return None

    # -- documents: small JSON objects with compare-and-swap (API keys, settings) ------

    def get_document(self, namespace: str, key: str) -> Document | None:
        """The document under ``(namespace, key)``, or None (see :mod:`.documents`)."""
        self._check_open()
        check_names(namespace, key)
        found = self._doc_get(namespace, key)
        if found is None:
            return None
        return Document(key, decode_document(found[0], f"{namespace}/{key}"), found[1])

    def list_documents(self, namespace: str) -> list[Document]:
        """Every document of a namespace, sorted by key."""
        self._check_open()
        check_names(namespace)
        found = self._doc_list(namespace)
        return [
            Document(key, decode_document(raw, f"{namespace}/{key}"), revision)
            for key, (raw, revision) in sorted(found.items())
        ]

    def list_document_namespaces(self) -> list[str]:
        """The namespaces that hold at least one document, sorted (what migrate, backup and
        sync walk to carry every document)."""
        self._check_open()
        return sorted(self._doc_namespaces())

    def put_document(
        self,
        namespace: str,
        key: str,
        data: dict[str, Any],
        *,
        expected_revision: int | None = None,
    ) -> Document:
        """Create (``expected_revision=None``: it must not exist) or replace (it must be at
        ``expected_revision``) a document; ``DocumentConflictError`` when that does not hold.
        Returns the stored document with its new revision."""
        self._check_open()
        check_names(namespace, key)
        expected = check_revision(expected_revision)
        raw = encode_document(data)
        revision = self._doc_put(namespace, key, raw, expected)
        return Document(key, decode_document(raw, f"{namespace}/{key}"), revision)

    def delete_document(
        self, namespace: str, key: str, *, expected_revision: int | None = None
    ) -> bool:
        """Remove a document; True if it existed. With ``expected_revision``, only at that
        revision (``DocumentConflictError`` if it moved)."""
        self._check_open()
        check_names(namespace, key)
        return self._doc_delete(namespace, key, check_revision(expected_revision))

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        prompts = self._prompts()
        total = sum(len(self._version_numbers(p)) for p in prompts)
        return {
            "backend": self.backend_name,
            "total_prompts": len(prompts),
            "total_versions": total,
        }

    def rebuild_index(self, *, progress: Progress | None = None) -> dict[str, Any]:
        """Rebuild whatever index the backend keeps; databases maintain theirs themselves."""
        self._check_open()
        stats = self.get_storage_stats()
        if progress is not None:
            progress(stats["total_versions"], stats["total_versions"])
        return {"total_prompts": stats["total_prompts"], "total_versions": stats["total_versions"]}

    def verify(self, *, progress: Progress | None = None) -> VerifyReport:
        """Read every version and report each one that does not read back whole.

        Nothing is changed. A version deleted while the check runs is not a problem.
        ``progress(done, total)`` is called after each version read.
        """
        self._check_open()
        report = VerifyReport(self.backend_name)
        self._verify_more(report)  # first: what is on disk before any read refreshes a cache
        tally = Tally(progress, self._total_versions() if progress else 0)
        for prompt_id in self._prompts():
            report.checked_prompts += 1
            present = self._verify_numbers(prompt_id)
            for number in present:
                tally.add()
                report.checked_versions += 1
                try:
                    found = self._verify_read(prompt_id, number)
                except OptimizerError as exc:
                    where = str(exc.context.get("path", f"{prompt_id}@{number}"))
                    report.problems.append(Problem(exc.error_code, where, exc.message))
                    continue
                if found is not None and found.model_extra:
                    report.notices.append(
                        Problem(
                            "PS-EXTRA-KEYS",
                            f"{prompt_id}@{number}",
                            "unknown key(s) read and kept (a newer writer, or a hand edit): "
                            + ", ".join(sorted(found.model_extra)),
                        )
                    )
            try:
                labels = self._labels(prompt_id)
            except OptimizerError as exc:
                where = str(exc.context.get("path", f"{prompt_id}:labels"))
                report.problems.append(Problem(exc.error_code, where, exc.message))
                continue
            for label, version in sorted(labels.items()):
                if version not in present:
                    report.problems.append(
                        Problem(
                            "LABEL-DANGLING",
                            f"{prompt_id}:{label}",
                            f"label {label!r} points at {version}, which does not exist",
                        )
                    )
        tally.finish()
        return report

    def _total_versions(self) -> int:
        """How many versions the store holds, for progress (cheap where the backend can)."""
        return int(self.get_storage_stats().get("total_versions", 0))

    def repair(self, *, progress: Progress | None = None) -> RepairReport:
        """Fix what ``verify`` reports, losing nothing that is intact.

        Damaged versions are moved to a quarantine (never deleted), labels
        left pointing at missing versions are removed (and the removal
        recorded), indexes are rebuilt, dead temp files removed. Running it
        again finds nothing to do; if it is interrupted, running it again
        finishes the work. ``progress(done, total)`` counts the versions checked.
        """
        self._check_open()
        report = RepairReport(self.backend_name)
        tally = Tally(progress, self._total_versions() if progress else 0)
        self._repair(report, tally)
        for prompt_id in self._prompts():
            present = set(self._version_numbers(prompt_id))
            for label, version in sorted(self._labels(prompt_id).items()):
                if version not in present:
                    self._change_label(
                        prompt_id, label, None, "repair", f"version {version} is missing"
                    )
                    report.actions.append(
                        Action("LABEL-DANGLING", f"{prompt_id}:{label}", "label removed")
                    )
        tally.finish()
        return report

    def _repair(self, report: RepairReport, tally: Tally) -> None:  # noqa: B027 - optional
        """Backend-specific repairs, recorded in ``report``; ``tally.add`` per version checked."""

    def _verify_numbers(self, prompt_id: str) -> list[str]:
        """The versions ``verify`` reads; a backend whose listing repairs things lists plainly."""
        return self._version_numbers(prompt_id)

    def _verify_read(self, prompt_id: str, version: str) -> PromptVersion | None:
        """Read one version for ``verify``; a backend with a cache reads past it."""
        return self._get(prompt_id, version)

    def _verify_more(self, report: VerifyReport) -> None:  # noqa: B027 - an optional hook
        """Backend-specific checks (indexes, stray files) added to ``report``."""

    def close(self) -> None:
        self._closed = True

    @property
    def closed(self) -> bool:
        return getattr(self, "_closed", False)

    def __enter__(self) -> VersionStorage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- what a backend implements --------------------------------------------

    backend_name: str = "abstract"

    @abc.abstractmethod
    def _save(self, version: PromptVersion) -> None: ...

    @abc.abstractmethod
    def _get(self, prompt_id: str, version: str) -> PromptVersion | None: ...

    @abc.abstractmethod
    def _version_numbers(self, prompt_id: str) -> list[str]: ...

    @abc.abstractmethod
    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        """Delete under the same exclusion as label changes (see ``labels_blocking``)."""

    @abc.abstractmethod
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
        """Point ``label`` at ``version`` (None: remove it) and record the event, atomically
        with the check that the version exists and ``check_expected(..., expected_seq)``;
        None when there was nothing to change."""

    @abc.abstractmethod
    def _label_events(self, prompt_id: str) -> list[LabelEvent]: ...

    def _labels(self, prompt_id: str) -> dict[str, str]:
        return labels_after(self._label_events(prompt_id))

    @abc.abstractmethod
    def _clear(self) -> None: ...

    @abc.abstractmethod
    def _prompts(self) -> list[str]: ...

    @abc.abstractmethod
    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]: ...

    @abc.abstractmethod
    def _restore(self, prompt_id: str, version: str) -> None:
        """Move the newest trashed copy back; ``not_in_trash`` or ``VersionConflictError``."""

    @abc.abstractmethod
    def _empty_trash(self, cutoff: datetime | None) -> int: ...

    @abc.abstractmethod
    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        """Without ``trashed_at``: remove the live version (no trash copy; refuse with
        ``LabelInUseError`` if labelled). With it: remove that trash copy. True if found."""

    @abc.abstractmethod
    def _history_prompts(self) -> list[str]:
        """Prompts with a label history (a history outlives the prompt's versions)."""

    @abc.abstractmethod
    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]: ...

    @abc.abstractmethod
    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        """Under the prompt's lock: ``events_to_import(current, events, present)``, append."""

    @abc.abstractmethod
    def _import_trashed(self, item: TrashedVersion) -> bool:
        """Add ``item`` to the trash unless there; see ``trash_conflict``."""

    @abc.abstractmethod
    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        """The stored bytes and revision of a document, or None."""

    @abc.abstractmethod
    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]: ...

    @abc.abstractmethod
    def _doc_namespaces(self) -> list[str]:
        """Every namespace with at least one document (any order)."""

    @abc.abstractmethod
    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        """Create (``expected`` None) or compare-and-swap replace, atomically; the new
        revision, or ``document_conflict``."""

    @abc.abstractmethod
    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        """Remove (only at revision ``expected`` when given, else ``document_conflict``)."""

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        # A version can vanish between listing and reading (a concurrent
        # delete); walk down until one reads, so "latest" is never a ghost.
        for number in reversed(self._version_numbers(prompt_id)):
            found = self._get(prompt_id, number)
            if found is not None:
                return found
        return None

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        found = (self._get(prompt_id, n) for n in self._version_numbers(prompt_id))
        return [v for v in found if v is not None]

    def _check_open(self) -> None:
        if self.closed:
            raise StorageError("storage is closed", error_code="PS-CLOSED-001")


def _check_not_retired(version: PromptVersion, record: dict[str, list[str]]) -> None:
    """``VersionConflictError`` if ``record`` (a prompt's retired numbers) holds the number
    of ``version`` and no removed copy had the same content."""
    digests = record.get(version.version)
    if digests is not None and version_sha256(version) not in digests:
        raise VersionConflictError(
            version.prompt_id,
            version.version,
            {"reason": "this number was removed for good and is never reused"},
        )


def sorted_trash(entries: Iterable[TrashEntry]) -> list[TrashEntry]:
    """Trash entries in ``list_trash``'s order: oldest deletion first."""
    return sorted(entries, key=lambda e: (e.deleted_at, e.prompt_id, semver.parse(e.version)))


def checked_version(version: object) -> PromptVersion:
    """``version`` if it is a PromptVersion with a valid id and version, else raise."""
    if not isinstance(version, PromptVersion):
        raise ValidationError(f"expected a PromptVersion, got {type(version).__name__}")
    validate_prompt_id(version.prompt_id)
    semver.parse(version.version)
    return version


def _expected_seq(value: int | None) -> int | None:
    if value is not None and (type(value) is not int or value < 0):
        raise ValidationError(
            f"expected_seq must be a label event's seq (>= 1), 0 (unset) or None, got {value!r}"
        )
    return value


def _text(value: str | None) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ValidationError(f"actor and reason must be strings, got {type(value).__name__}")
    return value


def document_conflict(namespace: str, key: str, expected: int | None) -> DocumentConflictError:
    what = "exists already" if expected is None else f"is not at revision {expected}"
    return DocumentConflictError(
        f"document {namespace}/{key} {what}",
        context={"namespace": namespace, "key": key, "expected_revision": expected},
    )


def missing_version(prompt_id: str, version: str) -> VersionNotFoundError:
    return VersionNotFoundError(prompt_id, version, {"reason": "a label must point at a version"})


def missing_label(prompt_id: str, label: str) -> LabelNotFoundError:
    return LabelNotFoundError(
        f"prompt {prompt_id!r} has no label {label!r}",
        context={"prompt_id": prompt_id, "label": label},
    )


def not_in_trash(prompt_id: str, version: str) -> VersionNotFoundError:
    return VersionNotFoundError(prompt_id, version, {"reason": "not in the trash"})


def trash_conflict(entry: TrashEntry) -> VersionConflictError:
    """A different copy of ``entry`` (same prompt, version and deletion time) is in the trash."""
    return VersionConflictError(
        entry.prompt_id,
        entry.version,
        {
            "reason": "a different copy deleted at the same time is in the trash",
            "deleted_at": entry.deleted_at.isoformat(),
        },
    )
