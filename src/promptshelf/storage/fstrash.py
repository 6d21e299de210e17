"""The filesystem backend's trash: ``<storage_dir>/.trash/<prompt_id>/<version>@<ns>.json``.

A delete renames the version file into the trash (one atomic rename, both
directories fsynced), so a deleted version is never half gone. ``<ns>`` is
the deletion time in nanoseconds, which orders several deletions of one
version number. ``.trash`` starts with a dot, so no reader of the layout
mistakes it for a prompt.
"""

from __future__ import annotations

import gzip
import os
import re
import shutil
import time
import zlib
from datetime import datetime

from ..errors import CorruptVersionError
from ..models import TrashEntry
from . import fsio

TRASH_DIR = ".trash"
QUARANTINE_DIR = ".quarantine"  # damaged files that repair() moved aside; never deleted
_ENTRY = re.compile(r"(?P<version>\d+\.\d+\.\d+)@(?P<ns>\d+)(?P<suffix>\.json(?:\.gz)?)")


def _trash_dir(root: str, prompt_id: str) -> str:
    return f"{root}/{TRASH_DIR}/{prompt_id}"


def move_in(
    root: str, prompt_id: str, dir_fd: int, name: str, durable: bool, top: str = TRASH_DIR
) -> str:
    """Move ``name`` (a file in the prompt directory ``dir_fd``) to the trash, or to another
    ``top`` such as the quarantine; the caller holds the prompt's lock. Returns the new path."""
    trash = f"{root}/{top}/{prompt_id}"
    root_fd = fsio.open_dir(root)
    try:
        fsio.make_dir(f"{root}/{top}", root_fd, durable)
    finally:
        fsio.close(root_fd)
    parent_fd = fsio.open_dir(f"{root}/{top}")
    try:
        fsio.make_dir(trash, parent_fd, durable)
    finally:
        fsio.close(parent_fd)
    cut = name.find(".json") if not name.startswith(".") else -1  # "1.0.0" + ".json(.gz)"
    stem, suffix = (name[:cut], name[cut:]) if cut > 0 else (name, "")
    new_name = f"{stem}@{time.time_ns()}{suffix}"
    trash_fd = fsio.open_dir(trash)
    try:
        fsio.rename(dir_fd, name, trash_fd, new_name)
        if durable:
            fsio.fsync(trash_fd)
            fsio.fsync(dir_fd)
    finally:
        fsio.close(trash_fd)
    return f"{trash}/{new_name}"


def _ns(moment: datetime) -> int:
    """The name's nanoseconds for a deletion time, so that ``entries`` reads it back equal."""
    return round(moment.timestamp() * 1_000_000) * 1000


def put(root: str, entry: TrashEntry, data: bytes, durable: bool) -> None:
    """Write ``data`` as the trashed copy ``entry`` describes (an imported trash entry);
    ``FileExistsError`` rather than overwrite."""
    root_fd = fsio.open_dir(root)
    try:
        fsio.make_dir(f"{root}/{TRASH_DIR}", root_fd, durable)
    finally:
        fsio.close(root_fd)
    parent_fd = fsio.open_dir(f"{root}/{TRASH_DIR}")
    try:
        fsio.make_dir(_trash_dir(root, entry.prompt_id), parent_fd, durable)
    finally:
        fsio.close(parent_fd)
    trash_fd = fsio.open_dir(_trash_dir(root, entry.prompt_id))
    try:
        staged = fsio.stage(trash_fd, data, durable)
        try:
            fsio.publish(staged, f"{entry.version}@{_ns(entry.deleted_at)}.json")
        finally:
            fsio.discard(staged)
        if durable:
            fsio.fsync(trash_fd)
    finally:
        fsio.close(trash_fd)


def read_copy(path: str, max_bytes: int) -> bytes:
    """The bytes of a trashed file, decompressed if it is a ``.gz``."""
    try:
        data, _ = fsio.read_file(path, max_bytes)
        return fsio.gunzip(data, max_bytes) if path.endswith(".gz") else data
    except (OverflowError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise CorruptVersionError(
            f"{path} in the trash is unreadable: {exc}", context={"path": path}
        ) from None


def entries(root: str, prompt_id: str | None) -> list[tuple[TrashEntry, str]]:
    """``(entry, path)`` for everything in the trash (of one prompt, or of all)."""
    base = f"{root}/{TRASH_DIR}"
    try:
        prompts = [prompt_id] if prompt_id is not None else sorted(os.listdir(base))
    except FileNotFoundError:
        return []
    found = []
    for pid in prompts:
        try:
            names = os.listdir(f"{base}/{pid}")
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            match = _ENTRY.fullmatch(name)
            if match:
                deleted = datetime.fromtimestamp(int(match["ns"]) / 1e9)
                entry = TrashEntry(prompt_id=pid, version=match["version"], deleted_at=deleted)
                found.append((entry, f"{base}/{pid}/{name}"))
    return found


def newest(root: str, prompt_id: str, version: str) -> str | None:
    """The file name of the most recent deletion of ``version``, if any."""
    best: tuple[int, str] | None = None
    try:
        names = os.listdir(_trash_dir(root, prompt_id))
    except FileNotFoundError:
        return None
    for name in names:
        match = _ENTRY.fullmatch(name)
        if match and match["version"] == version and (best is None or int(match["ns"]) > best[0]):
            best = (int(match["ns"]), name)
    return None if best is None else best[1]


def move_out(root: str, prompt_id: str, trash_name: str, dir_fd: int, durable: bool) -> str:
    """Link a trashed file back into the prompt directory (``FileExistsError`` rather than
    overwrite), then drop it from the trash; returns the restored file name."""
    version = trash_name.split("@", 1)[0]
    suffix = trash_name[trash_name.index(".json") :]
    restored = f"{version}{suffix}"
    trash_fd = fsio.open_dir(_trash_dir(root, prompt_id))
    try:
        os.link(trash_name, restored, src_dir_fd=trash_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
        fsio.unlink(trash_fd, trash_name)
        if durable:
            fsio.fsync(dir_fd)
            fsio.fsync(trash_fd)
    finally:
        fsio.close(trash_fd)
    return restored


def empty(root: str, cutoff: datetime | None) -> int:
    removed = 0
    for entry, path in entries(root, None):
        if cutoff is None or entry.deleted_at < cutoff:
            try:
                os.unlink(path)
                removed += 1
            except FileNotFoundError:
                pass
    try:
        prompt_dirs = os.listdir(f"{root}/{TRASH_DIR}")
    except FileNotFoundError:
        prompt_dirs = []
    for pid in prompt_dirs:
        try:
            os.rmdir(_trash_dir(root, pid))
        except OSError:
            pass  # not empty
    return removed


def remove(root: str, prompt_id: str, version: str, deleted_at: datetime, durable: bool) -> bool:
    """Remove the trash copy of ``version`` deleted at ``deleted_at``; True if it was there."""
    for entry, path in entries(root, prompt_id):
        if entry.version == version and entry.deleted_at == deleted_at:
            try:
                os.unlink(path)
            except FileNotFoundError:
                return False
            if durable:
                fd = fsio.open_dir(_trash_dir(root, prompt_id))
                try:
                    fsio.fsync(fd)
                finally:
                    fsio.close(fd)
            return True
    return False


def remove_all(root: str) -> None:
    shutil.rmtree(f"{root}/{TRASH_DIR}", ignore_errors=True)
