"""The files of one store: its layout, its prompt directories and their locks.

:class:`Tree` is the one object that opens prompt directories. Every
directory below the root is opened relative to its parent's descriptor with
``O_NOFOLLOW`` (see :mod:`.io`), so a planted symlink is refused, never
followed. A writer works inside ``with tree.locked(prompt_id) as d:`` and
changes the directory only through the :class:`PromptDir` it gets:
``d.publish``, ``d.append_labels``, ``d.move_to(TRASH_DIR | QUARANTINE_DIR)``.

:func:`errors` is the backend's one translation of ``OSError`` into coded
errors, so the same failure always carries the same code, and
:func:`read_version_file` is the one reader of a version file (loads,
verify and repair all use it).
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ...errors import (
    AtomicWriteError,
    CorruptVersionError,
    DeleteError,
    LoadError,
    LockTimeoutError,
    OptimizerError,
    SaveError,
    StorageError,
    SymlinkError,
    VersionConflictError,
)
from ...models import LabelEvent, PromptVersion
from .. import integrity
from ..codec import MAX_VERSION_BYTES, decode_version
from . import io, trash
from .index import IndexSnapshot, file_names, iter_prompt_dirs
from .io import TEMP_PREFIX
from .labels import LABELS_FILE, LabelLogs

_CLASSES: dict[str, type[StorageError]] = {
    "FS-SAVE-001": SaveError,
    "FS-LABEL-001": SaveError,
    "FS-LOAD-002": LoadError,
    "FS-DELETE-001": DeleteError,
    "FS-ATOMIC-001": AtomicWriteError,
}


@contextmanager
def errors(action: str, code: str, **context: object) -> Iterator[None]:
    """Turn an ``OSError`` raised inside into the coded error for ``action``.

    A symlink inside the store (``ELOOP`` from :mod:`.io`) is always
    ``FS-SYMLINK-001``; promptshelf's own errors pass through unchanged.
    """
    try:
        yield
    except OptimizerError:
        raise
    except OSError as exc:
        where = exc.filename if exc.filename is not None else context.get("path")
        if exc.errno == errno.ELOOP:
            raise SymlinkError(
                f"cannot {action}: {where} is a symlink; the store never follows one",
                context={**context, "path": where, "errno": exc.errno},
            ) from None
        cls = _CLASSES.get(code, StorageError)
        raise cls(
            f"cannot {action}: {exc.strerror or exc}",
            error_code=code,
            context={**context, "errno": exc.errno},
        ) from exc


@dataclass(frozen=True)
class Loaded:
    """A version read from one file: the object, its canonical bytes, the file's stat."""

    version: PromptVersion
    canonical: bytes
    stat: os.stat_result


def read_version_file(dir_fd: int, name: str, prompt_id: str, number: str, where: str) -> Loaded:
    """Read, decompress, check and parse the version file ``name`` in ``dir_fd``.

    Damage is ``CorruptVersionError`` (with a ``reason``); ``FileNotFoundError``
    and other ``OSError`` (``ELOOP`` for a symlink) pass up to the caller.
    """
    context = {"prompt_id": prompt_id, "version": number, "path": where}
    try:
        data, st = io.read_file(dir_fd, name, MAX_VERSION_BYTES)
        if name.endswith(".gz"):
            data = io.gunzip(data, MAX_VERSION_BYTES)
    except OverflowError as exc:
        raise CorruptVersionError(
            f"{where} is {exc.args[0]} bytes or more; the limit is {MAX_VERSION_BYTES}",
            context={**context, "reason": "oversized"},
        ) from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptVersionError(
            f"{where} is not valid gzip: {exc}", context={**context, "reason": "bad gzip"}
        ) from None
    canonical, _ = integrity.unseal(data, where)
    return Loaded(decode_version(canonical, prompt_id, number, where), canonical, st)


