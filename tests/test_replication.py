"""migrate, backup and sync carry everything a store holds, documents too, across every
backend; sync follows a source that is cleared, deleted from, emptied and restored."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from promptshelf import FileSystemStorage, VersionManager, open_storage
from promptshelf.backup import Manifests
from promptshelf.cli import cli
from promptshelf.errors import OptimizerError
from promptshelf.migrate import compare_stores, migrate, read_documents
from promptshelf.models import labels_after
from promptshelf.replicate import sync
from promptshelf.storage.base import VersionStorage
from promptshelf.storage.documents import CLEARED_KEY, STORE_NAMESPACE

from conftest import fresh_s3_url, fresh_schema
from helpers import fill_everything, inventory, make_analysis, make_prompt, make_version


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


# -- a backup is the source as of its watermark, while writers keep writing ----------------


State = tuple[frozenset[str], tuple[tuple[str, str], ...], int, tuple[str, ...]]


def state_of(store: VersionStorage, prompt_id: str) -> State:
    """(live versions, labels, number of label events, trashed versions) of one prompt."""
    return (
        frozenset(store.list_version_numbers(prompt_id)),
        tuple(sorted(store.list_labels(prompt_id).items())),
        len(store.label_history(prompt_id)),
        tuple(sorted(e.version for e in store.list_trash(prompt_id))),
    )


class LoggedWriter(threading.Thread):
    """One prompt's only writer: saves, label moves and deletes, one store call each, each
    logged with the wall-clock time it began and ended and the prompt's state after it."""

    def __init__(self, store: VersionStorage, prompt_id: str, stop: threading.Event) -> None:
        super().__init__()
        self.store, self.prompt_id, self.stop = store, prompt_id, stop
        self.started = threading.Event()  # set once a few operations are done
        self.states: list[State] = []  # states[k]: after k operations
        self.times: list[tuple[datetime, datetime]] = []  # of operation k + 1
        self.error: BaseException | None = None

    def _op(self, call: Callable[[], object]) -> None:
        began = datetime.now(timezone.utc)
        call()
        self.times.append((began, datetime.now(timezone.utc)))
        self.states.append(state_of(self.store, self.prompt_id))

    def run(self) -> None:
        store, pid = self.store, self.prompt_id
        try:
            self.states.append(state_of(store, pid))
            for i in range(1, 1000):
                if self.stop.is_set():
                    return
                if i == 3:
                    self.started.set()
                version = make_version(pid, f"2.{i}.0")
                self._op(lambda v=version: store.save_version(v))  # type: ignore[misc]
                label = "staging" if i % 3 == 0 else "production"
                self._op(lambda n=i, lb=label: store.set_label(pid, lb, f"2.{n}.0"))  # type: ignore[misc]
                if i % 4 == 0:  # delete a version no label points at: one store call
                    pointed = set(store.list_labels(pid).values())
                    old = next(n for n in store.list_version_numbers(pid) if n not in pointed)
                    self._op(lambda n=old: store.delete_version(pid, n))  # type: ignore[misc]
        except BaseException as exc:  # reported by the test
            self.error = exc
        finally:
            self.started.set()


