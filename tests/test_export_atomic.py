"""``export X.jsonl`` through the real ``promptshelf`` entry point: a killed or failed export
leaves no final file (nothing that imports cleanly but is incomplete), and a rerun succeeds."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

from promptshelf import FileSystemStorage, SQLiteStorage

from helpers import fill_everything, inventory, make_version

PROMPTSHELF = str(Path(sys.executable).with_name("promptshelf"))


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMPTSHELF, *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def _big_store(path: Path) -> str:
    """A store whose export takes long enough to be killed in the middle of it."""
    with SQLiteStorage(path) as store:
        padding = "x" * 20_000
        for prompt in range(40):
            store.save_versions(
                [
                    make_version(f"p{prompt}", f"1.{minor}.0", text=f"{padding} {prompt}.{minor}")
                    for minor in range(40)
                ]
            )
            store.set_label(f"p{prompt}", "production", "1.0.0")
    return f"sqlite:///{path}"


def _files_store(path: Path) -> str:
    """A small filesystem store of 20 kB versions (SQLite cannot open under a tiny limit)."""
    with FileSystemStorage(path) as store:
        for prompt in range(5):
            store.save_versions(
                [
                    make_version(f"p{prompt}", f"1.{minor}.0", text="y" * 20_000)
                    for minor in range(3)
                ]
            )
            store.set_label(f"p{prompt}", "production", "1.0.0")
    return str(path)


def _finals(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("X."))


def test_a_killed_export_leaves_no_final_file_and_a_rerun_succeeds(tmp_path: Path) -> None:
    store = _big_store(tmp_path / "big.db")
    out = tmp_path / "out"
    out.mkdir()
    proc = subprocess.Popen(
        [PROMPTSHELF, "--store", store, "export", "X.jsonl"],
        cwd=out,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # wait for the export's file to grow (its temporary, or before the fix X.jsonl)
            growing = [p for p in out.iterdir() if "X.jsonl" in p.name and p.stat().st_size > 0]
            if growing or proc.poll() is not None or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "the export finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _finals(out) == []  # nothing that an import would take for a whole export
    rerun = _run("--store", store, "export", "X.jsonl", cwd=out)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in out.iterdir()) == ["X.jsonl", "X.labels.jsonl"]  # no litter
    assert len((out / "X.jsonl").read_text().splitlines()) == 1600
    assert len((out / "X.labels.jsonl").read_text().splitlines()) == 40


def _limit_file_size() -> None:  # in the child: a "full disk" after 16 KiB of any one file
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write then fails with EFBIG
    resource.setrlimit(resource.RLIMIT_FSIZE, (16 * 1024, 16 * 1024))


def test_an_export_that_runs_out_of_space_leaves_no_partial_file(tmp_path: Path) -> None:
    store = _files_store(tmp_path / "files")
    out = tmp_path / "out"
    out.mkdir()
    full = subprocess.run(
        [PROMPTSHELF, "--store", store, "export", "X.jsonl"],
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert full.returncode == 1
    assert full.stderr.startswith("Error: ") and "[PS-IO-001]" in full.stderr
    assert len(full.stderr.splitlines()) == 1
    assert os.listdir(out) == []  # neither a partial X.jsonl nor a temporary
    rerun = _run("--store", store, "export", "X.jsonl", cwd=out)
    assert rerun.returncode == 0, rerun.stderr


def test_a_dangling_symlink_is_not_exported_through_and_the_pair_imports(tmp_path: Path) -> None:
    """A dangling symlink at a side file's name is refused, not written through."""
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    out = tmp_path / "out"
    out.mkdir()
    os.symlink("nowhere", out / "X.trash.jsonl")
    refused = _run("--store", str(tmp_path / "src"), "export", "X.jsonl", cwd=out)
    assert refused.returncode == 1 and "[PS-EXPORT-001]" in refused.stderr
    assert not (out / "X.jsonl").exists() and not os.path.lexists(out / "nowhere")
    (out / "X.trash.jsonl").unlink()
    done = _run("--store", str(tmp_path / "src"), "export", "X.jsonl", cwd=out)
    assert done.returncode == 0, done.stderr
    back = _run("--store", str(tmp_path / "back"), "import", "X.jsonl", cwd=out)
    assert back.returncode == 0, back.stderr
    assert inventory(FileSystemStorage(tmp_path / "back")) == inventory(source)


def test_a_killed_directory_export_leaves_no_directory_and_a_rerun_succeeds(
    tmp_path: Path,
) -> None:
    store = _big_store(tmp_path / "big.db")
    proc = subprocess.Popen(
        [PROMPTSHELF, "--store", store, "export", "dir"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while True:  # wait until version files are being written (under any name)
            growing = list(tmp_path.glob("*dir*/p0/*.json"))
            if growing or proc.poll() is not None or time.monotonic() > deadline:
                break
        assert proc.poll() is None, "the export finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert not (tmp_path / "dir").exists()  # no directory that imports as a whole export
    rerun = _run("--store", store, "export", "dir", cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.db", "dir"]  # leftovers removed
    assert len(list((tmp_path / "dir").glob("*/*.json"))) == 1600


def test_a_pull_that_fails_leaves_no_bundle(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    store = _files_store(tmp_path / "db" / "files")
    tmp_path = tmp_path / "out"
    tmp_path.mkdir()
    full = subprocess.run(
        [PROMPTSHELF, "--store", store, "pull", "-o", "bundle"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=_limit_file_size,
    )
    assert full.returncode == 1 and "Traceback" not in full.stderr, full.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    empty = _run("--store", store, "pull", "--label", "nothing", "-o", "bundle", cwd=tmp_path)
    assert empty.returncode == 1 and "[PULL-EMPTY]" in empty.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []
    pulled = _run("--store", store, "pull", "-o", "bundle", cwd=tmp_path)
    assert pulled.returncode == 0, pulled.stderr
    assert len(list((tmp_path / "bundle").glob("*/*.json"))) == 5
