"""Prometheus metrics, in the text exposition format, with no dependency.

Kept per process: with ``--workers N`` each scrape answers for the worker that
took it (its ``pid`` is in ``promptshelf_worker_info``); scrape each worker, or
sum what they report. Observing a request is a dict lookup and a few integer
increments on the event loop's thread, so the hot path barely notices it.
"""

from __future__ import annotations

import bisect
import os
import time
from typing import Any

#: Latency buckets in seconds: a warm GET sits in the first ones, a durable write further up.
BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self) -> None:
        self.counts = [0] * (len(BUCKETS) + 1)
        self.count = 0
        self.total = 0.0


class Metrics:
    def __init__(self) -> None:
        self.started = time.time()
        self._latency: dict[tuple[str, str], _Histogram] = {}
        self._requests: dict[tuple[str, str, int], int] = {}
        self._errors: dict[tuple[str, int, str], int] = {}
        self.not_modified = 0
        self.body_cache_hits = 0
        self.body_cache_misses = 0

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

    def error(self, route: str, status: int, error_code: str) -> None:
        key = (route, status, error_code)
        self._errors[key] = self._errors.get(key, 0) + 1

    def render(self, stats: dict[str, Any]) -> str:
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> None:
            out.append(f"# HELP {name} {help_text}")
            out.append(f"# TYPE {name} {kind}")

        family("promptshelf_http_request_duration_seconds", "histogram", "Request latency by route")
        for (method, route), hist in sorted(self._latency.items()):
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
        for (method, route, status), count in sorted(self._requests.items()):
            out.append(
                f'promptshelf_http_requests_total{{method="{method}",route="{_esc(route)}",'
                f'status="{status}"}} {count}'
            )
        family("promptshelf_http_errors_total", "counter", "Error answers by route, status, code")
        for (route, status, code), count in sorted(self._errors.items()):
            out.append(
                f'promptshelf_http_errors_total{{route="{_esc(route)}",status="{status}",'
                f'error_code="{_esc(code)}"}} {count}'
            )
        family("promptshelf_http_not_modified_total", "counter", "304 answers (revalidations)")
        out.append(f"promptshelf_http_not_modified_total {self.not_modified}")
        cache = stats.get("cache_stats") or {}
        hits = int(cache.get("hits", 0)) + self.body_cache_hits
        misses = int(cache.get("misses", 0)) + self.body_cache_misses
        family("promptshelf_cache_hits_total", "counter", "Version reads served from a cache")
        out.append(f"promptshelf_cache_hits_total {hits}")
        family("promptshelf_cache_misses_total", "counter", "Version reads that missed the cache")
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
        family("promptshelf_worker_info", "gauge", "This worker process")
        backend = _esc(str(stats.get("backend", "")))
        out.append(f'promptshelf_worker_info{{pid="{os.getpid()}",backend="{backend}"}} 1')
        family("process_resident_memory_bytes", "gauge", "Resident memory of this worker")
        out.append(f"process_resident_memory_bytes {resident_bytes()}")
        family("process_start_time_seconds", "gauge", "When this worker started")
        out.append(f"process_start_time_seconds {self.started}")
        return "\n".join(out) + "\n"


def resident_bytes() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _esc(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
