"""The paths that make the filesystem backend fast must stay exact (correctness, not timing)."""

from __future__ import annotations

import json
import multiprocessing
import random
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage, VersionManager
from promptshelf.storage.filesystem import index as fsindex

from helpers import make_analysis, make_prompt, make_version


def versions_of(i: int) -> int:
    return i % 13 + 1


def test_a_20000_version_store_reopens_exact(tmp_path: Path) -> None:
    prompts = 2900
    writer = FileSystemStorage(tmp_path, durable=False)
    batch = [
        make_version(f"p{i:05d}", f"1.{minor}.0")
        for i in range(prompts)
        for minor in range(versions_of(i))
    ]
    assert writer.save_versions(batch) == len(batch)
    total = len(batch)
    assert total > 20_000

    reopened = FileSystemStorage(tmp_path)
    rng = random.Random(7)
    for i in rng.sample(range(prompts), 60):
        latest = reopened.get_latest_version(f"p{i:05d}")
        assert latest is not None and latest.version == f"1.{versions_of(i) - 1}.0"
        assert len(reopened.list_version_numbers(f"p{i:05d}")) == versions_of(i)
    stats = reopened.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (prompts, total)
    index = json.loads((tmp_path / ".index.json").read_text())
    assert (index["total_prompts"], index["total_versions"]) == (prompts, total)
    assert index["index"]["p00012"]["latest_version"] == "1.12.0"

    # a third instance trusts the snapshot and still reports the same
    assert FileSystemStorage(tmp_path).get_storage_stats()["total_versions"] == total


def _change_store(root: str) -> None:
    store = FileSystemStorage(root)
    store.save_version(make_version("p00001", "9.0.0"))
    store.delete_version("p00002", "1.0.0")
    store.save_version(make_version("brand-new", "1.0.0"))
    for number in store.list_version_numbers("p00003"):
        store.delete_version("p00003", number)


def test_a_snapshot_behind_the_files_recovers_exactly(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_versions(make_version(f"p{i:05d}", "1.0.0") for i in range(10))
    store.save_versions(make_version("p00003", f"1.{m}.0") for m in range(1, 4))
    assert store.get_storage_stats()["total_versions"] == 13  # writes the snapshot
    snapshot_before = (tmp_path / ".index.json").read_bytes()

    child = multiprocessing.get_context("fork").Process(target=_change_store, args=(str(tmp_path),))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert (tmp_path / ".index.json").read_bytes() == snapshot_before  # writers never touch it

    for reader in (store, FileSystemStorage(tmp_path)):
        stats = reader.get_storage_stats()
        assert (stats["total_prompts"], stats["total_versions"]) == (10 - 2 + 1, 13 + 1 - 1 + 1 - 4)
        assert reader.list_prompts() == sorted(
            [f"p{i:05d}" for i in range(10) if i not in (2, 3)] + ["brand-new"]
        )
        assert reader.get_latest_version("p00001").version == "9.0.0"  # type: ignore[union-attr]
    index = json.loads((tmp_path / ".index.json").read_text())
    assert index["index"]["p00001"]["versions"] == ["1.0.0", "9.0.0"]
    assert "p00002" not in index["index"] and "p00003" not in index["index"]


def test_coarse_timestamps_cannot_hide_a_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every directory stamp identical (a filesystem with coarse timestamps), a
    listing taken right after a change is never trusted, so the next change is seen."""
    monkeypatch.setattr(fsindex, "stamp_of", lambda st: (1, 1, 1))
    reader, writer = FileSystemStorage(tmp_path), FileSystemStorage(tmp_path)
    writer.save_version(make_version("a", "1.0.0"))
    assert reader.list_version_numbers("a") == ["1.0.0"]
    writer.save_version(make_version("a", "1.1.0"))
    assert reader.list_version_numbers("a") == ["1.0.0", "1.1.0"]
    assert reader.get_latest_version("a").version == "1.1.0"  # type: ignore[union-attr]

    # The rule has teeth: trusting a racy listing would have served the stale one.
    monkeypatch.setattr(fsindex, "settled", lambda st, now: True)
    trusting = FileSystemStorage(tmp_path)
    assert trusting.list_version_numbers("a") == ["1.0.0", "1.1.0"]
    writer.save_version(make_version("a", "1.2.0"))
    assert trusting.list_version_numbers("a") == ["1.0.0", "1.1.0"]


def _writer(root: str, count: int, acked: multiprocessing.Value) -> None:  # type: ignore[valid-type]
    manager = VersionManager(FileSystemStorage(root))
    for _ in range(count):
        created = manager.create_version(make_prompt("shared"), make_analysis("shared"))
        patch = int(created.version.split(".")[2])
        with acked.get_lock():  # type: ignore[attr-defined]
            acked.value = max(acked.value, patch)  # type: ignore[attr-defined]


def _reader(
    root: str,
    acked: multiprocessing.Value,
    stop: multiprocessing.Event,  # type: ignore[valid-type]
    bad: multiprocessing.Value,
) -> None:  # type: ignore[valid-type]
    store = FileSystemStorage(root)
    previous = -1
    while not stop.is_set():  # type: ignore[attr-defined]
        floor = acked.value  # type: ignore[attr-defined]
        latest = store.get_latest_version("shared")
        seen = -1 if latest is None else int(latest.version.split(".")[2])
        if seen < floor or seen < previous:
            bad.value += 1  # type: ignore[attr-defined]
        previous = seen


def test_readers_never_see_a_wrong_latest_while_processes_write(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    acked, bad, stop = ctx.Value("q", -1), ctx.Value("q", 0), ctx.Event()
    readers = [
        ctx.Process(target=_reader, args=(str(tmp_path), acked, stop, bad)) for _ in range(2)
    ]
    writers = [ctx.Process(target=_writer, args=(str(tmp_path), 60, acked)) for _ in range(3)]
    for p in readers + writers:
        p.start()
    for p in writers:
        p.join(120)
        assert p.exitcode == 0
    stop.set()
    for p in readers:
        p.join(30)
        assert p.exitcode == 0
    assert bad.value == 0
    assert FileSystemStorage(tmp_path).get_latest_version("shared").version == "1.0.179"  # type: ignore[union-attr]
