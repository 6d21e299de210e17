"""Filesystem backend benchmark: figures and ratios to floors taken in the same run.

Floors (what the hardware and Python cost before promptshelf does anything):

* write floor: write a temp file, fsync it, rename it, fsync the directory,
  with the same bytes a save writes;
* read floor: read the file and ``PromptVersion.model_validate_json`` the same
  bytes — the one read floor of every read figure, measured beside each of them;
* what a cache hit cannot avoid, measured beside it too: the isolation floor
  (``fresh_copy`` of the same version: the caller's private copy) and the
  revalidation floor (one ``os.stat`` of its file: another process's change seen).

Usage::

    python benchmarks/bench.py            # default run: about 4 minutes on 2 idle cores;
                                          # 40 minutes (6.5 min of CPU) at a load of 8-20
    python benchmarks/bench.py --full     # adds the 1,000,000-version store (+ ~6 minutes)
    python benchmarks/bench.py --prompts 20000 --dir /path/on/the/disk/to/test

Prints a table, one JSON line with every figure, and writes the figures to
``.bench/last.json`` (the run before is kept as ``.bench/previous.json`` and each
figure is printed beside it). Nothing here passes or fails: the targets are
printed beside the figures for a person to read. ``startup.py``,
``newprompts.py`` and ``bench_diff.py`` beside it also run alone.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import newprompts
import startup
from common import (
    ROUNDS,
    build_store,
    make_version,
    per_op,
    quiesce,
    settle,
    versions_for,
)

from promptshelf import FileSystemStorage, PromptVersion
from promptshelf.copying import fresh_copy
from promptshelf.models import STORED

# pgserver asks platformdirs for a runtime dir; machines without XDG_RUNTIME_DIR warn
warnings.filterwarnings("ignore", category=UserWarning, module="platformdirs")

#: Where each run's figures are kept (ignored by git), to compare a run with the last one.
RESULTS = Path(__file__).resolve().parents[1] / ".bench"
NEW_PROMPT_SIZES = [100, 10_000, 100_000]

# -- floors ---------------------------------------------------------------------------


def write_floor(directory: Path, data: bytes, count: int) -> float:
    directory.mkdir(parents=True, exist_ok=True)
    dir_fd = os.open(directory, os.O_RDONLY)

    def one(i: int) -> None:
        tmp, final = directory / f".tmp{i}", directory / f"{i}.json"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        os.write(fd, data)
        os.fsync(fd)
        os.close(fd)
        os.rename(tmp, final)
        os.fsync(dir_fd)

    try:
        return per_op(one, count)
    finally:
        os.close(dir_fd)


def read_one(path: Path) -> PromptVersion:
    """The read floor's unit: read a version file, validate the same bytes into the model."""
    with open(path, "rb") as handle:
        return PromptVersion.model_validate_json(handle.read(), context=STORED)


def read_floor(paths: list[Path]) -> float:
    return per_op(lambda i: read_one(paths[i % len(paths)]), min(len(paths), 2000))


# -- workloads ------------------------------------------------------------------------


def timed_saves(store: FileSystemStorage, prompts: int, count: int, major: int) -> float:
    """Median seconds per ``save_version``; the versions are built before the clock starts."""
    batches = [
        [make_version(f"p{i % prompts:07d}", f"{major}.{r * count + i}.0") for i in range(count)]
        for r in range(ROUNDS)
    ]
    results = []
    for batch in batches:
        start = time.perf_counter()
        for version in batch:
            store.save_version(version)
        results.append((time.perf_counter() - start) / count)
    return statistics.median(results)


def durable_saves(root: Path, prompts: int, count: int, major: int) -> float:
    return timed_saves(FileSystemStorage(root), prompts, count, major)


def nondurable_saves_per_s(root: Path, prompts: int, count: int) -> float:
    return 1 / timed_saves(FileSystemStorage(root, durable=False), prompts, count, 50)


def bulk_durable_per_s(root: Path, prompts: int, per_prompt: int) -> float:
    batch = list(versions_for(prompts, per_prompt))
    store = FileSystemStorage(root)
    start = time.perf_counter()
    store.save_versions(batch)
    return len(batch) / (time.perf_counter() - start)


def _syncfs(fd: int) -> None:
    """The bulk save's filesystem sync, called the way promptshelf calls it."""
    from promptshelf.storage.filesystem import io as fsio

    fsio.sync_filesystem(fd)


