"""Backups: a snapshot of a store, taken while writers keep writing, with a manifest of SHA-256s.

A backup is itself a promptshelf store, so restoring is ``promptshelf migrate
BACKUP TARGET``. Where it goes:

* a directory: a filesystem store (the original layout);
* ``*.tar.gz`` / ``*.tgz``: that filesystem store packed; written to a temp
  file and renamed, so an interrupted backup leaves the previous archive;
* ``s3://bucket/prefix``: an S3 store.

Taking one is a sync (:mod:`promptshelf.replicate`) into the backup store
followed by a manifest, ``.backup/manifest-<UTC time>.json`` inside it: for
every prompt the SHA-256 of each version's canonical bytes, its labels, the
number and SHA-256 of its label events, and each trash copy with its deletion
time and SHA-256; the SHA-256 of every document; the watermark's times; and
the manifest's own SHA-256.

What "consistent" means (docs/operations.md says it for operators): the
backup holds the source as of its watermark, read before any body is copied
(see :mod:`promptshelf.replicate`). For every prompt, its versions, label
history and trash are exactly those of one moment inside the watermark's
window (the history did not move while the rest was read), so every label
points at a version in the backup and equals its history replayed; every
write acknowledged before the window opened is in; nothing begun after it
closed is, however long the copy takes. No promptshelf write spans two
prompts, so there is no invariant across prompts for the window to break.

A second backup into the same place is incremental: only prompts that
changed are read from the source, and only what changed is written; the new
manifest takes the unchanged prompts' entries from the previous one. What
the source deleted since is deleted in the backup too (the manifests of
earlier backups stay, for the record).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import semver
from .errors import ConfigurationError, CorruptStoreError, OptimizerError, StoreNotFoundError
from .migrate import read_documents
from .models import LabelEvent, labels_after
from .replicate import PromptView, SyncReport, sync
from .storage.base import VersionStorage
from .storage.codec import version_sha256
from .storage.documents import encode_document
from .storage.filesystem import FileSystemStorage
from .storage.filesystem import io as fsio
from .storage.opener import open_storage
from .timestamps import as_utc, parse, to_text, utc_now

FORMAT = "promptshelf-backup/1"
MANIFEST_DIR = ".backup"
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
ARCHIVE_TOP = "store"  # the folder inside an archive that holds the store


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def prompt_entry(store: VersionStorage, prompt_id: str) -> dict[str, Any]:
    """The manifest entry of one prompt, read from ``store``."""
    history = store.label_history(prompt_id)
    return {
        "versions": {v.version: version_sha256(v) for v in store.list_versions(prompt_id)},
        "labels": dict(sorted(store.list_labels(prompt_id).items())),
        "label_events": len(history),
        "label_history_sha256": history_sha256(history),
        "trash": [
            [t.entry.version, to_text(t.entry.deleted_at), version_sha256(t.version)]
            for t in store.read_trash(prompt_id)
        ],
    }


def document_digests(store: VersionStorage) -> dict[str, dict[str, str]]:
    """``{namespace: {key: SHA-256 of the data's canonical JSON}}`` of every document."""
    return {
        namespace: {key: sha256(encode_document(data)) for key, data in docs.items()}
        for namespace, docs in read_documents(store).items()
    }


def history_sha256(history: list[LabelEvent], *, as_read: bool = False) -> str:
    """SHA-256 of a label history, each event's time as UTC (``Z``), so one history hashes
    the same whichever backend it was read from. ``as_read``: the events as they were read
    (naive times without an offset), as manifests written before times were UTC hashed them."""
    if not as_read:
        history = [e.model_copy(update={"at": as_utc(e.at)}) for e in history]
    return sha256(b"\n".join(e.model_dump_json().encode() for e in history))


def seal(manifest: dict[str, Any]) -> bytes:
    body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return json.dumps(
        {**body, "manifest_sha256": sha256(canonical)}, sort_keys=True, indent=1, ensure_ascii=False
    ).encode("utf-8")


def unseal(data: bytes, where: str) -> dict[str, Any]:
    try:
        manifest = json.loads(data)
        body = {k: v for k, v in manifest.items() if k != "manifest_sha256"}
    except (ValueError, AttributeError) as exc:
        raise CorruptStoreError(f"backup manifest {where} is unreadable: {exc}") from None
    canonical = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
    if manifest.get("manifest_sha256") != sha256(canonical) or body.get("format") != FORMAT:
        raise CorruptStoreError(
            f"backup manifest {where} does not match its SHA-256 (or is not a {FORMAT} manifest)",
            error_code="BACKUP-CORRUPT",
            context={"path": where},
        )
    return body


# -- where manifests live --------------------------------------------------------------


class Manifests:
    """The ``.backup/`` folder of a backup store (a directory, or a prefix in S3)."""

    def __init__(self, store: VersionStorage) -> None:
        self.store = store

    def _s3(self) -> Any:
        from .storage.s3 import S3Storage

        return self.store if isinstance(self.store, S3Storage) else None

    def names(self) -> list[str]:
        s3 = self._s3()
        if s3 is not None:
            prefix = f"{s3.root}{MANIFEST_DIR}/"
            return sorted(k[len(prefix) :] for k in s3.bucket.keys(prefix))
        assert isinstance(self.store, FileSystemStorage)
        folder = Path(self.store.storage_dir) / MANIFEST_DIR
        return sorted(p.name for p in folder.glob("manifest-*.json")) if folder.is_dir() else []

    def read(self, name: str) -> dict[str, Any]:
        s3 = self._s3()
        if s3 is not None:
            key = f"{s3.root}{MANIFEST_DIR}/{name}"
            stored = s3.bucket.get(key)
            if stored is None:
                raise StoreNotFoundError(f"no backup manifest {name}", context={"key": key})
            return unseal(stored.data, s3.bucket.where(key))
        assert isinstance(self.store, FileSystemStorage)
        path = Path(self.store.storage_dir) / MANIFEST_DIR / name
        return unseal(path.read_bytes(), str(path))

    def write(self, name: str, data: bytes) -> None:
        s3 = self._s3()
        if s3 is not None:
            s3.bucket.put(f"{s3.root}{MANIFEST_DIR}/{name}", data, if_none_match=True)
            return
        assert isinstance(self.store, FileSystemStorage)
        folder = Path(self.store.storage_dir) / MANIFEST_DIR
        folder.mkdir(exist_ok=True)
        temp = folder / f".{name}.tmp"
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, folder / name)
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def latest(self) -> tuple[str, dict[str, Any]] | None:
        names = self.names()
        return None if not names else (names[-1], self.read(names[-1]))


# -- opening a destination --------------------------------------------------------------


def is_archive(target: str) -> bool:
    return target.lower().endswith(ARCHIVE_SUFFIXES) and "://" not in target


@contextlib.contextmanager
def backup_store(target: str, *, create: bool) -> Iterator[VersionStorage]:
    """The store a backup lives in; an archive is unpacked to a temp folder and, when
    ``create`` (writing a backup), packed again afterwards (only if the block succeeded)."""
    if not is_archive(target):
        if "://" in target and not target.startswith(("s3://", "file:")):
            raise ConfigurationError(
                "a backup goes to a directory, a .tar.gz file or an s3:// prefix",
                context={"target": target},
            )
        if not create and "://" not in target and not Path(target).is_dir():
            raise StoreNotFoundError(f"no backup at {target!r}", context={"target": target})
        store = (
            open_storage(target)
            if "://" in target
            else FileSystemStorage(target, durable=False)  # synced once, before the manifest
        )
        try:
            yield store
        finally:
            store.close()
        return
    archive = Path(target)
    with tempfile.TemporaryDirectory(prefix="promptshelf-backup-") as work:
        root = Path(work) / ARCHIVE_TOP
        if archive.exists():
            unpack(archive, Path(work))
        elif not create:
            raise StoreNotFoundError(f"no backup at {target!r}", context={"target": target})
        store = FileSystemStorage(root, durable=False)  # the archive is what is synced
        try:
            yield store
        finally:
            store.close()
        if create:
            pack(root, archive)


def unpack(archive: Path, into: Path) -> None:
    """Extract a backup archive: regular files and folders under ``store/`` only."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar.getmembers():
                name = member.name
                parts = Path(name).parts
                if (
                    not (member.isfile() or member.isdir())
                    or name.startswith("/")
                    or ".." in parts
                    or not parts
                    or parts[0] != ARCHIVE_TOP
                ):
                    raise CorruptStoreError(
                        f"{archive} holds {name!r}, which a backup never does",
                        error_code="BACKUP-CORRUPT",
                        context={"path": str(archive), "member": name},
                    )
            tar.extractall(into, filter="data")
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise CorruptStoreError(
            f"{archive} is not a readable backup archive: {exc}",
            error_code="BACKUP-CORRUPT",
            context={"path": str(archive)},
        ) from None


def pack(root: Path, archive: Path) -> None:
    """Write ``root`` as ``store/`` into ``archive`` via a temp file and a rename."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=f".{archive.name}.", dir=archive.parent)
    try:
        with os.fdopen(fd, "wb") as raw:
            with tarfile.open(fileobj=raw, mode="w:gz", compresslevel=6) as tar:
                tar.add(root, arcname=ARCHIVE_TOP)
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(temp, archive)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


# -- taking and checking a backup -----------------------------------------------------------


@dataclass
class BackupReport:
    target: str
    manifest: str
    previous: str | None
    sync: SyncReport
    totals: dict[str, int] = field(default_factory=dict)
    #: ``prompt_id version`` of each version found damaged in the backup and copied again
    damaged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.sync.ok

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "manifest": self.manifest,
            "previous": self.previous,
            "incremental": self.previous is not None,
            "totals": self.totals,
            "damaged_recopied": self.damaged,
            "changes": self.sync.to_dict(),
            "ok": self.ok,
        }


