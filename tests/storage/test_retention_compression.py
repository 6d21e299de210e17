"""Retention on every backend; compression on the filesystem backend."""

from __future__ import annotations

import gzip
from datetime import timedelta
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage, RetentionPolicy, VersionConflictError, VersionStorage
from promptshelf.timestamps import utc_now

from helpers import make_version


def fill(storage: VersionStorage) -> None:
    """p: 1.0.0 (best) <- 1.1.0 <- 1.2.0, 1.3.0 (a root of its own) <- 1.4.0 <- 1.5.0 (latest)."""
    old = utc_now() - timedelta(days=30)
    chain = [
        ("1.0.0", 90.0, None),
        ("1.1.0", 50.0, "1.0.0"),
        ("1.2.0", 40.0, "1.1.0"),
        ("1.3.0", 30.0, None),
        ("1.4.0", 35.0, "1.3.0"),
        ("1.5.0", 45.0, "1.4.0"),
    ]
    for number, score, parent in chain:
        version = make_version("p", number, score=score, parent=parent)
        fresh = number == "1.5.0"
        storage.save_version(version.model_copy(update={"created_at": utc_now() if fresh else old}))


def test_dry_run_reports_and_changes_nothing(storage: VersionStorage) -> None:
    fill(storage)
    report = storage.apply_retention(RetentionPolicy(keep_last=2))
    # the newest two (1.4.0, 1.5.0) and the best (1.0.0); ancestors are no reason to stay
    assert report.dry_run
    assert report.removed == [("p", "1.1.0"), ("p", "1.2.0"), ("p", "1.3.0")]
    assert report.kept == 3
    assert len(storage.list_version_numbers("p")) == 6


def test_applied_retention_moves_to_the_trash(storage: VersionStorage) -> None:
    fill(storage)
    storage.set_label("p", "production", "1.2.0")
    report = storage.apply_retention(RetentionPolicy(keep_last=1), dry_run=False)
    # kept: 1.5.0 (newest, latest), 1.0.0 (best), 1.2.0 (labelled); not its ancestor 1.1.0
    assert report.removed == [("p", "1.1.0"), ("p", "1.3.0"), ("p", "1.4.0")]
    assert storage.list_version_numbers("p") == ["1.0.0", "1.2.0", "1.5.0"]
    assert {(e.prompt_id, e.version) for e in storage.list_trash()} == {
        ("p", "1.1.0"),
        ("p", "1.3.0"),
        ("p", "1.4.0"),
    }
    storage.remove_label("p", "production")
    report = storage.apply_retention(
        RetentionPolicy(keep_younger_than=timedelta(days=1)), dry_run=False
    )
    assert report.removed == [("p", "1.2.0")]
    assert storage.list_version_numbers("p") == ["1.0.0", "1.5.0"]


def test_keep_last_prunes_a_linear_history(storage: VersionStorage) -> None:
    """Issue 10 item 10: every version of a linear history is an ancestor of the latest, and
    keeping ancestors pruned nothing (300 prompts x 10 versions lost 0 with keep_last=3)."""
    for i in range(5):
        storage.save_versions(
            make_version(f"p{i}", f"1.{m}.0", score=50 + m, parent=f"1.{m - 1}.0" if m else None)
            for m in range(10)
        )
    report = storage.apply_retention(RetentionPolicy(keep_last=3), dry_run=False)
    assert len(report.removed) == 5 * 7 and report.kept == 5 * 3
    for i in range(5):
        assert storage.list_version_numbers(f"p{i}") == ["1.7.0", "1.8.0", "1.9.0"]
    assert len(storage.list_trash()) == 35


def branching(storage: VersionStorage) -> None:
    """1.0.0 <- 1.1.0 <- 1.2.0 <- 1.3.0 (latest), and a branch 1.1.0 <- 1.1.1 <- 1.1.2;
    production points at the branch's tip; the best is 1.2.0."""
    history = [
        ("1.0.0", 40.0, None),
        ("1.1.0", 50.0, "1.0.0"),
        ("1.1.1", 55.0, "1.1.0"),
        ("1.1.2", 60.0, "1.1.1"),
        ("1.2.0", 90.0, "1.1.0"),
        ("1.3.0", 70.0, "1.2.0"),
    ]
    storage.save_versions(make_version("b", n, score=s, parent=p) for n, s, p in history)
    storage.set_label("b", "production", "1.1.2")


