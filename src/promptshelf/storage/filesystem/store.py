"""``FileSystemStorage``: one JSON file per version, in the original layout.

A save is: lock the prompt directory (``flock`` on the directory itself, so
no lock files clutter the layout), write the version into a file that has no
name yet (Linux ``O_TMPFILE``; elsewhere a temp file created with ``O_EXCL``),
fsync it, ``link`` it as ``<version>.json`` (``link`` fails instead of
overwriting, so a version is written once), fsync the directory. Nothing
global is touched, so a save costs the same at any store size. Reads take no
lock: a version file appears whole or not at all.

What a crash can leave: with unnamed files, nothing; with temp files, only
those, which are never read as versions and are removed by the next process
that holds the prompt's lock (a live writer holds it for its temp file's whole
life, so none is ever taken from under it). A save that raised left the
version absent or whole, never partial.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ...cache import LRUCache
from ...copying import fresh_copy
from ...errors import (
    ConfigurationError,
    CorruptVersionError,
    LayoutMismatchError,
    StoreNotFoundError,
    SymlinkError,
    VersionConflictError,
)
from ...ids import validate_prompt_id
from ...models import LabelEvent, PromptVersion, TrashEntry
from ...progress import Progress, Tally
from .. import integrity
from ..base import (
    TrashedVersion,
    VersionStorage,
    missing_version,
    not_in_trash,
    trash_conflict,
)
from ..codec import MAX_VERSION_BYTES, decode_version, encode_version
from ..labelevents import check_expected, events_to_import, labels_blocking, next_label_event
from ..verify import RepairReport, VerifyReport
from . import bulk, io, maintenance, trash
from .documents import DocumentFiles
from .index import (
    RACY_NS,
    IndexEntry,
    Listing,
    ListingCache,
    Stamp,
    layout_on_disk,
    parse_listing,
    recorded_layout,
    scan_prompt_dir,
    settled,
    stamp_of,
)
from .labels import LABELS_FILE
from .tree import Tree, errors, read_version_file

log = logging.getLogger(__name__)

#: File identity a cached version was read from: a re-created file differs.
_Ident = tuple[int, int, int, int]


def _ident(st: os.stat_result) -> _Ident:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Cached:
    """A version as read, the file it came from and its directory's stamp.

    ``version`` is a private master no caller ever holds: a hit hands out
    :func:`fresh_copy` of it (a few µs), never the object, and never re-parses.
    """

    ident: _Ident
    dir_stamp: Stamp | None
    version: PromptVersion
    name: str  # the plain or the compressed file
    path: str  # its full path, stat'ed on every hit


class FileSystemStorage(VersionStorage):
    """The embedded default store: files on disk, no server, safe across processes."""

    backend_name = "filesystem"

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] = "./promptshelf-data",
        use_index: bool = True,
        use_cache: bool = True,
        cache_size: int = 100,
        enable_sharding: bool | None = None,
        shard_depth: int | None = None,
        *,
        durable: bool = True,
        lock_timeout: float = 10.0,
        create: bool = True,
        checksums: bool = True,
    ) -> None:
        """``enable_sharding``/``shard_depth`` left out (None) take the layout on disk
        (flat, depth 2, for a new store); given, they must match it (``FS-LAYOUT-001``
        otherwise: ``promptshelf reshard`` converts a store). ``checksums=False`` writes
        files exactly as the original implementation did (its strict model refuses the
        extra ``sha256`` key); every file is still read either way."""
        if shard_depth is not None and (
            not isinstance(shard_depth, int) or not 1 <= shard_depth <= 8
        ):
            raise ConfigurationError(f"shard_depth must be an int from 1 to 8, got {shard_depth!r}")
        if lock_timeout < 0:
            raise ConfigurationError(f"lock_timeout must be >= 0, got {lock_timeout!r}")
        self.storage_dir = Path(storage_dir).absolute()
        self._root = str(self.storage_dir)
        self.use_index = use_index
        self.use_cache = use_cache
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.checksums = checksums
        if create:
            with errors(f"create the store at {self._root!r}", "FS-DIR-001", path=self._root):
                self.storage_dir.mkdir(parents=True, exist_ok=True)
        elif not self.storage_dir.exists():
            raise StoreNotFoundError(
                f"no store at {self._root!r}", context={"storage_dir": self._root}
            )
        if not self.storage_dir.is_dir():
            raise ConfigurationError(
                f"storage_dir {self._root!r} is not a directory",
                error_code="FS-LOAD-002",
                context={"storage_dir": self._root},
            )
        self.enable_sharding, self.shard_depth = resolve_layout(
            self._root, enable_sharding, shard_depth
        )
        self._tree = Tree(self._root, self.enable_sharding, self.shard_depth, durable, lock_timeout)
        self._cache: LRUCache[_Cached] = LRUCache(cache_size if use_cache else 0)
        self._listings = ListingCache(enabled=use_index)
        self._label_paths: dict[str, str] = {}
        self._documents = DocumentFiles(self._root, durable, lock_timeout)

    # -- writing -------------------------------------------------------------

    def _file_bytes(self, version: PromptVersion) -> bytes:
        canonical = encode_version(version)
        return integrity.seal(canonical) if self.checksums else canonical

    def _save(self, version: PromptVersion) -> None:
        data = self._file_bytes(version)
        try:
            with self._tree.locked(version.prompt_id, create=True) as d:
                assert d is not None  # create=True never yields None
                d.publish(version.version, data)
                if io.uses_named_temps():  # only then can a killed writer have left one here
                    try:
                        self._log_temps(d.remove_temps(), version.prompt_id)
                    except OSError:
                        pass  # the save is done; a leftover is removed by the next writer
        finally:
            self._listings.forget(version.prompt_id)

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions: one lock per prompt, two filesystem syncs per round (see
        :func:`promptshelf.storage.filesystem.bulk.save_versions` for what a failure
        midway leaves)."""
        self._check_open()
        versions = self._refuse_retired_all(versions)
        try:
            return bulk.save_versions(self._tree, versions, self._file_bytes)
        finally:
            self._listings.clear()

    # -- reading -------------------------------------------------------------

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        cached = self._cache.get((prompt_id, version)) if self.use_cache else None
        return self._load(prompt_id, version, cached)

    def _load(self, prompt_id: str, version: str, cached: _Cached | None) -> PromptVersion | None:
        """A fresh object for one version: from ``cached`` if the file is unchanged, else read."""
        if cached is not None:
            # One stat by path: a file with the identity (inode, size, times) of the one
            # read through descriptors before holds the same bytes, so the cached copy is
            # served; anything else is read again, through descriptors, with O_NOFOLLOW.
            try:
                st: os.stat_result | None = os.stat(cached.path, follow_symlinks=False)
            except OSError:
                st = None
            if st is not None and _ident(st) == cached.ident:
                return fresh_copy(cached.version)
            self._cache.discard((prompt_id, version))
            self._cache.count_miss()
        path = self._tree.prompt_path(prompt_id)
        with (
            errors(f"read {prompt_id!r} {version!r}", "FS-LOAD-002", path=path),
            self._tree.opened(prompt_id) as fd,
        ):
            if fd is None:
                return None
            return self._load_at(fd, prompt_id, version)

    def _load_at(self, fd: int, prompt_id: str, version: str) -> PromptVersion | None:
        observed_at = time.time_ns()
        dir_st = io.fstat(fd)
        dir_stamp = stamp_of(dir_st) if settled(dir_st, observed_at) else None
        path = self._tree.prompt_path(prompt_id)
        for name in (f"{version}.json", f"{version}.json.gz"):
            try:
                loaded = read_version_file(fd, name, prompt_id, version, f"{path}/{name}")
            except FileNotFoundError:
                continue
            if self.use_cache and settled(loaded.stat, time.time_ns()):
                master = fresh_copy(loaded.version)  # the caller gets loaded.version
                entry = _Cached(_ident(loaded.stat), dir_stamp, master, name, f"{path}/{name}")
                self._cache.put((prompt_id, version), entry)
            return loaded.version
        return None

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        """Every readable version; a damaged one is skipped with a warning (``get_version``
        raises for it, ``verify`` reports it), so one bad file never hides the rest."""
        listing = self._listing(prompt_id)
        found = (self._readable(prompt_id, number, listing) for number in listing.versions)
        return [v for v in found if v is not None]

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        """The newest readable version (one deleted meanwhile, or damaged, is skipped)."""
        listing = self._listing(prompt_id)
        for number in reversed(listing.versions):
            found = self._readable(prompt_id, number, listing)
            if found is not None:
                return found
        return None

    def _readable(self, prompt_id: str, number: str, listing: Listing) -> PromptVersion | None:
        try:
            return self._get_listed(prompt_id, number, listing)
        except (CorruptVersionError, SymlinkError) as exc:
            log.warning("damaged version skipped: %s [%s]", exc.message, exc.error_code)
            return None

    def _get_listed(self, prompt_id: str, number: str, listing: Listing) -> PromptVersion | None:
        """Load a version named by ``listing``, which was taken a moment ago.

        While the directory's stamp is unchanged no file in it was replaced, so
        a cached version read under that same stamp needs no per-file stat.
        """
        cached = self._cache.get((prompt_id, number)) if self.use_cache else None
        if cached is not None and listing.trusted and cached.dir_stamp == listing.stamp:
            return fresh_copy(cached.version)
        return self._load(prompt_id, number, cached)

    def _listing(self, prompt_id: str) -> Listing:
        path = self._tree.prompt_path(prompt_id)
        cached = self._listings.cached(prompt_id, path)
        if cached is not None:
            return cached
        with (
            errors(f"list the versions of {prompt_id!r}", "FS-LOAD-002", path=path),
            self._tree.opened(prompt_id) as fd,
        ):
            return self._listings.listing(prompt_id, fd)[0]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        return list(self._listing(prompt_id).versions)

    # -- deleting ------------------------------------------------------------

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        context = {"prompt_id": prompt_id, "version": version}
        try:
            with (
                errors(f"delete {prompt_id!r} {version!r}", "FS-DELETE-001", **context),
                self._tree.locked(prompt_id) as d,
            ):
                if d is None:
                    return False
                names = d.files_of(version)
                if not names:
                    return False
                removals = labels_blocking(d.labels(), prompt_id, version, force)
                if removals:  # first: a crash must never leave a label on a deleted version
                    d.append_labels(removals)
                for name in names:
                    d.move_to(trash.TRASH_DIR, name)
                return True
        finally:
            self._cache.discard((prompt_id, version))
            self._listings.forget(prompt_id)

    # -- trash (see trash.py) ------------------------------------------------------

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        with errors("list the trash", "FS-LOAD-002", path=f"{self._root}/{trash.TRASH_DIR}"):
            root_fd = self._tree.open_root()
            try:
                return [entry for entry, _ in trash.entries(root_fd, prompt_id)]
            finally:
                io.close(root_fd)

    def _restore(self, prompt_id: str, version: str) -> None:
        context = {"prompt_id": prompt_id, "version": version}
        try:
            with (
                errors(f"restore {prompt_id!r} {version!r}", "FS-SAVE-001", **context),
                self._tree.locked(prompt_id, create=True) as d,
            ):
                assert d is not None  # create=True never yields None
                root_fd = self._tree.open_root()
                try:
                    trashed = trash.newest(root_fd, prompt_id, version)
                finally:
                    io.close(root_fd)
                if trashed is None:
                    raise not_in_trash(prompt_id, version)
                if d.files_of(version):
                    raise VersionConflictError(prompt_id, version)
                try:
                    d.restore(trashed)
                except FileExistsError:
                    raise VersionConflictError(prompt_id, version) from None
        finally:
            self._listings.forget(prompt_id)

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        context = {"prompt_id": prompt_id, "version": version}
        try:
            with errors(f"purge {prompt_id!r} {version!r}", "FS-DELETE-001", **context):
                if trashed_at is not None:
                    root_fd = self._tree.open_root()
                    try:
                        return trash.remove(root_fd, prompt_id, version, trashed_at, self.durable)
                    finally:
                        io.close(root_fd)
                with self._tree.locked(prompt_id) as d:
                    if d is None:
                        return False
                    names = d.files_of(version)
                    if not names:
                        return False
                    labels_blocking(d.labels(), prompt_id, version, False)
                    for name in names:
                        d.unlink(name)
                    if self.durable:
                        io.fsync(d.fd)
                    return True
        finally:
            self._cache.discard((prompt_id, version))
            self._listings.forget(prompt_id)

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        found = []
        with errors("read the trash", "FS-LOAD-002", path=f"{self._root}/{trash.TRASH_DIR}"):
            root_fd = self._tree.open_root()
            try:
                for entry, name in trash.entries(root_fd, prompt_id):
                    where = f"{self._root}/{trash.TRASH_DIR}/{entry.prompt_id}/{name}"
                    try:
                        raw = trash.read_copy(root_fd, entry.prompt_id, name, MAX_VERSION_BYTES)
                    except FileNotFoundError:  # emptied or restored since it was listed
                        continue
                    data, _ = integrity.unseal(raw, where)
                    version = decode_version(data, entry.prompt_id, entry.version, where)
                    found.append(TrashedVersion(entry, version))
            finally:
                io.close(root_fd)
        return found

    def _import_trashed(self, item: TrashedVersion) -> bool:
        entry = item.entry
        data = self._file_bytes(item.version)
        for _ in range(2):  # a second look if an identical import raced this one
            for held in self._read_trash(entry.prompt_id):
                if held.entry == entry:
                    if encode_version(held.version) != encode_version(item.version):
                        raise trash_conflict(entry)
                    return False
            try:
                with errors("import into the trash", "FS-SAVE-001", path=self._root):
                    root_fd = self._tree.open_root()
                    try:
                        trash.put(root_fd, entry, data, self.durable)
                    finally:
                        io.close(root_fd)
                return True
            except FileExistsError:
                continue
        raise trash_conflict(entry)

    def _empty_trash(self, cutoff: datetime | None) -> int:
        with errors("empty the trash", "FS-DELETE-001", path=f"{self._root}/{trash.TRASH_DIR}"):
            root_fd = self._tree.open_root()
            try:
                return trash.empty(root_fd, cutoff)
            finally:
                io.close(root_fd)

    # -- labels (see labels.py) ----------------------------------------------------

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
        context = {"prompt_id": prompt_id, "label": label}
        with (
            errors(f"change label {label!r} of {prompt_id!r}", "FS-LABEL-001", **context),
            self._tree.locked(prompt_id) as d,
        ):
            if d is None:
                check_expected((), prompt_id, label, expected_seq)
                if version is None:
                    return None
                raise missing_version(prompt_id, version)
            if version is not None and not d.files_of(version):
                raise missing_version(prompt_id, version)
            events = d.labels()
            check_expected(events, prompt_id, label, expected_seq)
            event = next_label_event(events, prompt_id, label, version, actor, reason)
            if event is not None:
                d.append_labels([event])
            return event

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        path = self._tree.prompt_path(prompt_id)
        with errors(f"read the labels of {prompt_id!r}", "FS-LOAD-002", path=path):
            return self._tree.label_events(prompt_id)

    def _history_prompts(self) -> list[str]:
        with errors("list label histories", "FS-LOAD-002", path=self._root):
            return [
                pid
                for pid, path in self._tree.prompt_dirs()
                if os.path.lexists(f"{path}/{LABELS_FILE}")
            ]

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        context = {"prompt_id": prompt_id}
        action = f"import the label history of {prompt_id!r}"
        with errors(action, "FS-LABEL-001", **context), self._tree.locked(prompt_id, True) as d:
            assert d is not None  # create=True never yields None
            new = events_to_import(d.labels(), events, lambda v: bool(d.files_of(v)))
            if new:
                d.append_labels(new)
            return len(new)

    def _clear(self) -> None:
        with errors("clear the store", "FS-DELETE-001", path=self._root):
            try:
                for prompt_id, _ in list(self._tree.prompt_dirs()):
                    self._clear_prompt(prompt_id)
                root_fd = self._tree.open_root()
                try:
                    if self.enable_sharding:
                        for name in io.listdir(root_fd):
                            shard = len(name) == self.shard_depth and not name.startswith(".")
                            if shard and io.is_dir_at(root_fd, name):
                                io.rmdir(root_fd, name)
                    self._tree.index.remove()
                    trash.remove_all(root_fd)
                finally:
                    io.close(root_fd)
            finally:
                self._cache.clear()
                self._listings.clear()

    def _clear_prompt(self, prompt_id: str) -> None:
        with self._tree.locked(prompt_id) as d:
            if d is None:
                return
            d.clear()
            parent_fd = self._tree.open_root()
            try:
                shard = self._tree.shard_of(prompt_id)
                if shard is None:
                    io.rmdir(parent_fd, prompt_id)  # kept if something we do not own is there
                else:
                    shard_fd = io.open_dir_at(parent_fd, shard)
                    try:
                        io.rmdir(shard_fd, prompt_id)
                    finally:
                        io.close(shard_fd)
            finally:
                io.close(parent_fd)

    # -- recovery, index, statistics -------------------------------------------

    @staticmethod
    def _log_temps(removed: list[str], prompt_id: str) -> list[str]:
        if removed:
            log.info("removed %d stale temp file(s) of prompt %r", len(removed), prompt_id)
        return removed

    def _clean_temps(self, prompt_id: str) -> int:
        """Remove temp files of dead writers, if no writer holds the prompt's lock now."""
        fd = self._tree.try_locked_fd(prompt_id)
        if fd is None:
            return 0  # a writer is active; it owns whatever temp file is there
        try:
            removed = [
                n for n in io.listdir(fd) if n.startswith(io.TEMP_PREFIX) and io.unlink(fd, n)
            ]
            return len(self._log_temps(removed, prompt_id))
        finally:
            io.close(fd)

    def _scan(
        self, use_snapshot: bool, clean: bool = False, write: bool = True, required: bool = False
    ) -> tuple[dict[str, IndexEntry], int]:
        """Index entries of every prompt (reusing unchanged snapshot entries), and how many
        dead temp files were removed (only when ``clean``: reads change nothing). The
        snapshot is rewritten if it changed; failing that raises only when ``required``."""
        previous = (self._tree.index.load() or {}) if use_snapshot else {}
        entries: dict[str, IndexEntry] = {}
        cleaned = 0
        for prompt_id, path in self._tree.prompt_dirs():
            entry, temps = scan_prompt_dir(path, previous.get(prompt_id))
            if temps and clean:
                cleaned += self._clean_temps(prompt_id)
            if entry is not None:
                entries[prompt_id] = entry
        changed = not use_snapshot or self._snapshot_changed(previous, entries)
        if write and self.use_index and changed:
            try:
                self._tree.index.write(entries, self._layout())
            except OSError as exc:  # a read-only store is still readable: the index is a cache
                if required:  # ... unless writing it is what was asked
                    raise
                log.debug("index snapshot not written: %s", exc)
        return entries, cleaned

    @staticmethod
    def _snapshot_changed(old: dict[str, IndexEntry], new: dict[str, IndexEntry]) -> bool:
        if old.keys() != new.keys():
            return True
        return any(old[p] is not new[p] or new[p].stamp is None for p in new)

    def _layout(self) -> dict[str, Any]:
        return {"enable_sharding": self.enable_sharding, "shard_depth": self.shard_depth}

    def _prompts(self) -> list[str]:
        entries, _ = self._scan(use_snapshot=self.use_index, write=False)  # a read writes nothing
        return sorted(entries)

    def rebuild_index(self, *, progress: Progress | None = None) -> dict[str, Any]:
        """Re-read every prompt directory, rewrite ``.index.json``, remove dead temp files."""
        self._check_open()
        self._listings.clear()
        with errors("rebuild the index", "FS-SAVE-001", path=self._root):
            entries, cleaned = self._scan(use_snapshot=False, clean=True, required=True)
        Tally(progress, sum(e.count for e in entries.values())).finish()
        return {
            "total_prompts": len(entries),
            "total_versions": sum(e.count for e in entries.values()),
            "temp_files_removed": cleaned,
        }

    def _repair(self, report: RepairReport, tally: Tally) -> None:
        try:
            with errors("repair the store", "FS-SAVE-001", path=self._root):
                maintenance.repair(self._tree, report, tally)
        finally:
            self._listings.clear()
            self._cache.clear()
        with errors("rebuild the index", "FS-SAVE-001", path=self._root):
            self._scan(use_snapshot=False, required=True)

    def compress(self, keep_recent: int = 10, *, progress: Progress | None = None) -> int:
        """Store versions older than each prompt's newest ``keep_recent`` gzip-compressed;
        readers do not notice (see :func:`promptshelf.storage.filesystem.maintenance.compress`).
        ``progress(done, total)`` counts the versions looked at."""
        self._check_open()
        tally = Tally(progress, self.get_storage_stats()["total_versions"] if progress else 0)
        try:
            with errors("compress the store", "FS-SAVE-001", path=self._root):
                done = maintenance.compress(self._tree, keep_recent, tally)
                tally.finish()
                return done
        finally:
            self._listings.clear()
            self._cache.clear()

    def _verify_numbers(self, prompt_id: str) -> list[str]:
        path = self._tree.prompt_path(prompt_id)
        with (
            errors(f"list the versions of {prompt_id!r}", "FS-LOAD-002", path=path),
            self._tree.opened(prompt_id) as fd,
        ):
            return [] if fd is None else parse_listing(io.listdir(fd))[0]

    def _verify_read(self, prompt_id: str, version: str) -> PromptVersion | None:
        return self._load(prompt_id, version, None)  # from the disk, whatever the cache holds

    def _verify_more(self, report: VerifyReport) -> None:
        with errors("verify the store", "FS-LOAD-002", path=self._root):
            maintenance.verify_more(self._tree, report)

    def get_storage_stats(self) -> dict[str, Any]:
        self._check_open()
        entries, _ = self._scan(use_snapshot=self.use_index)
        return {
            "backend": self.backend_name,
            "storage_dir": self._root,
            "total_prompts": len(entries),
            "total_versions": sum(e.count for e in entries.values()),
            "total_size_bytes": sum(e.size_bytes for e in entries.values()),
            "total_size_mb": round(sum(e.size_bytes for e in entries.values()) / 1_048_576, 3),
            "cache_stats": self._cache.stats(),
            "use_index": self.use_index,
            "use_cache": self.use_cache,
            "index_file": self._tree.index.path if self.use_index else None,
            "enable_sharding": self.enable_sharding,
            "shard_depth": self.shard_depth,
            "durable": self.durable,
        }

    def _version_token(self, prompt_id: str, version: str) -> tuple[Any, ...] | None:
        """The plain file's identity once settled (a re-created file has another inode,
        and a change within the racy window is not vouched for)."""
        try:
            path = f"{self._tree.prompt_path(prompt_id)}/{version}.json"
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        if not settled(st, time.time_ns()):
            return None
        return (self._root, prompt_id, version, *_ident(st))

    def label_token(self, prompt_id: str) -> Hashable | None:
        """:meth:`VersionStorage.label_token`: the label log's identity. The log is
        append-only, so every change grows it (a torn tail cut before an append is the one
        case of an equal size: the settled rule covers it). One ``lstat``, its path and id
        check kept per prompt (the server asks on every GET by label); a log in a symlinked
        place is the same file only if its device and inode say so."""
        path = self._label_paths.get(prompt_id)
        if path is None or self.closed:
            self._check_open()
            validate_prompt_id(prompt_id)
            path = f"{self._tree.prompt_path(prompt_id)}/{LABELS_FILE}"
            if len(self._label_paths) >= 100_000:
                self._label_paths.clear()
            self._label_paths[prompt_id] = path
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        mtime, ctime = st.st_mtime_ns, st.st_ctime_ns
        if time.time_ns() - (mtime if mtime > ctime else ctime) <= RACY_NS:  # see settled()
            return None
        return (st.st_dev, st.st_ino, st.st_size, mtime, ctime)

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        with errors("read a document", "FS-LOAD-002", namespace=namespace, key=key):
            return self._documents.get(namespace, key)

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        with errors("list documents", "FS-LOAD-002", namespace=namespace):
            return self._documents.list(namespace)

    def _doc_namespaces(self) -> list[str]:
        with errors("list document namespaces", "FS-LOAD-002"):
            return self._documents.namespaces()

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        with errors("write a document", "FS-SAVE-001", namespace=namespace, key=key):
            return self._documents.put(namespace, key, data, expected)

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        with errors("delete a document", "FS-DELETE-001", namespace=namespace, key=key):
            return self._documents.delete(namespace, key, expected)

    def close(self) -> None:
        self._cache.clear()
        self._listings.clear()
        super().close()

    def __repr__(self) -> str:
        return f"FileSystemStorage({self._root!r}, sharding={self.enable_sharding})"