def take(source: VersionStorage, target: str, *, describe: str) -> BackupReport:
    """Back ``source`` up into ``target`` (incrementally if a backup is already there).

    A directory or archive backup is written without a sync per file; the whole
    filesystem is synced once before the manifest, the backup's commit point, is
    written (and synced). A backup without a manifest is not a backup.
    """
    started = utc_now()
    with backup_store(target, create=True) as store:
        manifests = Manifests(store)
        last = manifests.latest()
        previous: dict[str, Any] = last[1]["prompts"] if last else {}
        views: dict[str, PromptView] = {}
        known = last[1].get("checked_tokens", {}) if last else {}
        damaged, stuck, checked = drop_damaged(store, previous, known)
        report = sync(source, store, on_prompt=lambda view: views.__setitem__(view.prompt_id, view))
        report.problems.extend(stuck)
        if report.cleared:  # the source was emptied: nothing of the last backup is there
            previous = {}
        prompts: dict[str, Any] = {}
        for prompt_id in store.list_held_prompts():
            entry = _entry_from(views.get(prompt_id), previous.get(prompt_id), report)
            prompts[prompt_id] = entry if entry is not None else prompt_entry(store, prompt_id)
        totals = {
            "prompts": len(prompts),
            "versions": sum(len(p["versions"]) for p in prompts.values()),
            "label_events": sum(p["label_events"] for p in prompts.values()),
            "trash": sum(len(p["trash"]) for p in prompts.values()),
        }
        name = f"manifest-{started.strftime('%Y%m%dT%H%M%S.%fZ')}.json"
        manifest: dict[str, Any] = {
            "format": FORMAT,
            "started_at": started.isoformat(),
            "finished_at": utc_now().isoformat(),
            "source": describe,
            "previous": last[0] if last else None,
            "totals": totals,
            "changes": report.to_dict(),
            "prompts": prompts,
            "documents": document_digests(store),
            "checked_tokens": checked,
        }
        if report.watermark is not None:
            manifest["watermark"] = {
                "started_at": report.watermark.started_at.isoformat(),
                "finished_at": report.watermark.finished_at.isoformat(),
            }
        if not report.ok:
            manifest["incomplete"] = True
        if isinstance(store, FileSystemStorage):
            _sync_tree(store.storage_dir)
        manifests.write(name, seal(manifest))
    return BackupReport(target, name, last[0] if last else None, report, totals, damaged)


