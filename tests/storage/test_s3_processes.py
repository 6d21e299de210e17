"""Many processes on one S3 store: create-once, label compare-and-swap, a writer killed mid-bulk.

Contended conditional writes on one key are slow to lose on SeaweedFS (a
loser is answered after about a second), so the rounds here are modest; the
figures are printed (run with -s to see them).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from typing import Any

import pytest

from promptshelf import VersionConflictError, VersionManager, open_storage
from promptshelf.models import LabelAction, labels_after
from promptshelf.storage.s3 import S3Storage

from conftest import fresh_s3_url
from helpers import make_analysis, make_prompt, make_result, make_version

PROCESSES = 8
CREATES_EACH = 25
MOVERS = 2
MOVES_EACH = 200


def _creator(url: str, count: int, queue: Any) -> None:
    store = open_storage(url)
    lost = 0
    save = store.save_version

    def counting(version: Any) -> None:
        nonlocal lost
        try:
            save(version)
        except VersionConflictError:
            lost += 1
            raise

    store.save_version = counting  # type: ignore[method-assign]
    manager = VersionManager(store)
    made = []
    for i in range(count):
        result = None if i % 3 else make_result()
        made.append(manager.create_version(make_prompt(), make_analysis(), result).version)
    queue.put((made, lost))
    store.close()


def _mover(url: str, worker: int, count: int, queue: Any) -> None:
    store = open_storage(url)
    # Each mover alternates between two versions of its own, so every call is a real
    # move (a set where the label already points records nothing).
    for i in range(count):
        store.set_label("p", "prod", f"1.{2 * worker + i % 2}.0", actor=f"w{worker}")
    queue.put(worker)
    store.close()


def _run(target: Any, args_per_worker: list[tuple[Any, ...]]) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    workers = [ctx.Process(target=target, args=(*args, queue)) for args in args_per_worker]
    for p in workers:
        p.start()
    results = [queue.get(timeout=540) for _ in workers]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    return results


@pytest.mark.timeout(600)
def test_processes_creating_versions_of_one_prompt(request: pytest.FixtureRequest) -> None:
    url = fresh_s3_url(request)
    open_storage(url).close()
    results = _run(_creator, [(url, CREATES_EACH)] * PROCESSES)
    made = [v for versions, _ in results for v in versions]
    lost = sum(n for _, n in results)
    total = PROCESSES * CREATES_EACH
    print(f"\ns3 create race: processes={PROCESSES} winners={len(made)} losers={lost}")
    assert len(made) == len(set(made)) == total
    with open_storage(url) as store:
        assert sorted(store.list_version_numbers("wf_001_llm_1")) == sorted(made)
        assert store.verify().ok


@pytest.mark.timeout(600)
def test_processes_moving_one_label_leave_a_valid_history(request: pytest.FixtureRequest) -> None:
    url = fresh_s3_url(request)
    with open_storage(url) as store:
        store.save_versions(make_version("p", f"1.{m}.0") for m in range(2 * MOVERS))
    started = time.monotonic()
    _run(_mover, [(url, w, MOVES_EACH) for w in range(MOVERS)])
    elapsed = time.monotonic() - started
    with open_storage(url) as store:
        assert isinstance(store, S3Storage)
        history = store.label_history("p")
        state, _ = store.labels.read("p")
        assert store.verify().ok
    total = MOVERS * MOVES_EACH
    print(
        f"\ns3 label race: processes={MOVERS} moves={total} events={len(history)} "
        f"revisions={state.rev} seconds={elapsed:.1f}"
    )
    assert [e.seq for e in history] == list(range(1, total + 1))
    assert history[0].action is LabelAction.SET and history[0].from_version is None
    for before, event in zip(history, history[1:], strict=False):
        assert event.action is LabelAction.MOVE
        assert event.from_version == before.to_version  # every move saw the one before it
    assert sorted(e.actor for e in history).count("w0") == MOVES_EACH
    assert labels_after(history) == state.labels == {"prod": history[-1].to_version}


def _bulk_writer(url: str, count: int) -> None:
    store = open_storage(url)
    store.save_versions(
        make_version(f"b{i % 4}", f"1.{i}.0", text="x" * 4000) for i in range(count)
    )


@pytest.mark.timeout(300)
def test_a_writer_killed_mid_bulk_leaves_no_partial_version(
    request: pytest.FixtureRequest,
) -> None:
    url = fresh_s3_url(request)
    count = 2000
    with open_storage(url) as store:
        assert isinstance(store, S3Storage)
        ctx = multiprocessing.get_context("spawn")
        writer = ctx.Process(target=_bulk_writer, args=(url, count))
        writer.start()
        deadline = time.monotonic() + 240
        seen = 0
        while seen < 50 and writer.is_alive() and time.monotonic() < deadline:
            seen = sum(1 for _ in store.bucket.keys(store.root))
        assert writer.pid is not None
        os.kill(writer.pid, signal.SIGKILL)
        writer.join(30)
        assert writer.exitcode == -signal.SIGKILL, "the writer finished before it was killed"
        numbers = {p: store.list_version_numbers(p) for p in store.list_prompts()}
        saved = sum(len(n) for n in numbers.values())
        print(f"\ns3 bulk kill: versions visible after the kill: {saved} of {count}")
        assert 0 < saved < count
        for prompt_id, versions in numbers.items():
            for number in versions:  # each one whole: its checksum and content check out
                i = int(number.split(".")[1])
                assert store.get_version(prompt_id, number) == make_version(
                    f"b{i % 4}", f"1.{i}.0", text="x" * 4000
                )
        assert store.verify().ok
