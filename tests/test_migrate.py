"""migrate(): between any two backends, idempotent, never overwriting a differing version."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptshelf import FileSystemStorage, SQLiteStorage, VersionStorage, migrate
from promptshelf.migrate import compare_stores
from promptshelf.storage.base import TrashedVersion

from conftest import BACKENDS
from helpers import counts, fill_everything, inventory, make_version

PAIRS = [
    ("filesystem", "sqlite"),
    ("sqlite", "postgres"),
    ("postgres", "filesystem-sharded"),
    ("memory", "filesystem"),
    ("filesystem-sharded", "memory"),
    ("filesystem", "s3"),
    ("s3", "sqlite"),
    ("sqlite", "http"),
    ("http", "filesystem"),
]


def fill(store: VersionStorage) -> int:
    versions = [
        make_version(f"p{i}", f"1.{minor}.0", score=50 + minor)
        for i in range(5)
        for minor in range(i + 1)
    ]
    store.save_versions(versions)
    return len(versions)


@pytest.mark.parametrize(("source_kind", "dest_kind"), PAIRS)
def test_migrate_copies_everything_and_reruns_cleanly(
    tmp_path: Path, request: pytest.FixtureRequest, source_kind: str, dest_kind: str
) -> None:
    source = BACKENDS[source_kind](tmp_path / "src", request)
    dest = BACKENDS[dest_kind](tmp_path / "dst", request)
    total = fill(source)
    calls: list[tuple[int, int]] = []
    report = migrate(source, dest, progress=lambda done, of: calls.append((done, of)))
    assert report.ok and report.copied == total and report.skipped_identical == 0
    assert calls[-1] == (total, total)  # counted in versions, not prompts
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    assert dest.get_storage_stats()["total_versions"] == total
    for prompt_id in source.list_prompts():
        assert dest.list_versions(prompt_id) == source.list_versions(prompt_id)

    again = migrate(source, dest)
    assert again.ok and (again.copied, again.skipped_identical) == (0, total)
    source.close()
    dest.close()


def test_a_differing_version_is_reported_never_overwritten(tmp_path: Path) -> None:
    source, dest = FileSystemStorage(tmp_path / "a"), FileSystemStorage(tmp_path / "b")
    fill(source)
    dest.save_version(make_version("p2", "1.1.0", text="the destination's own text"))
    report = migrate(source, dest)
    assert report.conflicts == [("p2", "1.1.0")]
    assert not report.ok
    kept = dest.get_version("p2", "1.1.0")
    assert kept is not None and kept.prompt.text == "the destination's own text"
    assert report.copied == 14
    assert report.to_dict()["ok"] is False


# -- everything a store holds: versions, labels, label history, trash ----------------------


def test_file_to_sqlite_to_postgres_to_file_carries_everything(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    chain = [
        BACKENDS["filesystem"](tmp_path / "a", request),
        BACKENDS["sqlite"](tmp_path / "b", request),
        BACKENDS["postgres"](tmp_path / "c", request),
        BACKENDS["filesystem-sharded"](tmp_path / "d", request),
    ]
    fill_everything(chain[0])
    expected = inventory(chain[0])
    figures = counts(chain[0])
    assert figures == (16, 6, 16, 5)
    for source, dest in zip(chain, chain[1:], strict=False):
        report = migrate(source, dest)
        assert report.ok, report.to_dict()
        assert (report.copied, report.label_events_copied, report.trash_copied) == (16, 16, 5)
        assert compare_stores(source, dest) == [] and compare_stores(dest, source) == []
        assert inventory(dest) == expected
        assert counts(dest) == figures
        again = migrate(source, dest)  # idempotent: nothing copied, nothing reported
        assert again.ok and (again.copied, again.skipped_identical) == (0, 16)
        assert (again.label_events_copied, again.trash_copied) == (0, 0)
        assert again.trash_skipped_identical == 5
    assert inventory(chain[-1]) == expected
    for store in chain:
        store.close()


def test_a_diverged_destination_is_reported_never_overwritten(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "a")
    fill_everything(source)
    dest = SQLiteStorage(tmp_path / "b.db")
    dest.save_version(make_version("p0", "1.0.0"))  # identical to the source's
    dest.set_label("p0", "production", "1.0.0", actor="someone else")
    [trashed, *_] = source.read_trash("p3")
    dest.import_trashed(
        TrashedVersion(trashed.entry, make_version("p3", "1.4.0", text="another copy"))
    )
    report = migrate(source, dest)
    assert not report.ok
    assert [p for p, _ in report.label_conflicts] == ["p0"]
    assert report.trash_conflicts == [("p3", "1.4.0", trashed.entry.deleted_at.isoformat())]
    assert [e.actor for e in dest.label_history("p0")] == ["someone else"]
    assert dest.read_trash("p3")[0].version.prompt.text == "another copy"
    assert compare_stores(source, dest) != []
    assert report.to_dict()["ok"] is False
