"""New-prompt saves at any store size, flat and sharded, against a floor of the same shape.

A save that creates a prompt makes a directory and must sync its parent, so its
floor does the same system calls in a parent of the same size: ``mkdir``, write a
temp file, fsync it, rename it, fsync the new directory, fsync the parent. For the
flat (original) layout the parent is the store's root with N entries; for the
sharded layout it is one of 256 shard directories with about N/256 entries.

The stores are built as raw files (``mkdir`` + one version file per prompt, the
same bytes a save writes, then one ``sync``): a 100,000-prompt store so takes
seconds instead of minutes; what is measured afterwards goes through promptshelf.

Usage::

    python benchmarks/newprompts.py                  # 100, 10,000 and 100,000 prompts
    python benchmarks/newprompts.py --sizes 100 2000 --dir /dev/shm
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from common import make_version, quiesce

from promptshelf import FileSystemStorage
from promptshelf.storage import integrity
from promptshelf.storage.codec import encode_version

PER_ROUND = 60
ROUNDS = 5


def build_raw(root: Path, size: int, sharded: bool) -> None:
    """A store of ``size`` prompts with one version each, written as plain files: the
    bytes promptshelf would write for ``p0000000`` with the id put in (ids have one
    length), in the flat or the sharded (depth 2) layout, then synced once."""
    body = encode_version(make_version("p0000000", "1.0.0"))
    root.mkdir(parents=True, exist_ok=True)
    shards: set[str] = set()
    for i in range(size):
        prompt_id = f"p{i:07d}"
        parent = root
        if sharded:
            shard = hashlib.sha256(prompt_id.encode()).hexdigest()[:2]
            parent = root / shard
            if shard not in shards:
                parent.mkdir(exist_ok=True)
                shards.add(shard)
        directory = parent / prompt_id
        directory.mkdir()
        data = integrity.seal(body.replace(b"p0000000", prompt_id.encode()))
        (directory / "1.0.0.json").write_bytes(data)
    os.sync()


def _floor_parent(root: Path, entries: int, sharded: bool) -> Path:
    """A directory shaped like the one a new prompt lands in: ``entries`` siblings."""
    if not sharded:
        root.mkdir(parents=True)
        for i in range(entries):
            os.mkdir(root / f"p{i:07d}")
        return root
    shard = root / "ab"
    shard.mkdir(parents=True)
    for i in range(max(1, entries // 256)):
        os.mkdir(shard / f"p{i:07d}")
    return shard


def _floor_round(parent: Path, data: bytes, start: int) -> float:
    """Seconds per new directory + durable file, the minimum a new prompt costs."""
    parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        begin = time.perf_counter()
        for i in range(start, start + PER_ROUND):
            name = f"new{i:07d}"
            os.mkdir(name, dir_fd=parent_fd)
            dir_fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=parent_fd)
            fd = os.open(".tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644, dir_fd=dir_fd)
            os.write(fd, data)
            os.fsync(fd)
            os.close(fd)
            os.rename(".tmp", "1.0.0.json", src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
            os.fsync(dir_fd)
            os.close(dir_fd)
            os.fsync(parent_fd)
        return (time.perf_counter() - begin) / PER_ROUND
    finally:
        os.close(parent_fd)


def _save_round(store: FileSystemStorage, start: int) -> float:
    ids = [f"new{i:07d}" for i in range(start, start + PER_ROUND)]
    batch = [make_version(prompt_id, "1.0.0") for prompt_id in ids]
    begin = time.perf_counter()
    for version in batch:
        store.save_version(version)
    return (time.perf_counter() - begin) / PER_ROUND


def measure(base: Path, size: int, sharded: bool) -> dict[str, float]:
    """Median per-round figures for one store size and layout, floor rounds interleaved."""
    layout = "sharded" if sharded else "flat"
    data = make_version("p0000000", "1.0.0").model_dump_json(indent=2).encode()
    store_root = base / f"{layout}-{size}"
    FileSystemStorage(store_root, enable_sharding=sharded).close()  # records the layout
    build_raw(store_root, size, sharded)
    parent = _floor_parent(base / f"floor-{layout}-{size}", size, sharded)
    store = FileSystemStorage(store_root, enable_sharding=sharded)
    quiesce()
    floors, saves = [], []
    for r in range(ROUNDS):
        floors.append(_floor_round(parent, data, r * PER_ROUND))
        saves.append(_save_round(store, r * PER_ROUND))
    store.close()
    shutil.rmtree(store_root, ignore_errors=True)
    shutil.rmtree(parent if not sharded else parent.parent, ignore_errors=True)
    ratio = statistics.median(s / f for s, f in zip(saves, floors, strict=True))
    return {
        f"new_prompt_{layout}_{size}_us": statistics.median(saves) * 1e6,
        f"new_prompt_floor_{layout}_{size}_us": statistics.median(floors) * 1e6,
        f"new_prompt_{layout}_{size}_x_floor": ratio,
    }


def run(base: Path, sizes: list[int]) -> dict[str, float]:
    figures: dict[str, float] = {}
    for size in sizes:
        for sharded in (False, True):
            figures.update(measure(base, size, sharded))
    return figures


def report(figures: dict[str, float], sizes: list[int]) -> None:
    print("new-prompt saves (durable; floor = mkdir + file + fsyncs in a parent of the same size):")
    for layout in ("flat", "sharded"):
        first = figures[f"new_prompt_{layout}_{sizes[0]}_us"]
        for size in sizes:
            us = figures[f"new_prompt_{layout}_{size}_us"]
            print(
                f"  {layout:<8} {size:>8,} prompts  {us:8.0f} µs"
                f"  floor {figures[f'new_prompt_floor_{layout}_{size}_us']:8.0f} µs"
                f"  {figures[f'new_prompt_{layout}_{size}_x_floor']:.2f}x floor (target <= 1.3x)"
                f"  {us / first:.2f}x the {sizes[0]:,}-prompt figure"
            )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 10_000, 100_000])
    parser.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="promptshelf-newprompts-", dir=args.dir))
    try:
        figures = run(base, args.sizes)
        report(figures, args.sizes)
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
