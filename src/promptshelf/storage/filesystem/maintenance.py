"""Maintenance of the filesystem backend: verify's extra checks, repair, compression.

Every step holds the prompt's lock and is one rename, link or unlink, so an
interrupted run leaves a state the next run finishes from. Nothing here
deletes a file it has not proven redundant: damaged files go to the
quarantine, and a compressed copy replaces a plain one only once it has been
read back equal to it.
"""

from __future__ import annotations

import errno
import gzip
import json
import logging
import os

from ...errors import ConfigurationError, CorruptStoreError, CorruptVersionError, SymlinkError
from ..base import labels_blocking
from ..verify import Action, Problem, RepairReport, VerifyReport
from . import io
from .index import file_names, parse_listing, stamp_of
from .labels import LABELS_FILE
from .trash import QUARANTINE_DIR
from .tree import PromptDir, Tree, errors

log = logging.getLogger(__name__)


def repair(tree: Tree, report: RepairReport) -> None:
    """Quarantine what is damaged, remove dead temp files, tidy interrupted compressions.
    The caller then rebuilds its caches and the index."""
    found = VerifyReport("filesystem")
    verify_more(tree, found)
    for prompt_id, _ in list(tree.prompt_dirs()):
        with errors(f"repair prompt {prompt_id!r}", "FS-SAVE-001"), tree.locked(prompt_id) as d:
            if d is not None:
                _repair_prompt(d, report)
    for problem in found.problems:
        if problem.code.startswith("INDEX-"):
            report.actions.append(Action(problem.code, problem.location, "index rebuilt"))


def _quarantine(d: PromptDir, name: str, code: str, report: RepairReport) -> None:
    moved = d.move_to(QUARANTINE_DIR, name)
    report.actions.append(Action(code, f"{d.path}/{name}", f"moved to {moved}"))


def _repair_prompt(d: PromptDir, report: RepairReport) -> None:
    """With the prompt's lock held: temp files out, damaged files into the quarantine."""
    for name in d.remove_temps():
        report.actions.append(Action("TEMP-FILE", f"{d.path}/{name}", "removed"))
    try:
        d.labels()
    except CorruptStoreError as exc:
        _quarantine(d, LABELS_FILE, exc.error_code, report)
    except OSError as exc:
        if exc.errno != errno.ELOOP:
            raise
        _quarantine(d, LABELS_FILE, SymlinkError.default_code, report)
    names = set(d.names())
    for number in parse_listing(names)[0]:
        for name in (n for n in file_names(number) if n in names):
            damage = damage_of(d, name, number)
            if damage is not None:
                _quarantine(d, name, damage, report)
        plain, packed = file_names(number)
        left = d.files_of(number)  # after quarantining
        if len(left) == 2:  # compress() was interrupted, or the copies disagree
            if d.read(plain, number).canonical == d.read(packed, number).canonical:
                d.unlink(packed)  # proven redundant: the same version, byte for byte
                report.actions.append(Action("DUPLICATE", f"{d.path}/{packed}", "removed"))
            else:
                _quarantine(d, packed, "SHADOW-COPY", report)
        elif not left:  # no intact copy is left: labels on it would dangle
            removals = labels_blocking(d.labels(), d.prompt_id, number, force=True)
            if removals:
                d.append_labels(removals)


def damage_of(d: PromptDir, name: str, number: str) -> str | None:
    """The code of what is wrong with the file ``name`` holding ``number``, if anything."""
    try:
        d.read(name, number)
    except CorruptVersionError as exc:
        return exc.error_code
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return SymlinkError.default_code
        if exc.errno == errno.ENOENT:
            return None
        raise
    return None


def compress(tree: Tree, keep_recent: int = 10) -> int:
    """Store every version older than each prompt's newest ``keep_recent`` gzip-compressed
    (``1.0.0.json.gz``); readers do not notice. Returns how many files were compressed.

    Each file is compressed, published, synced and read back equal to the plain
    file; only then is the plain file removed: an interruption leaves both
    (identical content), which reads correctly and which ``repair()`` tidies. A
    ``.gz`` already there is never trusted: one that does not read back as the
    plain file is moved to the quarantine first. A damaged plain file is left
    alone (``verify`` reports it, ``repair`` quarantines it).
    """
    if keep_recent < 0:
        raise ConfigurationError(f"keep_recent must be >= 0, got {keep_recent}")
    done = 0
    for prompt_id, _ in list(tree.prompt_dirs()):
        with errors(f"compress prompt {prompt_id!r}", "FS-SAVE-001"), tree.locked(prompt_id) as d:
            if d is None:
                continue
            names = set(d.names())
            numbers = parse_listing(names)[0]
            for number in numbers[: max(0, len(numbers) - keep_recent)]:
                if file_names(number)[0] in names:
                    done += _compress_one(d, number, names)
    return done


def _compress_one(d: PromptDir, number: str, names: set[str]) -> int:
    plain, packed = file_names(number)
    if damage_of(d, plain, number) is not None:
        log.warning("%s/%s is damaged: not compressed (run repair)", d.path, plain)
        return 0
    expected = d.read(plain, number).canonical
    if packed in names and damage_of(d, packed, number) is None:
        if d.read(packed, number).canonical != expected:
            moved = d.move_to(QUARANTINE_DIR, packed)
            log.warning("%s/%s disagreed with %s: moved to %s", d.path, packed, plain, moved)
    elif packed in names:
        moved = d.move_to(QUARANTINE_DIR, packed)
        log.warning("%s/%s was damaged: moved to %s", d.path, packed, moved)
    if not io.exists(d.fd, packed):
        raw, _ = io.read_file(d.fd, plain, 1 << 62)
        staged = io.stage(d.fd, gzip.compress(raw, mtime=0), d.tree.durable)
        try:
            io.publish(staged, packed)
        finally:
            io.discard(staged)
        if d.tree.durable:
            io.fsync(d.fd)
    if d.read(packed, number).canonical != expected:  # never drop the plain copy unproven
        raise CorruptVersionError(
            f"{d.path}/{packed} does not read back as {plain}; {plain} kept",
            context={"path": f"{d.path}/{packed}", "reason": "compressed copy differs"},
        )
    d.unlink(plain)
    if d.tree.durable:
        io.fsync(d.fd)
    return 1


def verify_more(tree: Tree, report: VerifyReport) -> None:
    """The index must not claim a listing the directory contradicts; no temp files left."""
    present = os.path.lexists(tree.index.path)
    snapshot = tree.index.load() if present else None
    if present and snapshot is None:
        report.problems.append(
            Problem("INDEX-UNREADABLE", tree.index.path, "index snapshot cannot be parsed")
        )
    for prompt_id, path in tree.prompt_dirs():
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
                    tree.index.path,
                    f"index lists other versions of {prompt_id!r} than its directory",
                )
            )
