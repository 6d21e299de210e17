"""backup, backup verify, restore (migrate from a backup) and sync, through the command line."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promptshelf import FileSystemStorage, SQLiteStorage, VersionManager, open_storage
from promptshelf.cli import cli
from promptshelf.errors import VersionConflictError
from promptshelf.migrate import compare_stores
from promptshelf.replicate import sync
from promptshelf.storage.base import VersionStorage

from conftest import fresh_s3_url
from helpers import fill_everything, inventory, make_analysis, make_prompt, make_version


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def same(a: VersionStorage, b: VersionStorage) -> None:
    assert compare_stores(a, b) == [] and compare_stores(b, a) == []
    assert inventory(a) == inventory(b)


def change_everything(store: VersionStorage) -> None:
    """New versions, label moves, a delete, a restore, a re-save, an emptied trash copy."""
    store.save_version(make_version("p0", "2.0.0"))
    store.save_version(make_version("new", "1.0.0"))
    store.set_label("p0", "production", "2.0.0", actor="carol")
    store.delete_version("p1", "1.1.0", force=True)
    store.restore_version("p2", "1.0.0")
    store.save_version(make_version("only-trash", "1.0.0", text="saved again, other text"))
    store.empty_trash(older_than=timedelta(0))


def test_backup_to_a_directory_then_incremental_then_restore(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    dest = str(tmp_path / "backup")
    first = run("backup", "--store", str(tmp_path / "src"), dest)
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith(f"full backup to {dest}: 6 prompt(s), 16 version(s), ")
    checked = run("backup", "verify", dest)
    assert checked.exit_code == 0, checked.output
    assert "16 version(s) checked against their SHA-256: ok" in checked.stdout

    change_everything(source)
    second = run("backup", "--store", str(tmp_path / "src"), dest, "--json")
    assert second.exit_code == 0, second.output
    report = json.loads(second.stdout)
    assert report["incremental"] is True
    changes = report["changes"]
    assert changes["versions_copied"] == 3  # 2.0.0, new 1.0.0, only-trash saved again
    assert changes["versions_restored"] == 1 and changes["versions_purged"] == 1
    assert changes["trash_purged"] >= 1 and changes["ok"] is True
    assert run("backup", "verify", dest).exit_code == 0
    manifests = sorted((tmp_path / "backup" / ".backup").glob("manifest-*.json"))
    assert len(manifests) == 2
    assert json.loads(manifests[1].read_text())["previous"] == manifests[0].name

    restored = run("migrate", dest, f"sqlite:///{tmp_path}/restored.db")
    assert restored.exit_code == 0, restored.output
    with SQLiteStorage(tmp_path / "restored.db") as back:
        same(back, source)


def test_a_backup_with_nothing_new_copies_nothing(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    dest = str(tmp_path / "backup")
    assert run("backup", "--store", str(tmp_path / "src"), dest).exit_code == 0
    again = json.loads(run("backup", "--store", str(tmp_path / "src"), dest, "--json").stdout)
    assert {k: v for k, v in again["changes"].items() if type(v) is int} == {
        "prompts": 6,
        "versions_copied": 0,
        "versions_restored": 0,
        "versions_replaced": 0,
        "versions_purged": 0,
        "label_events_copied": 0,
        "trash_copied": 0,
        "trash_purged": 0,
        "documents_copied": 0,
        "documents_deleted": 0,
    }


def test_a_tar_gz_backup_verifies_restores_and_catches_damage(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    archive = tmp_path / "nightly.tar.gz"
    assert run("backup", "--store", str(tmp_path / "src"), str(archive)).exit_code == 0
    assert run("backup", "verify", str(archive)).exit_code == 0
    change_everything(source)
    assert run("backup", "--store", str(tmp_path / "src"), str(archive)).exit_code == 0
    assert run("backup", "verify", str(archive)).exit_code == 0
    assert run("migrate", str(archive), str(tmp_path / "restored")).exit_code == 0
    same(FileSystemStorage(tmp_path / "restored"), source)

    # Damage one version inside the archive: verify names it and exits 1.
    work = tmp_path / "unpacked"
    with tarfile.open(archive) as tar:
        tar.extractall(work, filter="data")
    victim = work / "store" / "p0" / "2.0.0.json"
    victim.write_bytes(victim.read_bytes().replace(b"Summarize", b"Summarise"))
    damaged = tmp_path / "damaged.tar.gz"
    with tarfile.open(damaged, "w:gz") as tar:
        tar.add(work / "store", arcname="store")
    result = run("backup", "verify", str(damaged))
    assert result.exit_code == 1
    assert "p0" in result.stdout and "problem" in result.stdout


def test_a_tampered_manifest_or_a_hostile_archive_is_refused(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    source.save_version(make_version("p", "1.0.0"))
    dest = tmp_path / "backup"
    assert run("backup", "--store", str(tmp_path / "src"), str(dest)).exit_code == 0
    [manifest] = (dest / ".backup").glob("manifest-*.json")
    manifest.write_text(manifest.read_text().replace('"versions": 1', '"versions": 2'))
    result = run("backup", "verify", str(dest))
    assert result.exit_code == 1 and "[BACKUP-CORRUPT]" in result.stderr
    evil = tmp_path / "evil.tar.gz"
    (tmp_path / "outside.txt").write_text("x")
    with tarfile.open(evil, "w:gz") as tar:
        tar.add(tmp_path / "outside.txt", arcname="../outside.txt")
    result = run("backup", "verify", str(evil))
    assert result.exit_code == 1 and "[BACKUP-CORRUPT]" in result.stderr
    assert run("backup", "verify", str(tmp_path / "nothing-here")).exit_code == 1


def test_backup_to_s3_and_restore_from_it(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    url = fresh_s3_url(request)
    assert run("backup", "--store", str(tmp_path / "src"), url).exit_code == 0
    change_everything(source)
    assert run("backup", "--store", str(tmp_path / "src"), url).exit_code == 0
    checked = run("backup", "verify", url)
    assert checked.exit_code == 0, checked.output
    assert run("migrate", url, str(tmp_path / "restored")).exit_code == 0
    same(FileSystemStorage(tmp_path / "restored"), source)


def _writer(store: VersionStorage, stop: threading.Event, rounds: int) -> None:
    manager = VersionManager(store)
    for i in range(rounds):
        if stop.is_set():
            return
        prompt_id = f"w{i % 5}"
        made = manager.create_version(make_prompt(prompt_id), make_analysis(prompt_id))
        store.set_label(prompt_id, "production", made.version, actor="writer")
        if i % 7 == 6:
            numbers = store.list_version_numbers(prompt_id)
            store.delete_version(prompt_id, numbers[0], force=True)


def test_a_backup_taken_while_writers_write_is_consistent(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    stop = threading.Event()
    writers = [threading.Thread(target=_writer, args=(source, stop, 150)) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        result = run("backup", "--store", str(tmp_path / "src"), str(tmp_path / "backup"))
    finally:
        stop.set()
        for w in writers:
            w.join()
    assert result.exit_code == 0, result.output
    assert run("backup", "verify", str(tmp_path / "backup")).exit_code == 0
    backup = FileSystemStorage(tmp_path / "backup")
    for prompt_id in backup.list_held_prompts():
        present = set(backup.list_version_numbers(prompt_id))
        assert set(backup.list_labels(prompt_id).values()) <= present  # labels point at versions
        history = source.label_history(prompt_id)
        assert backup.label_history(prompt_id) == history[: len(backup.label_history(prompt_id))]
        for version in backup.list_versions(prompt_id):  # each one is the source's, whole
            live = source.get_version(prompt_id, version.version)
            trashed = [t.version for t in source.read_trash(prompt_id)]
            assert version == live or version in trashed


@pytest.mark.parametrize("kind", ["sqlite", "s3"])
def test_sync_makes_an_exact_copy_and_a_rerun_copies_nothing(
    tmp_path: Path, request: pytest.FixtureRequest, kind: str
) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    dest = f"sqlite:///{tmp_path}/standby.db" if kind == "sqlite" else fresh_s3_url(request)
    first = run("sync", str(tmp_path / "src"), dest)
    assert first.exit_code == 0, first.output
    with open_storage(dest) as standby:
        same(standby, source)
        again = sync(source, standby)
        assert again.ok and again.changes == 0
        change_everything(source)
        source.set_label("new", "production", "1.0.0")
        report = sync(source, standby)
        assert report.ok, report.problems
        same(standby, source)
        assert sync(source, standby).changes == 0


def test_sync_reports_a_standby_that_was_written_to(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    standby = SQLiteStorage(tmp_path / "standby.db")
    assert sync(source, standby).ok
    standby.set_label("p0", "production", "1.0.0", actor="someone on the standby")
    result = run("sync", str(tmp_path / "src"), f"sqlite:///{tmp_path}/standby.db")
    assert result.exit_code == 1
    assert "p0" in result.stderr and "LABEL-DIVERGED" in result.stderr


def test_sync_and_backup_speak_json_and_nl_with_named_keys(tmp_path: Path) -> None:
    """--json (also before the command), --nl and --quiet as every command has them; a
    problem is an object with named keys, not a pair."""
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    standby = f"sqlite:///{tmp_path}/standby.db"
    first = run("--json", "sync", str(tmp_path / "src"), standby)
    assert first.exit_code == 0, first.output
    report = json.loads(first.stdout)
    assert report["pass"] == 1 and report["ok"] is True and report["versions_copied"] == 16
    with SQLiteStorage(tmp_path / "standby.db") as written:
        written.set_label("p0", "production", "1.0.0", actor="someone on the standby")
    again = run("sync", str(tmp_path / "src"), standby, "--nl", "--quiet")
    assert again.exit_code == 1 and again.stderr == ""
    (line,) = again.stdout.splitlines()
    problems = json.loads(line)["problems"]
    assert problems and problems[0]["prompt_id"] == "p0"
    assert "LABEL-DIVERGED" in problems[0]["problem"]

    dest = str(tmp_path / "backup")
    taken = run("backup", dest, "--store", str(tmp_path / "src"), "--nl", "--quiet")
    assert taken.exit_code == 0 and taken.stderr == ""
    (line,) = taken.stdout.splitlines()
    assert json.loads(line)["totals"]["versions"] == 16
    checked = run("--json", "backup", "verify", dest)
    assert checked.exit_code == 0 and json.loads(checked.stdout)["checked_versions"] == 16


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "promptshelf", *args]


def _wait_for_line(
    process: subprocess.Popen[str], lines: list[str], test: Callable[[str], bool]
) -> str:
    assert process.stdout is not None
    for line in process.stdout:
        lines.append(line)
        if test(line):
            return line
    raise AssertionError(f"sync ended without the expected line: {lines[-3:]}")


@pytest.mark.timeout(300)
def test_sync_follow_keeps_a_standby_exact_while_writers_write(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    standby_url = f"sqlite:///{tmp_path}/standby.db"
    follower = subprocess.Popen(
        _cli("sync", str(tmp_path / "src"), standby_url, "--follow", "--interval", "0.2"),
        stdout=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    try:
        _wait_for_line(follower, lines, lambda line: line.startswith("pass 1:"))
        stop = threading.Event()
        writers = [threading.Thread(target=_writer, args=(source, stop, 120)) for _ in range(2)]
        for w in writers:
            w.start()
        for w in writers:
            w.join()
        # The source no longer changes: the follower catches up by itself.
        with SQLiteStorage(tmp_path / "standby.db") as standby:
            while compare_stores(source, standby) or compare_stores(standby, source):
                _wait_for_line(follower, lines, lambda line: line.startswith("pass "))
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
    # pass 1 ran before the writers started: the standby equal to the source now has
    # every writer's versions, labels and deletions, so the follower followed them
    assert {"w0", "w1", "w2", "w3", "w4"} <= set(source.list_held_prompts())
    with SQLiteStorage(tmp_path / "standby.db") as standby:
        same(standby, source)


@pytest.mark.timeout(300)
def test_a_sync_killed_midway_is_finished_by_the_next(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    source.save_versions(make_version(f"p{i % 40}", f"1.{i}.0") for i in range(4000))
    for i in range(40):
        source.set_label(f"p{i}", "production", f"1.{i}.0")
    dest = tmp_path / "standby"
    killed = subprocess.Popen(_cli("sync", str(tmp_path / "src"), str(dest)))
    try:
        while not (dest.exists() and len(os.listdir(dest)) > 10):  # wait for it to be busy
            if killed.poll() is not None:
                pytest.fail("the sync finished before it could be killed")
        killed.send_signal(signal.SIGKILL)
        killed.wait(30)
    finally:
        if killed.poll() is None:
            killed.kill()
    standby = FileSystemStorage(dest)
    assert compare_stores(source, standby) != []  # part of the work was done
    finished = subprocess.run(_cli("sync", str(tmp_path / "src"), str(dest)), check=False)
    assert finished.returncode == 0
    same(FileSystemStorage(dest), source)


# -- regressions: what sync may remove or replace, reused numbers, damaged backups ------------


def _text(store: VersionStorage, number: str, prompt_id: str = "p") -> str:
    found = store.get_version(prompt_id, number)
    assert found is not None
    return found.prompt.text


def test_sync_keeps_and_reports_versions_saved_on_the_standby(tmp_path: Path) -> None:
    """A version saved on the standby is reported (exit 1, SYNC-DIVERGED) and kept; so is
    a standby's own 1.0.0 with other content than the source's. The source's own copies,
    deleted and trash-emptied there, are still removed."""
    primary, standby = str(tmp_path / "primary"), str(tmp_path / "standby")
    assert run("--store", primary, "save", "p", "--text", "one").exit_code == 0
    assert run("--store", primary, "save", "r", "--text", "gone soon").exit_code == 0
    assert run("sync", primary, standby).exit_code == 0
    assert run("--store", standby, "save", "p", "--text", "on standby").exit_code == 0
    assert run("--store", standby, "save", "q", "--text", "new on standby").exit_code == 0
    assert run("--store", primary, "delete", "r", "1.0.0", "--yes").exit_code == 0
    assert run("--store", primary, "trash", "--empty", "--yes").exit_code == 0
    result = run("sync", primary, standby)
    assert result.exit_code == 1, result.output
    assert "p: 1.0.1: saved in the destination" in result.stderr
    assert "q: 1.0.0: saved in the destination" in result.stderr
    assert "SYNC-DIVERGED" in result.stderr
    assert "removed 1 version(s)" in result.stdout  # r 1.0.0: the source's own copy
    with FileSystemStorage(standby) as held:
        assert _text(held, "1.0.1") == "on standby"
        assert held.list_version_numbers("q") == ["1.0.0"]
        assert held.list_version_numbers("r") == []
    # a standby's own 1.0.0 that differs from the source's: reported, kept (API too)
    other, mine = FileSystemStorage(tmp_path / "other"), FileSystemStorage(tmp_path / "mine")
    other.save_version(make_version("p", "1.0.0", text="source"))
    mine.save_version(make_version("p", "1.0.0", text="standby"))
    report = sync(other, mine)
    assert not report.ok and "SYNC-DIVERGED" in report.problems[0][1]
    assert _text(mine, "1.0.0") == "standby"
    result = run("sync", str(tmp_path / "other"), str(tmp_path / "mine"))
    assert result.exit_code == 1 and "other content under this number" in result.stderr


def test_a_number_removed_for_good_is_not_reused_in_backup_and_standby(tmp_path: Path) -> None:
    """delete + trash --empty + save again: the new save is 1.0.2 (1.0.1 is retired, see
    VersionStorage.retired_versions); backup and standby drop 1.0.1, copy 1.0.2 and carry
    the record, so they refuse the retired number too."""
    a, bk, sb = str(tmp_path / "A"), str(tmp_path / "bk"), str(tmp_path / "sB")
    for text in ("one", "two"):
        assert run("--store", a, "save", "p", "--text", text).exit_code == 0
    assert run("backup", "--store", a, bk).exit_code == 0
    assert run("sync", a, sb).exit_code == 0
    assert run("--store", a, "delete", "p", "1.0.1", "--yes").exit_code == 0
    assert run("--store", a, "trash", "--empty", "--yes").exit_code == 0
    assert run("--store", a, "save", "p", "--text", "THREE").stdout == "Saved p 1.0.2\n"
    backed = run("backup", "--store", a, bk)
    assert backed.exit_code == 0, backed.output
    assert "copied 1 version(s)" in backed.stdout and "removed 1" in backed.stdout
    assert run("backup", "verify", bk).exit_code == 0
    assert run("migrate", bk, str(tmp_path / "restored")).exit_code == 0
    with FileSystemStorage(tmp_path / "restored") as restored:
        assert _text(restored, "1.0.2") == "THREE" and restored.get_version("p", "1.0.1") is None
        assert list(restored.retired_versions("p")) == ["1.0.1"]
    synced = run("sync", a, sb)
    assert synced.exit_code == 0, synced.output
    assert run("--store", sb, "show", "p", "1.0.2", "--text").stdout.strip() == "THREE"
    assert run("--store", sb, "show", "p", "1.0.1", "--text").exit_code == 1
    assert "copied 0 version(s)" in run("sync", a, sb).stdout  # and then nothing moves
    source = FileSystemStorage(tmp_path / "A")
    with SQLiteStorage(tmp_path / "standby.db") as standby:  # an SQLite standby, the API
        assert sync(source, standby).ok
        assert list(standby.retired_versions("p")) == ["1.0.1"]
        with pytest.raises(VersionConflictError):
            source.save_version(make_version("p", "1.0.1", text="FOUR"))
        with pytest.raises(VersionConflictError):
            standby.save_version(make_version("p", "1.0.1", text="FOUR"))


def test_an_incremental_backup_copies_a_damaged_version_again(tmp_path: Path) -> None:
    src, bk = str(tmp_path / "src"), tmp_path / "bk"
    for text in ("one", "two"):
        assert run("--store", src, "save", "p", "--text", text).exit_code == 0
    assert run("backup", "--store", src, str(bk)).exit_code == 0
    damaged = bk / "p" / "1.0.1.json"
    data = bytearray(damaged.read_bytes())
    data[data.index(b"two")] = ord("T")
    damaged.write_bytes(bytes(data))
    assert run("backup", "verify", str(bk)).exit_code == 1
    again = run("backup", "--store", src, str(bk))
    assert again.exit_code == 0, again.output
    assert "re-copied 1 damaged" in again.stdout
    assert run("backup", "verify", str(bk)).exit_code == 0
    assert run("migrate", str(bk), str(tmp_path / "restored")).exit_code == 0
    with FileSystemStorage(tmp_path / "restored") as restored:
        assert _text(restored, "1.0.1") == "two"


def test_backup_verify_of_an_unfinished_backup_says_so(tmp_path: Path) -> None:
    (tmp_path / "half").mkdir()
    result = run("backup", "verify", str(tmp_path / "half"))
    assert result.exit_code == 1
    assert "None" not in result.stdout
    assert f"backup {tmp_path / 'half'}: no manifest, nothing checked" in result.stdout
