"""migrate, backup and sync carry everything a store holds, documents too, across every
backend; sync follows a source that is cleared, deleted from, emptied and restored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promptshelf import FileSystemStorage, open_storage
from promptshelf.cli import cli
from promptshelf.migrate import compare_stores, migrate, read_documents
from promptshelf.replicate import sync
from promptshelf.storage.base import VersionStorage
from promptshelf.storage.documents import CLEARED_KEY, STORE_NAMESPACE

from conftest import fresh_s3_url, fresh_schema
from helpers import fill_everything, inventory, make_version


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def same(a: VersionStorage, b: VersionStorage) -> None:
    assert compare_stores(a, b) == [] and compare_stores(b, a) == []
    assert inventory(a) == inventory(b)
    assert read_documents(a) == read_documents(b)


def pg_url(request: pytest.FixtureRequest) -> str:
    base = request.getfixturevalue("postgres_url")
    return f"{base}{'&' if '?' in base else '?'}schema={fresh_schema(request)}"


def fill_documents(store: VersionStorage) -> None:
    store.put_document("notes", "a", {"text": "ünïcode — 日本", "n": [1, 2, {"x": None}]})
    store.put_document("notes", "b", {})
    replaced = store.put_document("settings", "s", {"v": 1})
    store.put_document("settings", "s", {"v": 2}, expected_revision=replaced.revision)


def test_documents_travel_file_sqlite_postgres_s3_file(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """Through the command line, every hop compared both ways (versions, label histories,
    trash, documents); a server's API key made with `keys create` is among them."""
    source = tmp_path / "src"
    fill_everything(FileSystemStorage(source))
    created = run("keys", "create", "ci", "--scope", "admin", "--store", str(source), "--json")
    assert created.exit_code == 0, created.output
    with FileSystemStorage(source) as store:
        fill_documents(store)
        assert "api-keys" in store.list_document_namespaces()
    pg = pg_url(request)
    hops = [str(source), f"sqlite:///{tmp_path}/hop.db", pg, fresh_s3_url(request)]
    hops.append(str(tmp_path / "back"))
    for a, b in zip(hops, hops[1:], strict=False):
        result = run("migrate", a, b, "--json")
        assert result.exit_code == 0, result.output
        assert json.loads(result.stdout)["documents_copied"] == 4
        with open_storage(a) as left, open_storage(b) as right:
            same(left, right)
    again = run("migrate", hops[-2], hops[-1], "--json")  # nothing new: nothing copied
    assert json.loads(again.stdout)["documents_skipped_identical"] == 4
    with open_storage(hops[0]) as first, open_storage(hops[-1]) as last:
        same(first, last)


def test_migrate_never_overwrites_a_differing_document(tmp_path: Path) -> None:
    src, dst = FileSystemStorage(tmp_path / "a"), FileSystemStorage(tmp_path / "b")
    fill_documents(src)
    dst.put_document("notes", "a", {"text": "theirs"})
    result = run("migrate", str(tmp_path / "a"), str(tmp_path / "b"))
    assert result.exit_code == 1
    assert "document notes/a differs" in result.stderr
    assert dst.get_document("notes", "a").data == {"text": "theirs"}  # type: ignore[union-attr]
    assert compare_stores(src, dst) == ["document notes/a: differs"]
    report = migrate(src, dst)
    assert report.document_conflicts == [("notes", "a")] and not report.ok


@pytest.mark.parametrize("kind", ["s3", "postgres"])
def test_backup_and_sync_carry_documents_and_follow_their_changes(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    fill_documents(source)
    dest = fresh_s3_url(request) if kind == "s3" else pg_url(request)
    assert run("sync", str(tmp_path / "src"), dest).exit_code == 0
    backup = run("backup", "--store", str(tmp_path / "src"), str(tmp_path / "backup"))
    assert backup.exit_code == 0, backup.output
    with open_storage(dest) as standby:
        same(standby, source)
        same(FileSystemStorage(tmp_path / "backup"), source)
        # documents change: one replaced, one deleted, one namespace new
        held = source.get_document("notes", "a")
        assert held is not None
        source.put_document("notes", "a", {"text": "new"}, expected_revision=held.revision)
        source.delete_document("notes", "b")
        source.put_document("more", "m", {"k": True})
        report = sync(source, standby)
        assert report.ok and (report.documents_copied, report.documents_deleted) == (2, 1)
        same(standby, source)
        assert sync(source, standby).changes == 0
    incremental = run("backup", "--store", str(tmp_path / "src"), str(tmp_path / "backup"))
    assert incremental.exit_code == 0
    assert run("backup", "verify", str(tmp_path / "backup")).exit_code == 0
    same(FileSystemStorage(tmp_path / "backup"), source)
    # a document changed in the backup is caught by verify
    FileSystemStorage(tmp_path / "backup").put_document(
        "more", "m", {"k": False}, expected_revision=1
    )
    damaged = run("backup", "verify", str(tmp_path / "backup"))
    assert damaged.exit_code == 1 and "documents differ" in damaged.output


@pytest.mark.parametrize("kind", ["file", "s3"])
def test_sync_follows_a_cleared_source(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    """clear_all empties the source and restarts its label histories: the standby is
    emptied too and filled again (a standby written by someone else is still refused)."""
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    fill_documents(source)
    dest = str(tmp_path / "standby") if kind == "file" else fresh_s3_url(request)
    assert run("sync", str(tmp_path / "src"), dest).exit_code == 0
    source.clear_all()
    source.save_version(make_version("p0", "1.0.0", text="after the clear"))
    source.set_label("p0", "production", "1.0.0", actor="after")
    result = run("sync", str(tmp_path / "src"), dest)
    assert result.exit_code == 0, result.output
    with open_storage(dest) as standby:
        same(standby, source)
        assert standby.get_document(STORE_NAMESPACE, CLEARED_KEY) is not None
        assert sync(source, standby).changes == 0
        source.clear_all()  # cleared and left empty
        report = sync(source, standby)
        assert report.ok and report.cleared
        same(standby, source)
        assert standby.list_held_prompts() == []
        # the standby's own writes are still reported, not wiped
        source.save_version(make_version("p0", "1.0.0"))
        assert sync(source, standby).ok
        standby.set_label("p0", "production", "1.0.0")
        diverged = sync(source, standby)
        assert not diverged.ok and not diverged.cleared
        assert standby.get_label("p0", "production") == "1.0.0"


def test_a_backup_keeps_its_manifests_when_the_source_is_cleared(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    targets = [str(tmp_path / "backup"), fresh_s3_url(request)]
    for dest in targets:
        assert run("backup", "--store", str(tmp_path / "src"), dest).exit_code == 0
    source.clear_all()
    source.save_version(make_version("p9", "1.0.0"))
    for dest in targets:
        backup = run("backup", "--store", str(tmp_path / "src"), dest, "--json")
        assert backup.exit_code == 0, backup.output
        body = json.loads(backup.stdout)
        assert body["changes"]["cleared"] and body["previous"] is not None
        assert run("backup", "verify", dest).exit_code == 0
        with open_storage(dest) as held:
            same(held, source)
