"""Bulk saves for the filesystem backend: many versions, few syncs.

A round locks its prompts' directories, stages every file (on a few threads:
the system calls release the GIL), syncs the whole filesystem once, links
every file into place in order, and syncs again. Per version that replaces
two fsyncs by a share of two ``syncfs`` calls.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack

from ...errors import VersionConflictError
from ...models import PromptVersion
from ..base import checked_version
from . import io
from .tree import PromptDir, Tree, errors

#: Versions one round stages (each holds a file descriptor until published).
BULK_ROUND_VERSIONS = 512
#: Threads that write a round's files at once.
BULK_STAGING_THREADS = 4


def save_versions(
    tree: Tree, versions: Iterable[PromptVersion], encode: Callable[[PromptVersion], bytes]
) -> int:
    """Save many versions: one lock per prompt, two filesystem syncs per round.

    Every version is validated and serialized before anything is written,
    so a bad version, or the same version twice in the batch, raises and
    writes nothing. Versions are then handled in rounds of up to
    ``BULK_ROUND_VERSIONS``: all temp files of a round are written, the
    filesystem is synced once, the files are linked into place (in batch
    order, prompt by prompt), and the filesystem is synced again.

    A failure midway (``VersionConflictError`` for a version that already
    exists, or an I/O error) leaves the versions published before it saved
    and synced, and none of the later ones; the error is raised. Returns
    the number of versions saved.
    """
    batch: dict[str, list[tuple[str, bytes]]] = {}
    seen: set[tuple[str, str]] = set()
    for version in versions:
        checked = checked_version(version)
        key = (checked.prompt_id, checked.version)
        if key in seen:
            raise VersionConflictError(*key, context={"reason": "twice in one batch"})
        seen.add(key)
        batch.setdefault(checked.prompt_id, []).append((checked.version, encode(checked)))
    saved = 0
    round_: list[tuple[str, list[tuple[str, bytes]]]] = []
    size = 0
    # Staging is system calls that release the GIL: a few threads overlap them.
    with ThreadPoolExecutor(BULK_STAGING_THREADS, "promptshelf-stage") as pool:
        for prompt_id, items in batch.items():
            for start in range(0, len(items), BULK_ROUND_VERSIONS):
                chunk = items[start : start + BULK_ROUND_VERSIONS]
                if size + len(chunk) > BULK_ROUND_VERSIONS:
                    saved += _save_round(tree, round_, pool)
                    round_, size = [], 0
                round_.append((prompt_id, chunk))
                size += len(chunk)
        if round_:
            saved += _save_round(tree, round_, pool)
    return saved


def _save_round(
    tree: Tree,
    groups: list[tuple[str, list[tuple[str, bytes]]]],
    pool: ThreadPoolExecutor,
) -> int:
    jobs: list[tuple[PromptDir, bytes, str]] = []  # (directory, data, version)
    staged: list[io.Staged] = []
    published = 0
    # every directory of the round stays locked to the end
    with errors("save a batch of versions", "FS-ATOMIC-001"), ExitStack() as held:
        dirs: list[PromptDir] = []
        try:
            for prompt_id, items in groups:
                # new directories become durable with the round's final sync
                d = held.enter_context(tree.locked(prompt_id, create=True, sync_new=False))
                assert d is not None  # create=True never yields None
                dirs.append(d)
                jobs.extend((d, data, number) for number, data in items)
            staged = _stage_in_parallel(pool, [(d.fd, data) for d, data, _ in jobs])
            if tree.durable:
                io.sync_filesystem(dirs[0].fd)
            for content, (d, _, number) in zip(staged, jobs, strict=True):
                try:
                    io.publish(content, f"{number}.json")
                except FileExistsError:
                    raise VersionConflictError(d.prompt_id, number) from None
                published += 1
        finally:
            for content in staged:
                io.discard(content)
            if tree.durable and dirs:
                io.sync_filesystem(dirs[0].fd)
    return published


def _stage_all(jobs: list[tuple[int, bytes]]) -> list[io.Staged]:
    done: list[io.Staged] = []
    try:
        for dir_fd, data in jobs:
            done.append(io.stage(dir_fd, data, False))
    except BaseException:
        for content in done:
            io.discard(content)
        raise
    return done


def _stage_in_parallel(pool: ThreadPoolExecutor, jobs: list[tuple[int, bytes]]) -> list[io.Staged]:
    """Stage ``jobs`` in order, in contiguous slices on the pool; all or none stay staged."""
    size = -(-len(jobs) // BULK_STAGING_THREADS) or 1
    futures = [pool.submit(_stage_all, jobs[i : i + size]) for i in range(0, len(jobs), size)]
    staged: list[io.Staged] = []
    failure: BaseException | None = None
    for future in futures:
        try:
            staged.extend(future.result())
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        for content in staged:
            io.discard(content)
        raise failure
    return staged
