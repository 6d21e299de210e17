"""Server benchmark: requests/s and p50/p99 with 50 concurrent clients, against a floor.

Everything is measured in one run on this machine, with ``wrk`` (Debian's ``wrk``
package; ``make bench-server`` installs it when missing) as the load generator:

* floor: a bare ASGI endpoint (``benchmarks/floor.py``) under the same uvicorn
  settings (httptools, uvloop, the same socket and worker count) returning the
  same bytes; for writes, the same endpoint after one durable write (temp file,
  fsync, rename, fsync the directory) on a worker thread;
* promptshelf on a file store of 10,000 prompts: GET by label warm (one prompt),
  cold (every request another prompt: mostly first reads, past the store's
  caches), revalidation (If-None-Match -> 304), create a version, move a label;
  with an API key and the structured access log on (the default);
* the uvicorn pitfall (issue #3149): the floor under stock ``uvicorn --workers 2``,
  whose connections keep Nagle on;
* memory: resident size of the server's workers after all that, 10,000 prompts;
* CPU per request: user + system time of the server's processes over a case,
  divided by its requests (``cpu us``); a shared machine's load disturbs it less
  than latency, and it shows what the server itself costs beside the floor.

Usage::

    python benchmarks/server_bench.py                 # about 4 minutes
    python benchmarks/server_bench.py --seconds 2 --rounds 1 --prompts 2000 --workers 2

Prints a table, then one JSON line with every figure. Nothing passes or fails:
the targets (issue 12) are printed beside the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import make_version

from promptshelf import FileSystemStorage, PromptVersion
from promptshelf.server.auth import create_key

HERE = Path(__file__).resolve().parent
TEXT = ("You are a precise assistant. Summarize {{document}} in five bullet points. " * 8)[:600]
MLFLOW_RPS = (118, 133)  # issue 12's anchor: MLflow 3.17 alias lookup, 50 clients, this machine
MLFLOW_P50_MS = 400.0

ROTATE_GET = """
local i = 0
local n = tonumber(os.getenv("BENCH_N"))
local counter = 0
function setup(thread) thread:set("offset", counter * 7919); counter = counter + 1 end
request = function()
  i = i + 1
  return wrk.format("GET", string.format(os.getenv("BENCH_PATH"), (i + offset) % n))
end
"""

ROTATE_WRITE = """
local i = 0
local n = tonumber(os.getenv("BENCH_N"))
local counter = 0
function setup(thread) thread:set("offset", counter * 7919); counter = counter + 1 end
request = function()
  i = i + 1
  return wrk.format(os.getenv("BENCH_METHOD"), string.format(os.getenv("BENCH_PATH"),
    (i + offset) % n), {["Content-Type"] = "application/json",
    ["Authorization"] = os.getenv("BENCH_AUTH")}, os.getenv("BENCH_BODY"))
end
"""

CREATE_BODY = json.dumps(
    {
        "prompt": {"workflow_id": "wf", "node_id": "n", "node_type": "llm", "text": TEXT},
        "analysis": {"overall_score": 70, "clarity_score": 70, "efficiency_score": 70},
    }
)


def version(prompt_id: str, number: str = "1.0.0") -> PromptVersion:
    return make_version(prompt_id, number, text=TEXT)


def build_store(path: Path, prompts: int) -> str:
    """``prompts`` prompts, one version each, labelled production; returns an admin key."""
    store = FileSystemStorage(path, durable=False)
    store.save_versions(version(f"p{i:05d}") for i in range(prompts))
    for i in range(prompts):
        store.set_label(f"p{i:05d}", "production", "1.0.0", actor="bench")
    _, token = create_key(store, "bench", ["admin"])
    store.close()
    return token


def wait_ready(url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Running:
    def __init__(self, args: list[str], url: str, env: dict[str, str], log: Path) -> None:
        self.log = log.open("wb")
        self.process = subprocess.Popen(
            args, stdout=self.log, stderr=self.log, env=env, start_new_session=True
        )
        self.url = url
        wait_ready(url + "/healthz", self.process)

    def rss_mb(self) -> list[float]:
        """Resident MB of the process tree's Python processes (workers, not the supervisor)."""
        pids = [self.process.pid, *_children(self.process.pid)]
        sizes = [_rss_kb(p) / 1024 for p in pids]
        return [round(s, 1) for s in (sizes[1:] if len(sizes) > 1 else sizes)]

    def cpu_seconds(self) -> float:
        """User + system CPU time of the process tree so far."""
        ticks = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in [self.process.pid, *_children(self.process.pid)]:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except (OSError, IndexError, ValueError):
                pass
        return total / ticks

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        self.log.close()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        return found
    return found + [g for c in found for g in _children(c)]


