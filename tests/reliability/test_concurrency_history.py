"""T17: several processes do random saves, deletes and reads; the recorded history must
have a valid linearization, checked per version (each version is one register: absent,
then present after its save, absent again after its delete)."""

from __future__ import annotations

import multiprocessing
import random
import time

import pytest

from promptshelf import VersionStorage

from conftest import Reopen, reopen
from helpers import make_version

PROMPTS = ["a", "b", "c"]


def _worker(
    open_store: Reopen,
    worker: int,
    ops: int,
    seed: int,
    out: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    store = open_store()
    rng = random.Random(seed + worker)
    mine: list[tuple[str, str]] = []
    history = []
    for i in range(ops):
        start = time.monotonic_ns()
        roll = rng.random()
        if roll < 0.4 or not mine:
            key = (rng.choice(PROMPTS), f"{worker + 1}.{i}.0")
            store.save_version(make_version(*key))
            mine.append(key)
            history.append(("save", key, True, start, time.monotonic_ns()))
        elif roll < 0.55:
            key = mine.pop(rng.randrange(len(mine)))
            done = store.delete_version(*key)
            history.append(("delete", key, done, start, time.monotonic_ns()))
        else:
            prompt = rng.choice(PROMPTS)
            seen = set(store.list_version_numbers(prompt))
            history.append(("list", prompt, sorted(seen), start, time.monotonic_ns()))
    store.close()
    out.put(history)


def check_history(events: list[tuple]) -> int:
    """Per version: every list must agree with some point between its save and delete."""
    life: dict[tuple[str, str], dict[str, tuple[int, int]]] = {}
    for kind, key, result, start, end in events:
        if kind in ("save", "delete"):
            assert result is True, f"{kind} of {key} failed"
            life.setdefault(key, {})[kind] = (start, end)
    checked = 0
    for kind, prompt, seen, start, end in events:
        if kind != "list":
            continue
        for (pid, number), spans in life.items():
            if pid != prompt:
                continue
            saved, deleted = spans["save"], spans.get("delete")
            present = number in seen
            # surely absent: the list ended before the save began, or began after the delete ended
            surely_absent = end < saved[0] or (deleted is not None and start > deleted[1])
            # surely present: the list began after the save ended and ended before the delete began
            surely_present = start > saved[1] and (deleted is None or end < deleted[0])
            assert not (present and surely_absent), f"{pid} {number} seen when it cannot exist"
            assert not (not present and surely_present), f"{pid} {number} missed"
            checked += 1
    return checked


def test_random_operations_linearize(
    storage: VersionStorage, request: pytest.FixtureRequest
) -> None:
    open_store = reopen(storage, request)
    ctx = open_store.processes()
    out = ctx.Queue()
    seed = 20261124
    workers = [ctx.Process(target=_worker, args=(open_store, w, 150, seed, out)) for w in range(4)]
    for p in workers:
        p.start()
    events = [e for _ in workers for e in out.get(timeout=180)]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    checked = check_history(events)
    saves = sum(1 for e in events if e[0] == "save")
    deletes = sum(1 for e in events if e[0] == "delete")
    assert storage.get_storage_stats()["total_versions"] == saves - deletes
    print(
        f"T17 {storage.backend_name}: 4 processes x 150 ops, saves {saves}, deletes {deletes}, "
        f"reads checked against the history {checked}, violations 0, seed {seed}"
    )
