"""The original implementation's on-disk format, for stores it must be able to read.

promptshelf reads what the original wrote unchanged. The other way round
takes care, because the original is stricter than it looks:

* its models forbid unknown keys (``extra="forbid"``): one extra key, such as
  promptshelf's ``"sha256"`` checksum, fails the load (``FS-LOAD-002``), and
  ``list_versions`` silently skips the file;
* it trusts ``.index.json``: ``get_latest_version`` returns the index's
  ``latest_version`` without looking at the directory, so a stale index
  hides newer versions;
* it lists ``<prompt>/*.json`` only, so a compressed ``1.0.0.json.gz`` is
  invisible to it.

So a store the original can read is a :class:`FileSystemStorage` written with
``checksums=False``, not compressed, whose ``.index.json`` is current:
:func:`write_original_index` writes it exactly as the original did (the same
keys, in the same order, pretty-printed with two spaces).
``promptshelf export DIR`` does all of this and checks the result with
:func:`original_problems`. What the original has no notion of stays where it
does not look: each prompt's label history in ``<prompt>/.labels.jsonl`` (a
dot-file, and not ``*.json``) and deleted versions under ``.trash/`` (a
dot-directory, which its scans skip).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from . import semver
from .storage import FileSystemStorage
from .timestamps import to_naive_utc, utc_now

#: The original's index file, in the store's root.
INDEX_FILE = ".index.json"

#: The keys each of the original's models accepts (its ``optimizer.models``), by JSON path.
ORIGINAL_FIELDS: dict[str, tuple[str, ...]] = {
    "": (
        "prompt_id",
        "version",
        "prompt",
        "analysis",
        "optimization_result",
        "parent_version",
        "created_at",
        "metadata",
    ),
    "prompt": (
        "id",
        "workflow_id",
        "node_id",
        "node_type",
        "text",
        "role",
        "variables",
        "context",
        "extracted_at",
    ),
    "analysis": (
        "prompt_id",
        "overall_score",
        "clarity_score",
        "efficiency_score",
        "issues",
        "suggestions",
        "metadata",
        "analyzed_at",
    ),
    "analysis.issues[]": ("severity", "type", "description", "location", "suggestion"),
    "analysis.suggestions[]": ("type", "description", "priority"),
    "optimization_result": (
        "prompt_id",
        "original_prompt",
        "optimized_prompt",
        "strategy",
        "improvement_score",
        "confidence",
        "changes",
        "metadata",
        "optimized_at",
    ),
}

#: The original index's keys, in its order.
INDEX_KEYS = ("version", "last_updated", "total_prompts", "total_versions", "index")
ENTRY_KEYS = ("latest_version", "version_count", "versions", "created_at", "updated_at")


def original_index(store: FileSystemStorage) -> dict[str, Any]:
    """``.index.json`` as the original would have written it for what ``store`` holds now.

    ``created_at``/``updated_at`` of a prompt are the creation times of its
    first and latest versions (the original recorded when it saved them).
    """
    index: dict[str, Any] = {}
    for prompt_id in store.list_prompts():
        versions = store.list_versions(prompt_id)
        if not versions:
            continue
        index[prompt_id] = {
            "latest_version": versions[-1].version,
            "version_count": len(versions),
            "versions": [v.version for v in versions],
            "created_at": to_naive_utc(min(v.created_at for v in versions)).isoformat(),
            "updated_at": to_naive_utc(max(v.created_at for v in versions)).isoformat(),
        }
    return {
        "version": "1.0.0",
        "last_updated": to_naive_utc(utc_now()).isoformat(),
        "total_prompts": len(index),
        "total_versions": sum(e["version_count"] for e in index.values()),
        "index": index,
    }


def write_original_index(store: FileSystemStorage) -> dict[str, Any]:
    """Replace ``store``'s ``.index.json`` with :func:`original_index` (atomically, fsynced);
    returns what was written. promptshelf reads this form too; a later promptshelf scan
    rewrites it in its own superset of the format, which the original also reads."""
    index = original_index(store)
    data = json.dumps(index, indent=2, ensure_ascii=False).encode("utf-8")
    _replace_file(str(store.storage_dir), INDEX_FILE, data)
    return index


def _replace_file(root: str, name: str, data: bytes) -> None:
    """Write ``name`` in ``root`` whole or not at all: a temp file, fsynced, renamed over it,
    the directory fsynced. Neither the directory nor the temp file is followed through a
    symlink."""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    dir_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | nofollow)
    temp = f".tmp-index-{os.getpid()}-{time.time_ns()}"
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow, 0o644, dir_fd=dir_fd)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        try:
            os.replace(temp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            os.unlink(temp, dir_fd=dir_fd)
            raise
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def original_problems(
    root: str | os.PathLike[str], *, enable_sharding: bool = False, shard_depth: int = 2
) -> list[str]:
    """Why the original implementation would not read the store at ``root`` as it is, one
    line each; empty when it would. Reads the directories as the original does (every
    directory not starting with ``.``, every ``*.json`` in it), never the index's word."""
    base = Path(root)
    problems: list[str] = []
    on_disk: dict[str, list[str]] = {}
    for prompt_dir in _prompt_dirs(base, enable_sharding, shard_depth):
        numbers = []
        for path in sorted(prompt_dir.iterdir()):
            if path.name.endswith(".json.gz"):
                problems.append(f"{_rel(path, base)}: compressed; the original lists *.json only")
            if path.suffix != ".json" or path.stem.startswith("."):
                continue
            try:
                data = json.loads(path.read_bytes())
            except ValueError as exc:
                problems.append(f"{_rel(path, base)}: not JSON ({exc})")
                continue
            problems += [f"{_rel(path, base)}: {p}" for p in _extra_keys(data)]
            numbers.append(path.stem)
        if numbers:
            on_disk[prompt_dir.name] = sorted(numbers, key=semver.parse)
    problems += _index_problems(base / INDEX_FILE, on_disk)
    return problems


