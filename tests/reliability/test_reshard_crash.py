"""reshard is crash-safe: stopped at any file-system call, nothing is lost and a re-run finishes.

A crash is simulated by raising ``Crash`` (not an ``Exception``: nothing catches it)
at the Nth ``os`` call that changes the disk, for every N until the conversion runs to
its end; one run is also SIGKILLed for real. After each, ``reshard`` runs again
without faults and the store must hold exactly what it held before: every version,
every label with its whole history, the trash.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from promptshelf import FileSystemStorage
from promptshelf.storage.filesystem import reshard

from helpers import make_version

#: Ids that make the conversion interesting: "ab" and "c" could be shard names.
PROMPTS = ["ab", "c", "wf_001", "wf_002", "Zeta"]


#: A crash between two reads is the same as a crash at the next change: stop only at changes.
CHANGES = ["rename", "mkdir", "rmdir", "fsync", "unlink", "link", "replace", "write"]


class Crash(BaseException):
    """The process stopped here."""


def make_store(root: Path, sharding: bool) -> dict[str, Any]:
    store = FileSystemStorage(root, enable_sharding=sharding, shard_depth=1 if sharding else None)
    for i, prompt_id in enumerate(PROMPTS):
        for minor in range(3):
            store.save_version(make_version(prompt_id, f"1.{minor}.0", text=f"{prompt_id} {minor}"))
        store.set_label(prompt_id, "production", "1.1.0", actor="ci", reason=f"r{i}")
        store.set_label(prompt_id, "production", "1.2.0")
    store.delete_version("wf_001", "1.0.0")
    contents = everything(store)
    store.close()
    return contents


def everything(store: FileSystemStorage) -> dict[str, Any]:
    return {
        "prompts": store.list_prompts(),
        "versions": {p: store.list_versions(p) for p in store.list_prompts()},
        "history": {p: store.label_history(p) for p in store.list_prompts()},
        "trash": store.list_trash(),
    }


@contextmanager
def crash_at(n: int) -> Iterator[list[int]]:
    calls = [0]
    saved = {name: getattr(os, name) for name in CHANGES}

    def wrap(real: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            calls[0] += 1
            if calls[0] == n:
                raise Crash
            return real(*args, **kwargs)

        return counted

    before = set(os.listdir("/proc/self/fd"))
    for name, real in saved.items():
        setattr(os, name, wrap(real))
    try:
        yield calls
    except Crash:
        # A dead process holds nothing: close what it had open (its flocks go with them).
        for fd in set(os.listdir("/proc/self/fd")) - before:
            try:
                os.close(int(fd))
            except OSError:
                pass
        raise
    finally:
        for name, real in saved.items():
            setattr(os, name, real)


def check_after_rerun(root: Path, sharding: bool, expected: dict[str, Any]) -> None:
    report = reshard(str(root), sharding, 1)
    assert report.problems == [], report.problems
    store = FileSystemStorage(root)
    try:
        assert store.enable_sharding is sharding
        assert everything(store) == expected
    finally:
        store.close()
    assert not (root / ".reshard").exists()


@pytest.mark.parametrize("to_sharded", [True, False], ids=["flat-to-sharded", "sharded-to-flat"])
def test_reshard_stopped_at_every_call_loses_nothing(tmp_path: Path, to_sharded: bool) -> None:
    template = tmp_path / "template"
    expected = make_store(template, sharding=not to_sharded)
    crashes = 0
    for n in range(1, 2000):
        root = tmp_path / "run"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root, symlinks=True)
        try:
            with crash_at(n):
                reshard(str(root), to_sharded, 1)
            finished = True
        except Crash:
            finished = False
        check_after_rerun(root, to_sharded, expected)
        if finished:
            break
        crashes += 1
    else:
        pytest.fail("reshard never finished")
    print(
        f"reshard {'to sharded' if to_sharded else 'to flat'}: stopped at {crashes} calls, lost 0"
    )
    assert crashes > 15


CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from promptshelf.storage.filesystem import reshard
print("START", flush=True)
reshard(sys.argv[1], True, 1)
print("DONE", flush=True)
"""


def test_reshard_killed_for_real_then_rerun(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = FileSystemStorage(root)
    for n in range(300):
        store.save_version(make_version(f"p{n}", "1.0.0"))
    store.set_label("p7", "production", "1.0.0")
    expected = everything(store)
    store.close()
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(root), str(Path(__file__).resolve().parents[1])],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "START"  # a condition, not a time
    os.kill(child.pid, signal.SIGKILL)
    child.communicate()
    check_after_rerun(root, True, expected)