def drop_damaged(
    store: VersionStorage, previous: dict[str, Any], known: dict[str, dict[str, str]]
) -> tuple[list[str], list[tuple[str, str]], dict[str, dict[str, str]]]:
    """Before an incremental backup: every version the last manifest names is read back and
    checked against its SHA-256; one that is damaged (unreadable, or other bytes) is removed
    from the backup, so the sync copies it again from the source (a missing one it copies
    anyway). ``known``: the backup store's ``version_token`` of each version found intact
    by the last run (its manifest's ``checked_tokens``): an equal token is the same bytes,
    not read again (a filesystem backup; others are read every run). Returns ``prompt_id
    version`` of each one removed, ``(prompt_id, why)`` of each one that could not be (the
    backup then reports it and exits 1), and the tokens for the next run."""
    dropped: list[str] = []
    stuck: list[tuple[str, str]] = []
    checked: dict[str, dict[str, str]] = {}
    for prompt_id, entry in sorted(previous.items()):
        for number, want in sorted(entry.get("versions", {}).items()):
            token = store.version_token(prompt_id, number)
            mark = None if token is None else sha256(repr((token, want)).encode("utf-8"))[:32]
            if mark is not None and known.get(prompt_id, {}).get(number) == mark:
                checked.setdefault(prompt_id, {})[number] = mark
                continue
            try:
                held = store.get_version(prompt_id, number)  # after the token: never older
                if held is None:
                    continue
                if version_sha256(held) == want:
                    if mark is not None:
                        checked.setdefault(prompt_id, {})[number] = mark
                    continue
            except OptimizerError:
                pass  # unreadable: damaged
            try:
                store.purge_version(prompt_id, number)
            except OptimizerError as exc:
                why = f"{number} is damaged in the backup and could not be removed to be copied"
                stuck.append((prompt_id, f"{why} again: {exc.message} [BACKUP-CORRUPT]"))
                continue
            dropped.append(f"{prompt_id} {number}")
    return dropped, stuck, checked


