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
import time

from ...errors import ConfigurationError, CorruptStoreError, CorruptVersionError, SymlinkError
from ...progress import Tally
from ..labelevents import labels_blocking
from ..verify import Action, Problem, RepairReport, VerifyReport
from . import io, trash
from .index import classify_top, file_names, parse_listing, stamp_of
from .labels import LABELS_FILE, MAX_LOG_BYTES, salvage_log
from .trash import QUARANTINE_DIR
from .tree import PromptDir, Tree, errors

log = logging.getLogger(__name__)


def repair(tree: Tree, report: RepairReport, tally: Tally) -> None:
    """Quarantine what is damaged, remove dead temp files, tidy interrupted compressions.
    The caller then rebuilds its caches and the index."""
    found = VerifyReport("filesystem")
    verify_more(tree, found)
    for path in stray_links(tree):
        if path == tree.index.path:
            continue  # rewriting the index replaces the link itself
        with errors("quarantine a symlink", "FS-SAVE-001", path=path):
            moved = quarantine_link(tree, path)
        report.actions.append(Action(SymlinkError.default_code, path, f"moved to {moved}"))
    for prompt_id, _ in list(tree.prompt_dirs()):
        with errors(f"repair prompt {prompt_id!r}", "FS-SAVE-001"), tree.locked(prompt_id) as d:
            if d is not None:
                _repair_prompt(d, report)
                tally.add(len(parse_listing(set(d.names()))[0]))
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
        if not _salvage_labels(d, exc.error_code, report):
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


def _salvage_labels(d: PromptDir, code: str, report: RepairReport) -> bool:
    """Keep the valid events of a damaged label log (the prompt's lock held): the original
    file gets a second name in the quarantine, the damaged lines a file of their own there,
    then the valid events (see :func:`.labels.salvage_log`) replace the log in one rename,
    each step fsynced. A crash at any point leaves the old log or the new one, never less.
    False (nothing done) when the log cannot be read at all."""
    try:
        data, _ = io.read_file(d.fd, LABELS_FILE, MAX_LOG_BYTES)
    except (OSError, OverflowError):
        return False
    events, damaged, adjusted = salvage_log(data, d.prompt_id)
    durable = d.tree.durable
    root_fd = d.tree.open_root()
    try:
        quarantine_fd = trash.open_prompt_dir(root_fd, d.prompt_id, durable, QUARANTINE_DIR)
    finally:
        io.close(root_fd)
    try:
        copy = f"{LABELS_FILE}@{time.time_ns()}"
        io.link_between(d.fd, LABELS_FILE, quarantine_fd, copy)
        lines = b"".join(f"{n}: ".encode() + line + b"\n" for n, line in damaged)
        io.write_new(quarantine_fd, f"{copy}.damaged", lines, durable)
        if durable:
            io.fsync(quarantine_fd)
    finally:
        io.close(quarantine_fd)
    temp = f"{io.TEMP_PREFIX}{os.getpid()}-labels-{time.time_ns()}"
    new = b"".join(e.model_dump_json().encode("utf-8") + b"\n" for e in events)
    io.write_new(d.fd, temp, new, durable)
    io.replace(d.fd, temp, LABELS_FILE)
    if durable:
        io.fsync(d.fd)
    where = f"{d.tree.root}/{QUARANTINE_DIR}/{d.prompt_id}/{copy}"
    numbers = ", ".join(str(n) for n, _ in damaged)
    done = (
        f"kept {len(events)} valid event(s) (renumbered 1-{len(events)}"
        + (f", {adjusted} adjusted to fit" if adjusted else "")
        + f"); dropped damaged line(s) {numbers or 'none'}; original in {where}, "
        f"damaged lines in {where}.damaged"
    )
    report.actions.append(Action(code, f"{d.path}/{LABELS_FILE}", done))
    return True


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


