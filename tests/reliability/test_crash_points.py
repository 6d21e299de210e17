"""T2/T3: kill the writer at every file-system call of an operation, then check the store.

The child process counts calls to the ``os`` functions the store uses and
SIGKILLs itself at call N, for N = 1, 2, ... until the operation completes.
After every crash the store must hold the old state or the new one, whole,
and repair() must leave it clean. The figures are printed (run with -s).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage
from promptshelf.storage.filesystem import io as fsio

from .harness import OS_CALLS, check_consistent, fresh_copy, make_prestate
from helpers import make_version

NEW_P = make_version("p", "1.1.0", text="new in p")
NEW_Q = make_version("q", "1.0.0", text="a new prompt")


def _damage(root: Path) -> None:
    """A dirty store for the recovery workload: a temp file, a broken index, a bad version."""
    (root / "p" / ".tmp-424242-dead").write_bytes(b"half")
    (root / ".index.json").write_bytes(b"{torn")
    (root / "s" / "2.0.0.json").write_bytes(b'{"prompt_id": "s", "version": "2.0.')


def _damage_labels(root: Path) -> bytes:
    """A label log with one damaged line between valid ones; returns the damaged log."""
    store = FileSystemStorage(root)
    store.set_label("p", "production", "1.0.0")
    store.set_label("p", "staging", "1.0.0")
    store.close()
    log = root / "p" / ".labels.jsonl"
    lines = log.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"action"', b'"act')
    log.write_bytes(b"\n".join(lines))
    return log.read_bytes()


WORKLOADS: dict[str, Callable[[FileSystemStorage], object]] = {
    "save": lambda s: s.save_version(NEW_P),
    "save-new-prompt": lambda s: s.save_version(NEW_Q),
    "bulk": lambda s: s.save_versions([NEW_P, NEW_Q]),
    "delete": lambda s: s.delete_version("p", "1.0.0"),
    "label": lambda s: s.set_label("p", "production", "1.0.0"),
    "compress": lambda s: s.compress(keep_recent=0),
    "repair": lambda s: s.repair(),
    "repair-labels": lambda s: s.repair(),
}


def _child(root: str, workload: str, crash_at: int, named_temps: bool) -> None:
    fsio._unnamed_files = not named_temps
    store = FileSystemStorage(root)
    calls = [0]
    for name in OS_CALLS:
        real = getattr(os, name)

        def counted(*args: object, _real: Callable[..., object] = real, **kwargs: object) -> object:
            calls[0] += 1
            if calls[0] == crash_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return _real(*args, **kwargs)

        setattr(os, name, counted)
    WORKLOADS[workload](store)
    os._exit(0)


def _check(root: Path, workload: str) -> str:
    """Check the store after a crash; returns "old" or "new" (what the crash left)."""
    may_be_gone = {("p", "1.0.0")} if workload == "delete" else set()
    store = check_consistent(root, may_be_gone, dirty=workload.startswith("repair"))
    if workload == "repair-labels":  # the valid events kept, the original log quarantined
        assert store.list_labels("p") == {"production": "1.0.0"}
        copies = [c.read_bytes() for c in root.glob(".quarantine/p/.labels.jsonl@*[0-9]")]
        assert copies and all(c == copies[0] for c in copies)
        assert copies[0].split(b"\n")[1].count(b'"act:') == 1
    if workload == "repair":  # the damaged file is kept, in place or in the quarantine
        kept = [*root.glob("s/2.0.0.json"), *root.glob(".quarantine/s/2.0.0@*.json")]
        assert [k.read_bytes() for k in kept] == [b'{"prompt_id": "s", "version": "2.0.']
    for new in (NEW_P, NEW_Q):
        found = store.get_version(new.prompt_id, new.version)
        assert found is None or found == new
    if workload == "label":
        assert store.get_label("p", "production") in (None, "1.0.0")
        assert len(store.label_history("p")) in (0, 1)
        return "new" if store.get_label("p", "production") else "old"
    if workload == "delete":
        return "new" if store.get_version("p", "1.0.0") is None else "old"
    if workload in ("save", "bulk"):
        return "new" if store.get_version("p", "1.1.0") else "old"
    if workload == "save-new-prompt":
        return "new" if store.get_version("q", "1.0.0") else "old"
    return "new" if workload.startswith("repair") else "old"


@pytest.mark.parametrize("named_temps", [False, True], ids=["unnamed-files", "named-temps"])
@pytest.mark.parametrize("workload", sorted(WORKLOADS))
def test_every_crash_point(tmp_path: Path, workload: str, named_temps: bool) -> None:
    template = make_prestate(tmp_path / "template")
    if workload == "repair":
        _damage(template)
    if workload == "repair-labels":
        _damage_labels(template)
    ctx = multiprocessing.get_context("fork")
    outcomes = {"old": 0, "new": 0}
    crash_at = 0
    while True:
        crash_at += 1
        assert crash_at < 500, "the operation never completed"
        root = fresh_copy(template, tmp_path / "run")
        child = ctx.Process(target=_child, args=(str(root), workload, crash_at, named_temps))
        child.start()
        child.join(60)
        if child.exitcode == 0:
            break
        assert child.exitcode == -signal.SIGKILL, f"child failed at call {crash_at}"
        outcomes[_check(root, workload)] += 1
    final = _check(root, workload)
    assert final == "new" or workload in ("compress",)
    print(
        f"T2 {workload} named_temps={named_temps}: crash points {crash_at - 1} "
        f"(old-state {outcomes['old']} / new-state {outcomes['new']}), acknowledged lost: 0"
    )
