"""Bulk saves for the filesystem backend: many versions, few syncs.

A round locks its prompts' directories, stages every file (on a few threads:
the system calls release the GIL), syncs the whole filesystem once, links
every file into place in order, and syncs again. Per version that replaces
two fsyncs by a share of two ``syncfs`` calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..errors import AtomicWriteError, LockTimeoutError, VersionConflictError
from ..models import PromptVersion
from . import fsio
from .base import checked_version

if TYPE_CHECKING:
    from .filesystem import FileSystemStorage

#: Versions one round stages (each holds a file descriptor until published).
BULK_ROUND_VERSIONS = 512
#: Threads that write a round's files at once.
BULK_STAGING_THREADS = 4


def save_versions(store: FileSystemStorage, versions: Iterable[PromptVersion]) -> int:
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
    store._check_open()
    batch: dict[str, list[tuple[str, bytes]]] = {}
    seen: set[tuple[str, str]] = set()
    for version in versions:
        checked = checked_version(version)
        key = (checked.prompt_id, checked.version)
        if key in seen:
            raise VersionConflictError(*key, context={"reason": "twice in one batch"})
        seen.add(key)
        batch.setdefault(checked.prompt_id, []).append(
            (checked.version, store._file_bytes(checked))
        )
    saved = 0
    round_: list[tuple[str, list[tuple[str, bytes]]]] = []
    size = 0
    # Staging is system calls that release the GIL: a few threads overlap them.
    with ThreadPoolExecutor(BULK_STAGING_THREADS, "promptshelf-stage") as pool:
        for prompt_id, items in batch.items():
            for start in range(0, len(items), BULK_ROUND_VERSIONS):
                chunk = items[start : start + BULK_ROUND_VERSIONS]
                if size + len(chunk) > BULK_ROUND_VERSIONS:
                    saved += _save_round(store, round_, pool)
                    round_, size = [], 0
                round_.append((prompt_id, chunk))
                size += len(chunk)
        if round_:
            saved += _save_round(store, round_, pool)
    return saved


def _save_round(
    store: FileSystemStorage,
    groups: list[tuple[str, list[tuple[str, bytes]]]],
    pool: ThreadPoolExecutor,
) -> int:
    dir_fds: list[int] = []
    jobs: list[tuple[int, bytes, str, str]] = []  # (dir_fd, data, prompt_id, version)
    staged: list[fsio.Staged] = []
    published = 0
    try:
        try:
            for prompt_id, items in groups:
                # new directories become durable with the round's final sync
                dir_fd = store._locked_prompt_dir(prompt_id, create=True, sync_new=False)
                assert dir_fd is not None  # create=True never yields None
                dir_fds.append(dir_fd)
                jobs.extend((dir_fd, data, prompt_id, number) for number, data in items)
            staged = _stage_in_parallel(pool, [(fd, data) for fd, data, _, _ in jobs])
            if store.durable:
                fsio.sync_filesystem(dir_fds[0])
            for content, (_, _, prompt_id, number) in zip(staged, jobs, strict=True):
                try:
                    fsio.publish(content, f"{number}.json")
                except FileExistsError:
                    raise VersionConflictError(prompt_id, number) from None
                published += 1
        finally:
            for content in staged:
                fsio.discard(content)
            if store.durable and dir_fds:
                fsio.sync_filesystem(dir_fds[0])
    except (VersionConflictError, LockTimeoutError):
        raise
    except OSError as exc:
        raise AtomicWriteError(
            f"bulk save failed after {published} version(s) of this round: {exc}",
            context={"published": published, "errno": exc.errno},
        ) from exc
    finally:
        for dir_fd in dir_fds:
            fsio.close(dir_fd)
        for prompt_id, _ in groups:
            store._listings.forget(prompt_id)
    return published


def _stage_all(jobs: list[tuple[int, bytes]]) -> list[fsio.Staged]:
    done: list[fsio.Staged] = []
    try:
        for dir_fd, data in jobs:
            done.append(fsio.stage(dir_fd, data, False))
    except BaseException:
        for content in done:
            fsio.discard(content)
        raise
    return done


def _stage_in_parallel(
    pool: ThreadPoolExecutor, jobs: list[tuple[int, bytes]]
) -> list[fsio.Staged]:
    """Stage ``jobs`` in order, in contiguous slices on the pool; all or none stay staged."""
    size = -(-len(jobs) // BULK_STAGING_THREADS) or 1
    futures = [pool.submit(_stage_all, jobs[i : i + size]) for i in range(0, len(jobs), size)]
    staged: list[fsio.Staged] = []
    failure: BaseException | None = None
    for future in futures:
        try:
            staged.extend(future.result())
        except BaseException as exc:
            failure = failure or exc
    if failure is not None:
        for content in staged:
            fsio.discard(content)
        raise failure
    return staged
