"""A store as JSON-lines files: ``X.jsonl`` holds the versions (one PromptVersion per
line, readable by anything that reads PromptVersions), and two side files hold what
a bare list of versions cannot: ``X.labels.jsonl`` the label history (one LabelEvent per
line, in order) and ``X.trash.jsonl`` the trash (``{"deleted_at": ..., "version": {...}}``
per line). A side file is written only when there is something to put in it, and read
only when it is there, so a plain ``.jsonl`` of versions still imports as before.
"""

from __future__ import annotations

import json
from pathlib import Path

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


def write(
    store: VersionStorage, path: Path, progress: Progress | None = None
) -> tuple[int, int, int]:
    """Write ``store`` to ``path`` and its side files, never over an existing file;
    returns the numbers of versions, label events and trashed versions written.
    ``progress(done, total)`` is called after each prompt, counted in versions."""
    labels_path, trash_path = side_files(path)
    for target in (path, labels_path, trash_path):
        if target.exists():
            raise OptimizerError(
                f"{target} exists; not overwriting it",
                error_code="PS-EXPORT-001",
                context={"path": str(target)},
            )
    prompts = store.list_held_prompts()
    counts = [0, 0, 0]
    tally = Tally(
        progress, int(store.get_storage_stats().get("total_versions", 0)) if progress else 0
    )
    with path.open("x", encoding="utf-8") as handle:
        for prompt_id in prompts:
            versions = store.list_versions(prompt_id)
            for version in versions:
                handle.write(version.model_dump_json() + "\n")
                counts[0] += 1
            tally.add(len(versions))
    tally.finish()
    events = [e for p in prompts for e in store.label_history(p)]
    if events:
        with labels_path.open("x", encoding="utf-8") as handle:
            handle.writelines(e.model_dump_json() + "\n" for e in events)
        counts[1] = len(events)
    trash = store.read_trash()
    if trash:
        with trash_path.open("x", encoding="utf-8") as handle:
            for item in trash:
                deleted_at = to_text(item.entry.deleted_at)
                handle.write(
                    f'{{"deleted_at": {json.dumps(deleted_at)}, '
                    f'"version": {item.version.model_dump_json()}}}\n'
                )
        counts[2] = len(trash)
    return counts[0], counts[1], counts[2]


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