def _entry_from(
    view: PromptView | None, before: dict[str, Any] | None, report: SyncReport
) -> dict[str, Any] | None:
    """A prompt's manifest entry from what the sync saw and copied plus the previous
    manifest, without reading the backup again; None when something is not known."""
    if view is None or view.prompt_id in {p for p, _ in report.problems}:
        return None
    pid = view.prompt_id
    old_versions: dict[str, str] = (before or {}).get("versions", {})
    old_trash = {(t[0], _when(t[1])): t[2] for t in (before or {}).get("trash", [])}
    versions: dict[str, str] = {}
    for number in view.versions:
        known = report.digests.get((pid, number)) or old_versions.get(number)
        if known is None:
            return None
        versions[number] = known
    trash = []
    for entry in sorted(view.trash, key=lambda e: (e.deleted_at, semver.parse(e.version))):
        when = to_text(entry.deleted_at)
        known = report.trash_digests.get((pid, entry.version, when))
        known = known or old_trash.get((entry.version, when))
        if known is None:
            return None
        trash.append([entry.version, when, known])
    return {
        "versions": versions,
        "labels": dict(sorted(labels_after(view.history).items())),
        "label_events": len(view.history),
        "label_history_sha256": history_sha256(view.history),
        "trash": trash,
    }


def _sync_tree(root: Path) -> None:
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fsio.sync_filesystem(fd)
    finally:
        os.close(fd)


@dataclass
class BackupCheck:
    target: str
    manifest: str | None = None
    checked_prompts: int = 0
    checked_versions: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems and self.manifest is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "manifest": self.manifest,
            "checked_prompts": self.checked_prompts,
            "checked_versions": self.checked_versions,
            "problems": self.problems,
            "ok": self.ok,
        }


def verify(target: str) -> BackupCheck:
    """Check the backup at ``target`` against its newest manifest, item by item."""
    check = BackupCheck(target)
    with backup_store(target, create=False) as store:
        last = Manifests(store).latest()
        if last is None:
            check.problems.append("no manifest: not a promptshelf backup (or never finished)")
            return check
        check.manifest, manifest = last
        if manifest.get("incomplete"):
            check.problems.append("the backup that wrote this manifest reported problems")
        if "documents" in manifest:
            held_docs = document_digests(store)
            if held_docs != manifest["documents"]:
                check.problems.append("the documents differ from the manifest")
        expected: dict[str, Any] = manifest["prompts"]
        for problem in store.verify().problems:
            check.problems.append(f"{problem.location}: {problem.message} [{problem.code}]")
        held = set(store.list_held_prompts())
        for prompt_id in sorted(held | set(expected)):
            check.checked_prompts += 1
            want = expected.get(prompt_id)
            if want is None:
                check.problems.append(f"{prompt_id}: in the backup but not in its manifest")
                continue
            try:
                have = prompt_entry(store, prompt_id)
            except OptimizerError as exc:
                check.problems.append(f"{prompt_id}: {exc.message} [{exc.error_code}]")
                continue
            check.checked_versions += len(have["versions"])
            legacy = history_sha256(store.label_history(prompt_id), as_read=True)
            check.problems.extend(_differences(prompt_id, want, have, legacy))
    return check


def _differences(
    prompt_id: str, want: dict[str, Any], have: dict[str, Any], legacy: str | None = None
) -> list[str]:
    """What differs between a manifest's entry and the backup; ``legacy``: the label history
    hashed as read (``history_sha256(as_read=True)``), which older manifests recorded."""
    found = []
    for number in sorted(set(want["versions"]) | set(have["versions"])):
        a, b = want["versions"].get(number), have["versions"].get(number)
        if a != b:
            why = (
                "missing"
                if b is None
                else "not in the manifest"
                if a is None
                else "SHA-256 differs"
            )
            found.append(f"{prompt_id} {number}: {why}")
    for key in ("labels", "label_events", "label_history_sha256"):
        if want[key] != have[key] and not (key == "label_history_sha256" and want[key] == legacy):
            found.append(f"{prompt_id}: {key.replace('_', ' ')} differ from the manifest")
    wanted = sorted((t[0], _when(t[1]), t[2]) for t in want["trash"])  # older manifests: naive
    if wanted != sorted(map(tuple, have["trash"])):
        found.append(f"{prompt_id}: the trash differs from the manifest")
    return found


def _when(text: str) -> str:
    """A manifest's deletion time as UTC text (older manifests hold naive ones: UTC)."""
    return to_text(parse(text))
