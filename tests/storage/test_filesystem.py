"""Filesystem backend: the files on disk are the ground truth these tests read."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import time
from pathlib import Path

import pytest

from promptshelf import (
    CorruptVersionError,
    FileSystemStorage,
    InvalidPromptIdError,
    LockTimeoutError,
    PromptVersion,
    VersionConflictError,
    VersionManager,
)
from promptshelf.errors import LoadError
from promptshelf.storage.filesystem import io as fsio
from promptshelf.storage.filesystem.index import RACY_NS

from conftest import BUNDLED_SEED, SEED_STORE
from helpers import make_analysis, make_prompt, make_result, make_version

SEED_LATEST = {"wf_001_llm_1": "1.2.0", "wf_001_llm_2": "1.1.0", "wf_002_classifier": "1.0.0"}


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


# -- layout --------------------------------------------------------------------


def test_layout_is_one_pretty_json_file_per_version(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    version = make_version("wf_001_llm_1", "1.0.0")
    store.save_version(version)
    path = tmp_path / "wf_001_llm_1" / "1.0.0.json"
    assert files_under(tmp_path) == {"wf_001_llm_1/1.0.0.json"}
    raw = path.read_bytes()
    canonical = version.model_dump_json(indent=2).encode()
    digest = hashlib.sha256(canonical).hexdigest()
    assert raw == canonical[:-2] + f',\n  "sha256": "{digest}"\n}}'.encode()
    assert json.loads(raw)["prompt_id"] == "wf_001_llm_1"
    assert json.loads(raw)["sha256"] == digest
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)


def test_without_checksums_files_are_exactly_the_originals_format(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path, checksums=False)
    version = make_version("wf_001_llm_1", "1.0.0")
    store.save_version(version)
    raw = (tmp_path / "wf_001_llm_1" / "1.0.0.json").read_bytes()
    assert raw == version.model_dump_json(indent=2).encode()
    assert PromptVersion.model_validate_json(raw) == version  # the original's strict model reads it
    assert FileSystemStorage(tmp_path).get_version("wf_001_llm_1", "1.0.0") == version


def test_sharding_places_prompts_under_their_hash_prefix(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path, enable_sharding=True, shard_depth=3)
    store.save_version(make_version("wf_001_llm_1", "1.0.0"))
    shard = hashlib.sha256(b"wf_001_llm_1").hexdigest()[:3]
    assert files_under(tmp_path) == {f"{shard}/wf_001_llm_1/1.0.0.json"}
    assert store.list_prompts() == ["wf_001_llm_1"]
    reopened = FileSystemStorage(tmp_path, enable_sharding=True, shard_depth=3)
    assert reopened.get_latest_version("wf_001_llm_1").version == "1.0.0"  # type: ignore[union-attr]


# -- the store the original implementation wrote ----------------------------------------


def test_reads_the_seed_store_unchanged(seed_copy: Path) -> None:
    before = {p: (seed_copy / p).read_bytes() for p in files_under(seed_copy)}
    store = FileSystemStorage(seed_copy)
    assert store.list_prompts() == sorted(SEED_LATEST)
    for prompt_id, latest in SEED_LATEST.items():
        assert store.get_latest_version(prompt_id).version == latest  # type: ignore[union-attr]
    v = store.get_version("wf_001_llm_2", "1.1.0")
    assert v is not None and v.prompt.text.endswith("日本語も可。")
    assert (
        v.optimization_result is not None
        and v.optimization_result.strategy.value == "clarity_focus"
    )
    stats = store.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (3, 6)
    for rel, data in before.items():
        if rel != ".index.json":
            assert (seed_copy / rel).read_bytes() == data, rel
            # what we would write is byte-identical to what the original wrote
            version = PromptVersion.model_validate_json(data)
            assert version.model_dump_json(indent=2).encode() == data


def test_bundled_seed_copy_matches_the_shared_fixture_when_present() -> None:
    # examples/seed-store is a verbatim copy, so the suite and the tour run without shared/
    for source in [p for p in (SEED_STORE, BUNDLED_SEED) if p.is_dir()]:
        assert files_under(source) == files_under(BUNDLED_SEED)
        for rel in files_under(source):
            assert (source / rel).read_bytes() == (BUNDLED_SEED / rel).read_bytes()


def test_seed_store_grows_with_version_manager(seed_copy: Path) -> None:
    manager = VersionManager(FileSystemStorage(seed_copy))
    created = manager.create_version(
        make_prompt("wf_001_llm_1"), make_analysis("wf_001_llm_1"), make_result("wf_001_llm_1")
    )
    assert created.version == "1.3.0"
    index = json.loads((seed_copy / ".index.json").read_text())
    assert (
        index["index"]["wf_001_llm_1"]["latest_version"] == "1.2.0"
    )  # a snapshot, not yet rewritten
    FileSystemStorage(seed_copy).rebuild_index()
    index = json.loads((seed_copy / ".index.json").read_text())
    assert index["index"]["wf_001_llm_1"]["latest_version"] == "1.3.0"
    assert index["index"]["wf_001_llm_1"]["versions"] == ["1.0.0", "1.1.0", "1.2.0", "1.3.0"]
    assert (index["total_prompts"], index["total_versions"]) == (3, 7)


# -- the index -------------------------------------------------------------------


@pytest.mark.parametrize("damage", ["missing", "garbage", "stale", "wrong-types", "deep"])
def test_index_is_rebuilt_from_the_files(seed_copy: Path, damage: str) -> None:
    index = seed_copy / ".index.json"
    if damage == "missing":
        index.unlink()
    elif damage == "garbage":
        index.write_bytes(b"\x00{not json")
    elif damage == "stale":
        raw = json.loads(index.read_text())
        raw["index"]["wf_001_llm_1"]["versions"] = ["1.0.0"]
        raw["index"]["wf_001_llm_1"]["latest_version"] = "1.0.0"
        raw["index"]["ghost"] = raw["index"]["wf_002_classifier"]
        index.write_text(json.dumps(raw))
    elif damage == "wrong-types":
        index.write_text(json.dumps({"index": {"wf_001_llm_1": {"versions": 7}}}))
    else:
        index.write_text("[" * 100_000)
    store = FileSystemStorage(seed_copy)
    assert store.get_latest_version("wf_001_llm_1").version == "1.2.0"  # type: ignore[union-attr]
    stats = store.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (3, 6)
    assert store.list_prompts() == sorted(SEED_LATEST)
    rebuilt = json.loads(index.read_text())
    assert rebuilt["index"]["wf_001_llm_1"]["versions"] == ["1.0.0", "1.1.0", "1.2.0"]
    assert "ghost" not in rebuilt["index"]


def test_stats_see_changes_made_by_another_instance(tmp_path: Path) -> None:
    first, second = FileSystemStorage(tmp_path), FileSystemStorage(tmp_path)
    first.save_version(make_version("a", "1.0.0"))
    assert second.get_storage_stats()["total_versions"] == 1
    second.save_version(make_version("a", "1.1.0"))
    second.save_version(make_version("b", "1.0.0"))
    assert first.get_storage_stats()["total_versions"] == 3
    assert first.get_latest_version("a").version == "1.1.0"  # type: ignore[union-attr]
    first.delete_version("a", "1.1.0")
    assert second.get_latest_version("a").version == "1.0.0"  # type: ignore[union-attr]
    assert second.list_prompts() == ["a", "b"]


def test_cached_read_sees_delete_and_recreate_by_another_instance(tmp_path: Path) -> None:
    reader, writer = FileSystemStorage(tmp_path), FileSystemStorage(tmp_path)
    writer.save_version(make_version("a", "1.0.0", text="one"))
    time.sleep(RACY_NS / 1e9 + 0.01)  # files younger than this are never cached
    for _ in range(3):
        assert reader.get_version("a", "1.0.0").prompt.text == "one"  # type: ignore[union-attr]
    assert reader.get_storage_stats()["cache_stats"]["hits"] >= 1
    writer.delete_version("a", "1.0.0")
    assert reader.get_version("a", "1.0.0") is None
    writer.save_version(make_version("a", "1.0.0", text="two"))
    assert reader.get_version("a", "1.0.0").prompt.text == "two"  # type: ignore[union-attr]


def _change_in_another_process(root: str, sharded: bool) -> None:
    store = FileSystemStorage(root, enable_sharding=sharded)
    store.save_version(make_version("a", "1.2.0", text="new"))  # a new latest
    store.delete_version("a", "1.0.0")
    store.delete_version("a", "1.1.0")
    store.save_version(make_version("a", "1.1.0", text="re-made"))  # same number, new text


@pytest.mark.parametrize("sharded", [False, True])
def test_a_warm_cache_sees_another_processes_saves_and_deletes(
    tmp_path: Path, sharded: bool
) -> None:
    """Cached get, latest and list each hit the cache; then another process saves,
    deletes and re-creates: the very next reads see all of it (the hit path revalidates
    with one stat per call, never trusting what this process saw before)."""
    reader = FileSystemStorage(tmp_path, enable_sharding=sharded)
    reader.save_version(make_version("a", "1.0.0", text="zero"))
    reader.save_version(make_version("a", "1.1.0", text="one"))
    time.sleep(RACY_NS / 1e9 + 0.01)  # files younger than this are never cached
    for _ in range(3):  # warm: the second and third rounds are hits
        assert reader.get_version("a", "1.1.0").prompt.text == "one"  # type: ignore[union-attr]
        assert reader.get_latest_version("a").version == "1.1.0"  # type: ignore[union-attr]
        assert [v.version for v in reader.list_versions("a")] == ["1.0.0", "1.1.0"]
    hits = reader.get_storage_stats()["cache_stats"]["hits"]
    assert hits >= 6
    child = multiprocessing.get_context("fork").Process(
        target=_change_in_another_process, args=(str(tmp_path), sharded)
    )
    child.start()
    child.join(60)
    assert child.exitcode == 0
    assert reader.get_version("a", "1.0.0") is None
    assert reader.get_version("a", "1.1.0").prompt.text == "re-made"  # type: ignore[union-attr]
    latest = reader.get_latest_version("a")
    assert latest is not None and (latest.version, latest.prompt.text) == ("1.2.0", "new")
    listed = reader.list_versions("a")
    assert [(v.version, v.prompt.text) for v in listed] == [("1.1.0", "re-made"), ("1.2.0", "new")]
    # and once settled, the new files are served from the cache again, still isolated
    time.sleep(RACY_NS / 1e9 + 0.01)
    for _ in range(2):
        got = reader.get_version("a", "1.2.0")
        assert got is not None and got.prompt.text == "new"
        got.prompt.variables.append("mutated")
        got.metadata["mutated"] = True
    again = reader.get_version("a", "1.2.0")
    assert again is not None and "mutated" not in again.prompt.variables
    assert "mutated" not in again.metadata
    assert reader.get_storage_stats()["cache_stats"]["hits"] > hits


# -- crash recovery ------------------------------------------------------------------


@pytest.mark.parametrize("named_temps", [False, True])
def test_temp_files_are_never_read_and_are_cleaned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, named_temps: bool
) -> None:
    monkeypatch.setattr(fsio, "_unnamed_files", not named_temps)
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    dead = tmp_path / "a" / ".tmp-999999-deadbeef"
    dead.write_bytes(b'{"half": ')
    assert store.list_version_numbers("a") == ["1.0.0"]  # never read as a version
    assert store.get_storage_stats()["total_versions"] == 1
    assert dead.exists()  # reads change nothing
    store.save_version(make_version("a", "1.1.0"))
    # a writer that may itself leave temp files removes dead ones, under the prompt's lock
    assert dead.exists() is not named_temps
    dead.write_bytes(b"junk")
    assert store.rebuild_index()["temp_files_removed"] == 1
    assert files_under(tmp_path) == {"a/1.0.0.json", "a/1.1.0.json", ".index.json"}


def test_a_live_writers_temp_file_is_never_removed(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    live = tmp_path / "a" / ".tmp-1-live-1.1.0.json"
    live.write_bytes(b"in progress")
    dir_fd = fsio.open_dir(str(tmp_path / "a"))
    try:
        assert fsio.lock(dir_fd, 1.0)  # a writer holds the prompt lock
        assert store.rebuild_index()["temp_files_removed"] == 0
        assert live.exists()
    finally:
        fsio.close(dir_fd)
    assert store.rebuild_index()["temp_files_removed"] == 1


def test_lock_timeout_has_its_code(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path, lock_timeout=0.05)
    store.save_version(make_version("a", "1.0.0"))
    dir_fd = fsio.open_dir(str(tmp_path / "a"))
    try:
        assert fsio.lock(dir_fd, 1.0)
        with pytest.raises(LockTimeoutError) as caught:
            store.save_version(make_version("a", "1.1.0"))
        assert caught.value.error_code == "FS-LOCK-001"
        assert isinstance(caught.value, TimeoutError)
    finally:
        fsio.close(dir_fd)
    store.save_version(make_version("a", "1.1.0"))


# -- corruption ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "corrupted JSON"),
        (b'{"prompt_id": "a", "vers', "corrupted JSON"),
        (b"\xff\xfe\x00garbage", "corrupted JSON"),
        (b"[" * 50_000, "corrupted JSON"),
        (b'{"prompt_id": "a"}', "invalid version data"),
        (b"123", "invalid version data"),
    ],
)
def test_corrupted_files_raise_fs_load_001(tmp_path: Path, content: bytes, reason: str) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    (tmp_path / "a" / "1.1.0.json").write_bytes(content)
    with pytest.raises(CorruptVersionError) as caught:
        store.get_version("a", "1.1.0")
    assert caught.value.error_code == "FS-LOAD-001"
    assert caught.value.context["reason"] == reason
    assert caught.value.context["path"].endswith("a/1.1.0.json")
    assert store.get_version("a", "1.0.0") is not None  # the intact one still reads


def test_misnamed_file_is_detected(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    (tmp_path / "a" / "1.0.0.json").rename(tmp_path / "a" / "2.0.0.json")
    with pytest.raises(CorruptVersionError) as caught:
        store.get_version("a", "2.0.0")
    assert caught.value.context["reason"] == "misnamed"


def test_oversized_file_is_refused_without_reading_it(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    with open(tmp_path / "a" / "1.1.0.json", "wb") as handle:
        handle.truncate(2**30)  # sparse: costs nothing on disk
    with pytest.raises(CorruptVersionError):
        store.get_version("a", "1.1.0")


def test_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside.json"
    outside.write_bytes(make_version("a", "1.1.0").model_dump_json().encode())
    store = FileSystemStorage(tmp_path / "store")
    store.save_version(make_version("a", "1.0.0"))
    (tmp_path / "store" / "a" / "1.1.0.json").symlink_to(outside)
    with pytest.raises(LoadError) as caught:
        store.get_version("a", "1.1.0")
    assert caught.value.error_code == "FS-SYMLINK-001"


def test_unreadable_store_path(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(Exception) as caught:
        FileSystemStorage(tmp_path / "file")
    assert getattr(caught.value, "error_code", None) == "FS-LOAD-002" or isinstance(
        caught.value, OSError
    )


def test_non_durable_mode_still_round_trips(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path, durable=False)
    store.save_version(make_version("a", "1.0.0"))
    assert FileSystemStorage(tmp_path).get_latest_version("a").version == "1.0.0"  # type: ignore[union-attr]
    assert store.get_storage_stats()["durable"] is False


# -- several processes ------------------------------------------------------------------


def _save_range(root: str, worker: int, count: int) -> None:
    store = FileSystemStorage(root)
    for i in range(count):
        store.save_version(make_version(f"p{i % 4}", f"{worker}.{i}.0"))


def _create_many(root: str, count: int, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    manager = VersionManager(FileSystemStorage(root))
    made = []
    for i in range(count):
        optimized = make_result() if i % 2 else None
        made.append(manager.create_version(make_prompt(), make_analysis(), optimized).version)
    queue.put(made)


def test_processes_saving_at_once_lose_nothing(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    workers = [ctx.Process(target=_save_range, args=(str(tmp_path), w, 40)) for w in range(4)]
    for p in workers:
        p.start()
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    store = FileSystemStorage(tmp_path)
    stats = store.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (4, 160)
    assert sum(1 for _ in tmp_path.rglob("*.json")) == 160 + 1  # plus .index.json
    assert store.get_latest_version("p3").version == "3.39.0"  # type: ignore[union-attr]
    assert len(store.list_versions("p0")) == 40


def test_processes_creating_versions_of_one_prompt_get_distinct_numbers(tmp_path: Path) -> None:
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    workers = [ctx.Process(target=_create_many, args=(str(tmp_path), 25, queue)) for _ in range(4)]
    for p in workers:
        p.start()
    made = [v for _ in workers for v in queue.get(timeout=120)]
    for p in workers:
        p.join(60)
        assert p.exitcode == 0
    assert len(made) == len(set(made)) == 100
    on_disk = {p.name[:-5] for p in (tmp_path / "wf_001_llm_1").glob("*.json")}
    assert on_disk == set(made)


def test_named_temp_fallback_when_unnamed_files_are_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fsio, "_unnamed_files", False)
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0", text="first"))
    with pytest.raises(VersionConflictError):
        store.save_version(make_version("a", "1.0.0", text="second"))
    assert store.save_versions([make_version("a", "1.1.0"), make_version("b", "1.0.0")]) == 2
    assert files_under(tmp_path) == {"a/1.0.0.json", "a/1.1.0.json", "b/1.0.0.json"}
    assert store.get_version("a", "1.0.0").prompt.text == "first"  # type: ignore[union-attr]


def test_bulk_save_validates_everything_before_writing(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    bad = make_version("a", "1.1.0").model_copy(update={"prompt_id": "../evil"})
    with pytest.raises(InvalidPromptIdError):
        store.save_versions([make_version("a", "1.0.0"), bad])
    with pytest.raises(VersionConflictError):
        store.save_versions([make_version("a", "1.0.0"), make_version("a", "1.0.0")])
    assert files_under(tmp_path) == set()


def test_bulk_save_conflict_midway_keeps_what_came_before(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("b", "1.0.0", text="original"))
    batch = [make_version("a", "1.0.0"), make_version("b", "1.0.0"), make_version("c", "1.0.0")]
    with pytest.raises(VersionConflictError) as caught:
        store.save_versions(batch)
    assert caught.value.context["prompt_id"] == "b"
    assert files_under(tmp_path) == {"a/1.0.0.json", "b/1.0.0.json"}
    assert store.get_version("b", "1.0.0").prompt.text == "original"  # type: ignore[union-attr]


def test_bulk_save_spanning_many_rounds(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    batch = [make_version(f"p{i % 300}", f"1.{i // 300}.0") for i in range(900)]
    assert store.save_versions(batch) == 900
    stats = store.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (300, 900)
    assert store.get_latest_version("p7").version == "1.2.0"  # type: ignore[union-attr]


def test_verify_reports_each_problem_with_its_location(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        store.save_version(make_version("a", number))
    store.get_storage_stats()  # writes the index snapshot
    (tmp_path / "a" / "1.1.0.json").write_bytes(b'{"truncated": ')
    (tmp_path / "a" / ".tmp-4242-abcdef").write_bytes(b"partial")
    report = store.verify()
    codes = sorted((p.code, Path(p.location).name) for p in report.problems)
    assert codes == [("FS-LOAD-001", "1.1.0.json"), ("TEMP-FILE", ".tmp-4242-abcdef")]
    assert report.checked_versions == 3 and not report.ok


def test_verify_catches_an_index_that_contradicts_its_directory(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    time.sleep(RACY_NS / 1e9 + 0.01)
    store.get_storage_stats()
    index = tmp_path / ".index.json"
    index.write_text(index.read_text().replace('["1.0.0"]', '["1.0.0", "9.9.9"]'))
    assert [p.code for p in store.verify().problems] == ["INDEX-MISMATCH"]
    index.write_text("{garbage")
    assert [p.code for p in store.verify().problems] == ["INDEX-UNREADABLE"]


def test_a_read_only_store_reads(seed_copy: Path) -> None:
    for path in [seed_copy, *seed_copy.rglob("*")]:
        path.chmod(0o555 if path.is_dir() else 0o444)
    try:
        store = FileSystemStorage(seed_copy, create=False)
        if os.access(seed_copy, os.W_OK):  # root ignores permissions: nothing more to check
            return
        assert store.get_storage_stats()["total_versions"] == 6
        assert store.list_prompts() == sorted(SEED_LATEST)
        assert store.verify().ok
    finally:
        for path in [seed_copy, *seed_copy.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)


def test_verify_reads_past_the_cache(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    time.sleep(RACY_NS / 1e9 + 0.01)
    store.get_version("a", "1.0.0")  # now cached
    path = tmp_path / "a" / "1.0.0.json"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[40] ^= 0x01  # bit rot in place: same size, same times
    with open(path, "r+b") as handle:
        handle.write(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert [p.code for p in store.verify().problems] == ["PS-CHECKSUM-001"]
