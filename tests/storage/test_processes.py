"""Several processes on one store, run on every backend another process can open
(conftest.REOPENERS): nothing acknowledged is lost, and version numbers are never shared."""

from __future__ import annotations

import multiprocessing

import pytest

from promptshelf import VersionManager, VersionStorage

from conftest import Reopen, reopen
from helpers import make_analysis, make_prompt, make_result, make_version


def _save_range(open_store: Reopen, worker: int, count: int) -> None:
    with open_store() as store:
        for i in range(count):
            store.save_version(make_version(f"p{i % 4}", f"{worker}.{i}.0"))


def _create_many(open_store: Reopen, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    with open_store() as store:
        manager = VersionManager(store)
        made = []
        for i in range(count):
            optimized = make_result() if i % 2 else None
            made.append(manager.create_version(make_prompt(), make_analysis(), optimized).version)
    queue.put(made)


def test_processes_saving_at_once_lose_nothing(
    storage: VersionStorage, request: pytest.FixtureRequest
) -> None:
    open_store = reopen(storage, request)
    ctx = open_store.processes()
    workers = [ctx.Process(target=_save_range, args=(open_store, w, 40)) for w in range(1, 5)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(180)
        assert p.exitcode == 0
    stats = storage.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (4, 160)
    assert storage.get_latest_version("p3").version == "4.39.0"  # type: ignore[union-attr]
    assert len(storage.list_versions("p0")) == 40
    with open_store() as again:  # and a store opened afterwards sees the same
        assert again.list_version_numbers("p1") == storage.list_version_numbers("p1")


def test_processes_creating_versions_of_one_prompt_get_distinct_numbers(
    storage: VersionStorage, request: pytest.FixtureRequest
) -> None:
    open_store = reopen(storage, request)
    ctx = open_store.processes()
    queue = ctx.Queue()
    workers = [ctx.Process(target=_create_many, args=(open_store, 25, queue)) for _ in range(4)]
    for p in workers:
        p.start()
    made = [v for _ in workers for v in queue.get(timeout=180)]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    assert len(made) == len(set(made)) == 100
    assert set(storage.list_version_numbers("wf_001_llm_1")) == set(made)
