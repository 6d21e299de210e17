"""Client benchmark: PromptClient's cached path, revalidation, Langfuse's SDK, staleness.

Everything runs against one real ``promptshelf serve`` (a subprocess on a free
loopback port, over a temporary file store), in one run, each figure beside the
floor measured in the same run:

* cached ``get`` (inside the freshness window) vs a dict-lookup floor: a plain
  function returning ``table[prompt_id, label]`` (the least a cache can do);
  also shown against the bare ``table[key]`` expression. Target: <= 3x the floor;
* a revalidation round trip (``get`` after the window: ``If-None-Match`` -> 304)
  vs the server's 304 floor: the same conditional request sent with a bare
  keep-alive ``httpx.Client``;
* the ``langfuse`` package's cached ``get_prompt`` against promptshelf's
  Langfuse-compatible route, vs our cached ``get``. Target: ours >= 5x faster;
* staleness: a label is moved at a random moment and each client is polled until
  it serves the new version; the worst delay is reported beside the configured
  bound (``ttl + stale_while_revalidate``) and Langfuse's ``cache_ttl_seconds``.

Usage::

    python benchmarks/client_bench.py            # about a minute
    python benchmarks/client_bench.py --quick    # fewer rounds

Prints a table, then one JSON line with every figure. Nothing passes or fails.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import statistics
import sys
import tempfile
import time
import timeit
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from promptshelf import FileSystemStorage, Prompt, PromptAnalysis, PromptVersion
from promptshelf.client import PromptClient
from promptshelf.server.auth import create_key

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "client"))
from serverproc import ServerProcess  # noqa: E402

PROMPTS = 20
TOKEN = ""  # an API key, created in the store before the server starts


def make_version(prompt_id: str, version: str, text: str) -> PromptVersion:
    return PromptVersion(
        prompt_id=prompt_id,
        version=version,
        prompt=Prompt(
            id=prompt_id, workflow_id="wf", node_id="n", node_type="llm", text=text, variables=[]
        ),
        analysis=PromptAnalysis(
            prompt_id=prompt_id, overall_score=70, clarity_score=70, efficiency_score=70
        ),
    )


def seed(root: Path) -> FileSystemStorage:
    store = FileSystemStorage(root, durable=False)
    for i in range(PROMPTS):
        pid = f"bench_{i:02d}"
        for minor in range(2):
            text = f"You are assistant {i}, revision {minor}. Answer briefly. " * 20
            store.save_version(make_version(pid, f"1.{minor}.0", text))
        store.set_label(pid, "production", "1.0.0")
    return store


def per_call(fn: Callable[[], Any], calls: int, rounds: int) -> float:
    """The least mean seconds per call over ``rounds`` (the run least disturbed by the
    other processes on the machine)."""
    return min(timeit.repeat(fn, number=calls, repeat=rounds)) / calls


def interleaved(fns: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, float]:
    """``per_call`` of each function, their rounds interleaved so load hits them alike."""
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(rounds):
        for name, fn in fns.items():
            best[name] = min(best[name], timeit.timeit(fn, number=calls) / calls)
    return best


def latencies(fn: Callable[[], Any], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cached_path(url: str, calls: int, rounds: int) -> dict[str, float]:
    with PromptClient(url, TOKEN, ttl=3600) as client:
        version = client.get("bench_00")
        table = {("bench_00", "production"): version}
        key = ("bench_00", "production")

        def floor(prompt_id: str, label: str = "production") -> PromptVersion:
            return table[prompt_id, label]

        got = interleaved(
            {
                "ours": lambda: client.get("bench_00"),
                "dict_fn": lambda: floor("bench_00"),
                "bare": lambda: table[key],
                "empty": lambda: None,
            },
            calls,
            rounds,
        )
        ours, dict_fn, bare, loop = got["ours"], got["dict_fn"], got["bare"], got["empty"]
    return {
        "cached_get_ns": ours * 1e9,
        "floor_dict_function_ns": dict_fn * 1e9,
        "floor_bare_dict_ns": bare * 1e9,
        "empty_lambda_ns": loop * 1e9,
        "ratio_to_dict_function": ours / dict_fn,
        "ratio_to_bare_dict": ours / bare,
    }


def revalidation(url: str, calls: int) -> dict[str, float]:
    with PromptClient(url, TOKEN, ttl=0, stale_while_revalidate=0) as client:
        client.get("bench_01")
        before = client.stats.not_modified
        ours = latencies(lambda: client.get("bench_01"), calls)
        assert client.stats.not_modified - before == calls, "every get should have been a 304"
        etag = client.get("bench_01").etag
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}) as raw:
        headers = {"If-None-Match": f'"{etag}"'}
        params = {"label": "production"}

        def bare() -> None:
            response = raw.get("/api/v1/prompts/bench_01", params=params, headers=headers)
            assert response.status_code == 304

        bare()
        floor = latencies(bare, calls)
    return {
        "revalidate_p50_us": pct(ours, 0.5) * 1e6,
        "revalidate_p99_us": pct(ours, 0.99) * 1e6,
        "floor_304_p50_us": pct(floor, 0.5) * 1e6,
        "floor_304_p99_us": pct(floor, 0.99) * 1e6,
        "ratio_p50": pct(ours, 0.5) / pct(floor, 0.5),
    }


def langfuse_side_by_side(url: str, calls: int, rounds: int) -> dict[str, float]:
    from langfuse import Langfuse

    logging.getLogger("langfuse").setLevel(logging.CRITICAL)
    lf = Langfuse(public_key="pk", secret_key=TOKEN, host=url, tracing_enabled=False)
    try:
        with PromptClient(url, TOKEN, ttl=3600) as client:
            first = lf.get_prompt("bench_02", label="production", cache_ttl_seconds=3600)
            assert (
                "revision 0" in first.prompt and "revision 0" in client.get("bench_02").prompt.text
            )
            got = interleaved(
                {
                    "theirs": lambda: lf.get_prompt(
                        "bench_02", label="production", cache_ttl_seconds=3600
                    ),
                    "ours": lambda: client.get("bench_02"),
                },
                calls // 10,
                rounds,
            )
    finally:
        lf.shutdown()
    return {
        "langfuse_cached_get_prompt_ns": got["theirs"] * 1e9,
        "promptshelf_cached_get_ns": got["ours"] * 1e9,
        "speedup": got["theirs"] / got["ours"],
    }


def staleness(
    url: str, store: FileSystemStorage, trials: int, ttl: float, swr: float
) -> dict[str, float]:
    """Move a label at a random phase of the window; how long until the client serves it."""
    delays = []
    with PromptClient(url, TOKEN, ttl=ttl, stale_while_revalidate=swr) as client:
        for trial in range(trials):
            pid = f"bench_{3 + trial % (PROMPTS - 3):02d}"
            store.set_label(pid, "production", "1.0.0")
            client.invalidate(pid)
            assert client.get(pid).version == "1.0.0"
            time.sleep(random.uniform(0, ttl + swr))  # a random phase of the window
            store.set_label(pid, "production", "1.1.0")
            moved = time.monotonic()
            while client.get(pid).version != "1.1.0":
                time.sleep(0.0005)
            delays.append(time.monotonic() - moved)
    return {
        "bound_s": ttl + swr,
        "ttl_s": ttl,
        "swr_s": swr,
        "max_s": max(delays),
        "p50_s": statistics.median(delays),
        "trials": trials,
    }


def langfuse_staleness(url: str, store: FileSystemStorage, trials: int, ttl: int) -> dict[str, Any]:
    from langfuse import Langfuse

    logging.getLogger("langfuse").setLevel(logging.CRITICAL)
    lf = Langfuse(public_key="pk", secret_key=TOKEN, host=url, tracing_enabled=False)
    delays = []
    try:
        for trial in range(trials):
            pid = f"bench_{3 + trial % (PROMPTS - 3):02d}"
            store.set_label(pid, "production", "1.0.0")
            lf.clear_prompt_cache()

            def text(pid: str = pid) -> str:
                found = lf.get_prompt(pid, label="production", cache_ttl_seconds=ttl)
                return str(found.prompt)

            assert "revision 0" in text()
            time.sleep(random.uniform(0, ttl))
            store.set_label(pid, "production", "1.1.0")
            moved = time.monotonic()
            while "revision 1" not in text():
                time.sleep(0.0005)
            delays.append(time.monotonic() - moved)
    finally:
        lf.shutdown()
    return {"cache_ttl_s": ttl, "max_s": max(delays), "p50_s": statistics.median(delays)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls and trials")
    args = parser.parse_args()
    calls, rounds, trials = (20_000, 5, 4) if args.quick else (50_000, 15, 10)
    warnings.simplefilter("ignore")
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="promptshelf-client-bench-") as tmp:
        store = seed(Path(tmp) / "store")
        global TOKEN
        _, TOKEN = create_key(store, "bench", ["admin"])
        server = ServerProcess(store.storage_dir)
        os.environ.setdefault("PROMPTSHELF_ACCESS_LOG", "0")
        server.start()
        try:
            results["cached"] = cached_path(server.url, calls, rounds)
            results["revalidation"] = revalidation(server.url, 500 if args.quick else 2000)
            results["langfuse"] = langfuse_side_by_side(server.url, calls, rounds)
            results["staleness"] = staleness(server.url, store, trials, ttl=0.5, swr=0.5)
            results["staleness_no_swr"] = staleness(server.url, store, trials, ttl=1.0, swr=0.0)
            results["langfuse_staleness"] = langfuse_staleness(server.url, store, trials, ttl=1)
        finally:
            server.stop()
            store.close()
    c, r, lf = results["cached"], results["revalidation"], results["langfuse"]
    s, s0, ls = results["staleness"], results["staleness_no_swr"], results["langfuse_staleness"]
    print(f"{'figure':<52}{'value':>14}  target / floor")
    print(f"{'cached get (in the window)':<52}{c['cached_get_ns']:>11.0f} ns")
    print(
        f"{'  floor: def f(id, label): return table[id, label]':<52}"
        f"{c['floor_dict_function_ns']:>11.0f} ns  ratio {c['ratio_to_dict_function']:.2f}x"
        " (target <= 3x)"
    )
    print(
        f"{'  floor: bare table[key]':<52}{c['floor_bare_dict_ns']:>11.0f} ns  "
        f"ratio {c['ratio_to_bare_dict']:.2f}x"
    )
    print(
        f"{'revalidation round trip (304), p50 / p99':<52}"
        f"{r['revalidate_p50_us']:>8.0f} / {r['revalidate_p99_us']:.0f} us"
    )
    print(
        f"{'  floor: bare httpx If-None-Match -> 304, p50 / p99':<52}"
        f"{r['floor_304_p50_us']:>8.0f} / {r['floor_304_p99_us']:.0f} us  "
        f"ratio p50 {r['ratio_p50']:.2f}x"
    )
    print(f"{'langfuse get_prompt, cached':<52}{lf['langfuse_cached_get_prompt_ns']:>11.0f} ns")
    print(
        f"{'promptshelf get, cached':<52}{lf['promptshelf_cached_get_ns']:>11.0f} ns  "
        f"ours {lf['speedup']:.1f}x faster (target >= 5x)"
    )
    print(
        f"{'label move seen, ttl 0.5 + swr 0.5: max / p50':<52}"
        f"{s['max_s']:>8.3f} / {s['p50_s']:.3f} s  bound {s['bound_s']:.1f} s"
    )
    print(
        f"{'label move seen, ttl 1.0 + swr 0: max / p50':<52}"
        f"{s0['max_s']:>8.3f} / {s0['p50_s']:.3f} s  bound {s0['bound_s']:.1f} s"
    )
    print(
        f"{'langfuse, cache_ttl_seconds=1: max / p50':<52}{ls['max_s']:>8.3f} / {ls['p50_s']:.3f} s"
    )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
