"""Backup benchmark: how long a backup of N versions takes, full and incremental.

The source is a filesystem store of N versions (1,000 prompts, 100 label
events, 100 trashed versions). Figures: a full backup into a directory, an
incremental one with nothing changed, one after 1% of the versions were
added, and (with ``--s3``) a full backup into a local SeaweedFS. The floor
is a plain copy of the source's files (``shutil.copytree``), the least a
directory backup can cost.

Usage::

    python benchmarks/bench_backup.py                    # 100,000 versions
    python benchmarks/bench_backup.py --versions 20000 --s3 5000

Prints a table, then one JSON line. Nothing passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench import make_version  # noqa: E402

from promptshelf import FileSystemStorage  # noqa: E402
from promptshelf import backup as backups  # noqa: E402

PROMPTS = 1000


def build(root: Path, versions: int) -> FileSystemStorage:
    store = FileSystemStorage(root, durable=False)
    per = max(1, versions // PROMPTS)
    batch = [make_version(f"p{i % PROMPTS:04d}", f"1.{i // PROMPTS}.0") for i in range(versions)]
    store.save_versions(batch)
    for i in range(min(100, PROMPTS)):
        store.set_label(f"p{i:04d}", "production", "1.0.0")
    for i in range(100, min(200, PROMPTS)):
        store.delete_version(f"p{i:04d}", f"1.{per - 1}.0")
    return store


def timed(fn: object) -> float:
    started = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - started


def backup_run(url: str | None, count: int, base: Path | None = None) -> dict[str, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-backup-", dir=base))
    fig: dict[str, float] = {}
    try:
        started = time.perf_counter()
        source = build(work / "src", count)
        fig["build_seconds"] = time.perf_counter() - started
        fig["backup_versions"] = count
        fig["floor_copy_seconds"] = timed(lambda: shutil.copytree(work / "src", work / "copy"))
        dest = str(work / "backup")
        taken: list[backups.BackupReport] = []
        fig["backup_seconds"] = timed(
            lambda: taken.append(backups.take(source, dest, describe="bench"))
        )
        mark = taken[0].sync.watermark
        if mark is not None:  # read before any body was copied: the snapshot's window
            fig["watermark_seconds"] = mark.window[1] - mark.window[0]
        fig["incremental_unchanged_seconds"] = timed(
            lambda: backups.take(source, dest, describe="bench")
        )
        more = [make_version(f"p{i:04d}", "9.0.0") for i in range(max(1, count // 100))]
        source.save_versions(more)
        fig["incremental_1pct_seconds"] = timed(lambda: backups.take(source, dest, describe="b"))
        fig["verify_seconds"] = timed(lambda: backups.verify(dest))
        if url is not None:
            fig["s3_backup_seconds"] = timed(lambda: backups.take(source, url, describe="b"))
            fig["s3_backup_versions"] = count + len(more)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return fig


def report(fig: dict[str, float]) -> None:
    n = fig["backup_versions"]
    print(
        f"backup of {n:,.0f} versions ({PROMPTS} prompts), source built in "
        f"{fig['build_seconds']:.1f} s"
    )
    rows = [
        ("full, to a directory", fig["backup_seconds"]),
        ("incremental, nothing changed", fig["incremental_unchanged_seconds"]),
        ("incremental, 1% new", fig["incremental_1pct_seconds"]),
        ("backup verify", fig["verify_seconds"]),
        ("floor: copytree of the store", fig["floor_copy_seconds"]),
    ]
    for name, seconds in rows:
        print(f"{name:32} {seconds:8.2f} s  {n / seconds:10,.0f} versions/s")
    if "watermark_seconds" in fig:
        print(f"{'  of which the watermark':32} {fig['watermark_seconds']:8.2f} s")
    print(f"load average {fig['load_1m']:.2f} (1 min) at the end")
    if "s3_backup_seconds" in fig:
        s = fig["s3_backup_seconds"]
        v = fig["s3_backup_versions"]
        print(f"{'full, to S3 (SeaweedFS)':32} {s:8.2f} s  {v / s:10,.0f} versions/s ({v:,.0f})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--s3", type=int, default=0, help="also back up this many to SeaweedFS")
    parser.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    args = parser.parse_args()
    base = Path(args.dir) if args.dir else None
    fig = backup_run(None, args.versions, base)
    if args.s3:
        import s3server

        server = s3server.start()
        os.environ.update(server.env)
        try:
            fig.update(
                {
                    k: v
                    for k, v in backup_run(server.url("bench", "backup"), args.s3, base).items()
                    if k.startswith("s3_")
                }
            )
        finally:
            server.stop()
    fig["load_1m"] = os.getloadavg()[0]
    report(fig)
    print(json.dumps({k: round(v, 4) for k, v in fig.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
