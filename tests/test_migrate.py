"""migrate(): between any two backends, idempotent, never overwriting a differing version."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptshelf import FileSystemStorage, VersionStorage, migrate

from conftest import BACKENDS
from helpers import make_version

PAIRS = [
    ("filesystem", "sqlite"),
    ("sqlite", "postgres"),
    ("postgres", "filesystem-sharded"),
    ("memory", "filesystem"),
    ("filesystem-sharded", "memory"),
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
    assert calls[-1] == (5, 5)
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