def _rss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def floor(port: int, workers: int, body_file: Path, workdir: Path, *, stock: bool) -> Running:
    env = {**os.environ, "FLOOR_BODY_FILE": str(body_file), "FLOOR_WRITE_DIR": str(workdir)}
    if stock:  # uvicorn binds the socket itself: issue #3149
        args = [
            sys.executable, "-m", "uvicorn", "floor:app", "--app-dir", str(HERE),
            "--port", str(port), "--workers", str(workers), "--no-access-log",
            "--http", "httptools", "--loop", "uvloop", "--log-level", "warning",
        ]  # fmt: skip
    else:
        code = (
            f"import sys; sys.path.insert(0, {str(HERE)!r}); "
            "from promptshelf.server.run import bind_socket, serve; "
            f"serve('unused', bind_socket('127.0.0.1', {port}), workers={workers}, "
            "access_log=False, app='floor:app', factory=False, log_level='warning')"
        )
        args = [sys.executable, "-c", code]
    return Running(args, f"http://127.0.0.1:{port}", env, workdir / f"floor-{port}.log")


def promptshelf(port: int, workers: int, store: Path, workdir: Path, access_log: bool) -> Running:
    args = [
        sys.executable, "-m", "promptshelf", "serve", "--store", str(store),
        "--port", str(port), "--workers", str(workers),
        "--access-log" if access_log else "--no-access-log",
    ]  # fmt: skip
    return Running(args, f"http://127.0.0.1:{port}", dict(os.environ), workdir / f"ps-{port}.log")


