"""A store as JSON-lines files: ``X.jsonl`` holds the versions (one PromptVersion per
line, readable by anything that reads PromptVersions), and two side files hold what
a bare list of versions cannot: ``X.labels.jsonl`` the label history (one LabelEvent per
line, in order) and ``X.trash.jsonl`` the trash (``{"deleted_at": ..., "version": {...}}``
per line). A side file is written only when there is something to put in it, and read
only when it is there, so a plain ``.jsonl`` of versions still imports as before.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError as PydanticValidationError

from .errors import OptimizerError
from .models import LabelEvent, PromptVersion, TrashEntry
from .progress import Progress, Tally
from .storage.base import TrashedVersion, VersionStorage
from .timestamps import to_text


def side_files(path: Path) -> tuple[Path, Path]:
    """``X.labels.jsonl`` and ``X.trash.jsonl`` beside ``X.jsonl``."""
    stem = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{stem}.labels.jsonl"), path.with_name(f"{stem}.trash.jsonl")


#: An export in progress: ``.X.jsonl.partial-<pid>`` beside ``X.jsonl`` (hidden, same file system).
PARTIAL = ".partial-"


def write(
    store: VersionStorage, path: Path, progress: Progress | None = None
) -> tuple[int, int, int]:
    """Write ``store`` to ``path`` and its side files, never over an existing file;
    returns the numbers of versions, label events and trashed versions written.
    ``progress(done, total)`` is called after each prompt, counted in versions.

    Every file is written to a temporary name in the same directory and flushed to
    disk; only when all of them are complete are they renamed, the side files first
    and ``path`` last, so an ``X.jsonl`` that exists always has its complete side
    files beside it. On any failure (or interruption) the temporaries are removed
    and no final name appears; those a killed export left are removed by the next."""
    labels_path, trash_path = side_files(path)
    _remove_stale_partials(path.parent)
    for target in (path, labels_path, trash_path):
        if target.exists() or target.is_symlink():
            orphan = target != path and not path.exists()
            raise OptimizerError(
                f"{target} exists; not overwriting it"
                + (
                    f" (without {path.name} beside it: remove it if an export was cut short)"
                    if orphan
                    else ""
                ),
                error_code="PS-EXPORT-001",
                context={"path": str(target)},
            )
    counts = [0, 0, 0]
    written: list[tuple[Path, Path]] = []  # (temporary, final)
    try:
        prompts = store.list_held_prompts()
        tally = Tally(
            progress, int(store.get_storage_stats().get("total_versions", 0)) if progress else 0
        )
        with _partial(path, written) as handle:
            for prompt_id in prompts:
                versions = store.list_versions(prompt_id)
                for version in versions:
                    handle.write(version.model_dump_json() + "\n")
                    counts[0] += 1
                tally.add(len(versions))
        tally.finish()
        events = [e for p in prompts for e in store.label_history(p)]
        if events:
            with _partial(labels_path, written) as handle:
                handle.writelines(e.model_dump_json() + "\n" for e in events)
            counts[1] = len(events)
        trash = store.read_trash()
        if trash:
            with _partial(trash_path, written) as handle:
                for item in trash:
                    deleted_at = to_text(item.entry.deleted_at)
                    handle.write(
                        f'{{"deleted_at": {json.dumps(deleted_at)}, '
                        f'"version": {item.version.model_dump_json()}}}\n'
                    )
            counts[2] = len(trash)
        # side files first, the versions file last: its name appearing means all is there
        for temporary, final in reversed(written):
            _publish(temporary, final)
            written.remove((temporary, final))
        _fsync_directory(path.parent)
    except BaseException:
        for temporary, _final in written:
            with contextlib.suppress(OSError):
                temporary.unlink()
        raise
    return counts[0], counts[1], counts[2]


@contextlib.contextmanager
def _partial(final: Path, written: list[tuple[Path, Path]]) -> Iterator[TextIO]:
    """A new temporary file for ``final``, recorded in ``written``, flushed to disk on close."""
    temporary = final.with_name(f".{final.name}{PARTIAL}{os.getpid()}")
    handle = temporary.open("x", encoding="utf-8")
    written.append((temporary, final))
    with handle:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())


def _remove_stale_partials(directory: Path) -> None:
    """Remove the temporaries of exports whose process is gone (killed mid-export)."""
    with contextlib.suppress(OSError):
        for leftover in directory.glob(f".*.jsonl{PARTIAL}*"):
            pid = leftover.name.rpartition(PARTIAL)[2]
            if not pid.isdigit() or _alive(int(pid)):
                continue
            with contextlib.suppress(OSError):
                leftover.unlink()


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another export of this process may be writing it
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _publish(temporary: Path, final: Path) -> None:
    """Give ``temporary`` its final name, never over a file that appeared meanwhile."""
    try:
        os.link(temporary, final)  # fails with EEXIST instead of replacing
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if final.exists() or final.is_symlink():  # no hard links here: check, then rename
            raise FileExistsError(errno.EEXIST, "File exists", str(final)) from None
        os.rename(temporary, final)
        return
    temporary.unlink()


def _fsync_directory(directory: Path) -> None:
    """Make the renames durable (best effort where a directory cannot be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_side_files(store: VersionStorage, path: Path) -> tuple[int, int]:
    """Import the side files of ``path`` (if there) into ``store``, which already holds the
    versions; returns the numbers of label events and trashed versions read."""
    labels_path, trash_path = side_files(path)
    histories: dict[str, list[LabelEvent]] = {}
    for number, line in _lines(labels_path):
        try:
            event = LabelEvent.model_validate_json(line)
        except PydanticValidationError as exc:
            raise _bad(labels_path, number, exc) from None
        histories.setdefault(event.prompt_id, []).append(event)
    trash = []
    for number, line in _lines(trash_path):
        try:
            raw = json.loads(line)
            version = PromptVersion.model_validate(raw["version"])
            entry = TrashEntry(
                prompt_id=version.prompt_id, version=version.version, deleted_at=raw["deleted_at"]
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise _bad(trash_path, number, exc) from None
        trash.append(TrashedVersion(entry, version))
    for prompt_id, events in histories.items():
        store.import_label_events(prompt_id, events)
    for item in trash:
        store.import_trashed(item)
    return sum(len(e) for e in histories.values()), len(trash)


def _lines(path: Path) -> list[tuple[int, str]]:
    if not path.exists():
        return []
    text = path.read_text(encoding="utf-8")
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def _bad(path: Path, line: int, exc: Exception) -> OptimizerError:
    if isinstance(exc, KeyError):
        why = f"missing key {exc}"
    else:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return OptimizerError(
        f"{path} line {line} is not valid: {why}; nothing imported",
        error_code="PS-IMPORT-001",
        context={"path": str(path), "line": line},
    )
