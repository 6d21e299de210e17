"""The filesystem backend's trash: ``<storage_dir>/.trash/<prompt_id>/<version>@<ns>.json``.

A delete renames the version file into the trash (one atomic rename, both
directories fsynced), so a deleted version is never half gone. ``<ns>`` is
the deletion time in nanoseconds, which orders several deletions of one
version number. ``.trash`` starts with a dot, so no reader of the layout
mistakes it for a prompt. ``repair()`` moves damaged files the same way into
``.quarantine``, which nothing ever empties.

Every directory here is opened from the root's descriptor with
``O_NOFOLLOW`` (:mod:`.io`): a symlinked ``.trash`` or ``.trash/<prompt>``
is refused with ``ELOOP``, and emptying unlinks names, never their targets.
"""

from __future__ import annotations

import gzip
import re
import time
import zlib
from datetime import datetime

from ...errors import CorruptVersionError
from ...models import TrashEntry
from ...timestamps import from_ns, to_ns
from . import io

TRASH_DIR = ".trash"
QUARANTINE_DIR = ".quarantine"  # damaged files that repair() moved aside; never deleted
_ENTRY = re.compile(r"(?P<version>\d+\.\d+\.\d+)@(?P<ns>\d+)(?P<suffix>\.json(?:\.gz)?)")


def _open(parent_fd: int, name: str, create: bool, durable: bool) -> int | None:
    if create:
        io.make_dir(parent_fd, name, durable)
    try:
        return io.open_dir_at(parent_fd, name)
    except FileNotFoundError:
        return None


def _open_prompt(root_fd: int, prompt_id: str, create: bool, durable: bool, top: str) -> int | None:
    top_fd = _open(root_fd, top, create, durable)
    if top_fd is None:
        return None
    try:
        return _open(top_fd, prompt_id, create, durable)
    finally:
        io.close(top_fd)


def open_prompt_dir(root_fd: int, prompt_id: str, durable: bool, top: str) -> int:
    """The prompt's folder under ``top`` (the trash or the quarantine), created if need be."""
    for _ in range(100):  # emptying the trash removes empty folders: create them again
        found = _open_prompt(root_fd, prompt_id, True, durable, top)
        if found is not None:
            return found
    raise FileNotFoundError(f"{top}/{prompt_id} kept vanishing while it was created")


def move_in(
    root_fd: int, prompt_id: str, dir_fd: int, name: str, durable: bool, top: str = TRASH_DIR
) -> str:
    """Move ``name`` (a file in the prompt directory ``dir_fd``) to the trash, or to another
    ``top`` such as the quarantine; the caller holds the prompt's lock. Returns the new path
    relative to the root."""
    trash_fd = None
    for _ in range(100):  # emptying the trash removes empty folders: create them again
        trash_fd = _open_prompt(root_fd, prompt_id, True, durable, top)
        if trash_fd is not None:
            break
    if trash_fd is None:
        raise FileNotFoundError(f"{top}/{prompt_id} kept vanishing while it was created")
    cut = name.find(".json") if not name.startswith(".") else -1  # "1.0.0" + ".json(.gz)"
    stem, suffix = (name[:cut], name[cut:]) if cut > 0 else (name, "")
    new_name = f"{stem}@{time.time_ns()}{suffix}"
    try:
        io.rename(dir_fd, name, trash_fd, new_name)
        if durable:
            io.fsync(trash_fd)
            io.fsync(dir_fd)
    finally:
        io.close(trash_fd)
    return f"{top}/{prompt_id}/{new_name}"


def _ns(moment: datetime) -> int:
    """The name's nanoseconds for a deletion time, so that ``entries`` reads it back equal."""
    return to_ns(moment)


def put(root_fd: int, entry: TrashEntry, data: bytes, durable: bool) -> None:
    """Write ``data`` as the trashed copy ``entry`` describes (an imported trash entry);
    ``FileExistsError`` rather than overwrite."""
    trash_fd = _open_prompt(root_fd, entry.prompt_id, True, durable, TRASH_DIR)
    assert trash_fd is not None  # created above
    try:
        staged = io.stage(trash_fd, data, durable)
        try:
            io.publish(staged, f"{entry.version}@{_ns(entry.deleted_at)}.json")
        finally:
            io.discard(staged)
        if durable:
            io.fsync(trash_fd)
    finally:
        io.close(trash_fd)