def check_as_of_watermark(
    backup: VersionStorage,
    source: VersionStorage,
    writers: list[LoggedWriter],
    manifest: dict[str, Any],
    *,
    one_instant: bool,
) -> None:
    opened = datetime.fromisoformat(manifest["watermark"]["started_at"])
    closed = datetime.fromisoformat(manifest["watermark"]["finished_at"])
    latest_in = datetime.min.replace(tzinfo=timezone.utc)
    earliest_out = datetime.max.replace(tzinfo=timezone.utc)
    for writer in writers:
        pid = writer.prompt_id
        held = state_of(backup, pid)
        # the prompt is exactly as it was after some number k of its writer's operations
        matches = [k for k, state in enumerate(writer.states) if state == held]
        assert matches, f"{pid}: the backup holds a state the source never was in: {held}"
        k = matches[-1]
        # every operation acknowledged before the watermark opened is in; none begun after
        # it closed is
        assert all(k >= n + 1 for n, (_, end) in enumerate(writer.times) if end < opened), pid
        assert all(k <= n for n, (began, _) in enumerate(writer.times) if began > closed), pid
        if k > 0:
            latest_in = max(latest_in, writer.times[k - 1][0])  # began before the instant
        if k < len(writer.times):
            earliest_out = min(earliest_out, writer.times[k][1])  # ended after it
    if one_instant:  # a store read at one instant: one moment fits every prompt
        assert latest_in < earliest_out
    for pid in backup.list_held_prompts():
        labels, history = backup.list_labels(pid), backup.label_history(pid)
        assert labels == labels_after(history)  # labels are their history replayed
        assert set(labels.values()) <= set(backup.list_version_numbers(pid))
        assert history == source.label_history(pid)[: len(history)]
        for version in backup.list_versions(pid):  # each one is the source's, whole
            copies = [source.get_version(pid, version.version)]
            copies += [t.version for t in source.read_trash(pid)]
            assert version in copies


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_a_backup_is_the_source_as_of_its_watermark_while_writers_write(
    tmp_path: Path, kind: str
) -> None:
    """Eight writers (one per prompt: saves, label moves, deletes) keep writing while
    two backups are taken through the command line (a full one, then an incremental
    one): each holds every prompt exactly as it was after some prefix of its writer's
    operations, with every operation acknowledged before the watermark and none begun
    after it; labels point at versions in the backup and match their history."""
    url = str(tmp_path / "src") if kind == "file" else f"sqlite:///{tmp_path}/src.db"
    source = open_storage(url)
    fill_everything(source)
    fill_documents(source)
    stop = threading.Event()
    writers = [LoggedWriter(source, f"w{i}", stop) for i in range(8)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.started.wait()
    manifests = []
    try:
        for _ in range(2):
            result = run("backup", "--store", url, str(tmp_path / "backup"), "--json")
            assert result.exit_code == 0, result.output
            manifests.append(json.loads(result.stdout)["manifest"])
    finally:
        stop.set()
        for writer in writers:
            writer.join()
    assert all(w.error is None for w in writers), [w.error for w in writers]
    assert run("backup", "verify", str(tmp_path / "backup")).exit_code == 0
    with FileSystemStorage(tmp_path / "backup") as backup:
        manifest = Manifests(backup).read(manifests[-1])
        one_instant = source.snapshot_listing() is not None  # SQLite: one read transaction
        check_as_of_watermark(backup, source, writers, manifest, one_instant=one_instant)
        assert read_documents(backup) == read_documents(source)
    # once the writers stopped, the next backup is the source
    assert run("backup", "--store", url, str(tmp_path / "backup")).exit_code == 0
    same(FileSystemStorage(tmp_path / "backup"), source)
    source.close()


# -- sync --follow keeps a standby exact through every kind of change ----------------------


def _busy_writer(store: VersionStorage, writer: int, rounds: int, clear_at: int | None) -> None:
    """Saves, label moves, forced deletes, restores, purges (live and trashed copies), an
    emptied trash,
    documents created, replaced and deleted; one writer clears the whole store midway.
    The other writers keep going (a call that meets the clear fails and is skipped)."""
    manager = VersionManager(store)
    for i in range(rounds):
        pid = f"b{writer}-{i % 3}"
        try:
            if i == clear_at:
                store.clear_all()
            made = manager.create_version(make_prompt(pid), make_analysis(pid))
            store.set_label(pid, "production", made.version, actor=f"writer {writer}")
            numbers = store.list_version_numbers(pid)
            if i % 4 == 1 and len(numbers) > 2:
                store.delete_version(pid, numbers[0], force=True)
            if i % 5 == 2 and store.list_trash(pid):
                restored = store.list_trash(pid)[-1].version
                if restored not in store.list_version_numbers(pid):
                    store.restore_version(pid, restored)
            if i % 6 == 3 and len(numbers) > 3:
                pointed = set(store.list_labels(pid).values())
                spare = [n for n in numbers[1:] if n not in pointed]
                if spare:
                    store.purge_version(pid, spare[0])
            if i % 7 == 4:
                store.empty_trash(older_than=timedelta(0))
            if i % 8 == 5 and store.list_trash(pid):
                store.purge_trashed(store.list_trash(pid)[0])
            if i % 3 == 0:
                key = f"k{writer}"
                held = store.get_document("notes", key)
                if held is None:
                    store.put_document("notes", key, {"i": i})
                elif i % 2:
                    store.delete_document("notes", key)
                else:
                    store.put_document("notes", key, {"i": i}, expected_revision=held.revision)
        except OptimizerError:
            continue  # met the clear, or another writer's empty_trash: next round


def _pass_lines(process: subprocess.Popen[str], lines: list[str], count: int) -> None:
    """Read the follower's output until ``count`` more passes are reported."""
    assert process.stdout is not None
    seen = 0
    for line in process.stdout:
        lines.append(line)
        if line.startswith("pass "):
            seen += 1
            if seen == count:
                return
    raise AssertionError(f"sync ended early: {lines[-3:]}")


@pytest.mark.timeout(300)
@pytest.mark.parametrize("kind", ["sqlite", "s3"])
def test_sync_follow_replicates_deletes_purges_restores_documents_and_a_clear(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    fill_documents(source)
    dest = f"sqlite:///{tmp_path}/standby.db" if kind == "sqlite" else fresh_s3_url(request)
    follower = subprocess.Popen(
        [sys.executable, "-m", "promptshelf", "sync", str(tmp_path / "src"), dest, "--follow"]
        + ["--interval", "0.05"],
        stdout=subprocess.PIPE,
        stderr=(tmp_path / "stderr").open("w"),
        text=True,
    )
    lines: list[str] = []
    try:
        _pass_lines(follower, lines, 1)  # the first pass copied what fill_everything made
        writers = [
            threading.Thread(target=_busy_writer, args=(source, w, 30, 12 if w == 0 else None))
            for w in range(3)
        ]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        # The source no longer changes: a pass whose watermark holds this last document
        # began after the writers stopped, so it leaves the standby equal to the source.
        source.put_document("notes", "writers-stopped", {})
        with open_storage(dest) as standby:
            while standby.get_document("notes", "writers-stopped") is None:
                _pass_lines(follower, lines, 1)
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(60) == 0, (lines[-3:], (tmp_path / "stderr").read_text()[-2000:])
    finally:
        if follower.poll() is None:
            follower.kill()
    assert source.get_document(STORE_NAMESPACE, CLEARED_KEY) is not None  # it was cleared
    assert any("cleared" in line for line in lines), lines  # and a pass followed it
    with open_storage(dest) as standby:
        same(standby, source)
        assert sync(source, standby).changes == 0


def test_through_a_server_documents_travel_but_its_own_keys_do_not(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """An HTTP store serves the namespaces it holds (GET /documents) except the server's
    own (api-keys, server-settings): migrate and sync from it carry the rest."""
    from promptshelf.server.auth import create_key
    from promptshelf.storage.http import HTTPStorage

    served = FileSystemStorage(tmp_path / "served", durable=False)
    fill_everything(served)
    fill_documents(served)
    _, token = create_key(served, "ops", ["admin"])
    request.getfixturevalue("http_server").serve(served)
    remote = HTTPStorage(request.getfixturevalue("http_server").url, api_key=token)
    assert remote.list_document_namespaces() == ["notes", "settings"]
    assert "api-keys" in served.list_document_namespaces()
    copy = FileSystemStorage(tmp_path / "copy")
    assert migrate(remote, copy).ok
    assert read_documents(copy) == read_documents(remote)
    assert copy.list_document_namespaces() == ["notes", "settings"]
    assert compare_stores(remote, copy) == [] and compare_stores(copy, remote) == []
    standby = FileSystemStorage(tmp_path / "standby")
    assert sync(remote, standby).ok
    same(standby, copy)
    remote.close()