class Tree:
    """A store's directories: where each prompt lives and how it is opened and locked."""

    def __init__(
        self, root: str, sharding: bool, shard_depth: int, durable: bool, lock_timeout: float
    ) -> None:
        self.root = root
        self.sharding = sharding
        self.shard_depth = shard_depth
        self.durable = durable
        self.lock_timeout = lock_timeout
        self.labels = LabelLogs()
        self.index = IndexSnapshot(root)

    # -- where things are -------------------------------------------------------

    def shard_of(self, prompt_id: str) -> str | None:
        if not self.sharding:
            return None
        return hashlib.sha256(prompt_id.encode("utf-8")).hexdigest()[: self.shard_depth]

    def prompt_path(self, prompt_id: str) -> str:
        shard = self.shard_of(prompt_id)
        return f"{self.root}/{prompt_id}" if shard is None else f"{self.root}/{shard}/{prompt_id}"

    def prompt_dirs(self) -> Iterator[tuple[str, str]]:
        """``(prompt_id, path)`` of every prompt directory (symlinks are never listed)."""
        return iter_prompt_dirs(self.root, self.sharding, self.shard_depth)

    def open_root(self) -> int:
        return io.open_root(self.root)

    # -- opening and locking -----------------------------------------------------

    def open_prompt_dir(
        self, prompt_id: str, create: bool = False, sync_new: bool = True
    ) -> int | None:
        """A descriptor of the prompt's directory (None if missing and not ``create``).

        Each component below the root is opened with ``O_NOFOLLOW``: ``ELOOP``
        for a symlink. A new directory's entry is fsynced in its parent unless
        ``sync_new`` is False (a caller that syncs the whole filesystem later).
        """
        if not self.sharding:
            # Flat: the prompt directory is the root's child, so one open of its full path
            # with O_NOFOLLOW (the root may be a symlink; the last component may not) is
            # the same check as open root + openat + close, in one system call instead of
            # three. Anything unusual (missing, a symlink, not a directory) takes the long
            # way below, which creates, diagnoses and refuses as before.
            try:
                return io.open_dir(f"{self.root}/{prompt_id}")
            except OSError:
                pass
        root_fd = io.open_root(self.root)
        try:
            shard = self.shard_of(prompt_id)
            if shard is None:
                return self._child(root_fd, prompt_id, create, sync_new)
            shard_fd = self._child(root_fd, shard, create, sync_new)
            if shard_fd is None:
                return None
            try:
                return self._child(shard_fd, prompt_id, create, sync_new)
            finally:
                io.close(shard_fd)
        finally:
            io.close(root_fd)

    def _child(self, parent_fd: int, name: str, create: bool, sync_new: bool) -> int | None:
        try:
            return io.open_dir_at(parent_fd, name)
        except FileNotFoundError:
            if not create:
                return None
        io.make_dir(parent_fd, name, self.durable and sync_new)
        return io.open_dir_at(parent_fd, name)

    @contextmanager
    def opened(self, prompt_id: str) -> Iterator[int | None]:
        """The prompt directory's descriptor, unlocked (for readers), or None if missing."""
        fd = self.open_prompt_dir(prompt_id)
        try:
            yield fd
        finally:
            if fd is not None:
                io.close(fd)

    @contextmanager
    def locked(
        self, prompt_id: str, create: bool = False, sync_new: bool = True
    ) -> Iterator[PromptDir | None]:
        """The prompt directory, locked for writing, or None if it is missing (and not
        ``create``). Failing to open or lock it is ``FS-DIR-001`` / ``FS-LOCK-001``."""
        fd = self._lock(prompt_id, create, sync_new)
        if fd is None:
            yield None
            return
        try:
            yield PromptDir(self, prompt_id, fd)
        finally:
            io.close(fd)  # closing also releases the flock

    def _lock(self, prompt_id: str, create: bool, sync_new: bool) -> int | None:
        """Open and lock the prompt directory; retries if ``clear_all`` removed it meanwhile."""
        path = self.prompt_path(prompt_id)
        with errors(f"open the directory of prompt {prompt_id!r}", "FS-DIR-001", path=path):
            for _ in range(8):
                fd = self.open_prompt_dir(prompt_id, create, sync_new)
                if fd is None:
                    return None
                try:
                    if not io.lock(fd, self.lock_timeout):
                        raise LockTimeoutError(
                            f"could not lock prompt {prompt_id!r} within {self.lock_timeout} s",
                            context={"prompt_id": prompt_id, "timeout": self.lock_timeout},
                        )
                    if io.fstat(fd).st_nlink > 0:
                        return fd
                except BaseException:
                    io.close(fd)
                    raise
                io.close(fd)  # removed while we waited: open the new one
        raise StorageError(
            f"the directory of prompt {prompt_id!r} keeps disappearing", error_code="FS-DIR-001"
        )

    def try_locked_fd(self, prompt_id: str) -> int | None:
        """The prompt directory opened and locked if no writer holds it now, else None."""
        fd = self.open_prompt_dir(prompt_id)
        if fd is None:
            return None
        try:
            if io.try_lock(fd):
                return fd
        except BaseException:
            io.close(fd)
            raise
        io.close(fd)
        return None

    # -- reading without a lock --------------------------------------------------

    def label_events(self, prompt_id: str) -> list[LabelEvent]:
        with self.opened(prompt_id) as fd:
            return [] if fd is None else self.labels.read(fd, self.prompt_path(prompt_id))