def resolve_layout(
    root: str, enable_sharding: bool | None, shard_depth: int | None
) -> tuple[bool, int]:
    """The layout to open ``root`` with: what is on disk, checked against what was asked."""
    on_disk = layout_on_disk(root)
    if on_disk is None:  # no versions: what was asked, else what the index recorded
        recorded = recorded_layout(root)
        if enable_sharding is None and recorded is not None:
            enable_sharding = recorded[0]
            if recorded[0] and shard_depth is None:
                shard_depth = recorded[1]
        return bool(enable_sharding), shard_depth or 2
    sharded, depth = on_disk
    asked_sharding = sharded if enable_sharding is None else enable_sharding
    asked_depth = shard_depth if shard_depth is not None else (depth if sharded else 2)
    if asked_sharding != sharded or (sharded and asked_depth != depth):
        raise LayoutMismatchError(
            f"the store at {root!r} is {describe_layout(sharded, depth)} on disk, but was "
            f"opened as {describe_layout(asked_sharding, asked_depth)}; open it without "
            "layout options, or convert it with 'promptshelf reshard'",
            context={
                "storage_dir": root,
                "on_disk": {"enable_sharding": sharded, "shard_depth": depth if sharded else None},
                "requested": {"enable_sharding": asked_sharding, "shard_depth": asked_depth},
            },
        )
    return sharded, depth if sharded else asked_depth


def describe_layout(sharded: bool, depth: int) -> str:
    return f"sharded (shard depth {depth})" if sharded else "flat (not sharded)"