def compress(tree: Tree, keep_recent: int = 10, tally: Tally | None = None) -> int:
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
            if tally is not None:
                tally.add(len(numbers))
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
    """What reading every version cannot see: symlinks planted in the store, prompt
    directories in the other layout, copies of a version that disagree, an index that
    contradicts its directories, temp files left behind."""
    for path in stray_links(tree):
        report.problems.append(
            Problem(SymlinkError.default_code, path, "a symlink in the store: never followed")
        )
    for path, layout in other_layout_dirs(tree):
        report.problems.append(
            Problem(
                "FS-LAYOUT-001",
                path,
                f"prompt directories in the {layout} layout, which this store is not in: "
                "they are invisible; run 'promptshelf reshard'",
            )
        )
    for prompt_id, _ in tree.prompt_dirs():
        with tree.opened(prompt_id) as fd:
            if fd is not None:
                _check_copies(PromptDir(tree, prompt_id, fd), report)
    present = os.path.lexists(tree.index.path)
    snapshot = tree.index.load() if present and not os.path.islink(tree.index.path) else None
    if present and snapshot is None and not os.path.islink(tree.index.path):
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


def _check_copies(d: PromptDir, report: VerifyReport) -> None:
    """A version kept both plain and compressed: the two must read back the same."""
    names = set(d.names())
    for number in parse_listing(names)[0]:
        plain, packed = file_names(number)
        if plain not in names or packed not in names:
            continue
        if damage_of(d, plain, number) is not None:
            continue  # reported where verify reads the version
        where = f"{d.path}/{packed}"
        try:
            same = d.read(packed, number).canonical == d.read(plain, number).canonical
        except CorruptVersionError as exc:
            report.problems.append(Problem(exc.error_code, where, exc.message))
            continue
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            report.problems.append(Problem(SymlinkError.default_code, where, "a symlink"))
            continue
        if not same:
            report.problems.append(
                Problem("SHADOW-COPY", where, f"disagrees with {plain}, which readers see")
            )


def stray_links(tree: Tree) -> list[str]:
    """Symlinks where the store keeps directories or files of its own (never followed)."""
    found: list[str] = []
    root_fd = tree.open_root()
    try:
        for name in sorted(io.listdir(root_fd)):
            if io.is_symlink(root_fd, name) and name != QUARANTINE_DIR:
                found.append(f"{tree.root}/{name}")
            elif tree.sharding and not name.startswith(".") and io.is_dir_at(root_fd, name):
                shard_fd = io.open_dir_at(root_fd, name)
                try:
                    found += [
                        f"{tree.root}/{name}/{child}"
                        for child in sorted(io.listdir(shard_fd))
                        if io.is_symlink(shard_fd, child)
                    ]
                finally:
                    io.close(shard_fd)
    finally:
        io.close(root_fd)
    return found


def quarantine_link(tree: Tree, path: str) -> str:
    """Move the symlink at ``path`` (in the root or a shard) into the quarantine as itself."""
    parent, name = os.path.split(path)
    root_fd = tree.open_root()
    try:
        io.make_dir(root_fd, QUARANTINE_DIR, tree.durable)
        q_fd = io.open_dir_at(root_fd, QUARANTINE_DIR)
        parent_fd = (
            root_fd if parent == tree.root else io.open_dir_at(root_fd, parent.rsplit("/", 1)[1])
        )
        try:
            new_name = f"{name}@{time.time_ns()}.symlink"
            io.rename(parent_fd, name, q_fd, new_name)
            if tree.durable:
                io.fsync(q_fd)
                io.fsync(parent_fd)
        finally:
            io.close(q_fd)
            if parent_fd != root_fd:
                io.close(parent_fd)
    finally:
        io.close(root_fd)
    return f"{tree.root}/{QUARANTINE_DIR}/{new_name}"


def other_layout_dirs(tree: Tree) -> list[tuple[str, str]]:
    """Top-level directories that hold prompts in the layout the store is not in."""
    found: list[tuple[str, str]] = []
    with os.scandir(tree.root) as entries:
        for entry in entries:
            if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                continue
            kind = classify_top(entry.path, entry.name)
            if kind is None:
                continue
            if tree.sharding and not kind[0]:
                found.append((entry.path, "flat"))
            elif not tree.sharding and kind[0] or tree.sharding and kind[1] != tree.shard_depth:
                found.append((entry.path, f"sharded (depth {kind[1]})"))
    return sorted(found)