def bulk_floor_per_s(root: Path, prompts: int, per_prompt: int, data: bytes) -> float:
    """The same workload as :func:`bulk_durable_per_s` as bare system calls, one thread,
    bytes made in advance: per prompt mkdir + open + flock; per version an unnamed file
    (``O_TMPFILE``) written, linked and closed; two ``syncfs`` per round of 512 versions."""
    root.mkdir(parents=True)
    root_fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    names = [(f"p{i:07d}", f"1.{m}.0.json") for i in range(prompts) for m in range(per_prompt)]
    start = time.perf_counter()
    try:
        for first in range(0, len(names), 512):
            chunk = names[first : first + 512]
            dirs: dict[str, int] = {}
            staged = []
            for prompt, name in chunk:
                if prompt not in dirs:
                    try:
                        os.mkdir(prompt, dir_fd=root_fd)
                    except FileExistsError:
                        pass
                    dirs[prompt] = os.open(prompt, os.O_RDONLY | os.O_DIRECTORY, dir_fd=root_fd)
                    fcntl.flock(dirs[prompt], fcntl.LOCK_EX)
                fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o644, dir_fd=dirs[prompt])
                os.write(fd, data)
                staged.append((fd, dirs[prompt], name))
            _syncfs(root_fd)
            for fd, dir_fd, name in staged:
                os.link(f"/proc/self/fd/{fd}", name, dst_dir_fd=dir_fd)
                os.close(fd)
            _syncfs(root_fd)
            for dir_fd in dirs.values():
                os.close(dir_fd)
    finally:
        os.close(root_fd)
    return len(names) / (time.perf_counter() - start)


def nondurable_floor_per_s(root: Path, prompts: int, count: int, data: bytes) -> float:
    """A ``durable=False`` save as bare system calls: open the prompt directory, flock it,
    write an unnamed file, link it, close both (the directories exist already)."""
    root.mkdir(parents=True)
    for i in range(prompts):
        (root / f"p{i:07d}").mkdir()

    def one(i: int) -> None:
        dir_fd = os.open(root / f"p{i % prompts:07d}", os.O_RDONLY | os.O_DIRECTORY)
        fcntl.flock(dir_fd, fcntl.LOCK_EX)
        fd = os.open(".", os.O_TMPFILE | os.O_WRONLY, 0o644, dir_fd=dir_fd)
        os.write(fd, data)
        os.link(f"/proc/self/fd/{fd}", f"{i}.json", dst_dir_fd=dir_fd)
        os.close(fd)
        os.close(dir_fd)

    return 1 / per_op(one, count)


def encode_per_s(count: int) -> float:
    """Versions/s that ``encode_version`` + seal alone reach: the CPU floor of any save."""
    from promptshelf.storage import integrity
    from promptshelf.storage.codec import encode_version

    batch = [make_version(f"p{i:07d}", "1.0.0") for i in range(count)]
    return 1 / per_op(lambda i: integrity.seal(encode_version(batch[i % count])), count)


def open_ms(root: Path) -> float:
    return per_op(lambda i: FileSystemStorage(root), 20) * 1000