@dataclass
class PromptDir:
    """A prompt directory this process holds locked: every change to it goes through here."""

    tree: Tree
    prompt_id: str
    fd: int

    @property
    def path(self) -> str:
        return self.tree.prompt_path(self.prompt_id)

    def names(self) -> list[str]:
        return io.listdir(self.fd)

    def files_of(self, version: str) -> list[str]:
        """The files that hold ``version``: plain, compressed, or both."""
        return [name for name in file_names(version) if io.exists(self.fd, name)]

    def read(self, name: str, number: str) -> Loaded:
        return read_version_file(self.fd, name, self.prompt_id, number, f"{self.path}/{name}")

    def publish(self, number: str, data: bytes) -> None:
        """Write ``data`` as version ``number``, once: ``VersionConflictError`` if it exists."""
        context = {"prompt_id": self.prompt_id, "version": number, "path": self.path}
        if io.exists(self.fd, f"{number}.json.gz"):  # compressed: it exists all the same
            raise VersionConflictError(self.prompt_id, number)
        with errors(f"write {self.prompt_id!r} {number!r} atomically", "FS-ATOMIC-001", **context):
            staged = io.stage(self.fd, data, self.tree.durable)
            try:
                io.publish(staged, f"{number}.json")
            except FileExistsError:
                raise VersionConflictError(self.prompt_id, number) from None
            finally:
                io.discard(staged)
        if self.tree.durable:
            try:
                io.fsync(self.fd)
            except OSError as exc:
                # The file is whole and visible; only its durability is unknown.
                raise SaveError(
                    f"directory fsync failed after saving {self.prompt_id!r} {number!r}: {exc}",
                    context={**context, "errno": exc.errno, "state": "visible, durability unknown"},
                ) from exc

    def labels(self) -> list[LabelEvent]:
        return self.tree.labels.read(self.fd, self.path)

    def append_labels(self, events: list[LabelEvent]) -> None:
        self.tree.labels.append(self.fd, events, self.tree.durable)

    def move_to(self, top: str, name: str) -> str:
        """Move ``name`` into ``top`` (``trash.TRASH_DIR`` or ``trash.QUARANTINE_DIR``);
        returns its new path. A symlink moves as itself: its target is never touched."""
        root_fd = self.tree.open_root()
        try:
            moved = trash.move_in(root_fd, self.prompt_id, self.fd, name, self.tree.durable, top)
        finally:
            io.close(root_fd)
        return f"{self.tree.root}/{moved}"

    def restore(self, trash_name: str) -> str:
        """Link a trashed file back (``FileExistsError`` rather than overwrite)."""
        root_fd = self.tree.open_root()
        try:
            return trash.move_out(root_fd, self.prompt_id, trash_name, self.fd, self.tree.durable)
        finally:
            io.close(root_fd)

    def unlink(self, name: str) -> bool:
        return io.unlink(self.fd, name)

    def remove_temps(self) -> list[str]:
        """With the lock held, every temp file here belongs to a dead writer: remove them."""
        return [n for n in self.names() if n.startswith(TEMP_PREFIX) and io.unlink(self.fd, n)]

    def clear(self) -> None:
        """Remove what the store owns here (versions, temp files, the label log)."""
        for name in self.names():
            if (
                name.endswith((".json", ".json.gz"))
                or name.startswith(TEMP_PREFIX)
                or name == LABELS_FILE
            ):
                io.unlink(self.fd, name)
