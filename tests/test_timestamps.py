"""Timestamps: UTC with its zone for everything promptshelf records; the original's naive
ones read as UTC and written back unchanged (bytes, SHA-256, ETag), through the real
``promptshelf`` entry point and a real ``promptshelf serve``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest

from client.serverproc import ServerProcess
from promptshelf import FileSystemStorage, timestamps
from promptshelf.backup import history_sha256, seal, unseal
from promptshelf.models import LabelAction, LabelEvent
from promptshelf.timestamps import NaiveUTC

PROMPTSHELF = Path(sys.executable).with_name("promptshelf")


def cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PROMPTSHELF), *argv], capture_output=True, text=True, timeout=120)


def test_the_helper_takes_naive_as_utc_and_keeps_what_was_written() -> None:
    naive = datetime(2025, 3, 1, 9, 30, 15, 123456)
    utc = naive.replace(tzinfo=UTC)
    plus2 = utc.astimezone(timezone(timedelta(hours=2)))
    assert timestamps.as_utc(naive) == timestamps.as_utc(plus2) == utc
    assert type(timestamps.as_utc(NaiveUTC.of(naive))) is datetime
    assert timestamps.parse("2025-03-01T09:30:15.123456") == utc
    assert timestamps.parse("2025-03-01T11:30:15.123456+02:00") == utc
    assert timestamps.parse("2025-03-01T09:30:15.123456Z") == utc
    assert timestamps.to_text(plus2) == "2025-03-01T09:30:15.123456+00:00"
    assert timestamps.to_naive_utc(plus2) == naive
    assert timestamps.from_ns(timestamps.to_ns(plus2)) == utc  # exact to the microsecond
    assert timestamps.utc_now().utcoffset() == timedelta(0)
    read = timestamps.read(naive)
    assert isinstance(read, NaiveUTC) and read == utc and read.as_written() == naive
    assert timestamps.read(plus2) is plus2  # an offset is kept as written
    with pytest.raises(ValueError):
        timestamps.parse("yesterday")


def test_the_original_store_reads_unchanged_through_the_cli_and_the_api(
    seed_copy: Path,
) -> None:
    """The seed store (written by the original, naive times): `show --json` reports its
    times as UTC, the server's ETag of each version is the SHA-256 of the very file, and a
    version saved now carries its zone."""
    files = {p: p.read_bytes() for p in sorted(seed_copy.glob("*/*.json"))}
    shown = cli("show", "wf_001_llm_1", "1.0.0", "--store", str(seed_copy), "--json")
    assert shown.returncode == 0, shown.stderr
    written = json.loads(files[seed_copy / "wf_001_llm_1" / "1.0.0.json"])["created_at"]
    assert "+" not in written and not written.endswith("Z")  # the original wrote it naive
    assert timestamps.parse(json.loads(shown.stdout)["created_at"]) == timestamps.parse(written)
    saved = cli("save", "wf_001_llm_1", "--text", "now", "--store", str(seed_copy), "--json")
    assert saved.returncode == 0, saved.stderr
    new = json.loads((seed_copy / "wf_001_llm_1" / "1.2.1.json").read_text())
    assert new["created_at"].endswith("Z")  # made by promptshelf: UTC, with its zone
    assert timestamps.parse(new["created_at"]) > timestamps.parse(written)
    listing = cli("log", "wf_001_llm_1", "--store", str(seed_copy), "--json")
    assert listing.returncode == 0 and len(json.loads(listing.stdout)) == 4  # naive and aware
    server = ServerProcess(seed_copy).start()
    try:
        for path, data in files.items():
            pid, number = path.parent.name, path.name[: -len(".json")]
            got = httpx.get(f"{server.url}/api/v1/prompts/{pid}", params={"version": number})
            assert got.status_code == 200, got.text
            assert got.content == data  # the bytes the original wrote, naive times and all
            assert got.headers["etag"].strip('"') == hashlib.sha256(data).hexdigest()
        history = httpx.get(f"{server.url}/api/v1/prompts/wf_001_llm_1/versions")
        assert history.status_code == 200, history.text
        times = [timestamps.parse(v["created_at"]) for v in history.json()["versions"]]
        assert times == sorted(times)
    finally:
        server.stop()
    assert {p: p.read_bytes() for p in files} == files  # nothing rewritten


def test_label_and_trash_times_are_utc_on_the_command_line(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert cli("save", "p", "--text", "one", "--store", store).returncode == 0
    assert cli("save", "p", "--text", "two", "--store", store).returncode == 0
    assert cli("label", "set", "p", "production", "1.0.0", "--store", store).returncode == 0
    events = cli("label", "log", "p", "--store", store, "--nl")
    assert events.returncode == 0, events.stderr
    (event,) = [json.loads(line) for line in events.stdout.splitlines()]
    assert timestamps.parse(event["at"]).utcoffset() == timedelta(0)
    assert event["at"].endswith(("Z", "+00:00"))
    assert cli("delete", "p", "1.0.1", "--yes", "--store", store).returncode == 0
    trash = cli("trash", "--store", store, "--json")
    (entry,) = json.loads(trash.stdout)
    assert entry["deleted_at"].endswith(("Z", "+00:00"))
    age = timestamps.utc_now() - timestamps.parse(entry["deleted_at"])
    assert timedelta(0) <= age < timedelta(hours=1)


def test_a_backup_manifest_written_before_utc_times_still_verifies(tmp_path: Path) -> None:
    """Manifests written before times were UTC hold naive deletion times and hash label
    histories as read; `backup verify` accepts them, and a new manifest hashes the same
    history the same whichever backend it came from."""
    source = FileSystemStorage(tmp_path / "src")
    naive = datetime(2025, 3, 1, 9, 30, 15, 123456)
    from helpers import make_version

    source.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    source.import_label_events(
        "p",
        [
            LabelEvent(
                seq=1, prompt_id="p", label="production", action=LabelAction.SET,
                to_version="1.0.0", at=naive,
            )
        ],
    )  # fmt: skip
    source.delete_version("p", "1.1.0")
    dest = tmp_path / "backup"
    taken = cli("backup", str(dest), "--store", str(tmp_path / "src"), "--json")
    assert taken.returncode == 0, taken.stderr
    [manifest_path] = sorted((dest / ".backup").glob("manifest-*.json"))
    manifest = unseal(manifest_path.read_bytes(), str(manifest_path))
    entry = manifest["prompts"]["p"]
    history = source.label_history("p")
    assert entry["label_history_sha256"] == history_sha256(history)
    assert history_sha256(history) == history_sha256(
        [e.model_copy(update={"at": naive.replace(tzinfo=UTC)}) for e in history]
    )  # as another backend hands it back: the same hash
    # rewrite it as an older promptshelf wrote it: naive times, the history hashed as read
    entry["label_history_sha256"] = history_sha256(history, as_read=True)
    entry["trash"] = [
        [v, timestamps.to_naive_utc(timestamps.parse(when)).isoformat(), digest]
        for v, when, digest in entry["trash"]
    ]
    manifest_path.write_bytes(seal(manifest))
    checked = cli("backup", "verify", str(dest), "--json")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert json.loads(checked.stdout)["ok"] is True
