"""Make one store hold exactly what another holds, copying only what changed.

The engine behind ``promptshelf sync`` (a standby kept up to date) and
``promptshelf backup`` (a snapshot, full or incremental). It is built on the
transfer API of :mod:`promptshelf.migrate` and the contract's verbatim
imports, prompt by prompt:

1. a consistent view of the source prompt: its label history, version
   numbers and trash entries, read again until the history did not move
   while they were read (so every label in it points at a version of the view);
2. versions the destination lacks are copied (in batches); one the source
   restored from its trash is restored from the destination's trash; one
   the source deleted and saved again is replaced;
3. trash entries the destination lacks are imported verbatim (deletion
   times kept);
4. the label history is appended in order (``import_label_events``: a
   destination whose history is not a prefix of the source's is reported,
   never rewritten);
5. versions the source deleted are purged from the destination's live set
   (their trash copy came in step 3), and trash copies the source emptied
   are purged.

Every step is idempotent and writes nothing the destination already has,
so a run killed at any point is finished by the next one, and a run over an
unchanged source copies nothing. The destination must not be written by
anyone else: a standby's own changes are reported as divergence.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from .errors import LabelHistoryDivergedError, OptimizerError, VersionConflictError
from .models import LabelEvent, TrashEntry
from .storage.base import VersionStorage
from .storage.codec import encode_version
from .storage.integrity import digest

#: How often one prompt is re-read when its label history moves while it is read.
VIEW_ATTEMPTS = 20
BATCH = 500
#: Prompts replicated at once.
WORKERS = 8


@dataclass(frozen=True)
class PromptView:
    """What the source held of one prompt at one moment (numbers and entries, no bodies)."""

    prompt_id: str
    history: list[LabelEvent]
    versions: list[str]
    trash: list[TrashEntry]


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
    #: prompts this pass changed anything of in the destination
    touched: set[str] = field(default_factory=set)
    #: SHA-256 of the canonical bytes of each version copied: ``(prompt_id, version)``
    digests: dict[tuple[str, str], str] = field(default_factory=dict)
    #: SHA-256 of each trash copy imported: ``(prompt_id, version, deleted_at ISO)``
    trash_digests: dict[tuple[str, str, str], str] = field(default_factory=dict)
    #: ``(prompt_id, why)`` for every prompt the destination could not be made to match.
    problems: list[tuple[str, str]] = field(default_factory=list)

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
        return {
            "prompts": self.prompts,
            "versions_copied": self.versions_copied,
            "versions_restored": self.versions_restored,
            "versions_replaced": self.versions_replaced,
            "versions_purged": self.versions_purged,
            "label_events_copied": self.label_events_copied,
            "trash_copied": self.trash_copied,
            "trash_purged": self.trash_purged,
            "problems": [{"prompt_id": p, "problem": why} for p, why in self.problems],
            "ok": self.ok,
        }


#: ``on_prompt(view)`` is called with each prompt's view once it is replicated.
OnPrompt = Callable[[PromptView], None]


def view_of(store: VersionStorage, prompt_id: str) -> PromptView:
    """A consistent view of one prompt: the label history did not move while it was read."""
    for _ in range(VIEW_ATTEMPTS):
        before = store.label_history(prompt_id)
        numbers = store.list_version_numbers(prompt_id)
        trash = store.list_trash(prompt_id)
        if store.label_history(prompt_id) == before:
            return PromptView(prompt_id, before, numbers, trash)
    raise LabelHistoryDivergedError(
        f"the labels of {prompt_id!r} kept moving while they were read ({VIEW_ATTEMPTS} tries)",
        error_code="SYNC-BUSY",
        context={"prompt_id": prompt_id},
    )


def sync(
    source: VersionStorage,
    destination: VersionStorage,
    *,
    prompts: list[str] | None = None,
    on_prompt: OnPrompt | None = None,
    workers: int = WORKERS,
) -> SyncReport:
    """One pass: make ``destination`` hold what ``source`` holds (see the module docstring).

    Prompts are independent, so ``workers`` of them are replicated at once (the
    backends are thread-safe; an object store's latency is what this hides).
    """
    report = SyncReport()
    if prompts is None:
        prompts = sorted(set(source.list_held_prompts()) | set(destination.list_held_prompts()))
    lock = threading.Lock()

    def one(prompt_id: str) -> None:
        part = SyncReport()
        view = None
        try:
            view = view_of(source, prompt_id)
            sync_prompt(source, destination, view, part)
        except OptimizerError as exc:
            part.problems.append((prompt_id, f"{exc.message} [{exc.error_code}]"))
            view = None
        with lock:
            report.merge(part)
            if part.changes or part.problems:
                report.touched.add(prompt_id)
            if view is not None:
                report.prompts += 1
                if on_prompt is not None:
                    on_prompt(view)

    if workers <= 1:
        for prompt_id in prompts:
            one(prompt_id)
    else:
        with ThreadPoolExecutor(workers, thread_name_prefix="promptshelf-sync") as pool:
            list(pool.map(one, prompts))
    report.problems.sort()
    return report


def sync_prompt(
    source: VersionStorage, destination: VersionStorage, view: PromptView, report: SyncReport
) -> None:
    prompt_id = view.prompt_id
    theirs = set(view.trash)
    held = set(destination.list_version_numbers(prompt_id))
    held_trash = destination.list_trash(prompt_id)
    mine = set(held_trash)
    new_trash = theirs - mine
    live = set(view.versions)

    # 2. versions: restored ones first (the destination's newest trash copy is one the
    # source no longer has), then replaced ones (deleted and saved again), then new ones.
    newest_here = {e.version: e for e in sorted(held_trash, key=lambda e: e.deleted_at)}
    missing = []
    for number in view.versions:
        if number in held:
            if any(e.version == number for e in new_trash) and _differs(
                source, destination, prompt_id, number
            ):
                destination.purge_version(prompt_id, number)
                report.versions_replaced += 1
                missing.append(number)
            continue
        newest = newest_here.get(number)
        if newest is not None and newest not in theirs:
            destination.restore_version(prompt_id, number)
            mine.discard(newest)
            if not _differs(source, destination, prompt_id, number):
                report.versions_restored += 1
                continue
            destination.purge_version(prompt_id, number)  # saved again, not restored
            report.versions_replaced += 1
        missing.append(number)
    _copy(source, destination, prompt_id, missing, report)

    # 3. trash copies the destination lacks, verbatim
    if new_trash - mine:
        for item in source.read_trash(prompt_id):
            fresh = item.entry in new_trash and item.entry not in mine
            if fresh and destination.import_trashed(item):
                report.trash_copied += 1
                key = (prompt_id, item.entry.version, item.entry.deleted_at.isoformat())
                report.trash_digests[key] = digest(encode_version(item.version))

    # 4. the label history, in order
    if view.history:
        report.label_events_copied += destination.import_label_events(prompt_id, view.history)

    # 5. what the source deleted: live versions (their trash copy is in by now), trash copies
    for number in sorted(held - live):
        if destination.purge_version(prompt_id, number):
            report.versions_purged += 1
    for entry in sorted(mine - theirs, key=lambda e: e.deleted_at):
        if destination.purge_trashed(entry):
            report.trash_purged += 1


def _copy(
    source: VersionStorage,
    destination: VersionStorage,
    prompt_id: str,
    numbers: list[str],
    report: SyncReport,
) -> None:
    for start in range(0, len(numbers), BATCH):
        chunk = [source.get_version(prompt_id, n) for n in numbers[start : start + BATCH]]
        versions = [v for v in chunk if v is not None]
        if len(versions) < len(chunk):  # deleted since the view: it is in the next pass
            report.problems.append((prompt_id, "a version was deleted while it was copied"))
        for version in versions:
            report.digests[(prompt_id, version.version)] = digest(encode_version(version))
        try:
            report.versions_copied += destination.save_versions(versions)
        except VersionConflictError:  # some were there (a rerun of a killed pass)
            for version in versions:
                try:
                    destination.save_version(version)
                    report.versions_copied += 1
                except VersionConflictError:
                    if _differs(source, destination, prompt_id, version.version):
                        raise


def _differs(
    source: VersionStorage, destination: VersionStorage, prompt_id: str, number: str
) -> bool:
    a = source.get_version(prompt_id, number)
    b = destination.get_version(prompt_id, number)
    if a is None or b is None:
        return a is not b
    return encode_version(a) != encode_version(b)


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
