"""Shared by the failure campaign: stores in a known state, and the checks after a failure."""

from __future__ import annotations

import gc
import os
import shutil
from pathlib import Path

from promptshelf import FileSystemStorage, PromptVersion

from helpers import make_version

#: The versions every pre-state holds; they must survive any failure of any later operation.
BASELINE = [make_version("p", "1.0.0", text="baseline p"), make_version("s", "1.0.0", text="s")]

#: ``os`` functions the store's file I/O goes through (see promptshelf.storage.filesystem.io).
OS_CALLS = [
    "open",
    "write",
    "fsync",
    "link",
    "rename",
    "replace",
    "unlink",
    "mkdir",
    "close",
    "ftruncate",
    "rmdir",
]


#: A version that sits in every pre-state's trash (restore and empty-trash work on it).
TRASHED = make_version("t", "1.0.0", text="in the trash")


def make_prestate(root: Path, trash: bool = False) -> Path:
    store = FileSystemStorage(root)
    store.save_versions(BASELINE)
    if trash:
        store.save_version(TRASHED)
        store.delete_version(TRASHED.prompt_id, TRASHED.version)
    store.get_storage_stats()  # an index snapshot exists too
    store.close()
    return root


def fresh_copy(template: Path, target: Path) -> Path:
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(template, target, symlinks=True)
    return target


def version_files(root: Path) -> set[str]:
    """Live version files (not trash, not quarantine)."""
    found = set()
    for path in root.rglob("*.json*"):
        rel = path.relative_to(root)
        if rel.parts[0].startswith("."):
            continue
        if path.name.endswith((".json", ".json.gz")):
            found.add(str(rel))
    return found


def check_consistent(
    root: Path, may_be_gone: set[tuple[str, str]] = frozenset(), dirty: bool = False
) -> FileSystemStorage:
    """After any failure: every baseline version reads back equal (or, if its deletion may
    have happened, sits in the trash), repair leaves a clean store, statistics match the disk."""
    store = FileSystemStorage(root)
    for version in BASELINE:
        key = (version.prompt_id, version.version)
        found = store.get_version(*key)
        if found is None:
            assert key in may_be_gone, f"{key} lost"
            assert any((e.prompt_id, e.version) == key for e in store.list_trash()), f"{key} lost"
        else:
            assert found == version, f"{key} changed"
    report = store.verify()
    if not dirty:  # a crash may leave a temp file, never anything else
        assert {p.code for p in report.problems} <= {"TEMP-FILE"}, report.problems
    store.repair()
    assert store.verify().ok
    stats = store.get_storage_stats()
    on_disk = {f.removesuffix(".gz").removesuffix(".json") for f in version_files(root)}
    assert stats["total_versions"] == len(on_disk)
    return store


def check_trashed(store: FileSystemStorage) -> None:
    """The trashed version is in the trash, or restored, or (emptied) gone; never damaged."""
    found = store.get_version(TRASHED.prompt_id, TRASHED.version)
    assert found is None or found == TRASHED


def same(found: PromptVersion | None, expected: PromptVersion) -> bool:
    return found is None or found == expected


def count_fds() -> int:
    """Open descriptors now; garbage is collected first, so a descriptor the collector
    would close later (one held by an exception's traceback) cannot change the count
    midway."""
    gc.collect()
    return len(os.listdir("/proc/self/fd"))
