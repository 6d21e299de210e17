"""Real servers for the API tests: ``promptshelf serve`` in a subprocess on 127.0.0.1.

Each test module gets one server per backend (filesystem, SQLite, PostgreSQL),
started through the real command line on a free port (``--port 0``; the port is
read from the line the command prints) and stopped when the module ends. Tests
share it, so each one works on prompt ids of its own (:func:`fresh_id`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg
import pytest

SERVER_BACKENDS = ("filesystem", "sqlite", "postgres")
START_TIMEOUT = 60.0


def cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The real ``promptshelf`` entry point."""
    return subprocess.run(
        [sys.executable, "-m", "promptshelf", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    url: str
    log: Path
    store: str
    keys: dict[str, str] = field(default_factory=dict)

    def client(self, scope: str | None = "admin", **kwargs: object) -> httpx.Client:
        headers = {} if scope is None else {"authorization": f"Bearer {self.keys[scope]}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30.0, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def access_log(self) -> list[dict[str, object]]:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]


def start_server(store: str, workdir: Path, *extra: str) -> Server:
    """Start ``promptshelf serve`` and wait until ``/healthz`` answers."""
    log = workdir / f"server-{uuid.uuid4().hex[:8]}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "promptshelf", "serve", "--store", store, "--port", "0", *extra],
            stdout=out,
            stderr=out,
            cwd=workdir,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    deadline = time.monotonic() + START_TIMEOUT
    url = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        text = log.read_text(encoding="utf-8", errors="replace")
        if url is None and " at http://" in text:
            url = text.split(" at http://", 1)[1].split(" ", 1)[0]
            url = f"http://{url}"
        if url is not None:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    return Server(process, url, log, store)
            except httpx.HTTPError:
                pass
        time.sleep(0.05)
    process.kill()
    raise RuntimeError(f"server did not start in {START_TIMEOUT} s: {log.read_text()}")


def create_key(store: str, workdir: Path, name: str, scope: str) -> str:
    done = cli("keys", "create", name, "--scope", scope, "--json", "--store", store, cwd=workdir)
    assert done.returncode == 0, done.stderr
    token: str = json.loads(done.stdout)["token"]
    return token


def store_target(
    backend: str, workdir: Path, request: pytest.FixtureRequest
) -> tuple[str, str | None]:
    """A fresh store of ``backend``: its target, and a PostgreSQL schema to drop after."""
    if backend == "filesystem":
        return str(workdir / "store"), None
    if backend == "sqlite":
        return str(workdir / "store.db"), None
    url = request.getfixturevalue("postgres_url")
    schema = f"s_{uuid.uuid4().hex[:12]}"
    sep = "&" if "?" in url else "?"
    return f"{url}{sep}schema={schema}", schema


def drop_schema(request: pytest.FixtureRequest, schema: str | None) -> None:
    if schema is None:
        return
    with psycopg.connect(request.getfixturevalue("postgres_url"), autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(scope="module", params=SERVER_BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A server over a fresh store of each backend, with admin, write and read keys."""
    workdir = tmp_path_factory.mktemp(f"server-{request.param}")
    store, schema = store_target(request.param, workdir, request)
    keys = {scope: create_key(store, workdir, f"{scope}-key", scope) for scope in SCOPES}
    running = start_server(store, workdir)
    running.keys = keys
    try:
        yield running
    finally:
        running.stop()
        drop_schema(request, schema)


SCOPES = ("admin", "write", "read")


def fresh_id(stem: str = "p") -> str:
    return f"{stem}_{uuid.uuid4().hex[:10]}"


def version_body(text: str = "Summarize {{document}}.", score: float = 60.0) -> dict[str, object]:
    """A POST /versions body: the prompt's and the analysis' ids come from the URL."""
    return {
        "prompt": {
            "workflow_id": "wf",
            "node_id": "n1",
            "node_type": "llm",
            "text": text,
            "variables": ["document"] if "{{document}}" in text else [],
        },
        "analysis": {"overall_score": score, "clarity_score": score, "efficiency_score": score},
    }
