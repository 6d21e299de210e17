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

import gzip
import hashlib
import logging
import os
import time
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ..cache import LRUCache
from ..errors import (
    AtomicWriteError,
    ConfigurationError,
    CorruptVersionError,
    DeleteError,
    LabelInUseError,
    LoadError,
    LockTimeoutError,
    OptimizerError,
    SaveError,
    StorageError,
    StoreNotFoundError,
    VersionConflictError,
)
from ..models import LabelEvent, PromptVersion, TrashEntry
from . import fsbulk, fsio, fsmaintenance, fstrash, integrity
from .base import (
    MAX_VERSION_BYTES,
    TrashedVersion,
    VersionStorage,
    decode_version,
    encode_version,
    labels_blocking,
    missing_version,
    next_label_event,
    not_in_trash,
    trash_conflict,
)
from .fsdocuments import DocumentFiles
from .fsindex import (
    IndexEntry,
    IndexSnapshot,
    Listing,
    ListingCache,
    Stamp,
    file_names,
    iter_prompt_dirs,
    parse_listing,
    scan_prompt_dir,
    settled,
    stamp_of,
)
from .fsio import TEMP_PREFIX
from .fslabels import LABELS_FILE, LabelLogs
from .labelevents import events_to_import
from .verify import RepairReport, VerifyReport

log = logging.getLogger(__name__)

#: File identity a cached version was read from: a re-created file differs.
_Ident = tuple[int, int, int, int]


def _ident(st: os.stat_result) -> _Ident:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


@dataclass(frozen=True)
class _Cached:
    """Immutable bytes of a version, the file they came from and its directory's stamp."""

    ident: _Ident
    dir_stamp: Stamp | None
    data: bytes
    path: str  # the plain or the compressed file


