"""Make one store hold exactly what another holds, as of one moment, copying only what changed.

The engine behind ``promptshelf sync`` (a standby kept up to date) and
``promptshelf backup`` (a snapshot, full or incremental). It is built on the
transfer API of :mod:`promptshelf.migrate` and the contract's verbatim
imports. A pass has two phases:

**The watermark** (:func:`watermark`), read first, before any body is copied:
the source's clear marker, every document, and for every prompt a consistent
view: its label history (the events themselves, they are small), its version
numbers and its trash entries, read again until the history and the numbers
did not move in between. It reads listings only, so it takes a short time even
for a large store (the copy of the bodies is what takes long). If the source
was cleared while it was read, it is read again. A store that can read it all
at one instant (``snapshot_listing``: SQLite and PostgreSQL in one read
transaction, memory under its lock) does so: the watermark is then one point
in time for the whole store.

**The copy**, prompt by prompt, of exactly what the watermark holds, however
long it takes and whatever writers do meanwhile: versions, label events and
trash copies never change once written, so what the watermark names can be
copied later. A version deleted (or deleted and saved again) since the
watermark is copied from the source's trash, whose oldest copy made after the
watermark is the version as the watermark saw it; versions saved and labels
moved after the watermark are left for the next pass. Per prompt:

1. versions the destination lacks are copied (in batches); one the source
   restored from its trash is restored from the destination's trash; one
   the source deleted and saved again is replaced;
2. trash entries the destination lacks are imported verbatim (deletion
   times kept);
3. the label history is appended in order (``import_label_events``: a
   destination whose history is not a prefix of the source's is reported,
   never rewritten);
4. versions the source deleted are purged from the destination's live set
   (their trash copy came in step 2), and trash copies the source emptied
   are purged.

Then the documents are made equal (created, replaced, deleted). A source that
was emptied (``clear_all`` notes itself in a document, see
:mod:`.storage.documents`) restarted its label histories: the destination is
cleared too, then filled again.

Every step is idempotent and writes nothing the destination already has,
so a run killed at any point is finished by the next one, and a run over an
unchanged source copies nothing. The destination must not be written by
anyone else: a standby's own changes are reported as divergence. Sync records
in the destination which versions it copied there, with their SHA-256
(:class:`_Record`, documents under ``SYNC_NAMESPACE``): only those are ever
removed or replaced (a number the source deleted, purged and saved again is
replaced: its content no longer matches the record); any other version is
reported (``SYNC-DIVERGED``) and kept.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .errors import (
    DocumentConflictError,
    LabelHistoryDivergedError,
    OptimizerError,
    VersionConflictError,
)
from .migrate import Documents, read_documents
from .models import LabelEvent, PromptVersion, TrashEntry
from .storage.base import TrashedVersion, VersionStorage
from .storage.codec import encode_version, version_sha256
from .storage.documents import CLEARED_KEY, STORE_NAMESPACE, SYNC_NAMESPACE
from .storage.integrity import digest
from .timestamps import to_text, utc_now

#: How often one prompt is re-read when its label history moves while it is read.
VIEW_ATTEMPTS = 20
#: How often the watermark is read again when the source is cleared while it is read.
WATERMARK_ATTEMPTS = 5
BATCH = 500
#: Prompts read or replicated at once.
WORKERS = 8


@dataclass(frozen=True)
class PromptView:
    """What the source held of one prompt at one moment (numbers and entries, no bodies)."""

    prompt_id: str
    history: list[LabelEvent]
    versions: list[str]
    trash: list[TrashEntry]


@dataclass(frozen=True)
class Watermark:
    """What a pass copies: the source as it was while the watermark was read."""

    cleared: dict[str, Any] | None  # the source's clear marker (None: never cleared)
    documents: Documents
    views: dict[str, PromptView]
    #: when it was read: UTC wall clock, and ``time.monotonic()`` (for tests in-process)
    started_at: datetime
    finished_at: datetime
    window: tuple[float, float]


@dataclass
class SyncReport:
    prompts: int = 0
    versions_copied: int = 0
    versions_restored: int = 0
    versions_replaced: int = 0
    versions_purged: int = 0
    label_events_copied: int = 0
    trash_copied: int = 0
    trash_purged: int = 0
    documents_copied: int = 0
    documents_deleted: int = 0
    #: the destination was cleared because the source had been (then filled again)
    cleared: bool = False
    #: prompts this pass changed anything of in the destination
    touched: set[str] = field(default_factory=set)
    #: SHA-256 of the canonical bytes of each version copied: ``(prompt_id, version)``
    digests: dict[tuple[str, str], str] = field(default_factory=dict)
    #: SHA-256 of each trash copy imported: ``(prompt_id, version, deleted_at ISO)``
    trash_digests: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: ``(prompt_id, why)`` for every prompt the destination could not be made to match.
    problems: list[tuple[str, str]] = field(default_factory=list)
    #: the watermark this pass copied (None for a pass over named prompts only)
    watermark: Watermark | None = None

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def changes(self) -> int:
        return (
            self.versions_copied
            + self.versions_restored
            + self.versions_replaced
            + self.versions_purged
            + self.label_events_copied
            + self.trash_copied
            + self.trash_purged
            + self.documents_copied
            + self.documents_deleted
        )

    def merge(self, other: SyncReport) -> None:
        for name in (
            "versions_copied",
            "versions_restored",
            "versions_replaced",
            "versions_purged",
            "label_events_copied",
            "trash_copied",
            "trash_purged",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.problems.extend(other.problems)
        self.digests.update(other.digests)
        self.trash_digests.update(other.trash_digests)

    def to_dict(self) -> dict[str, object]:
        found: dict[str, object] = {
            "prompts": self.prompts,
            "versions_copied": self.versions_copied,
            "versions_restored": self.versions_restored,
            "versions_replaced": self.versions_replaced,
            "versions_purged": self.versions_purged,
            "label_events_copied": self.label_events_copied,
            "trash_copied": self.trash_copied,
            "trash_purged": self.trash_purged,
            "documents_copied": self.documents_copied,
            "documents_deleted": self.documents_deleted,
            "cleared": self.cleared,
        }
        if self.watermark is not None:
            found["watermark"] = {
                "started_at": self.watermark.started_at.isoformat(),
                "finished_at": self.watermark.finished_at.isoformat(),
            }
        found["problems"] = [{"prompt_id": p, "problem": why} for p, why in self.problems]
        found["ok"] = self.ok
        return found


#: ``on_prompt(view)`` is called with each prompt's view once it is replicated.
OnPrompt = Callable[[PromptView], None]


def view_of(store: VersionStorage, prompt_id: str) -> PromptView:
    """One prompt exactly as it was at one moment: the label history and the version
    numbers did not move while the trash was read (read again until so). Numbers are
    read before the trash, so a version deleted in between would be in both listings:
    the second reading of the numbers sees it gone, and the prompt is read again."""
    for _ in range(VIEW_ATTEMPTS):
        before = store.label_history(prompt_id)
        numbers = store.list_version_numbers(prompt_id)
        trash = store.list_trash(prompt_id)
        if (
            store.list_version_numbers(prompt_id) == numbers
            and store.label_history(prompt_id) == before
        ):
            return PromptView(prompt_id, before, numbers, trash)
    raise LabelHistoryDivergedError(
        f"the labels of {prompt_id!r} kept moving while they were read ({VIEW_ATTEMPTS} tries)",
        error_code="SYNC-BUSY",
        context={"prompt_id": prompt_id},
    )


def cleared_marker(store: VersionStorage) -> dict[str, Any] | None:
    found = store.get_document(STORE_NAMESPACE, CLEARED_KEY)
    return None if found is None else found.data


def watermark(
    source: VersionStorage, prompts: list[str] | None = None, *, workers: int = WORKERS
) -> tuple[Watermark, list[tuple[str, str]]]:
    """Read what a pass will copy (see the module docstring); also ``(prompt_id, why)`` of
    each prompt whose view could not be read (it is left out, and reported)."""
    for attempt in range(WATERMARK_ATTEMPTS):
        started, begun = _utc(), time.monotonic()
        listing = source.snapshot_listing() if prompts is None else None
        if listing is not None:  # one instant (a read transaction, a lock)
            marker = listing.documents.get(STORE_NAMESPACE, {}).get(CLEARED_KEY)
            if marker is None or marker.get("done", True):
                views = {
                    p: PromptView(p, history, numbers, trash)
                    for p, (history, numbers, trash) in listing.prompts.items()
                }
                window = (begun, time.monotonic())
                mark = Watermark(marker, listing.documents, views, started, _utc(), window)
                return mark, []
            time.sleep(0.1 * (attempt + 1))  # a clear under way
            continue
        marker = cleared_marker(source)
        if marker is not None and not marker.get("done", True):  # a clear under way
            time.sleep(0.1 * (attempt + 1))
            continue
        documents = read_documents(source)
        names = source.list_held_prompts() if prompts is None else prompts
        views, problems = _views(source, names, workers)
        if cleared_marker(source) == marker:
            mark = Watermark(marker, documents, views, started, _utc(), (begun, time.monotonic()))
            return mark, problems
    raise LabelHistoryDivergedError(
        f"the source was being cleared while it was read ({WATERMARK_ATTEMPTS} tries; if a "
        "clear was interrupted, clear it again)",
        error_code="SYNC-BUSY",
    )


def _views(
    source: VersionStorage, names: list[str], workers: int
) -> tuple[dict[str, PromptView], list[tuple[str, str]]]:
    views: dict[str, PromptView] = {}
    problems: list[tuple[str, str]] = []

    def one(prompt_id: str) -> None:
        try:
            views[prompt_id] = view_of(source, prompt_id)
        except OptimizerError as exc:
            problems.append((prompt_id, f"{exc.message} [{exc.error_code}]"))

    _each(one, names, workers)
    return views, problems


def _each(fn: Callable[[str], None], items: list[str], workers: int) -> None:
    if workers <= 1:
        for item in items:
            fn(item)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="promptshelf-sync") as pool:
            list(pool.map(fn, items))


def sync(
    source: VersionStorage,
    destination: VersionStorage,
    *,
    prompts: list[str] | None = None,
    on_prompt: OnPrompt | None = None,
    workers: int = WORKERS,
) -> SyncReport:
    """One pass: make ``destination`` hold what ``source`` held at its watermark (see the
    module docstring). ``prompts`` limits the pass to those prompts (no documents, no
    clear). Prompts are independent, so ``workers`` of them are read and replicated at
    once (the backends are thread-safe; an object store's latency is what this hides).
    """
    report = SyncReport()
    try:
        mark, report.problems = watermark(source, prompts, workers=workers)
    except OptimizerError as exc:
        report.problems.append(("*", f"{exc.message} [{exc.error_code}]"))
        return report
    report.watermark = mark
    whole = prompts is None
    if whole and mark.cleared != cleared_marker(destination) and destination.list_held_prompts():
        destination.clear_all()  # the source was emptied since the last pass: so is this
        report.cleared = True
    theirs = set(destination.list_held_prompts()) if whole else set(prompts or [])
    names = sorted(set(mark.views) | theirs) if whole else list(prompts or [])
    lock = threading.Lock()
    unread = {p for p, _ in report.problems}

    def one(prompt_id: str) -> None:
        if prompt_id in unread:
            return
        part = SyncReport()
        view = mark.views.get(prompt_id, PromptView(prompt_id, [], [], []))
        try:
            sync_prompt(source, destination, view, part, present=prompt_id in theirs)
        except OptimizerError as exc:
            part.problems.append((prompt_id, f"{exc.message} [{exc.error_code}]"))
        with lock:
            report.merge(part)
            if part.changes or part.problems:
                report.touched.add(prompt_id)
            if not part.problems and prompt_id in mark.views:
                report.prompts += 1
                if on_prompt is not None:
                    on_prompt(view)

    _each(one, names, workers)
    if whole:
        try:
            sync_documents(mark.documents, destination, report)
        except OptimizerError as exc:
            report.problems.append(("*", f"documents: {exc.message} [{exc.error_code}]"))
    report.problems.sort()
    return report


def sync_documents(documents: Documents, destination: VersionStorage, report: SyncReport) -> None:
    """Make the destination's documents those of the watermark: create, replace, delete."""
    held_namespaces = set(destination.list_document_namespaces()) - {SYNC_NAMESPACE}
    for namespace in sorted(set(documents) - {SYNC_NAMESPACE} | held_namespaces):
        wanted = documents.get(namespace, {})
        held = {d.key: d for d in destination.list_documents(namespace)}
        for key, data in sorted(wanted.items()):
            mine = held.get(key)
            if mine is not None and mine.data == data:
                continue
            try:
                expected = None if mine is None else mine.revision
                destination.put_document(namespace, key, data, expected_revision=expected)
            except DocumentConflictError:
                report.problems.append(("*", f"document {namespace}/{key} changed meanwhile"))
                continue
            report.documents_copied += 1
        for key in sorted(set(held) - set(wanted)):
            if destination.delete_document(namespace, key):
                report.documents_deleted += 1


class _AsOfView:
    """The source's versions of one prompt as they were when its view was read: a version
    deleted since has its oldest trash copy made after the view (versions never change,
    so that copy is what the view saw, even if the number was saved again since)."""

    def __init__(self, source: VersionStorage, view: PromptView) -> None:
        self.source = source
        self.view = view
        self._later: dict[str, TrashEntry] | None = None
        self._trash: dict[TrashEntry, PromptVersion] | None = None

    def _deleted_since(self, refresh: bool = False) -> dict[str, TrashEntry]:
        if self._later is None or refresh:
            known = set(self.view.trash)
            later: dict[str, TrashEntry] = {}
            for entry in self.source.list_trash(self.view.prompt_id):  # oldest first
                if entry not in known:
                    later.setdefault(entry.version, entry)
            self._later = later
        return self._later

    def trashed(self, entry: TrashEntry) -> PromptVersion | None:
        if self._trash is None:
            items = self.source.read_trash(self.view.prompt_id)
            self._trash = {t.entry: t.version for t in items}
        return self._trash.get(entry)

    def get(self, number: str) -> PromptVersion | None:
        later = self._deleted_since().get(number)
        if later is None:
            live = self.source.get_version(self.view.prompt_id, number)
            if live is not None:
                return live
            later = self._deleted_since(refresh=True).get(number)  # deleted just now
            self._trash = None
            if later is None:
                return None
        return self.trashed(later)


class _Record:
    """Sync's record, in the destination, of the versions of one prompt it copied there:
    ``{number: {"sha256": ..., "token": ...}}`` (a document under ``SYNC_NAMESPACE``). Only
    a version recorded with the SHA-256 the destination holds came from the source: sync
    removes or replaces no other (a standby's own writes are reported, never touched).
    ``token``: a hash of the source's ``version_token`` when the content was last compared,
    so an unchanged version of a store that has tokens is not read again."""

    def __init__(self, destination: VersionStorage, prompt_id: str) -> None:
        self.destination = destination
        self.prompt_id = prompt_id
        found = destination.get_document(SYNC_NAMESPACE, prompt_id)  # left by clear_all too
        self.revision = None if found is None else found.revision
        self.versions: dict[str, dict[str, str | None]] = dict(
            (found.data.get("versions") or {}) if found is not None else {}
        )
        self.before = dict(self.versions)

    def sha(self, number: str) -> str | None:
        entry = self.versions.get(number)
        return None if entry is None else entry.get("sha256")

    def token(self, number: str) -> str | None:
        entry = self.versions.get(number)
        return None if entry is None else entry.get("token")

    def note(self, number: str, sha: str, token: str | None = None) -> None:
        self.versions[number] = {"sha256": sha, "token": token}

    def forget(self, number: str) -> None:
        self.versions.pop(number, None)

    def save(self, report: SyncReport) -> None:
        if self.versions == self.before:
            return
        try:
            if self.versions:
                data = {"versions": dict(sorted(self.versions.items()))}
                self.destination.put_document(
                    SYNC_NAMESPACE, self.prompt_id, data, expected_revision=self.revision
                )
            elif self.revision is not None:
                self.destination.delete_document(SYNC_NAMESPACE, self.prompt_id)
        except DocumentConflictError:
            report.problems.append(
                (self.prompt_id, "sync's record of it changed meanwhile (two syncs at once?)")
            )


def _token(source: VersionStorage, prompt_id: str, number: str) -> str | None:
    token = source.version_token(prompt_id, number)
    return None if token is None else digest(repr(token).encode("utf-8"))[:32]


def _diverged(report: SyncReport, prompt_id: str, number: str, why: str) -> None:
    report.problems.append(
        (prompt_id, f"{number}: {why}; the destination's copy is kept [SYNC-DIVERGED]")
    )


def sync_prompt(
    source: VersionStorage,
    destination: VersionStorage,
    view: PromptView,
    report: SyncReport,
    *,
    present: bool = True,
) -> None:
    """Make ``destination`` hold ``view`` of one prompt (see the module docstring);
    ``present=False`` says the destination holds nothing of it (nothing to read there)."""
    prompt_id = view.prompt_id
    asof = _AsOfView(source, view)
    theirs = set(view.trash)
    held = set(destination.list_version_numbers(prompt_id)) if present else set()
    held_trash = destination.list_trash(prompt_id) if present else []
    mine = set(held_trash)
    new_trash = theirs - mine
    live = set(view.versions)
    record = _Record(destination, prompt_id)
    for number in list(record.versions):
        if number not in held:
            record.forget(number)

    def ours(number: str, held_version: PromptVersion | None) -> bool:
        """Did the destination's copy of ``number`` come from the source? Recorded with
        that SHA-256; or (a destination synced before records were kept) it equals one of
        the source's trash copies of that number."""
        if held_version is None:
            return False
        sha = version_sha256(held_version)
        if record.sha(number) is not None:
            return record.sha(number) == sha
        for entry in view.trash:
            if entry.version == number:
                copy = asof.trashed(entry)
                if copy is not None and version_sha256(copy) == sha:
                    return True
        return False

    # 1. versions: restored ones first (the destination's newest trash copy is one the
    # source no longer has), then replaced ones (deleted and saved again), then new ones.
    newest_here = {e.version: e for e in sorted(held_trash, key=lambda e: e.deleted_at)}
    missing = []
    current = _Current(source, prompt_id)
    for number in view.versions:
        if number in held:
            if _same_number_differs(source, destination, asof, record, number, new_trash, current):
                if ours(number, destination.get_version(prompt_id, number)):
                    destination.purge_version(prompt_id, number)  # the source's trash has it
                    record.forget(number)
                    report.versions_replaced += 1
                    missing.append(number)
                else:
                    _diverged(
                        report,
                        prompt_id,
                        number,
                        "the destination holds other content under "
                        "this number than the source, not copied from it",
                    )
            continue
        newest = newest_here.get(number)
        if newest is not None and newest not in theirs:
            destination.restore_version(prompt_id, number)
            mine.discard(newest)
            if not _differs(asof, destination, number):
                restored = destination.get_version(prompt_id, number)
                if restored is not None:
                    record.note(number, version_sha256(restored))
                report.versions_restored += 1
                continue
            destination.purge_version(prompt_id, number)  # saved again, not restored
            report.versions_replaced += 1
        missing.append(number)
    _copy(asof, destination, missing, report)
    for number in missing:
        copied = report.digests.get((prompt_id, number))
        if copied is not None:
            record.note(number, copied)

    # 2. trash copies the destination lacks, verbatim (as the view named them)
    for entry in sorted(new_trash - mine, key=lambda e: e.deleted_at):
        version = asof.trashed(entry)
        if version is None:  # emptied from the source's trash since the view
            report.problems.append((prompt_id, "the trash was emptied while it was copied"))
            continue
        if destination.import_trashed(TrashedVersion(entry, version)):
            report.trash_copied += 1
            key = (prompt_id, entry.version, to_text(entry.deleted_at))
            report.trash_digests[key] = version_sha256(version)

    # 3. the label history, in order
    try:
        if view.history:
            report.label_events_copied += destination.import_label_events(prompt_id, view.history)
        elif present and destination.label_history(prompt_id):  # a standby's own label moves
            raise LabelHistoryDivergedError(
                f"the labels of {prompt_id!r} moved in the destination, not in the source",
                context={"prompt_id": prompt_id},
            )

        # 4. what the source deleted: live versions it copied here (their trash copy is in
        # by now; one saved in the destination itself is reported and kept), trash copies
        for number in sorted(held - live):
            if not ours(number, destination.get_version(prompt_id, number)):
                _diverged(report, prompt_id, number, "saved in the destination, not in the source")
                continue
            if destination.purge_version(prompt_id, number):
                report.versions_purged += 1
            record.forget(number)
        for entry in sorted(mine - theirs, key=lambda e: e.deleted_at):
            if destination.purge_trashed(entry):
                report.trash_purged += 1
    finally:
        record.save(report)


class _Current:
    """The source's live versions of one prompt, read all at once on the first ask (one
    query on SQL stores) rather than one read per version."""

    def __init__(self, source: VersionStorage, prompt_id: str) -> None:
        self.source = source
        self.prompt_id = prompt_id
        self._all: dict[str, PromptVersion] | None = None

    def get(self, number: str, *, batch: bool = True) -> PromptVersion | None:
        """``batch=False`` reads this one version now (after a token was read: a version
        read before its token could be older than the token vouches for)."""
        if not batch:
            return self.source.get_version(self.prompt_id, number)
        if self._all is None:
            try:
                self._all = {v.version: v for v in self.source.list_versions(self.prompt_id)}
            except OptimizerError:  # one unreadable version: read them one by one
                self._all = {}
        found = self._all.get(number)
        return found if found is not None else self.source.get_version(self.prompt_id, number)


def _same_number_differs(
    source: VersionStorage,
    destination: VersionStorage,
    asof: _AsOfView,
    record: _Record,
    number: str,
    new_trash: set[TrashEntry],
    current: _Current,
) -> bool:
    """Does the source hold other content under ``number`` than the destination? Deleted
    and saved again since the last pass (a new trash copy of it), or deleted, purged and
    saved again (the trash emptied: only the content tells). A token equal to the one
    recorded with the content answers without reading; otherwise the source's version is
    read and compared with the SHA-256 recorded (then the destination's copy)."""
    prompt_id = asof.view.prompt_id
    if any(e.version == number for e in new_trash):
        return _differs(asof, destination, number)
    token = _token(source, prompt_id, number)
    if token is not None and record.token(number) == token and record.sha(number) is not None:
        return False
    now = current.get(number, batch=token is None)  # read after the token, never before
    if now is None:  # deleted since the view: the next pass sees it
        return False
    sha = version_sha256(now)
    if record.sha(number) == sha:
        record.note(number, sha, token)
        return False
    held = destination.get_version(prompt_id, number)
    if held is not None and version_sha256(held) == sha:
        record.note(number, sha, token)  # the same (a destination synced before records)
        return False
    return True


def _copy(
    asof: _AsOfView, destination: VersionStorage, numbers: list[str], report: SyncReport
) -> None:
    prompt_id = asof.view.prompt_id
    for start in range(0, len(numbers), BATCH):
        chunk = [asof.get(n) for n in numbers[start : start + BATCH]]
        versions = [v for v in chunk if v is not None]
        if len(versions) < len(chunk):  # deleted and purged since the view
            report.problems.append((prompt_id, "a version was purged while it was copied"))
        for version in versions:
            report.digests[(prompt_id, version.version)] = version_sha256(version)
        try:
            report.versions_copied += destination.save_versions(versions)
        except VersionConflictError:  # some were there (a rerun of a killed pass)
            for version in versions:
                try:
                    destination.save_version(version)
                    report.versions_copied += 1
                except VersionConflictError:
                    if _differs(asof, destination, version.version):
                        raise


def _differs(asof: _AsOfView, destination: VersionStorage, number: str) -> bool:
    a = asof.get(number)
    b = destination.get_version(asof.view.prompt_id, number)
    if a is None or b is None:
        return a is not b
    return encode_version(a) != encode_version(b)


def _utc() -> datetime:
    return utc_now()


def follow(
    source: VersionStorage,
    destination: VersionStorage,
    *,
    interval: float,
    should_stop: Callable[[], bool],
    on_pass: Callable[[SyncReport], None] | None = None,
    sleep: Callable[[float], object] | None = None,
) -> int:
    """Sync again and again, ``interval`` seconds apart, until ``should_stop()``; returns the
    number of passes. A pass that finds problems is reported and the next one tries again."""
    import time

    wait = sleep or time.sleep
    passes = 0
    while not should_stop():
        report = sync(source, destination)
        passes += 1
        if on_pass is not None:
            on_pass(report)
        deadline = time.monotonic() + interval
        while not should_stop() and time.monotonic() < deadline:
            wait(min(0.05, interval))
    return passes