def _rel(path: Path, base: Path) -> str:
    return str(path.relative_to(base))


def _prompt_dirs(base: Path, sharding: bool, depth: int) -> list[Path]:
    tops = [p for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")]
    if not sharding:
        return sorted(tops)
    return sorted(
        p
        for top in tops
        if len(top.name) == depth
        for p in top.iterdir()
        if p.is_dir() and not p.name.startswith(".")
    )


def _extra_keys(data: Any) -> list[str]:
    """Keys the original's models would refuse, as ``where: key``."""
    if not isinstance(data, dict):
        return ["not a JSON object"]
    found: list[str] = []

    def check(obj: Any, path: str) -> None:
        if not isinstance(obj, dict):
            return
        extra = sorted(set(obj) - set(ORIGINAL_FIELDS[path]))
        found.extend(f"unknown key {key!r} in {path or 'the version'}" for key in extra)
        for key in obj:
            child = f"{path}.{key}" if path else key
            if child in ORIGINAL_FIELDS:
                check(obj[key], child)
            elif f"{child}[]" in ORIGINAL_FIELDS and isinstance(obj[key], list):
                for item in obj[key]:
                    check(item, f"{child}[]")

    check(data, "")
    return found


def _index_problems(path: Path, on_disk: dict[str, list[str]]) -> list[str]:
    try:
        index = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        return [f"{INDEX_FILE}: unreadable ({exc}); the original trusts it for the latest version"]
    problems = []
    if not isinstance(index, dict) or not set(INDEX_KEYS) <= set(index):
        return [f"{INDEX_FILE}: lacks {', '.join(INDEX_KEYS)}"]
    entries = index["index"] if isinstance(index["index"], dict) else {}
    for prompt_id, numbers in on_disk.items():
        entry = entries.get(prompt_id)
        if not isinstance(entry, dict) or not set(ENTRY_KEYS) <= set(entry):
            problems.append(f"{INDEX_FILE}: no entry for {prompt_id}")
        elif entry["versions"] != numbers or entry["latest_version"] != numbers[-1]:
            problems.append(
                f"{INDEX_FILE}: {prompt_id} lists {entry['versions']} (latest "
                f"{entry['latest_version']}); the files hold {numbers}"
            )
        elif entry["version_count"] != len(numbers):
            problems.append(f"{INDEX_FILE}: {prompt_id} counts {entry['version_count']}")
    for prompt_id in sorted(set(entries) - set(on_disk)):
        problems.append(f"{INDEX_FILE}: lists {prompt_id}, which has no version file")
    totals = (index["total_prompts"], index["total_versions"])
    if totals != (len(on_disk), sum(len(n) for n in on_disk.values())):
        problems.append(f"{INDEX_FILE}: totals {totals} do not match the files")
    return problems