def test_keep_last_on_a_branching_history(storage: VersionStorage) -> None:
    branching(storage)
    plain = storage.apply_retention(RetentionPolicy(keep_last=1))
    # 1.3.0 newest, 1.2.0 best, 1.1.2 labelled; the branch below the label goes
    assert plain.removed == [("b", "1.0.0"), ("b", "1.1.0"), ("b", "1.1.1")]
    lineage = storage.apply_retention(
        RetentionPolicy(keep_last=1, keep_lineage_of=frozenset({"production"})), dry_run=False
    )
    # production's lineage 1.1.1 <- 1.1.0 <- 1.0.0 stays: nothing else to remove
    assert lineage.removed == [] and lineage.kept == 6
    storage.set_label("b", "staging", "1.3.0")
    storage.set_label("b", "production", "1.1.1")
    report = storage.apply_retention(
        RetentionPolicy(keep_last=1, keep_lineage_of=frozenset({"staging"})), dry_run=False
    )
    # staging's lineage 1.2.0 <- 1.1.0 <- 1.0.0 stays; 1.1.2 is no longer labelled
    assert report.removed == [("b", "1.1.2")]
    every = RetentionPolicy(keep_last=1, keep_lineage_of=frozenset({"*"}))
    assert every.lineage_kept("anything")


def test_a_policy_without_rules_keeps_everything(storage: VersionStorage) -> None:
    fill(storage)
    assert storage.apply_retention(RetentionPolicy(), dry_run=False).removed == []
    with pytest.raises(ValueError):
        RetentionPolicy(keep_last=-1)


def test_compression_is_transparent(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    originals = [make_version("p", f"1.{m}.0") for m in range(5)]
    store.save_versions(originals)
    store.set_label("p", "production", "1.0.0")
    assert store.compress(keep_recent=2) == 3
    names = sorted(p.name for p in (tmp_path / "p").glob("1.*"))
    assert names == ["1.0.0.json.gz", "1.1.0.json.gz", "1.2.0.json.gz", "1.3.0.json", "1.4.0.json"]
    raw = gzip.decompress((tmp_path / "p" / "1.0.0.json.gz").read_bytes())
    assert b'"sha256": "' in raw  # the same bytes, checksum included
    for reader in (
        store,
        FileSystemStorage(tmp_path),
        FileSystemStorage(tmp_path, use_cache=False),
    ):
        assert reader.list_versions("p") == originals
        assert reader.get_version("p", "1.1.0") == originals[1]
        assert reader.get_version_by_label("p", "production") == originals[0]
    with pytest.raises(VersionConflictError):
        store.save_version(make_version("p", "1.0.0"))
    stats = store.get_storage_stats()
    assert stats["total_versions"] == 5
    assert store.verify().ok
    assert store.compress(keep_recent=2) == 0  # idempotent

    store.delete_version("p", "1.1.0")
    assert store.get_version("p", "1.1.0") is None
    assert store.restore_version("p", "1.1.0") == originals[1]


def test_interrupted_compression_reads_and_repairs(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    original = make_version("p", "1.0.0")
    store.save_versions([original, make_version("p", "1.1.0")])
    plain = tmp_path / "p" / "1.0.0.json"
    (tmp_path / "p" / "1.0.0.json.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert store.list_version_numbers("p") == ["1.0.0", "1.1.0"]
    assert store.get_version("p", "1.0.0") == original
    assert [a.code for a in store.repair().actions] == ["DUPLICATE"]
    assert not (tmp_path / "p" / "1.0.0.json.gz").exists()
    assert store.get_version("p", "1.0.0") == original


def test_a_gzip_bomb_or_broken_gzip_is_refused(tmp_path: Path) -> None:
    from promptshelf import CorruptVersionError

    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("p", "1.0.0"))
    (tmp_path / "p" / "2.0.0.json.gz").write_bytes(gzip.compress(b" " * (9 * 1024 * 1024)))
    (tmp_path / "p" / "3.0.0.json.gz").write_bytes(b"\x1f\x8b not gzip at all")
    with pytest.raises(CorruptVersionError) as big:
        store.get_version("p", "2.0.0")
    assert big.value.context["reason"] == "oversized"
    with pytest.raises(CorruptVersionError) as broken:
        store.get_version("p", "3.0.0")
    assert broken.value.context["reason"] == "bad gzip"


def test_repair_keeps_the_intact_copy_of_a_half_compressed_version(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    original = make_version("p", "1.0.0")
    store.save_versions([original, make_version("p", "1.1.0")])
    store.set_label("p", "production", "1.0.0")
    plain = tmp_path / "p" / "1.0.0.json"
    (tmp_path / "p" / "1.0.0.json.gz").write_bytes(gzip.compress(plain.read_bytes()))
    plain.write_bytes(plain.read_bytes().replace(b"Summarize", b"Summarise"))  # the plain rots
    actions = store.repair().actions
    assert [a.code for a in actions] == ["PS-CHECKSUM-001"]
    assert store.get_version("p", "1.0.0") == original  # read from the intact .gz
    assert store.get_label("p", "production") == "1.0.0"  # still there: so is its version
    assert store.verify().ok and store.repair().actions == []