def reads(root: Path, prompts: int) -> dict[str, float]:
    """Every read figure, each round beside a read-floor round on the same files."""
    settle()
    ids = [f"p{(i * 7919) % prompts:07d}" for i in range(min(prompts, 2000))]
    paths = [root / prompt_id / "1.0.0.json" for prompt_id in ids]
    uncached = FileSystemStorage(root, use_cache=False)
    cached = FileSystemStorage(root)
    cached.get_version(ids[0], "1.0.0")
    cached.get_latest_version(ids[0])
    n = len(ids)
    cold = iter(range(10**9))
    stores = [FileSystemStorage(root, use_cache=False) for _ in range(ROUNDS * 5)]

    def latest_cold(i: int) -> None:  # a fresh store each round: no listing known yet
        stores[next(cold) // n].get_latest_version(ids[i % n])

    master = read_one(paths[0])
    workloads: dict[str, tuple[Callable[[int], Any], int]] = {
        "read_floor": (lambda i: read_one(paths[i % n]), n),
        "copy_floor": (lambda i: fresh_copy(master), 20000),
        "stat_floor": (lambda i: os.stat(paths[0], follow_symlinks=False), 20000),
        "get_uncached": (lambda i: uncached.get_version(ids[i % n], "1.0.0"), n),
        # the version cache is off; the per-process index (directory listings) is warm
        "latest_uncached": (lambda i: uncached.get_latest_version(ids[i % n]), n),
        "latest_cold": (latest_cold, n),
        "get_cached": (lambda i: cached.get_version(ids[0], "1.0.0"), 20000),
        "latest_cached": (lambda i: cached.get_latest_version(ids[0]), 20000),
    }
    rounds: dict[str, list[float]] = {name: [] for name in workloads}
    for _ in range(5):  # interleaved: every figure has a floor taken next to it
        for name, (fn, count) in workloads.items():
            rounds[name].append(per_op(fn, count))
    fig = {f"{name}_us": statistics.median(r) * 1e6 for name, r in rounds.items()}
    floors = rounds["read_floor"]
    for name in (
        "get_uncached",
        "latest_uncached",
        "get_cached",
        "latest_cached",
        "copy_floor",
        "stat_floor",
    ):
        fig[f"{name}_x_read_floor"] = statistics.median(
            a / b for a, b in zip(rounds[name], floors, strict=True)
        )
    hit_floors = [c + s for c, s in zip(rounds["copy_floor"], rounds["stat_floor"], strict=True)]
    fig["get_cached_x_hit_floor"] = statistics.median(
        a / b for a, b in zip(rounds["get_cached"], hit_floors, strict=True)
    )
    fig["latest_uncached_x_get_uncached"] = statistics.median(
        a / b for a, b in zip(rounds["latest_uncached"], rounds["get_uncached"], strict=True)
    )
    return fig


def list_fifty(root: Path) -> dict[str, float]:
    store = FileSystemStorage(root / "fifty", durable=False)
    store.save_versions(make_version("fifty", f"1.{i}.0") for i in range(50))
    settle()
    store.list_versions("fifty")
    bare = FileSystemStorage(root / "fifty", use_cache=False)
    masters = [v.model_copy(deep=True) for v in store.list_versions("fifty")]
    lists, gets, bares, copies = [], [], [], []
    for _ in range(5):  # the list and the cached get it is compared with, side by side
        lists.append(per_op(lambda i: store.list_versions("fifty"), 200))
        gets.append(per_op(lambda i: store.get_version("fifty", "1.7.0"), 5000))
        bares.append(per_op(lambda i: bare.list_versions("fifty"), 50))
        # the isolation floor of a list: a private copy of each of the 50 versions
        copies.append(per_op(lambda i: [fresh_copy(m) for m in masters], 200))
    return {
        "list50_cached_ms": statistics.median(lists) * 1000,
        "list50_uncached_ms": statistics.median(bares) * 1000,
        "list50_copy_floor_ms": statistics.median(copies) * 1000,
        "list50_x_cached_get": statistics.median(a / b for a, b in zip(lists, gets, strict=True)),
        "list50_x_copy_floor": statistics.median(a / b for a, b in zip(lists, copies, strict=True)),
    }


RSS_CHILD = """
import sys
from promptshelf import FileSystemStorage
store = FileSystemStorage(sys.argv[1])
touched = 0
for prompt_id in store.list_prompts():
    touched += len(store.list_versions(prompt_id))
    store.get_latest_version(prompt_id)
pages = int(open("/proc/self/statm").read().split()[1])
print(touched, pages * 4096 / 1048576)
"""


def rss_after_touching(root: Path) -> tuple[int, float]:
    out = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, str(root)], check=True, capture_output=True, text=True
    ).stdout.split()
    return int(out[0]), float(out[1])


WRITER_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[4])
from common import make_version
from promptshelf import FileSystemStorage
store = FileSystemStorage(sys.argv[1])
worker, count, start_at = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[5])
batch = [make_version(f"w{worker}-{i % 10}", f"1.{i}.0") for i in range(count)]
time.sleep(max(0.0, start_at - time.time()))
for version in batch:
    store.save_version(version)
