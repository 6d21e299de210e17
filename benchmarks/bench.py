"""Filesystem backend benchmark: figures and ratios to floors taken in the same run.

Floors (what the hardware and Python cost before promptshelf does anything):

* write floor: write a temp file, fsync it, rename it, fsync the directory,
  with the same bytes a save writes;
* read floor: read the file, ``json.loads`` it, validate it into the model.

Usage::

    python benchmarks/bench.py            # default run, under 2 minutes
    python benchmarks/bench.py --full     # adds the 1,000,000-version store
    python benchmarks/bench.py --prompts 20000 --dir /path/on/the/disk/to/test

Prints a table, then one JSON line with every figure. Nothing here passes or
fails: the targets are printed beside the figures for a person to read.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from promptshelf import FileSystemStorage, Prompt, PromptAnalysis, PromptVersion
from promptshelf.storage.filesystem.index import RACY_NS

TEXT = ("You are a precise assistant. Summarize {{document}} in five bullet points. " * 27)[:2000]
ROUNDS = 3


def make_version(prompt_id: str, version: str) -> PromptVersion:
    return PromptVersion(
        prompt_id=prompt_id,
        version=version,
        prompt=Prompt(
            id=prompt_id,
            workflow_id="wf",
            node_id="n",
            node_type="llm",
            text=TEXT,
            variables=["document"],
            extracted_at=datetime(2026, 1, 1),
        ),
        analysis=PromptAnalysis(
            prompt_id=prompt_id,
            overall_score=70,
            clarity_score=70,
            efficiency_score=70,
            analyzed_at=datetime(2026, 1, 1),
        ),
        created_at=datetime(2026, 1, 1),
        metadata={"author": "bench"},
    )


def versions_for(prompts: int, per_prompt: int, major: int = 1) -> Iterator[PromptVersion]:
    for i in range(prompts):
        for minor in range(per_prompt):
            yield make_version(f"p{i:07d}", f"{major}.{minor}.0")


def per_op(fn: Callable[[int], None], count: int) -> float:
    """Median seconds per call of ``fn(i)`` over ``ROUNDS`` rounds of ``count`` calls."""
    results = []
    offset = 0
    for _ in range(ROUNDS):
        start = time.perf_counter()
        for i in range(count):
            fn(offset + i)
        results.append((time.perf_counter() - start) / count)
        offset += count
    return statistics.median(results)


def settle() -> None:
    """Let files age past the racy-timestamp window, as they do in real use."""
    time.sleep(RACY_NS / 1e9 * 2)


def quiesce() -> None:
    """Flush what earlier workloads left dirty, so it is not billed to the next one."""
    os.sync()
    time.sleep(0.5)


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


def read_floor(paths: list[Path]) -> float:
    def one(i: int) -> None:
        with open(paths[i % len(paths)], "rb") as handle:
            document = json.loads(handle.read())
            document.pop("sha256", None)  # the checksum key the store adds
            PromptVersion.model_validate(document)

    return per_op(one, min(len(paths), 2000))


# -- workloads ------------------------------------------------------------------------


def build_store(root: Path, prompts: int, per_prompt: int, sharded: bool = False) -> float:
    """Create a store quickly (non-durable bulk saves); returns seconds taken."""
    start = time.perf_counter()
    store = FileSystemStorage(root, durable=False, enable_sharding=sharded)
    batch: list[PromptVersion] = []
    for version in versions_for(prompts, per_prompt):
        batch.append(version)
        if len(batch) == 5000:
            store.save_versions(batch)
            batch.clear()
    store.save_versions(batch)
    os.sync()
    return time.perf_counter() - start


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


def open_ms(root: Path) -> float:
    return per_op(lambda i: FileSystemStorage(root), 20) * 1000


def reads(root: Path, prompts: int) -> dict[str, float]:
    settle()
    ids = [f"p{(i * 7919) % prompts:07d}" for i in range(min(prompts, 2000))]
    uncached = FileSystemStorage(root, use_cache=False)
    get_uncached = per_op(lambda i: uncached.get_version(ids[i % len(ids)], "1.0.0"), len(ids))
    # the version cache is off; the per-process index (directory listings) is warm
    latest_uncached = per_op(lambda i: uncached.get_latest_version(ids[i % len(ids)]), len(ids))
    cold = iter(range(10**9))

    def latest_cold(i: int) -> None:  # a fresh store each round: no listing known yet
        store = stores[next(cold) // len(ids)]
        store.get_latest_version(ids[i % len(ids)])

    stores = [FileSystemStorage(root, use_cache=False) for _ in range(ROUNDS)]
    latest_cold_us = per_op(latest_cold, len(ids))
    cached = FileSystemStorage(root)
    cached.get_version(ids[0], "1.0.0")
    get_cached = per_op(lambda i: cached.get_version(ids[0], "1.0.0"), 20000)
    latest_cached = per_op(lambda i: cached.get_latest_version(ids[0]), 20000)
    return {
        "get_uncached_us": get_uncached * 1e6,
        "latest_uncached_us": latest_uncached * 1e6,
        "latest_cold_us": latest_cold_us * 1e6,
        "get_cached_us": get_cached * 1e6,
        "latest_cached_us": latest_cached * 1e6,
    }


def list_fifty(root: Path) -> dict[str, float]:
    store = FileSystemStorage(root / "fifty", durable=False)
    store.save_versions(make_version("fifty", f"1.{i}.0") for i in range(50))
    settle()
    store.list_versions("fifty")
    cached = per_op(lambda i: store.list_versions("fifty"), 200)
    bare = FileSystemStorage(root / "fifty", use_cache=False)
    uncached = per_op(lambda i: bare.list_versions("fifty"), 50)
    return {"list50_cached_ms": cached * 1000, "list50_uncached_ms": uncached * 1000}


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
from bench import make_version
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


def backend_figures(base: Path) -> dict[str, dict[str, float]]:
    """save / get / latest / list on every backend, the same workload for each."""
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
            save = per_op(lambda i, s=store, f=fresh: s.save_version(f[i % len(f)]), 60)
            get = per_op(lambda i, s=store: s.get_version(f"p{i % 20:07d}", f"1.{i % 50}.0"), 2000)
            latest = per_op(lambda i, s=store: s.get_latest_version(f"p{i % 20:07d}"), 2000)
            listing = per_op(lambda i, s=store: s.list_versions(f"p{i % 20:07d}"), 40)
            results[name] = {
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


def report_backends(results: dict[str, dict[str, float]], floor_us: float) -> dict[str, float]:
    fs = results["filesystem"]
    print("backends (20 prompts x 50 versions; x fs = ratio to the filesystem backend):")
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
        flat[f"{name}_save_x_floor"] = fig["save_us"] / floor_us
        print(
            f"  {name:<11} "
            + " ".join(f"{c:>18}" for c in cells)
            + f"   save {fig['save_us'] / floor_us:.2f}x floor"
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
    fig["nondurable_saves_per_s"] = nondurable_saves_per_s(small, 100, 2000)
    quiesce()
    fig["bulk_durable_versions_per_s"] = bulk_durable_per_s(base / "bulk", 2000, 10)
    fig["open_large_ms"] = open_ms(large)

    paths = sorted((large).glob("p00*/1.0.0.json"))[:2000]
    fig["read_floor_us"] = read_floor(paths) * 1e6
    fig.update(reads(large, prompts))
    fig.update(list_fifty(base))
    quiesce()
    fig["writers_1_per_s"] = writers_per_s(base / "w1", 1, 400)
    fig["writers_8_per_s"] = writers_per_s(base / "w8", 8, 200)
    touched, rss = rss_after_touching(large)
    fig["rss_touched_versions"], fig["rss_mb"] = touched, rss
    quiesce()
    fig["backends"] = backend_figures(base)  # type: ignore[assignment]
    if full:
        million = base / "million"
        fig["build_million_s"] = build_store(million, 100_000, 10)
        fig["open_million_ms"] = open_ms(million)
        touched, rss = rss_after_touching(million)
        fig["rss_million_touched"], fig["rss_million_mb"] = touched, rss
    return fig


def report(fig: dict[str, Any]) -> None:
    backends = fig.pop("backends")
    ratios = {
        "save_100_prompts_x_floor": fig.pop("save_100_prompts_x_floor"),
        "save_large_x_floor": fig.pop("save_large_x_floor"),
        "get_uncached_x_floor": fig["get_uncached_us"] / fig["read_floor_us"],
        "latest_uncached_x_get_uncached": fig["latest_uncached_us"] / fig["get_uncached_us"],
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
        ("durable=False saves", f"{fig['nondurable_saves_per_s']:,.0f} /s", "target >= 10,000/s"),
        (
            "save_versions, durable",
            f"{fig['bulk_durable_versions_per_s']:,.0f} /s",
            "target >= 20,000/s",
        ),
        (
            f"open {int(fig['large_prompts']):,}-prompt store",
            f"{fig['open_large_ms']:.3f} ms",
            "target <= 10 ms",
        ),
        ("read floor", f"{fig['read_floor_us']:.1f} µs", ""),
        (
            "get_version uncached",
            f"{fig['get_uncached_us']:.1f} µs",
            f"{ratios['get_uncached_x_floor']:.2f}x floor (target <= 2x)",
        ),
        (
            "get_latest uncached",
            f"{fig['latest_uncached_us']:.1f} µs",
            f"{ratios['latest_uncached_x_get_uncached']:.2f}x get uncached (target <= 1.5x)",
        ),
        (
            "get_latest, first touch",
            f"{fig['latest_cold_us']:.1f} µs",
            "a process's first read of a prompt lists its directory",
        ),
        ("get_version cached", f"{fig['get_cached_us']:.1f} µs", "target <= 10 µs"),
        ("get_latest cached", f"{fig['latest_cached_us']:.1f} µs", ""),
        (
            "list_versions, 50 versions",
            f"{fig['list50_cached_ms']:.3f} ms",
            f"uncached {fig['list50_uncached_ms']:.3f} ms (target <= 0.5 ms)",
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
    flat = report_backends(backends, fig["write_floor_us"])
    figures = {**fig, **ratios, **flat}
    print(json.dumps({k: round(v, 3) for k, v in figures.items()}))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=100_000, help="prompts in the large store")
    parser.add_argument("--full", action="store_true", help="also build a 1,000,000-version store")
    parser.add_argument("--dir", help="where to build the stores (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="promptshelf-bench-", dir=args.dir))
    try:
        report(run(base, args.prompts, args.full))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