def wrk(
    url: str,
    seconds: float,
    connections: int,
    headers: dict[str, str],
    script: str | None = None,
    env: dict[str, str] | None = None,
    workdir: Path | None = None,
) -> dict[str, float]:
    args = ["wrk", "-t2", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency"]
    for name, value in headers.items():
        args += ["-H", f"{name}: {value}"]
    if script is not None:
        assert workdir is not None
        lua = workdir / f"script-{abs(hash(script))}.lua"
        lua.write_text(script)
        args += ["-s", str(lua)]
    done = subprocess.run(
        [*args, url], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    out = done.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": round(rps, 1),
        "p50_ms": _ms(re.search(r"\s50%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "p99_ms": _ms(re.search(r"\s99%\s+([\d.]+\w+)", out).group(1)),  # type: ignore[union-attr]
        "errors": int(non2xx.group(1)) if non2xx else 0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return round(float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit], 3)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk (make bench-server does)")
    workdir = Path(tempfile.mkdtemp(prefix="ps-server-bench-"))
    results: dict[str, Any] = {
        "prompts": args.prompts,
        "connections": args.connections,
        "rounds": args.rounds,
        "seconds": args.seconds,
    }
    try:
        store = workdir / "store"
        started = time.perf_counter()
        token = build_store(store, args.prompts)
        results["store_build_s"] = round(time.perf_counter() - started, 1)
        auth = {"Authorization": f"Bearer {token}"}
        os.environ["BENCH_AUTH"] = auth["Authorization"]  # wrk.format's own headers
        with FileSystemStorage(store) as s:
            got = s.get_version("p00000", "1.0.0")
            assert got is not None
            body = got.model_dump_json(indent=2).encode()
        body_file = workdir / "body.json"
        body_file.write_bytes(body)
        for workers in args.workers:
            results[f"workers_{workers}"] = run_workers(args, workers, store, body_file, auth)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return results


def run_workers(
    args: argparse.Namespace, workers: int, store: Path, body_file: Path, auth: dict[str, str]
) -> dict[str, Any]:
    """Every case ``rounds`` times, floor and promptshelf alternating, so that a machine
    whose load drifts (it is shared) weighs on both alike; the medians are reported."""
    workdir = body_file.parent
    secs, conns = args.seconds, args.connections
    servers = {"floor": floor(free_port(), workers, body_file, workdir, stock=False)}
    if workers > 1:
        servers["stock"] = floor(free_port(), workers, body_file, workdir, stock=True)
    servers["ps"] = promptshelf(free_port(), workers, store, workdir, args.access_log)
    ps = servers["ps"]
    res: dict[str, Any] = {"rss_mb_started": ps.rss_mb()}
    label_url = ps.url + "/api/v1/prompts/p00000?label=production"
    etag = httpx.get(label_url, headers=auth).headers["etag"]
    cold_env = {
        "BENCH_N": str(args.prompts),
        "BENCH_PATH": "/api/v1/prompts/p%05d?label=production",
    }
    move_env = {
        "BENCH_N": str(args.prompts),
        "BENCH_METHOD": "PUT",
        "BENCH_PATH": "/api/v1/prompts/p%05d/labels/staging",
        "BENCH_BODY": json.dumps({"version": "latest"}),
    }
    cases: list[tuple[str, Any]] = [
        ("floor_get", lambda: wrk(servers["floor"].url + "/", secs, conns, {})),
        ("get_label_warm", lambda: wrk(label_url, secs, conns, auth)),
        ("get_label_304", lambda: wrk(label_url, secs, conns, {**auth, "If-None-Match": etag})),
        ("get_label_cold", lambda: wrk(ps.url, secs, conns, auth, ROTATE_GET, cold_env, workdir)),
        (
            "floor_write",
            lambda: wrk(
                servers["floor"].url, secs, conns, {}, ROTATE_WRITE, _write_env("PUT"), workdir
            ),
        ),
        (
            "create_version",
            lambda: wrk(ps.url, secs, conns, auth, ROTATE_WRITE, _write_env("POST"), workdir),
        ),
        ("move_label", lambda: wrk(ps.url, secs, conns, auth, ROTATE_WRITE, move_env, workdir)),
    ]
    if "stock" in servers:
        cases.insert(
            1, ("stock_uvicorn_floor_get", lambda: wrk(servers["stock"].url + "/", secs, conns, {}))
        )
    try:
        for server in servers.values():  # warm-up: imports, first connections
            wrk(server.url + "/healthz", 1, conns, auth)
        runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in cases}
        for _ in range(args.rounds):
            for name, measure in cases:
                server = servers["floor" if name.startswith("floor") else
                                 "stock" if name.startswith("stock") else "ps"]  # fmt: skip
                before = server.cpu_seconds()
                figures = measure()
                done = figures["rps"] * max(1, round(secs))
                figures["cpu_us"] = round((server.cpu_seconds() - before) / done * 1e6, 1)
                runs[name].append(figures)
        for name, figures in runs.items():
            res[name] = {key: statistics.median(f[key] for f in figures) for key in figures[0]}
        res["rss_mb_end"] = ps.rss_mb()
    finally:
        for server in servers.values():
            server.stop()
    return res


def _write_env(method: str) -> dict[str, str]:
    return {
        "BENCH_N": "1000",
        "BENCH_METHOD": method,
        "BENCH_PATH": "/api/v1/prompts/c%04d/versions",
        "BENCH_BODY": CREATE_BODY,
    }


def report(results: dict[str, Any]) -> None:
    print(f"promptshelf server, {results['connections']} connections, file store of "
          f"{results['prompts']:,} prompts (wrk; medians of {results['rounds']} rounds of "
          f"{results['seconds']:g} s, floor and server alternating; p50/p99 in ms)")  # fmt: skip
    targets = {
        "get_label_warm": ("floor_get", 1.5),
        "get_label_cold": ("floor_get", 1.5),
        "get_label_304": ("floor_get", 1.2),
        "create_version": ("floor_write", 1.3),
        "move_label": ("floor_write", 1.3),
    }
    for key, res in results.items():
        if not key.startswith("workers_"):
            continue
        print(f"\n{key.replace('_', ' ')}:")
        print(f"  {'case':<26}{'req/s':>9}{'p50':>9}{'p99':>9}{'p50 x':>8}{'p99 x':>8}"
              f"{'cpu us':>8}{'cpu x':>7}  target")  # fmt: skip
        for case, fig in res.items():
            if not isinstance(fig, dict):
                continue
            base_key, target = targets.get(case, (None, None))
            base = res.get(base_key) if base_key else None
            r50 = f"{fig['p50_ms'] / base['p50_ms']:.2f}" if base else ""
            r99 = f"{fig['p99_ms'] / base['p99_ms']:.2f}" if base else ""
            rcpu = f"{fig['cpu_us'] / base['cpu_us']:.2f}" if base and base["cpu_us"] else ""
            goal = f"<= {target}x" if target else ""
            errs = f"  ({fig['errors']} non-2xx)" if fig.get("errors") else ""
            print(
                f"  {case:<26}{fig['rps']:>9.0f}{fig['p50_ms']:>9.2f}{fig['p99_ms']:>9.2f}"
                f"{r50:>8}{r99:>8}{fig['cpu_us']:>8.0f}{rcpu:>7}  {goal}{errs}"
            )
        warm = res["get_label_warm"]["rps"]
        print(f"  memory (MB per worker process): started {res['rss_mb_started']}, after "
              f"reading every prompt and the writes {res['rss_mb_end']}")  # fmt: skip
        print(f"  vs MLflow's alias lookup ({MLFLOW_RPS[0]}-{MLFLOW_RPS[1]} req/s, p50 "
              f"{MLFLOW_P50_MS:.0f} ms): {warm / MLFLOW_RPS[1]:.0f}-{warm / MLFLOW_RPS[0]:.0f}x "
              "the rate (target >= 15x)")  # fmt: skip
    print()
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--workers", type=lambda s: [int(x) for x in s.split(",")], default=[1, 2])
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    report(run(parser.parse_args()))


if __name__ == "__main__":
    main()
