"""Prometheus metrics, in the text exposition format, with no dependency; one view of every
worker process.

Each worker counts its own requests: observing one is a dict lookup and a few
integer increments on the event loop's thread, so the hot path barely notices.
With ``--workers N`` the supervisor gives the workers a shared directory
(``$PROMPTSHELF_METRICS_DIR``); each worker writes a snapshot of its counters
there (``<pid>.json``, replaced atomically) at most every ``flush_every``
seconds while it has news, and whichever worker answers ``/metrics`` writes its
own first, then sums every snapshot. So a scrape sees every request that
finished more than ``flush_every`` seconds before it, whichever worker took it
(``prometheus_client``'s multiprocess mode would instead write an mmap'd file on
every observation). The counters of a worker that exited stay in the sum
(counters never go back); its memory and start time are no longer reported.
Store-wide gauges (prompts, versions, bytes stored) come from the store.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Latency buckets in seconds: a warm GET sits in the first ones, a durable write further up.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)
#: Where the workers of one ``promptshelf serve --workers N`` share their snapshots.
SHARED_DIR_ENV = "PROMPTSHELF_METRICS_DIR"


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


class Metrics:
    def __init__(self, shared_dir: str | None = None, flush_every: float = 0.5) -> None:
        self.started = time.time()
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._requests: dict[tuple[str, str, int], int] = {}
        self._errors: dict[tuple[str, int, str], int] = {}
        self.not_modified = 0
        #: ``(hits, misses)`` of the server's caches, asked for when a snapshot is taken.
        self.cache_counts: Callable[[], tuple[int, int]] = lambda: (0, 0)
        self.shared_dir = shared_dir
        self.flush_every = flush_every
        self._flush_pending = False

    @classmethod
    def from_env(cls) -> Metrics:
        return cls(shared_dir=os.environ.get(SHARED_DIR_ENV) or None)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route)
        hist = self._latency.get(key)
        if hist is None:
            hist = self._latency[key] = _Histogram()
        hist.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        hist.count += 1
        hist.total += seconds
        rkey = (method, route, status)
        self._requests[rkey] = self._requests.get(rkey, 0) + 1
        if status == 304:
            self.not_modified += 1
        if self.shared_dir is not None and not self._flush_pending:
            self._schedule_flush()

    def error(self, route: str, status: int, error_code: str) -> None:
        key = (route, status, error_code)
        self._errors[key] = self._errors.get(key, 0) + 1

    # -- sharing between workers ------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        """This worker's counters, as JSON."""
        hits, misses = self.cache_counts()
        return {
            "pid": os.getpid(),
            "started": self.started,
            "rss": resident_bytes(),
            "latency": [
                [method, route, h.counts, h.count, h.total]
                for (method, route), h in self._latency.items()
            ],
            "requests": [[m, r, s, n] for (m, r, s), n in self._requests.items()],
            "errors": [[r, s, c, n] for (r, s, c), n in self._errors.items()],
            "not_modified": self.not_modified,
            "cache_hits": hits,
            "cache_misses": misses,
        }

    def _schedule_flush(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.flush()
            return
        self._flush_pending = True
        loop.call_later(self.flush_every, self.flush)

    def flush(self) -> None:
        """Write this worker's snapshot to the shared directory (atomically: temp, rename)."""
        self._flush_pending = False
        if self.shared_dir is None:
            return
        data = json.dumps(self.snapshot()).encode("utf-8")
        try:
            fd, temp = tempfile.mkstemp(dir=self.shared_dir, prefix=".tmp-")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(temp, os.path.join(self.shared_dir, f"{os.getpid()}.json"))
        except OSError:  # the supervisor removed the directory: it is shutting down
            pass

    def _snapshots(self) -> list[dict[str, Any]]:
        """Every worker's latest snapshot, this one's taken now."""
        own = self.snapshot()
        if self.shared_dir is None:
            return [own]
        self.flush()
        found = [own]
        for path in Path(self.shared_dir).glob("*.json"):
            if path.stem == str(own["pid"]):
                continue
            with contextlib.suppress(OSError, ValueError):
                found.append(json.loads(path.read_bytes()))
        return found

    # -- the exposition -----------------------------------------------------------------------

    def render(self, stats: dict[str, Any]) -> str:
        """Every worker's counters summed (see the module's docstring), and the store's gauges
        from ``stats`` (:meth:`~promptshelf.storage.base.VersionStorage.get_storage_stats`)."""
        snapshots = self._snapshots()
        latency: dict[tuple[str, str], _Histogram] = {}
        requests: dict[tuple[str, str, int], int] = {}
        errors: dict[tuple[str, int, str], int] = {}
        for snap in snapshots:
            for method, route, counts, count, total in snap["latency"]:
                hist = latency.setdefault((method, route), _Histogram())
                hist.counts = [a + b for a, b in zip(hist.counts, counts, strict=True)]
                hist.count += count
                hist.total += total
            for method, route, status, n in snap["requests"]:
                requests[(method, route, status)] = requests.get((method, route, status), 0) + n
            for route, status, code, n in snap["errors"]:
                errors[(route, status, code)] = errors.get((route, status, code), 0) + n
        not_modified = sum(int(s["not_modified"]) for s in snapshots)
        hits = sum(int(s["cache_hits"]) for s in snapshots)
        misses = sum(int(s["cache_misses"]) for s in snapshots)
        live = [s for s in snapshots if _alive(int(s["pid"]))]

        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("promptshelf_http_request_duration_seconds", "histogram", "Request latency by route")
        for (method, route), hist in sorted(latency.items()):
            labels = f'method="{method}",route="{_esc(route)}"'
            running = 0
            for bound, count in zip(BUCKETS, hist.counts, strict=False):
                running += count
                out.append(
                    f'promptshelf_http_request_duration_seconds_bucket{{{labels},le="{bound}"}} '
                    f"{running}"
                )
            out.append(
                f'promptshelf_http_request_duration_seconds_bucket{{{labels},le="+Inf"}} '
                f"{hist.count}"
            )
            out.append(f"promptshelf_http_request_duration_seconds_sum{{{labels}}} {hist.total}")
            out.append(f"promptshelf_http_request_duration_seconds_count{{{labels}}} {hist.count}")
        family("promptshelf_http_requests_total", "counter", "Requests by route and status")
        for (method, route, status), count in sorted(requests.items()):
            out.append(
                f'promptshelf_http_requests_total{{method="{method}",route="{_esc(route)}",'
                f'status="{status}"}} {count}'
            )
        family("promptshelf_http_errors_total", "counter", "Error answers by route, status, code")
        for (route, status, code), count in sorted(errors.items()):
            out.append(
                f'promptshelf_http_errors_total{{route="{_esc(route)}",status="{status}",'
                f'error_code="{_esc(code)}"}} {count}'
            )
        family("promptshelf_http_not_modified_total", "counter", "304 answers (revalidations)")
        out.append(f"promptshelf_http_not_modified_total {not_modified}")
        family(
            "promptshelf_cache_hits_total", "counter", "Version answers from the server's caches"
        )
        out.append(f"promptshelf_cache_hits_total {hits}")
        family("promptshelf_cache_misses_total", "counter", "Version answers read from the store")
        out.append(f"promptshelf_cache_misses_total {misses}")
        family("promptshelf_cache_hit_ratio", "gauge", "hits / (hits + misses)")
        out.append(f"promptshelf_cache_hit_ratio {hits / (hits + misses) if hits + misses else 0}")
        for name, key, help_text in (
            ("promptshelf_prompts_stored", "total_prompts", "Prompts in the store"),
            ("promptshelf_versions_stored", "total_versions", "Versions in the store"),
            ("promptshelf_bytes_stored", "total_size_bytes", "Bytes of stored versions"),
        ):
            if isinstance(stats.get(key), (int, float)):
                family(name, "gauge", help_text)
                out.append(f"{name} {stats[key]}")
        backend = _esc(str(stats.get("backend", "")))
        family("promptshelf_worker_info", "gauge", "The server's live worker processes")
        for snap in sorted(live, key=lambda s: int(s["pid"])):
            out.append(f'promptshelf_worker_info{{pid="{snap["pid"]}",backend="{backend}"}} 1')
        family("process_resident_memory_bytes", "gauge", "Resident memory of each live worker")
        for snap in sorted(live, key=lambda s: int(s["pid"])):
            out.append(f'process_resident_memory_bytes{{pid="{snap["pid"]}"}} {snap["rss"]}')
        family("process_start_time_seconds", "gauge", "When each live worker started")
        for snap in sorted(live, key=lambda s: int(s["pid"])):
            out.append(f'process_start_time_seconds{{pid="{snap["pid"]}"}} {snap["started"]}')
        return "\n".join(out) + "\n"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
