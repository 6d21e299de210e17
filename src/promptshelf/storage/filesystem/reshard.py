"""Converting a store between the flat and the sharded layouts (``promptshelf reshard``).

A prompt's directory holds everything of the prompt that depends on the
layout (its versions, ``.labels.jsonl`` with the whole label history), and
the trash and the quarantine are keyed by prompt id alone, so a conversion is
one ``rename`` of each prompt directory, made while holding its lock, with
both parents fsynced. A prompt is therefore always whole at its old place or
at its new one: a conversion killed midway loses nothing, and running it
again moves what is left (it looks for prompt directories in every layout).

A prompt whose id could also be a shard's name (``"ab"`` with depth 2) would
collide with a shard directory, so it goes through ``.reshard/`` and is
moved last. The index is rewritten last, with the new layout, and the store
is verified in its new layout before the report is returned.
"""

from __future__ import annotations

import errno
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any

from ...errors import ConfigurationError, LayoutMismatchError, StorageError
from . import io
from .tree import Tree, errors

STAGING_DIR = ".reshard"
_HEX = re.compile(r"[0-9a-f]{1,8}")


@dataclass
class ReshardReport:
    storage_dir: str
    enable_sharding: bool
    shard_depth: int
    moved_prompts: int = 0
    total_prompts: int = 0
    total_versions: int = 0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class _Place:
    """Where a prompt directory is: ``parent`` (relative to the root, "" for the root)."""

    prompt_id: str
    parent: str


def _places(root: str) -> Iterator[_Place]:
    """Every prompt directory on disk, in any layout (and in the staging directory)."""
    root_fd = io.open_root(root)
    try:
        tops = sorted(io.listdir(root_fd))
        for top in tops:
            if top.startswith(".") and top != STAGING_DIR:
                continue
            if not io.is_dir_at(root_fd, top):
                continue
            fd = io.open_dir_at(root_fd, top)
            try:
                names = io.listdir(fd)
                subdirs = [n for n in sorted(names) if io.is_dir_at(fd, n)]
                shard = top == STAGING_DIR or (
                    _HEX.fullmatch(top) is not None and len(subdirs) == len(names)
                )
            finally:
                io.close(fd)
            if not shard:  # a flat prompt directory: files (versions, labels), no subdirectories
                yield _Place(top, "")
                continue
            for name in subdirs:
                if not name.startswith("."):
                    yield _Place(name, top)
    finally:
        io.close(root_fd)


def _target_parent(tree: Tree, prompt_id: str) -> str:
    shard = tree.shard_of(prompt_id)
    return "" if shard is None else shard


def _collides(prompt_id: str, depths: set[int]) -> bool:
    """Whether a prompt of this id could be mistaken for, or block, a shard directory."""
    return bool(_HEX.fullmatch(prompt_id)) and len(prompt_id) in depths


def _open_rel(tree: Tree, root_fd: int, rel: str, create: bool) -> int:
    if not rel:
        return io.open_root(tree.root)
    if create:
        io.make_dir(root_fd, rel, tree.durable)
    return io.open_dir_at(root_fd, rel)


def _move(tree: Tree, root_fd: int, place: _Place, to_parent: str) -> None:
    """Rename one prompt directory from ``place`` into ``to_parent``, under its lock."""
    src_fd = _open_rel(tree, root_fd, place.parent, False)
    try:
        dst_fd = _open_rel(tree, root_fd, to_parent, True)
        try:
            prompt_fd = io.open_dir_at(src_fd, place.prompt_id)
            try:
                if not io.lock(prompt_fd, tree.lock_timeout):
                    raise StorageError(
                        f"prompt {place.prompt_id!r} is locked by a writer; stop writers and "
                        "run reshard again",
                        error_code="FS-LOCK-001",
                        context={"prompt_id": place.prompt_id},
                    )
                try:
                    io.rename(src_fd, place.prompt_id, dst_fd, place.prompt_id)
                except OSError as exc:
                    if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                        raise LayoutMismatchError(
                            f"prompt {place.prompt_id!r} exists in both layouts; merge or remove "
                            "one copy by hand, then run reshard again",
                            error_code="FS-LAYOUT-002",
                            context={"prompt_id": place.prompt_id},
                        ) from None
                    raise
                if tree.durable:
                    io.fsync(dst_fd)
                    io.fsync(src_fd)
            finally:
                io.close(prompt_fd)
        finally:
            io.close(dst_fd)
    finally:
        io.close(src_fd)


def reshard(
    storage_dir: str, enable_sharding: bool, shard_depth: int = 2, *, durable: bool = True
) -> ReshardReport:
    """Move every prompt of the store at ``storage_dir`` into the given layout, rewrite the
    index, and verify the result (``report.problems`` lists what verify found)."""
    from .store import FileSystemStorage  # the store uses this module's tree; no cycle at import

    if not isinstance(shard_depth, int) or not 1 <= shard_depth <= 8:
        raise ConfigurationError(f"shard_depth must be an int from 1 to 8, got {shard_depth!r}")
    tree = Tree(storage_dir, enable_sharding, shard_depth, durable, lock_timeout=10.0)
    report = ReshardReport(storage_dir, enable_sharding, shard_depth if enable_sharding else 0)
    with errors("reshard the store", "FS-SAVE-001", path=storage_dir):
        root_fd = io.open_root(storage_dir)
        try:
            places = list(_places(storage_dir))
            depths = {shard_depth} if enable_sharding else set()
            depths |= {len(p.parent) for p in places if p.parent and p.parent != STAGING_DIR}
            staged: list[_Place] = []
            rest: list[_Place] = []
            for place in places:  # first, out of the way: ids that could be a shard's name
                if place.parent == _target_parent(tree, place.prompt_id):
                    continue
                if place.parent != STAGING_DIR and _collides(place.prompt_id, depths):
                    _move(tree, root_fd, place, STAGING_DIR)
                    place = _Place(place.prompt_id, STAGING_DIR)
                (staged if place.parent == STAGING_DIR else rest).append(place)
            for place in rest:
                _move(tree, root_fd, place, _target_parent(tree, place.prompt_id))
                report.moved_prompts += 1
            _remove_empty_shards(root_fd, depths, tree)
            for place in staged:  # after the shards are gone: nothing left to collide with
                _move(tree, root_fd, place, _target_parent(tree, place.prompt_id))
                report.moved_prompts += 1
            io.rmdir(root_fd, STAGING_DIR)
        finally:
            io.close(root_fd)
    store = FileSystemStorage(
        storage_dir, enable_sharding=enable_sharding, shard_depth=shard_depth, create=False
    )
    try:
        stats = store.rebuild_index()
        report.total_prompts = stats["total_prompts"]
        report.total_versions = stats["total_versions"]
        found = store.verify()
        report.problems = [f"{p.code} {p.location}: {p.message}" for p in found.problems]
    finally:
        store.close()
    return report


def _remove_empty_shards(root_fd: int, depths: set[int], tree: Tree) -> None:
    """Remove shard directories the conversion emptied (never one that holds anything)."""
    keep = tree.shard_depth if tree.sharding else None
    for name in io.listdir(root_fd):
        shard = _HEX.fullmatch(name) and len(name) in depths and len(name) != keep
        if shard and io.is_dir_at(root_fd, name):
            io.rmdir(root_fd, name)


__all__ = ["ReshardReport", "reshard"]