def read_copy(root_fd: int, prompt_id: str, name: str, max_bytes: int) -> bytes:
    """The bytes of a trashed file, decompressed if it is a ``.gz`` (``ELOOP`` if it is a
    symlink)."""
    where = f"{TRASH_DIR}/{prompt_id}/{name}"
    fd = _open_prompt(root_fd, prompt_id, False, False, TRASH_DIR)
    if fd is None:
        raise FileNotFoundError(where)
    try:
        data, _ = io.read_file(fd, name, max_bytes)
        return io.gunzip(data, max_bytes) if name.endswith(".gz") else data
    except (OverflowError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptVersionError(
            f"{where} in the trash is unreadable: {exc}", context={"path": where}
        ) from None
    finally:
        io.close(fd)


def _names(root_fd: int, prompt_id: str) -> list[str]:
    fd = _open_prompt(root_fd, prompt_id, False, False, TRASH_DIR)
    if fd is None:
        return []
    try:
        return io.listdir(fd)
    finally:
        io.close(fd)


def _prompts(root_fd: int) -> list[str]:
    top_fd = _open(root_fd, TRASH_DIR, False, False)
    if top_fd is None:
        return []
    try:
        return sorted(io.listdir(top_fd))
    finally:
        io.close(top_fd)


def entries(root_fd: int, prompt_id: str | None) -> list[tuple[TrashEntry, str]]:
    """``(entry, file name)`` for everything in the trash (of one prompt, or of all)."""
    found = []
    for pid in [prompt_id] if prompt_id is not None else _prompts(root_fd):
        try:
            names = _names(root_fd, pid)
        except NotADirectoryError:
            continue  # a stray file, not a prompt's trash
        for name in names:
            match = _ENTRY.fullmatch(name)
            if match:
                deleted = from_ns(int(match["ns"]))
                entry = TrashEntry(prompt_id=pid, version=match["version"], deleted_at=deleted)
                found.append((entry, name))
    return found


def newest(root_fd: int, prompt_id: str, version: str) -> str | None:
    """The file name of the most recent deletion of ``version``, if any."""
    best: tuple[int, str] | None = None
    for name in _names(root_fd, prompt_id):
        match = _ENTRY.fullmatch(name)
        if match and match["version"] == version and (best is None or int(match["ns"]) > best[0]):
            best = (int(match["ns"]), name)
    return None if best is None else best[1]


def move_out(root_fd: int, prompt_id: str, trash_name: str, dir_fd: int, durable: bool) -> str:
    """Link a trashed file back into the prompt directory (``FileExistsError`` rather than
    overwrite), then drop it from the trash; returns the restored file name."""
    version = trash_name.split("@", 1)[0]
    suffix = trash_name[trash_name.index(".json") :]
    restored = f"{version}{suffix}"
    trash_fd = _open_prompt(root_fd, prompt_id, False, False, TRASH_DIR)
    if trash_fd is None:
        raise FileNotFoundError(trash_name)
    try:
        io.link_between(trash_fd, trash_name, dir_fd, restored)
        if durable:
            io.fsync(dir_fd)
        io.unlink(trash_fd, trash_name)
        if durable:
            io.fsync(trash_fd)
    finally:
        io.close(trash_fd)
    return restored


def empty(root_fd: int, cutoff: datetime | None) -> int:
    """Delete for good what was deleted before ``cutoff`` (everything if None)."""
    removed = 0
    for pid in _prompts(root_fd):
        try:
            fd = _open_prompt(root_fd, pid, False, False, TRASH_DIR)
        except NotADirectoryError:
            continue  # a stray file, not a prompt's trash
        if fd is None:
            continue
        try:
            for name in io.listdir(fd):
                match = _ENTRY.fullmatch(name)
                if match is None:
                    continue
                deleted = from_ns(int(match["ns"]))
                if (cutoff is None or deleted < cutoff) and io.unlink(fd, name):
                    removed += 1
        finally:
            io.close(fd)
        top_fd = _open(root_fd, TRASH_DIR, False, False)
        if top_fd is not None:
            try:
                io.rmdir(top_fd, pid)  # only if now empty
            finally:
                io.close(top_fd)
    return removed


def remove(root_fd: int, prompt_id: str, version: str, deleted_at: datetime, durable: bool) -> bool:
    """Remove the trash copy of ``version`` deleted at ``deleted_at``; True if it was there."""
    for entry, name in entries(root_fd, prompt_id):
        if entry.version == version and entry.deleted_at == deleted_at:
            fd = _open_prompt(root_fd, prompt_id, False, False, TRASH_DIR)
            if fd is None:
                return False
            try:
                if not io.unlink(fd, name):
                    return False
                if durable:
                    io.fsync(fd)
            finally:
                io.close(fd)
            return True
    return False


def remove_all(root_fd: int) -> None:
    io.remove_tree(root_fd, TRASH_DIR)