print(time.time())
"""


def writers_per_s(root: Path, processes: int, count: int) -> float:
    """Aggregate durable saves/s of ``processes`` writers on distinct prompts.

    The children import and build their versions first, then start together
    at one wall-clock instant, so interpreter start-up is not measured.
    """
    here = str(Path(__file__).resolve().parent)
    start_at = time.time() + 1.5 + 0.25 * processes
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                WRITER_CHILD,
                str(root),
                str(w),
                str(count),
                here,
                repr(start_at),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for w in range(processes)
    ]
    ends = []
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise RuntimeError("writer process failed")
        ends.append(float(out.strip()))
    return processes * count / (max(ends) - start_at)


# -- every backend ----------------------------------------------------------------------


def backend_figures(base: Path, data: bytes) -> dict[str, dict[str, float]]:
    """save / get / latest / list on every backend, the same workload for each.

    get and latest cycle through all 1,000 versions (past the default 100-entry cache);
    list is one prompt's 50 versions, repeated, as in the summary. Each backend's saves
    are timed right after a write-floor round of their own.
    """
    from promptshelf import InMemoryStorage, PostgresStorage, SQLiteStorage

    server = None
    url = os.environ.get("PROMPTSHELF_TEST_POSTGRES_URL")
    if url is None:
        import pgserver

        server = pgserver.get_server(str(base / "pg"), cleanup_mode="stop")
        url = server.get_uri()
    factories = {
        "memory": lambda: InMemoryStorage(),
        "filesystem": lambda: FileSystemStorage(base / "cmp-fs"),
        "sqlite": lambda: SQLiteStorage(base / "cmp.db"),
        "postgres": lambda: PostgresStorage(url, schema="bench"),
    }
    results: dict[str, dict[str, float]] = {}
    try:
        for name, factory in factories.items():
            store = factory()
            store.save_versions(versions_for(20, 50))  # 20 prompts x 50 versions
            settle()
            fresh = [make_version(f"p{i % 20:07d}", f"7.{i}.0") for i in range(200)]
            floor = write_floor(base / f"floor-{name}", data, 60)
            save = per_op(lambda i, s=store, f=fresh: s.save_version(f[i % len(f)]), 60)
            get = per_op(lambda i, s=store: s.get_version(f"p{i % 20:07d}", f"1.{i % 50}.0"), 2000)
            latest = per_op(lambda i, s=store: s.get_latest_version(f"p{i % 20:07d}"), 2000)
            store.list_versions("p0000000")
            listing = per_op(lambda i, s=store: s.list_versions("p0000000"), 200)
            results[name] = {
                "write_floor_us": floor * 1e6,
                "save_us": save * 1e6,
                "get_us": get * 1e6,
                "latest_us": latest * 1e6,
                "list50_ms": listing * 1e3,
            }
            store.close()
    finally:
        if server is not None:
            server.cleanup()
    return results


def report_backends(results: dict[str, dict[str, float]]) -> dict[str, float]:
    fs = results["filesystem"]
    print(
        "backends (20 prompts x 50 versions; get/latest cycle all 1,000; list = one prompt's 50,"
        " repeated; x fs = ratio to the filesystem backend):"
    )
    print(f"  {'backend':<11} {'save':>18} {'get':>18} {'latest':>18} {'list 50':>18}")
    flat: dict[str, float] = {}
    for name, fig in results.items():
        cells = []
        for key, unit in (
            ("save_us", "µs"),
            ("get_us", "µs"),
            ("latest_us", "µs"),
            ("list50_ms", "ms"),
        ):
            ratio = fig[key] / fs[key]
            cells.append(f"{fig[key]:8.1f} {unit} {ratio:5.2f}x")
            flat[f"{name}_{key}"] = fig[key]
            flat[f"{name}_{key}_x_fs"] = ratio
        floor_us = fig["write_floor_us"]
        flat[f"{name}_save_x_floor"] = fig["save_us"] / floor_us
        print(
            f"  {name:<11} "
            + " ".join(f"{c:>18}" for c in cells)
            + f"   save {fig['save_us'] / floor_us:.2f}x the write floor taken before it"
        )
    return flat


# -- the run --------------------------------------------------------------------------


def run(base: Path, prompts: int, full: bool) -> dict[str, float]:
    fig: dict[str, float] = {}
    data = make_version("p0000000", "9.9.9").model_dump_json(indent=2).encode()
    small, large = base / "small", base / "large"
    build_store(small, 100, 1)
    fig["build_large_s"] = build_store(large, prompts, 1)
    fig["large_prompts"] = prompts

    quiesce()
    floors, s_small, s_large = [], [], []
    for r in range(5):  # interleaved, so drift on a shared machine hits all three alike
        floors.append(write_floor(base / f"floor{r}", data, 120))
        s_small.append(durable_saves(small, 100, 120, 10 + r))
        s_large.append(durable_saves(large, prompts, 120, 10 + r))
    # the ratio of each round, then their median: robust to the disk's slow phases
    fig["save_100_prompts_x_floor"] = statistics.median(
        a / b for a, b in zip(s_small, floors, strict=True)
    )
    fig["save_large_x_floor"] = statistics.median(
        a / b for a, b in zip(s_large, floors, strict=True)
    )
    fig["write_floor_us"] = statistics.median(floors) * 1e6
    fig["save_100_prompts_us"] = statistics.median(s_small) * 1e6
    fig["save_large_us"] = statistics.median(s_large) * 1e6
    quiesce()
    fig["nondurable_floor_per_s"] = nondurable_floor_per_s(base / "nd-floor", 100, 2000, data)
    fig["nondurable_saves_per_s"] = nondurable_saves_per_s(small, 100, 2000)
    fig["encode_per_s"] = encode_per_s(2000)
    quiesce()
    fig["bulk_floor_per_s"] = bulk_floor_per_s(base / "bulk-floor", 2000, 10, data)
    quiesce()
    fig["bulk_durable_versions_per_s"] = bulk_durable_per_s(base / "bulk", 2000, 10)
    fig["open_large_ms"] = open_ms(large)

    fig.update(reads(large, prompts))
    fig.update(list_fifty(base))
    quiesce()
    fig["writers_1_per_s"] = writers_per_s(base / "w1", 1, 400)
    fig["writers_8_per_s"] = writers_per_s(base / "w8", 8, 200)
    touched, rss = rss_after_touching(large)
    fig["rss_touched_versions"], fig["rss_mb"] = touched, rss
    quiesce()
    fig.update(newprompts.run(base / "newprompts", NEW_PROMPT_SIZES))
    fig.update(startup.run(base / "startup", 10_000))
    quiesce()
    fig["backends"] = backend_figures(base, data)  # type: ignore[assignment]
    if full:
        million = base / "million"
        fig["build_million_s"] = build_store(million, 100_000, 10)
        fig["open_million_ms"] = open_ms(million)
        touched, rss = rss_after_touching(million)
        fig["rss_million_touched"], fig["rss_million_mb"] = touched, rss
    return fig


def report(fig: dict[str, Any]) -> dict[str, float]:
    backends = fig.pop("backends")
    ratios = {
        "save_100_prompts_x_floor": fig.pop("save_100_prompts_x_floor"),
        "save_large_x_floor": fig.pop("save_large_x_floor"),
        "writers_8_x_1": fig["writers_8_per_s"] / fig["writers_1_per_s"],
    }
    rows = [
        ("raw write floor", f"{fig['write_floor_us']:.0f} µs", ""),
        (
            "save, 100 prompts",
            f"{fig['save_100_prompts_us']:.0f} µs",
            f"{ratios['save_100_prompts_x_floor']:.2f}x floor (target <= 1.3x)",
        ),
        (
            f"save, {int(fig['large_prompts']):,} prompts",
            f"{fig['save_large_us']:.0f} µs",
            f"{ratios['save_large_x_floor']:.2f}x floor (target <= 1.3x)",
        ),
        (
            "durable=False saves",
            f"{fig['nondurable_saves_per_s']:,.0f} /s",
            f"target >= 10,000/s; {fig['nondurable_floor_per_s']:,.0f} /s as bare system calls",
        ),
        (
            "  encode_version + seal alone",
            f"{fig['encode_per_s']:,.0f} /s",
            "the CPU floor of every save (serialize, read back, compare, sha256)",
        ),
        (
            "save_versions, durable",
            f"{fig['bulk_durable_versions_per_s']:,.0f} /s",
            f"target >= 20,000/s; {fig['bulk_floor_per_s']:,.0f} /s as bare system calls"
            " (same workload)",
        ),
        (
            f"open {int(fig['large_prompts']):,}-prompt store",
            f"{fig['open_large_ms']:.3f} ms",
            "target <= 10 ms",
        ),
        ("read floor (read + model_validate_json)", f"{fig['read_floor_us']:.1f} µs", ""),
        (
            "get_version uncached",
            f"{fig['get_uncached_us']:.1f} µs",
            f"{fig['get_uncached_x_read_floor']:.2f}x read floor (target <= 2x)",
        ),
        (
            "get_latest uncached",
            f"{fig['latest_uncached_us']:.1f} µs",
            f"{fig['latest_uncached_x_get_uncached']:.2f}x get uncached (target <= 1.5x)",
        ),
        (
            "get_latest, first touch",
            f"{fig['latest_cold_us']:.1f} µs",
            "a process's first read of a prompt lists its directory",
        ),
        (
            "get_version cached",
            f"{fig['get_cached_us']:.1f} µs",
            f"{fig['get_cached_x_read_floor']:.2f}x read floor (target <= 0.2x);"
            f" {fig['get_cached_x_hit_floor']:.2f}x copy + stat",
        ),
        (
            "  isolation floor (fresh_copy)",
            f"{fig['copy_floor_us']:.1f} µs",
            f"{fig['copy_floor_x_read_floor']:.2f}x read floor",
        ),
        (
            "  revalidation floor (one stat)",
            f"{fig['stat_floor_us']:.1f} µs",
            f"{fig['stat_floor_x_read_floor']:.2f}x read floor",
        ),
        (
            "get_latest cached",
            f"{fig['latest_cached_us']:.1f} µs",
            f"{fig['latest_cached_x_read_floor']:.2f}x read floor (target <= 0.3x)",
        ),
        (
            "list_versions, 50 versions, cached",
            f"{fig['list50_cached_ms']:.3f} ms",
            f"{fig['list50_x_cached_get']:.1f}x a cached get (targets <= 0.5 ms, <= 10x);"
            f" uncached {fig['list50_uncached_ms']:.3f} ms",
        ),
        (
            "  isolation floor (50 fresh_copy)",
            f"{fig['list50_copy_floor_ms']:.3f} ms",
            f"list is {fig['list50_x_copy_floor']:.2f}x it",
        ),
        (
            "RSS after touching",
            f"{fig['rss_mb']:.0f} MB",
            f"{int(fig['rss_touched_versions']):,} versions (target <= 150 MB at 1M)",
        ),
        ("1 writer process", f"{fig['writers_1_per_s']:,.0f} saves/s", ""),
        (
            "8 writer processes",
            f"{fig['writers_8_per_s']:,.0f} saves/s",
            f"{ratios['writers_8_x_1']:.2f}x one process (target >= 1.5x)",
        ),
    ]
    if "open_million_ms" in fig:
        rows.append(
            ("open 1M-version store", f"{fig['open_million_ms']:.3f} ms", "target <= 10 ms")
        )
        rows.append(
            (
                "RSS after touching 1M",
                f"{fig['rss_million_mb']:.0f} MB",
                f"{int(fig['rss_million_touched']):,} versions (target <= 150 MB)",
            )
        )
    width = max(len(r[0]) for r in rows)
    print(
        f"promptshelf filesystem benchmark: {os.cpu_count()} cores, Python {sys.version.split()[0]}"
    )
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value:>16}  {note}")
    newprompts.report(fig, NEW_PROMPT_SIZES)
    startup.report(fig)
    flat = report_backends(backends)
    return {k: round(v, 3) for k, v in {**fig, **ratios, **flat}.items()}


def keep(figures: dict[str, float], directory: Path) -> None:
    """Write the figures to ``last.json`` and print each beside the run before."""
    directory.mkdir(exist_ok=True)
    last, previous = directory / "last.json", directory / "previous.json"
    before: dict[str, float] = {}
    if last.exists():
        before = json.loads(last.read_text())
        last.replace(previous)
    last.write_text(json.dumps(figures, indent=1) + "\n")
    print(json.dumps(figures))
    if before:
        print(f"against the run before ({previous}):")
        for key, value in figures.items():
            old = before.get(key)
            if old:
                print(f"  {key:<44} {old:>12,.3f} -> {value:>12,.3f}  ({value / old - 1:+.0%})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100_000, help="prompts in the large store")
    parser.add_argument("--full", action="store_true", help="also build a 1,000,000-version store")
    parser.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="promptshelf-bench-", dir=args.dir))
    try:
        keep(report(run(base, args.prompts, args.full)), RESULTS)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