class FileSystemStorage(VersionStorage):
    """The embedded default store: files on disk, no server, safe across processes."""

    backend_name = "filesystem"

    def __init__(
        self,
        storage_dir: str | os.PathLike[str] = "./promptshelf-data",
        use_index: bool = True,
        use_cache: bool = True,
        cache_size: int = 100,
        enable_sharding: bool = False,
        shard_depth: int = 2,
        *,
        durable: bool = True,
        lock_timeout: float = 10.0,
        create: bool = True,
        checksums: bool = True,
    ) -> None:
        """``checksums=False`` writes files exactly as the original implementation did (its
        strict model refuses the extra ``sha256`` key); every file is still read either way."""
        if not isinstance(shard_depth, int) or not 1 <= shard_depth <= 8:
            raise ConfigurationError(f"shard_depth must be an int from 1 to 8, got {shard_depth!r}")
        if lock_timeout < 0:
            raise ConfigurationError(f"lock_timeout must be >= 0, got {lock_timeout!r}")
        self.storage_dir = Path(storage_dir).absolute()
        self._root = str(self.storage_dir)
        self.use_index = use_index
        self.use_cache = use_cache
        self.enable_sharding = enable_sharding
        self.shard_depth = shard_depth
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.checksums = checksums
        if create:
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
        self._cache: LRUCache[_Cached] = LRUCache(cache_size if use_cache else 0)
        self._listings = ListingCache(enabled=use_index)
        self._snapshot = IndexSnapshot(self._root)
        self._labels_log = LabelLogs()
        self._documents = DocumentFiles(self._root, durable, lock_timeout)

    # -- paths ---------------------------------------------------------------

    def _shard_dir(self, prompt_id: str) -> str:
        digest = hashlib.sha256(prompt_id.encode("utf-8")).hexdigest()
        return f"{self._root}/{digest[: self.shard_depth]}"

    def _prompt_dir(self, prompt_id: str) -> str:
        if self.enable_sharding:
            return f"{self._shard_dir(prompt_id)}/{prompt_id}"
        return f"{self._root}/{prompt_id}"

    def _version_path(self, prompt_id: str, version: str) -> str:
        return f"{self._prompt_dir(prompt_id)}/{version}.json"

    # -- writing -------------------------------------------------------------

    def _file_bytes(self, version: PromptVersion) -> bytes:
        canonical = encode_version(version)
        return integrity.seal(canonical) if self.checksums else canonical

    def _open_prompt_dir(self, prompt_id: str, create: bool, sync_new: bool = True) -> int | None:
        """An fd of the prompt directory, creating it when asked.

        A new directory's entry is fsynced in its parent unless ``sync_new`` is
        False (a caller that syncs the whole filesystem afterwards).
        """
        path = self._prompt_dir(prompt_id)
        try:
            return fsio.open_dir(path)
        except FileNotFoundError:
            if not create:
                return None
        parent = self._shard_dir(prompt_id) if self.enable_sharding else self._root
        if self.enable_sharding and not os.path.isdir(parent):
            self._make_dir(parent, self._root, sync_new)
        self._make_dir(path, parent, sync_new)
        return fsio.open_dir(path)

    def _make_dir(self, path: str, parent: str, sync: bool) -> None:
        parent_fd = fsio.open_dir(parent)
        try:
            fsio.make_dir(path, parent_fd, self.durable and sync)
        finally:
            fsio.close(parent_fd)

    def _locked_prompt_dir(self, prompt_id: str, create: bool, sync_new: bool = True) -> int | None:
        """Open and lock the prompt directory; retries if ``clear_all`` removed it meanwhile.

        Any failure is a coded error: ``LockTimeoutError``, or ``StorageError``
        (``FS-DIR-001``) when the directory cannot be created or opened.
        """
        try:
            for _ in range(8):
                dir_fd = self._open_prompt_dir(prompt_id, create, sync_new)
                if dir_fd is None:
                    return None
                if not fsio.lock(dir_fd, self.lock_timeout):
                    fsio.close(dir_fd)
                    raise LockTimeoutError(
                        f"could not lock prompt {prompt_id!r} within {self.lock_timeout} s",
                        context={"prompt_id": prompt_id, "timeout": self.lock_timeout},
                    )
                if os.fstat(dir_fd).st_nlink > 0:
                    return dir_fd
                fsio.close(dir_fd)  # removed while we waited: open the new one
        except OptimizerError:
            raise
        except OSError as exc:
            raise StorageError(
                f"cannot open the directory of prompt {prompt_id!r}: {exc}",
                error_code="FS-DIR-001",
                context={"prompt_id": prompt_id, "errno": exc.errno},
            ) from exc
        raise StorageError(
            f"the directory of prompt {prompt_id!r} keeps disappearing", error_code="FS-DIR-001"
        )

    def _save(self, version: PromptVersion) -> None:
        data = self._file_bytes(version)
        prompt_id, number = version.prompt_id, version.version
        dir_fd = self._locked_prompt_dir(prompt_id, create=True)
        assert dir_fd is not None  # create=True never yields None
        try:
            self._publish(dir_fd, prompt_id, number, data)
            if fsio.uses_named_temps():  # only then can a killed writer have left one here
                try:
                    self._remove_temps(dir_fd, prompt_id)
                except OSError:
                    pass  # the save is done; a leftover is removed by the next writer
        finally:
            fsio.close(dir_fd)  # closing also releases the flock
        self._listings.forget(prompt_id)

    def _publish(self, dir_fd: int, prompt_id: str, number: str, data: bytes) -> None:
        context = {"prompt_id": prompt_id, "version": number, "path": self._prompt_dir(prompt_id)}
        if fsio.exists(dir_fd, f"{number}.json.gz"):  # compressed: it exists all the same
            raise VersionConflictError(prompt_id, number)
        try:
            staged = fsio.stage(dir_fd, data, self.durable)
            try:
                fsio.publish(staged, f"{number}.json")
            finally:
                fsio.discard(staged)
        except FileExistsError:
            raise VersionConflictError(prompt_id, number) from None
        except OSError as exc:
            raise AtomicWriteError(
                f"atomic write of {prompt_id!r} {number!r} failed: {exc}",
                context={**context, "errno": exc.errno},
            ) from exc
        if self.durable:
            try:
                fsio.fsync(dir_fd)
            except OSError as exc:
                # The file is whole and visible; only its durability is unknown.
                raise SaveError(
                    f"directory fsync failed after saving {prompt_id!r} {number!r}: {exc}",
                    context={**context, "errno": exc.errno, "state": "visible, durability unknown"},
                ) from exc

    def save_versions(self, versions: Iterable[PromptVersion]) -> int:
        """Save many versions: one lock per prompt, two filesystem syncs per round (see
        :func:`promptshelf.storage.fsbulk.save_versions` for what a failure midway leaves)."""
        return fsbulk.save_versions(self, versions)

    # -- reading -------------------------------------------------------------

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        cached = self._cache.get((prompt_id, version)) if self.use_cache else None
        return self._load(prompt_id, version, cached)

    def _load(self, prompt_id: str, version: str, cached: _Cached | None) -> PromptVersion | None:
        """A fresh object for one version: from ``cached`` if the file is unchanged, else read."""
        if cached is not None:
            try:
                st = os.stat(cached.path, follow_symlinks=False)
            except FileNotFoundError:
                st = None
            if st is not None and _ident(st) == cached.ident:
                return PromptVersion.model_validate_json(cached.data)
            self._cache.discard((prompt_id, version))
            self._cache.count_miss()
        dir_stamp = self._settled_dir_stamp(prompt_id) if self.use_cache else None
        path = self._version_path(prompt_id, version)
        context = {"prompt_id": prompt_id, "version": version, "path": path}
        try:
            try:
                data, st = fsio.read_file(path, MAX_VERSION_BYTES)
            except FileNotFoundError:
                path += ".gz"
                context["path"] = path
                data, st = fsio.read_file(path, MAX_VERSION_BYTES)
                data = fsio.gunzip(data, MAX_VERSION_BYTES)
        except FileNotFoundError:
            return None
        except OverflowError as exc:
            raise CorruptVersionError(
                f"{path} is {exc.args[0]} bytes or more; the limit is {MAX_VERSION_BYTES}",
                context={**context, "reason": "oversized"},
            ) from None
        except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
            raise CorruptVersionError(
                f"{path} is not valid gzip: {exc}", context={**context, "reason": "bad gzip"}
            ) from None
        except OSError as exc:
            raise LoadError(
                f"cannot read {path}: {exc}", context={**context, "errno": exc.errno}
            ) from exc
        data, _ = integrity.unseal(data, path)
        loaded = decode_version(data, prompt_id, version, path)
        if self.use_cache and settled(st, time.time_ns()):
            self._cache.put((prompt_id, version), _Cached(_ident(st), dir_stamp, data, path))
        return loaded

    def _settled_dir_stamp(self, prompt_id: str) -> Stamp | None:
        """The directory's stamp if it cannot change without the stamp changing too."""
        observed_at = time.time_ns()
        try:
            st = os.stat(self._prompt_dir(prompt_id))
        except FileNotFoundError:
            return None
        return stamp_of(st) if settled(st, observed_at) else None

    def _list(self, prompt_id: str) -> list[PromptVersion]:
        listing = self._listing(prompt_id)
        found = (self._get_listed(prompt_id, number, listing) for number in listing.versions)
        return [v for v in found if v is not None]

    def _get_latest(self, prompt_id: str) -> PromptVersion | None:
        listing = self._listing(prompt_id)
        for number in reversed(listing.versions):  # newest first; skip one deleted meanwhile
            found = self._get_listed(prompt_id, number, listing)
            if found is not None:
                return found
        return None

    def _get_listed(self, prompt_id: str, number: str, listing: Listing) -> PromptVersion | None:
        """Load a version named by ``listing``, which was taken a moment ago.

        While the directory's stamp is unchanged no file in it was replaced, so
        a cached version read under that same stamp needs no per-file stat.
        """
        cached = self._cache.get((prompt_id, number)) if self.use_cache else None
        if cached is not None and listing.trusted and cached.dir_stamp == listing.stamp:
            return PromptVersion.model_validate_json(cached.data)
        return self._load(prompt_id, number, cached)

    def _listing(self, prompt_id: str) -> Listing:
        return self._listings.listing(prompt_id, self._prompt_dir(prompt_id))[0]

    def _version_numbers(self, prompt_id: str) -> list[str]:
        return list(self._listing(prompt_id).versions)

    # -- deleting ------------------------------------------------------------

    def _delete(self, prompt_id: str, version: str, force: bool) -> bool:
        try:
            dir_fd = self._locked_prompt_dir(prompt_id, create=False)
            if dir_fd is None:
                return False
            try:
                names = _files_of(dir_fd, version)
                if not names:
                    return False
                prompt_dir = self._prompt_dir(prompt_id)
                removals = labels_blocking(
                    self._labels_log.read(prompt_dir), prompt_id, version, force
                )
                if removals:  # first: a crash must never leave a label on a deleted version
                    self._labels_log.append(dir_fd, removals, self.durable)
                for name in names:
                    fstrash.move_in(self._root, prompt_id, dir_fd, name, self.durable)
                removed = True
            finally:
                fsio.close(dir_fd)
        except (LockTimeoutError, LabelInUseError):
            raise
        except OSError as exc:
            raise DeleteError(
                f"cannot delete {prompt_id!r} {version!r}: {exc}",
                context={"prompt_id": prompt_id, "version": version, "errno": exc.errno},
            ) from exc
        finally:
            self._cache.discard((prompt_id, version))
            self._listings.forget(prompt_id)
        return removed

    # -- trash (see fstrash) ------------------------------------------------------

    def _trash_entries(self, prompt_id: str | None) -> list[TrashEntry]:
        return [entry for entry, _ in fstrash.entries(self._root, prompt_id)]

    def _restore(self, prompt_id: str, version: str) -> None:
        dir_fd = self._locked_prompt_dir(prompt_id, create=True)
        assert dir_fd is not None  # create=True never yields None
        try:
            trashed = fstrash.newest(self._root, prompt_id, version)
            if trashed is None:
                raise not_in_trash(prompt_id, version)
            if _files_of(dir_fd, version):
                raise VersionConflictError(prompt_id, version)
            try:
                fstrash.move_out(self._root, prompt_id, trashed, dir_fd, self.durable)
            except FileExistsError:
                raise VersionConflictError(prompt_id, version) from None
        finally:
            fsio.close(dir_fd)
            self._listings.forget(prompt_id)

    def _empty_trash(self, cutoff: datetime | None) -> int:
        return fstrash.empty(self._root, cutoff)

    def _purge(self, prompt_id: str, version: str, trashed_at: datetime | None) -> bool:
        if trashed_at is not None:
            return fstrash.remove(self._root, prompt_id, version, trashed_at, self.durable)
        dir_fd = self._locked_prompt_dir(prompt_id, create=False)
        if dir_fd is None:
            return False
        try:
            names = _files_of(dir_fd, version)
            if not names:
                return False
            labels_blocking(
                self._labels_log.read(self._prompt_dir(prompt_id)), prompt_id, version, False
            )
            for name in names:
                fsio.unlink(dir_fd, name)
            if self.durable:
                fsio.fsync(dir_fd)
            return True
        except OSError as exc:
            raise DeleteError(
                f"cannot purge {prompt_id!r} {version!r}: {exc}",
                context={"prompt_id": prompt_id, "version": version, "errno": exc.errno},
            ) from exc
        finally:
            fsio.close(dir_fd)
            self._cache.discard((prompt_id, version))
            self._listings.forget(prompt_id)

    def _read_trash(self, prompt_id: str | None) -> list[TrashedVersion]:
        found = []
        for entry, path in fstrash.entries(self._root, prompt_id):
            data, _ = integrity.unseal(fstrash.read_copy(path, MAX_VERSION_BYTES), path)
            version = decode_version(data, entry.prompt_id, entry.version, path)
            found.append(TrashedVersion(entry, version))
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
                fstrash.put(self._root, entry, data, self.durable)
                return True
            except FileExistsError:
                continue
        raise trash_conflict(entry)

    # -- labels (see fslabels) ----------------------------------------------------

    def _change_label(
        self,
        prompt_id: str,
        label: str,
        version: str | None,
        actor: str | None,
        reason: str | None,
    ) -> LabelEvent | None:
        dir_fd = self._locked_prompt_dir(prompt_id, create=False)
        if dir_fd is None:
            if version is None:
                return None
            raise missing_version(prompt_id, version)
        try:
            if version is not None and not _files_of(dir_fd, version):
                raise missing_version(prompt_id, version)
            events = self._labels_log.read(self._prompt_dir(prompt_id))
            event = next_label_event(events, prompt_id, label, version, actor, reason)
            if event is not None:
                self._labels_log.append(dir_fd, [event], self.durable)
            return event
        except OptimizerError:
            raise
        except OSError as exc:  # the event is absent, or whole but maybe not durable
            raise SaveError(
                f"label {label!r} of {prompt_id!r} could not be changed: {exc}",
                error_code="FS-LABEL-001",
                context={"prompt_id": prompt_id, "label": label, "errno": exc.errno},
            ) from exc
        finally:
            fsio.close(dir_fd)

    def _label_events(self, prompt_id: str) -> list[LabelEvent]:
        return self._labels_log.read(self._prompt_dir(prompt_id))

    def _history_prompts(self) -> list[str]:
        dirs = iter_prompt_dirs(self._root, self.enable_sharding, self.shard_depth)
        return [pid for pid, path in dirs if os.path.lexists(f"{path}/{LABELS_FILE}")]

    def _import_events(self, prompt_id: str, events: list[LabelEvent]) -> int:
        dir_fd = self._locked_prompt_dir(prompt_id, create=True)
        assert dir_fd is not None  # create=True never yields None
        try:
            existing = self._labels_log.read(self._prompt_dir(prompt_id))
            new = events_to_import(existing, events, lambda v: bool(_files_of(dir_fd, v)))
            if new:
                self._labels_log.append(dir_fd, new, self.durable)
            return len(new)
        except OptimizerError:
            raise
        except OSError as exc:  # the events are absent, or whole but maybe not durable
            raise SaveError(
                f"label history of {prompt_id!r} could not be imported: {exc}",
                error_code="FS-LABEL-001",
                context={"prompt_id": prompt_id, "errno": exc.errno},
            ) from exc
        finally:
            fsio.close(dir_fd)

    def _clear(self) -> None:
        for prompt_id, path in list(
            iter_prompt_dirs(self._root, self.enable_sharding, self.shard_depth)
        ):
            dir_fd = self._locked_prompt_dir(prompt_id, create=False)
            if dir_fd is None:
                continue
            try:
                for name in os.listdir(dir_fd):
                    if (
                        name.endswith(".json")
                        or name.startswith(TEMP_PREFIX)
                        or name == LABELS_FILE
                    ):
                        fsio.unlink(dir_fd, name)
                try:
                    os.rmdir(path)
                except OSError:
                    pass  # not empty: something we do not own lives there
            finally:
                fsio.close(dir_fd)
        if self.enable_sharding:
            for entry in os.scandir(self._root):
                if len(entry.name) == self.shard_depth and entry.is_dir(follow_symlinks=False):
                    try:
                        os.rmdir(entry.path)
                    except OSError:
                        pass
        self._snapshot.remove()
        fstrash.remove_all(self._root)
        self._cache.clear()
        self._listings.clear()

    # -- recovery, index, statistics -------------------------------------------

    def _clean_temps(self, prompt_id: str) -> int:
        """Remove temp files of dead writers, if no writer holds the prompt's lock now."""
        dir_fd = self._open_prompt_dir(prompt_id, create=False)
        if dir_fd is None:
            return 0
        try:
            if not fsio.try_lock(dir_fd):
                return 0  # a writer is active; it owns whatever temp file is there
            return len(self._remove_temps(dir_fd, prompt_id))
        finally:
            fsio.close(dir_fd)

    @staticmethod
    def _remove_temps(dir_fd: int, prompt_id: str) -> list[str]:
        """With the prompt's lock held, every temp file in it belongs to a dead writer;
        returns the names removed."""
        removed = [
            name
            for name in os.listdir(dir_fd)
            if name.startswith(TEMP_PREFIX) and fsio.unlink(dir_fd, name)
        ]
        if removed:
            log.info("removed %d stale temp file(s) of prompt %r", len(removed), prompt_id)
        return removed

    def _scan(
        self, use_snapshot: bool, clean: bool = False, write: bool = True
    ) -> tuple[dict[str, IndexEntry], int]:
        """Index entries of every prompt (reusing unchanged snapshot entries), and how many
        dead temp files were removed (only when ``clean``: reads change nothing)."""
        previous = (self._snapshot.load() or {}) if use_snapshot else {}
        entries: dict[str, IndexEntry] = {}
        cleaned = 0
        for prompt_id, path in iter_prompt_dirs(self._root, self.enable_sharding, self.shard_depth):
            entry, temps = scan_prompt_dir(path, previous.get(prompt_id))
            if temps and clean:
                cleaned += self._clean_temps(prompt_id)
            if entry is not None:
                entries[prompt_id] = entry
        changed = not use_snapshot or self._snapshot_changed(previous, entries)
        if write and self.use_index and changed:
            try:
                self._snapshot.write(entries, self._layout())
            except OSError as exc:  # a read-only store is still readable: the index is a cache
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

    def rebuild_index(self) -> dict[str, Any]:
        """Re-read every prompt directory, rewrite ``.index.json``, remove dead temp files."""
        self._check_open()
        self._listings.clear()
        entries, cleaned = self._scan(use_snapshot=False, clean=True)
        return {
            "total_prompts": len(entries),
            "total_versions": sum(e.count for e in entries.values()),
            "temp_files_removed": cleaned,
        }

    def _repair(self, report: RepairReport) -> None:
        fsmaintenance.repair(self, report)

    def compress(self, keep_recent: int = 10) -> int:
        """Store versions older than each prompt's newest ``keep_recent`` gzip-compressed;
        readers do not notice (see :func:`promptshelf.storage.fsmaintenance.compress`)."""
        return fsmaintenance.compress(self, keep_recent)

    def _verify_numbers(self, prompt_id: str) -> list[str]:
        try:
            return parse_listing(os.listdir(self._prompt_dir(prompt_id)))[0]
        except FileNotFoundError:
            return []

    def _verify_read(self, prompt_id: str, version: str) -> None:
        self._load(prompt_id, version, None)  # from the disk, whatever the cache holds

    def _verify_more(self, report: VerifyReport) -> None:
        fsmaintenance.verify_more(self, report)

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
            "index_file": self._snapshot.path if self.use_index else None,
            "enable_sharding": self.enable_sharding,
            "shard_depth": self.shard_depth,
            "durable": self.durable,
        }

    def _version_token(self, prompt_id: str, version: str) -> tuple[Any, ...] | None:
        """The plain file's identity once settled (a re-created file has another inode,
        and a change within the racy window is not vouched for)."""
        try:
            st = os.stat(self._version_path(prompt_id, version), follow_symlinks=False)
        except OSError:
            return None
        if not settled(st, time.time_ns()):
            return None
        return (self._root, prompt_id, version, *_ident(st))

    def _doc_get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        return self._documents.get(namespace, key)

    def _doc_list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        return self._documents.list(namespace)

    def _doc_put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        return self._documents.put(namespace, key, data, expected)

    def _doc_delete(self, namespace: str, key: str, expected: int | None) -> bool:
        return self._documents.delete(namespace, key, expected)

    def close(self) -> None:
        self._cache.clear()
        self._listings.clear()
        super().close()

    def __repr__(self) -> str:
        return f"FileSystemStorage({self._root!r}, sharding={self.enable_sharding})"


def _files_of(dir_fd: int, version: str) -> list[str]:
    """The files that hold ``version`` in a prompt directory: plain, compressed, or both."""
    return [name for name in file_names(version) if fsio.exists(dir_fd, name)]
