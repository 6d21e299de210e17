"""The filesystem-backend commands through the real entry point (``python -m promptshelf``):
init's layout check, reshard, trash --empty, and one-line coded errors for symlinks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from promptshelf import FileSystemStorage

from helpers import make_version


def shelf(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptshelf", *args],
        capture_output=True,
        text=True,
        input=input,
        timeout=120,
    )


def _flat_store(root: Path) -> FileSystemStorage:
    store = FileSystemStorage(root)
    for n in range(12):
        store.save_version(make_version(f"p{n % 4}", f"1.{n // 4}.0"))
    store.set_label("p0", "production", "1.1.0")
    store.set_label("p0", "production", "1.2.0", actor="ci", reason="better")
    store.delete_version("p1", "1.2.0")
    return store


def test_init_sharding_on_a_flat_store_refuses(tmp_path: Path) -> None:
    _flat_store(tmp_path / "s").close()
    before = sorted(str(p) for p in (tmp_path / "s").rglob("*"))
    result = shelf("init", "--store", str(tmp_path / "s"), "--sharding")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert "flat (not sharded) on disk" in result.stderr and "[FS-LAYOUT-001]" in result.stderr
    assert sorted(str(p) for p in (tmp_path / "s").rglob("*")) == before
    ok = shelf("init", "--store", str(tmp_path / "s"))
    assert ok.returncode == 0 and "already holds 4 prompt(s)" in ok.stdout
    listed = shelf("list", "--store", str(tmp_path / "s"))
    assert listed.returncode == 0 and listed.stdout.count("\n") == 5  # header + 4 prompts


def test_reshard_there_and_back_keeps_everything(tmp_path: Path) -> None:
    root = tmp_path / "s"
    store = _flat_store(root)
    versions = {p: store.list_versions(p) for p in store.list_prompts()}
    history = store.label_history("p0")
    trash = store.list_trash()
    store.close()
    result = shelf("reshard", "--store", str(root), "--sharding", "--shard-depth", "1")
    assert result.returncode == 0, result.stderr
    assert "moved 4 prompt(s); 4 prompt(s), 11 version(s) verified" in result.stdout
    sharded = FileSystemStorage(root)
    assert sharded.enable_sharding and sharded.shard_depth == 1
    assert {p: sharded.list_versions(p) for p in sharded.list_prompts()} == versions
    assert sharded.label_history("p0") == history and sharded.list_trash() == trash
    assert sharded.get_label("p0", "production") == "1.2.0"
    sharded.close()
    back = shelf("reshard", "--store", str(root), "--no-sharding")
    assert back.returncode == 0, back.stderr
    flat = FileSystemStorage(root)
    assert not flat.enable_sharding
    assert {p: flat.list_versions(p) for p in flat.list_prompts()} == versions
    assert flat.label_history("p0") == history and flat.list_trash() == trash
    assert sorted(os.listdir(root)) == [".index.json", ".trash", "p0", "p1", "p2", "p3"]


def test_reshard_needs_a_direction(tmp_path: Path) -> None:
    result = shelf("reshard", "--store", str(tmp_path / "s"))
    assert result.returncode == 2 and "--sharding or --no-sharding" in result.stderr


def test_trash_empty_asks_first(tmp_path: Path) -> None:
    _flat_store(tmp_path / "s").close()
    refused = shelf("trash", "--store", str(tmp_path / "s"), "--empty", input="n\n")
    assert refused.returncode == 1 and FileSystemStorage(tmp_path / "s").list_trash()
    done = shelf("trash", "--store", str(tmp_path / "s"), "--empty", "--yes")
    assert done.stdout == "Removed 1 version(s) from the trash\n"


def test_symlinks_are_one_line_coded_errors(tmp_path: Path) -> None:
    root = tmp_path / "s"
    _flat_store(root).close()
    outside = tmp_path / "outside"
    (outside / "p1").mkdir(parents=True)
    (outside / "p1" / "1.0.0@1.json").write_text("precious")
    (outside / "labels").write_text("precious\n")
    (root / ".trash").rename(tmp_path / "old-trash")
    (root / ".trash").symlink_to(outside)
    (root / "p0" / ".labels.jsonl").unlink()
    (root / "p0" / ".labels.jsonl").symlink_to(outside / "labels")
    store = str(root)
    for args in (
        ("trash", "--store", store, "--empty", "--yes"),
        ("trash", "--store", store),
        ("label", "ls", "--store", store, "p0"),
        ("label", "log", "--store", store, "p0"),
    ):
        result = shelf(*args)
        assert result.returncode == 1, (args, result.stderr)
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1, args
        assert result.stderr.rstrip().endswith("[FS-SYMLINK-001]"), (args, result.stderr)
    verify = shelf("verify", "--store", store)
    assert verify.returncode == 1 and "Traceback" not in verify.stderr
    assert verify.stdout.count("FS-SYMLINK-001") == 2
    repair = shelf("repair", "--store", store)
    assert repair.returncode == 0, repair.stderr
    assert shelf("verify", "--store", store).returncode == 0
    assert (outside / "p1" / "1.0.0@1.json").read_text() == "precious"
    assert (outside / "labels").read_text() == "precious\n"
