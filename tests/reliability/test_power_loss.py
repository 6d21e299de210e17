"""T5: simulated power loss. Record the file-system operations of a workload, rebuild
every state a power cut could leave, and check that the store recovers to old-or-new.

The recorder wraps the backend's I/O module (promptshelf.storage.filesystem.io) and
logs logical operations: file contents created (and whether fsynced),
directory entries linked, unlinked, renamed and created, directory fsyncs,
whole-filesystem syncs, and the workload's acknowledgements. For every
prefix of that log it builds:

* the exact prefix (a process crash: the page cache survives);
* the power-loss state: file data not fsynced is lost (the file is empty),
  directory changes not followed by an fsync of their directory are lost;
* every power-loss state with one of the unsynced directory changes kept
  (the disk reordered it before the cut);
* torn variants: unsynced data replaced by garbage instead of nothing.

Deliberately broken variants of the store must fail these checks, so the
harness is shown to have teeth.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from promptshelf import FileSystemStorage
from promptshelf.storage.filesystem import index as fsindex
from promptshelf.storage.filesystem import io as fsio

from .harness import BASELINE, make_prestate
from helpers import make_version

Op = tuple[Any, ...]
WORKLOAD_VERSIONS = [
    make_version("p", "1.1.0"),
    make_version("q", "1.0.0"),
    make_version("p", "1.2.0"),
]


class Recorder:
    """Wraps fsio's functions; ``ops`` is the logical operation log."""

    def __init__(self, root: Path) -> None:
        self.root = str(root)
        self.ops: list[Op] = []
        self.dirs: dict[int, str] = {}
        self.ids = itertools.count(1)

    def rel(self, path: str) -> str:
        return os.path.relpath(path, self.root)

    @contextmanager
    def installed(self, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
        real = {
            name: getattr(fsio, name)
            for name in (
                "open_dir",
                "open_root",
                "open_dir_at",
                "close",
                "make_dir",
                "stage",
                "publish",
                "discard",
                "unlink",
                "fsync",
                "rename",
                "replace",
                "write_new",
                "sync_filesystem",
                "append",
                "link_between",
            )
        }

        def open_dir(path: str) -> int:
            fd: int = real["open_dir"](path)
            self.dirs[fd] = path
            return fd

        def open_root(path: str) -> int:
            fd: int = real["open_root"](path)
            self.dirs[fd] = path
            return fd

        def open_dir_at(parent_fd: int, name: str) -> int:
            fd: int = real["open_dir_at"](parent_fd, name)
            self.dirs[fd] = os.path.join(self.dirs[parent_fd], name)
            return fd

        def close(fd: int) -> None:
            self.dirs.pop(fd, None)
            real["close"](fd)

        def make_dir(parent_fd: int, name: str, durable: bool) -> bool:
            created: bool = real["make_dir"](parent_fd, name, durable)
            if created:
                self.ops.append(("mkdir", self._at(parent_fd, name)))
                if durable:
                    self.ops.append(("fsync_dir", self.rel(self.dirs[parent_fd])))
            return created

        def append(
            dir_fd: int, name: str, data: bytes, durable: bool, prepare: Callable[[int], None]
        ) -> None:
            path = self._at(dir_fd, name)
            existed = os.path.exists(os.path.join(self.dirs[dir_fd], name))
            real["append"](dir_fd, name, data, durable, prepare)
            with open(os.path.join(self.dirs[dir_fd], name), "rb") as handle:
                whole = handle.read()
            rec = next(self.ids)
            self.ops.append(("append", rec, path, whole, durable, existed))
            if durable and not existed:
                self.ops.append(("fsync_dir", self.rel(self.dirs[dir_fd])))

        def link_between(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
            real["link_between"](src_fd, src, dst_fd, dst)
            self.ops.append(("hardlink", self._at(src_fd, src), self._at(dst_fd, dst)))

        def stage(dir_fd: int, data: bytes, durable: bool) -> fsio.Staged:
            staged: fsio.Staged = real["stage"](dir_fd, data, durable)
            staged.rec_id = next(self.ids)  # type: ignore[attr-defined]
            self.ops.append(("create", staged.rec_id, data, durable))  # type: ignore[attr-defined]
            if staged.temp:
                self.ops.append(("link", staged.rec_id, self._at(dir_fd, staged.temp)))  # type: ignore[attr-defined]
            return staged

        def publish(staged: fsio.Staged, name: str) -> None:
            real["publish"](staged, name)
            self.ops.append(("link", staged.rec_id, self._at(staged.dir_fd, name)))  # type: ignore[attr-defined]

        def discard(staged: fsio.Staged) -> None:
            if staged.temp:
                self.ops.append(("unlink", self._at(staged.dir_fd, staged.temp)))
            real["discard"](staged)

        def unlink(dir_fd: int, name: str) -> bool:
            removed: bool = real["unlink"](dir_fd, name)
            if removed:
                self.ops.append(("unlink", self._at(dir_fd, name)))
            return removed

        def fsync(fd: int) -> None:
            real["fsync"](fd)
            if fd in self.dirs:
                self.ops.append(("fsync_dir", self.rel(self.dirs[fd])))

        def rename(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
            real["rename"](src_fd, src, dst_fd, dst)
            self.ops.append(("rename", self._at(src_fd, src), self._at(dst_fd, dst)))

        def replace(dir_fd: int, src: str, dst: str) -> None:
            real["replace"](dir_fd, src, dst)
            self.ops.append(("rename", self._at(dir_fd, src), self._at(dir_fd, dst)))

        def write_new(dir_fd: int, name: str, data: Any, durable: bool) -> None:
            chunks = [data] if isinstance(data, bytes) else list(data)
            real["write_new"](dir_fd, name, chunks, durable)
            rec = next(self.ids)
            self.ops.append(("create", rec, b"".join(chunks), durable))
            self.ops.append(("link", rec, self._at(dir_fd, name)))

        def sync_filesystem(fd: int) -> None:
            real["sync_filesystem"](fd)
            self.ops.append(("syncfs",))

        for name, func in locals().copy().items():
            if name in real:
                monkeypatch.setattr(fsio, name, func)
        yield
        for name, func in real.items():
            monkeypatch.setattr(fsio, name, func)

    def _at(self, dir_fd: int, name: str) -> str:
        return self.rel(os.path.join(self.dirs[dir_fd], name))


# -- the model of a file system after a power cut ------------------------------------------


def parent(path: str) -> str:
    return os.path.dirname(path) or "."


class Disk:
    """Directory entries and file contents, replayed from an initial tree and an op log."""

    def __init__(self, tree: Path) -> None:
        self.entries: dict[str, int] = {}  # file path -> content id
        self.dirs: set[str] = {"."}
        self.content: dict[int, bytes] = {}
        for path in sorted(tree.rglob("*")):
            rel = str(path.relative_to(tree))
            if path.is_dir():
                self.dirs.add(rel)
            else:
                cid = -len(self.content) - 1
                self.content[cid] = path.read_bytes()
                self.entries[rel] = cid

    def apply(self, op: Op) -> None:
        kind = op[0]
        if kind == "mkdir":
            self.dirs.add(op[1])
        elif kind == "link":
            self.entries[op[2]] = op[1]
        elif kind == "unlink":
            self.entries.pop(op[1], None)
        elif kind == "hardlink" and op[1] in self.entries:
            self.entries[op[2]] = self.entries[op[1]]
        elif kind == "rename" and op[1] in self.entries:
            self.entries[op[2]] = self.entries.pop(op[1])

    def write(self, target: Path, data_of: Callable[[int], bytes]) -> None:
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        for d in sorted(self.dirs, key=len):
            if d != "." and parent(d) in self.dirs | {"."}:
                (target / d).mkdir(exist_ok=True)
        for path, cid in self.entries.items():
            if (target / parent(path)).is_dir():
                (target / path).write_bytes(data_of(cid))


def entry_dirs(op: Op) -> list[str]:
    """The directories whose fsync makes ``op`` durable."""
    if op[0] == "mkdir":
        return [parent(op[1])]
    if op[0] in ("link", "hardlink"):
        return [parent(op[2])]
    if op[0] == "unlink":
        return [parent(op[1])]
    if op[0] == "rename":
        return [parent(op[1]), parent(op[2])]
    return []


def crash_states(tree: Path, ops: list[Op]) -> Iterator[tuple[str, Disk, Callable[[int], bytes]]]:
    """Every state a crash after ``ops`` can leave (see the module docstring)."""
    exact = Disk(tree)
    durable = Disk(tree)
    synced: set[int] = set(exact.content)
    before: dict[int, int] = {}  # an appended file's content -> its content before the append
    pending: list[Op] = []
    for op in ops:
        if op[0] == "append":  # ("append", id, path, whole content after, durable, existed)
            _, rec, path, whole, was_synced, existed = op
            exact.content[rec] = durable.content[rec] = whole
            if was_synced:
                synced.add(rec)
            if existed:  # same inode: only its data can be lost, never its name
                exact.entries[path] = rec
                if path in durable.entries:
                    before[rec] = durable.entries[path]
                    durable.entries[path] = rec
            else:
                exact.apply(("link", rec, path))
                pending.append(("link", rec, path))
        elif op[0] == "create":
            exact.content[op[1]] = durable.content[op[1]] = op[2]
            if op[3]:
                synced.add(op[1])
        elif op[0] == "syncfs":
            for p in pending:
                durable.apply(p)
            pending.clear()
            synced |= set(exact.content)
        elif op[0] == "fsync_dir":
            still = []
            for p in pending:
                if op[1] in entry_dirs(p):
                    durable.apply(p)
                else:
                    still.append(p)
            pending = still
        elif op[0] != "ack":
            exact.apply(op)
            pending.append(op)

    def lost(cid: int) -> bytes:
        if cid in synced:
            return exact.content[cid]
        return lost(before[cid]) if cid in before else b""

    def torn(cid: int) -> bytes:
        data = exact.content[cid]
        if cid in synced:
            return data
        if cid in before:  # an append reached the disk in part: the old bytes, then a prefix
            old = lost(before[cid])
            return data[: len(old) + (len(data) - len(old)) // 2]
        return bytes((b * 7 + 3) % 256 for b in data[: len(data) // 2])

    yield "exact-prefix", exact, lambda cid: exact.content[cid]
    yield "power-loss", durable, lost
    yield "power-loss-torn", durable, torn
    for i in range(len(pending)):  # one unsynced change reached the disk before the cut
        reordered = Disk.__new__(Disk)
        reordered.entries, reordered.dirs = dict(durable.entries), set(durable.dirs)
        reordered.content = durable.content
        reordered.apply(pending[i])
        yield f"reordered-{i}", reordered, lost


# -- the checks --------------------------------------------------------------------------


def check_state(root: Path, acked: list[Any]) -> None:
    index = root / ".index.json"
    if index.exists():  # the index is replaced atomically: old or new, never torn
        json.loads(index.read_bytes())
    store = FileSystemStorage(root, create=False)
    for version in [*BASELINE, *acked]:
        found = store.get_version(version.prompt_id, version.version)
        assert found == version, f"acknowledged {version.prompt_id} {version.version} lost"
    for version in WORKLOAD_VERSIONS:  # unacknowledged: absent or whole
        found = store.get_version(version.prompt_id, version.version)
        assert found is None or found == version
    assert {p.code for p in store.verify().problems} <= {"TEMP-FILE"}
    store.repair()
    assert store.verify().ok


def record(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mutation: Callable[[pytest.MonkeyPatch], None] | None = None,
) -> tuple[Path, list[Op]]:
    """Run the workload with the recorder installed (and a mutation on top of it, so what
    the mutation leaves out is never recorded)."""
    template = make_prestate(tmp_path / "template")
    work = tmp_path / "work"
    shutil.copytree(template, work)
    recorder = Recorder(work)
    with recorder.installed(monkeypatch):
        if mutation is not None:
            mutation(monkeypatch)
        store = FileSystemStorage(work)
        for number, version in enumerate(WORKLOAD_VERSIONS):
            store.save_version(version)
            recorder.ops.append(("ack", number))
            if number == 1:
                store.get_storage_stats()  # rewrites the index snapshot
                recorder.ops.append(("ack-index",))
    return template, recorder.ops


def run_all_states(tmp_path: Path, template: Path, ops: list[Op]) -> tuple[int, int]:
    states = failures = 0
    for k in range(len(ops) + 1):
        acked = [WORKLOAD_VERSIONS[op[1]] for op in ops[:k] if op[0] == "ack"]
        for _, disk, data_of in crash_states(template, ops[:k]):
            states += 1
            target = tmp_path / "state"
            disk.write(target, data_of)
            try:
                check_state(target, acked)
            except (AssertionError, ValueError, OSError):
                failures += 1
    return states, failures


@pytest.mark.parametrize("named_temps", [False, True], ids=["unnamed-files", "named-temps"])
def test_every_power_loss_state_recovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_temps: bool
) -> None:
    monkeypatch.setattr(fsio, "_unnamed_files", not named_temps)
    template, ops = record(tmp_path, monkeypatch)
    states, failures = run_all_states(tmp_path, template, ops)
    print(
        f"T5 named_temps={named_temps}: ops recorded {len(ops)}, crash states {states}, "
        f"failures {failures}"
    )
    assert states > 50 and failures == 0


def _no_dir_fsync(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fsio.fsync
    monkeypatch.setattr(fsio, "fsync", lambda fd: None if _is_dir(fd) else real(fd))


def _is_dir(fd: int) -> bool:
    return stat.S_ISDIR(os.fstat(fd).st_mode)


def _no_fsync_before_link(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fsio.stage
    monkeypatch.setattr(fsio, "stage", lambda dir_fd, data, durable: real(dir_fd, data, False))


def _index_in_place(monkeypatch: pytest.MonkeyPatch) -> None:
    def write(self: fsindex.IndexSnapshot, entries: Any, layout: Any) -> None:
        root = os.path.dirname(self.path)
        dir_fd = fsio.open_dir(root)
        try:
            fsio.unlink(dir_fd, fsindex.INDEX_FILE)
            fsio.write_new(dir_fd, fsindex.INDEX_FILE, b'{"version": "1.0.0", "index": {}}', False)
        finally:
            fsio.close(dir_fd)

    monkeypatch.setattr(fsindex.IndexSnapshot, "write", write)


@pytest.mark.parametrize(
    "mutation",
    [_no_dir_fsync, _no_fsync_before_link, _index_in_place],
    ids=["no-directory-fsync", "no-fsync-before-link", "index-written-in-place"],
)
def test_broken_variants_are_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mutation: Callable[..., None]
) -> None:
    with monkeypatch.context() as patched:
        template, ops = record(tmp_path, patched, mutation)
    states, failures = run_all_states(tmp_path, template, ops)
    print(f"T5 mutation {mutation.__name__}: crash states {states}, failures {failures} (caught)")
    assert failures > 0


# -- a second workload: labels, deletes and restores -----------------------------------------

NEW_P = make_version("p", "1.1.0", text="labelled, then deleted")
#: (name, step, where production points after it); "s" is deleted and restored.
LABEL_WORKLOAD: list[tuple[str, Callable[[FileSystemStorage], object], str | None]] = [
    ("set", lambda s: s.set_label("p", "production", "1.0.0"), "1.0.0"),
    ("save", lambda s: s.save_version(NEW_P), "1.0.0"),
    ("move", lambda s: s.set_label("p", "production", "1.1.0", actor="ci"), "1.1.0"),
    ("delete", lambda s: s.delete_version("s", "1.0.0"), "1.1.0"),
    ("restore", lambda s: s.restore_version("s", "1.0.0"), "1.1.0"),
    ("delete-labelled", lambda s: s.delete_version("p", "1.1.0", force=True), None),
]


def record_labels(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    mutation: Callable[[pytest.MonkeyPatch], None] | None = None,
) -> tuple[Path, list[Op]]:
    template = make_prestate(tmp_path / "template")
    work = tmp_path / "work"
    shutil.copytree(template, work)
    recorder = Recorder(work)
    with recorder.installed(monkeypatch):
        if mutation is not None:
            mutation(monkeypatch)
        store = FileSystemStorage(work)
        for number, (_, step, _) in enumerate(LABEL_WORKLOAD):
            step(store)
            recorder.ops.append(("ack", number))
    return template, recorder.ops


def check_label_state(root: Path, acked: int) -> None:
    """``acked`` steps were acknowledged; the next one may have been under way."""
    store = FileSystemStorage(root, create=False)
    names = [name for name, _, _ in LABEL_WORKLOAD]
    done = set(names[:acked])
    assert store.get_version("p", "1.0.0") == BASELINE[0]
    s_present = store.get_version("s", "1.0.0") == BASELINE[1]
    s_trashed = any((e.prompt_id, e.version) == ("s", "1.0.0") for e in store.list_trash())
    assert s_present or s_trashed, "s 1.0.0 lost"
    if "restore" in done:
        assert s_present, "an acknowledged restore was lost"
    if "delete" in done and "restore" not in names[: acked + 1]:
        assert s_trashed and not s_present, "an acknowledged delete was lost"
    new_p = store.get_version("p", "1.1.0")
    in_flight = names[acked] if acked < len(names) else None
    p_trashed = any(e.version == "1.1.0" for e in store.list_trash("p"))
    if "save" in done and "delete-labelled" not in done:
        assert new_p == NEW_P or (in_flight == "delete-labelled" and p_trashed), "p 1.1.0 lost"
    if "delete-labelled" in done:
        assert new_p is None and p_trashed, "an acknowledged delete was lost"
    allowed = {LABEL_WORKLOAD[acked - 1][2] if acked else None}
    if acked < len(LABEL_WORKLOAD):
        allowed.add(LABEL_WORKLOAD[acked][2])
    assert store.get_label("p", "production") in allowed
    history = store.label_history("p")
    assert [e.seq for e in history] == list(range(1, len(history) + 1))
    assert {p.code for p in store.verify().problems} <= {"TEMP-FILE"}
    store.repair()
    assert store.verify().ok


def _label_states(tmp_path: Path, template: Path, ops: list[Op]) -> tuple[int, int]:
    states = failures = 0
    for k in range(len(ops) + 1):
        acked = sum(1 for op in ops[:k] if op[0] == "ack")
        for _, disk, data_of in crash_states(template, ops[:k]):
            states += 1
            target = tmp_path / "state"
            disk.write(target, data_of)
            try:
                check_label_state(target, acked)
            except (AssertionError, ValueError, OSError):
                failures += 1
    return states, failures


@pytest.mark.parametrize("named_temps", [False, True], ids=["unnamed-files", "named-temps"])
def test_labels_deletes_and_restores_survive_every_power_loss_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_temps: bool
) -> None:
    monkeypatch.setattr(fsio, "_unnamed_files", not named_temps)
    template, ops = record_labels(tmp_path, monkeypatch)
    kinds = {op[0] for op in ops}
    assert {"append", "hardlink", "rename"} <= kinds  # label appends and restores are recorded
    states, failures = _label_states(tmp_path, template, ops)
    print(
        f"T5 labels/deletes/restores named_temps={named_temps}: ops recorded {len(ops)}, "
        f"crash states {states}, failures {failures}"
    )
    assert states > 50 and failures == 0


def _unsynced_label_append(monkeypatch: pytest.MonkeyPatch) -> None:
    real = fsio.append  # the recorder's wrapper: it then records what really happens
    monkeypatch.setattr(
        fsio,
        "append",
        lambda fd, name, data, durable, prepare: real(fd, name, data, False, prepare),
    )


def test_an_unsynced_label_append_is_caught(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Teeth: label appends that skip their fsync lose acknowledged label moves."""
    with monkeypatch.context() as patched:
        template, ops = record_labels(tmp_path, patched, _unsynced_label_append)
    states, failures = _label_states(tmp_path, template, ops)
    print(f"T5 mutation unsynced label append: crash states {states}, failures {failures} (caught)")
    assert failures > 0
