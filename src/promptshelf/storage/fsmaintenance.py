"""Maintenance of the filesystem backend: verify's extra checks, repair, compression.

Every step holds the prompt's lock and is one rename, link or unlink, so an
interrupted run leaves a state the next run finishes from.
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from typing import TYPE_CHECKING

from ..errors import ConfigurationError, CorruptStoreError, CorruptVersionError
from . import fsio, fstrash, integrity
from .base import MAX_VERSION_BYTES, decode_version, labels_blocking
from .fsindex import file_names, iter_prompt_dirs, parse_listing, stamp_of
from .fslabels import LABELS_FILE
from .verify import Action, Problem, RepairReport, VerifyReport

if TYPE_CHECKING:
    from .filesystem import FileSystemStorage


def repair(store: FileSystemStorage, report: RepairReport) -> None:
    found = VerifyReport(store.backend_name)
    verify_more(store, found)
    for prompt_id, path in list(
        iter_prompt_dirs(store._root, store.enable_sharding, store.shard_depth)
    ):
        dir_fd = store._locked_prompt_dir(prompt_id, create=False)
        if dir_fd is None:
            continue
        try:
            _repair_prompt(store, prompt_id, path, dir_fd, report)
        finally:
            fsio.close(dir_fd)
    for problem in found.problems:
        if problem.code.startswith("INDEX-"):
            report.actions.append(Action(problem.code, problem.location, "index rebuilt"))
    store._listings.clear()
    store._cache.clear()
    store._scan(use_snapshot=False)


def _repair_prompt(
    store: FileSystemStorage, prompt_id: str, path: str, dir_fd: int, report: RepairReport
) -> None:
    """With the prompt's lock held: temp files out, damaged files into the quarantine."""
    for name in store._remove_temps(dir_fd, prompt_id):
        report.actions.append(Action("TEMP-FILE", f"{path}/{name}", "removed"))
    try:
        store._labels_log.read(path)
    except CorruptStoreError as exc:
        moved = fstrash.move_in(
            store._root, prompt_id, dir_fd, LABELS_FILE, store.durable, fstrash.QUARANTINE_DIR
        )
        report.actions.append(Action(exc.error_code, f"{path}/{LABELS_FILE}", f"moved to {moved}"))
    names = set(os.listdir(dir_fd))
    for number in parse_listing(names)[0]:
        for name in (n for n in file_names(number) if n in names):
            damage = _damage(prompt_id, number, f"{path}/{name}")
            if damage is not None:
                moved = fstrash.move_in(
                    store._root, prompt_id, dir_fd, name, store.durable, fstrash.QUARANTINE_DIR
                )
                report.actions.append(
                    Action(damage.error_code, f"{path}/{name}", f"moved to {moved}")
                )
        plain, packed = file_names(number)
        left = [n for n in (plain, packed) if fsio.exists(dir_fd, n)]  # after quarantining
        if len(left) == 2:  # compress() was interrupted: both are intact, keep the plain one
            fsio.unlink(dir_fd, packed)
            report.actions.append(Action("DUPLICATE", f"{path}/{packed}", "removed"))
        elif not left:  # no intact copy is left: labels on it would dangle
            removals = labels_blocking(store._labels_log.read(path), prompt_id, number, force=True)
            if removals:
                store._labels_log.append(dir_fd, removals, store.durable)
    store._cache.clear()
    store._listings.forget(prompt_id)


def _damage(prompt_id: str, number: str, path: str) -> CorruptVersionError | None:
    """Why the file at ``path`` does not read back as version ``number``, if it does not."""
    try:
        data, _ = fsio.read_file(path, MAX_VERSION_BYTES)
        if path.endswith(".gz"):
            data = fsio.gunzip(data, MAX_VERSION_BYTES)
        decode_version(integrity.unseal(data, path)[0], prompt_id, number, path)
    except CorruptVersionError as exc:
        return exc
    except (OverflowError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        return CorruptVersionError(f"{path} cannot be read back: {exc}", context={"path": path})
    return None


def compress(store: FileSystemStorage, keep_recent: int = 10) -> int:
    """Store every version older than each prompt's newest ``keep_recent`` gzip-compressed
    (``1.0.0.json.gz``); readers do not notice. Returns how many files were compressed.

    Each file is compressed, published, synced, and only then is the plain file
    removed: an interruption leaves both (identical content), which reads
    correctly and which ``repair()`` tidies.
    """
    store._check_open()
    if keep_recent < 0:
        raise ConfigurationError(f"keep_recent must be >= 0, got {keep_recent}")
    done = 0
    for prompt_id, _ in list(
        iter_prompt_dirs(store._root, store.enable_sharding, store.shard_depth)
    ):
        dir_fd = store._locked_prompt_dir(prompt_id, create=False)
        if dir_fd is None:
            continue
        try:
            names = set(os.listdir(dir_fd))
            numbers = parse_listing(names)[0]
            for number in numbers[: max(0, len(numbers) - keep_recent)]:
                plain, packed = file_names(number)
                if plain in names:
                    done += _compress_one(store, dir_fd, plain, packed)
        finally:
            fsio.close(dir_fd)
            store._listings.forget(prompt_id)
    store._cache.clear()
    return done


def _compress_one(store: FileSystemStorage, dir_fd: int, plain: str, packed: str) -> int:
    staged = fsio.stage(dir_fd, gzip.compress(fsio.read_at(dir_fd, plain), mtime=0), store.durable)
    try:
        try:
            fsio.publish(staged, packed)
        except FileExistsError:
            pass  # an earlier, interrupted run got this far
    finally:
        fsio.discard(staged)
    if store.durable:
        fsio.fsync(dir_fd)
    fsio.unlink(dir_fd, plain)
    if store.durable:
        fsio.fsync(dir_fd)
    return 1


def verify_more(store: FileSystemStorage, report: VerifyReport) -> None:
    """The index must not claim a listing the directory contradicts; no temp files left."""
    present = os.path.exists(store._snapshot.path)
    snapshot = store._snapshot.load() if present else None
    if present and snapshot is None:
        report.problems.append(
            Problem("INDEX-UNREADABLE", store._snapshot.path, "index snapshot cannot be parsed")
        )
    for prompt_id, path in iter_prompt_dirs(store._root, store.enable_sharding, store.shard_depth):
        try:
            stamp = stamp_of(os.stat(path))
            versions, temps = parse_listing(os.listdir(path))
        except FileNotFoundError:
            continue
        for name in temps:
            report.problems.append(
                Problem("TEMP-FILE", f"{path}/{name}", "temp file left by an interrupted save")
            )
        claimed = (snapshot or {}).get(prompt_id)
        if (
            claimed is not None
            and claimed.stamp == stamp
            and json.loads(claimed.versions_json) != versions
        ):
            report.problems.append(
                Problem(
                    "INDEX-MISMATCH",
                    store._snapshot.path,
                    f"index lists other versions of {prompt_id!r} than its directory",
                )
            )
