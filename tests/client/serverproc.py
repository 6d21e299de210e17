"""A real promptshelf server (``promptshelf serve``) in a subprocess on a free loopback port.

Tests start it over a store directory they own, kill it (SIGKILL, as a crash
would), and start it again on the same port. Every wait is on a condition
(the health check answering, the process gone), never a fixed sleep.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx

T = TypeVar("T")

STARTUP_LIMIT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_for(condition: Callable[[], T | None], limit: float = 15.0, what: str = "") -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    delay = 0.002
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what or condition}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


class ServerProcess:
    def __init__(self, store: Path | str, port: int | None = None) -> None:
        self.store = str(store)
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = Path(f"{self.store}.server.log") if "://" not in self.store else None

    def start(self) -> ServerProcess:
        command = [
            sys.executable,
            *([os.environ["DEVSERVER"]] if os.environ.get("DEVSERVER") else ["-m", "promptshelf"]),
            "serve",
            "--store",
            self.store,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        out = self.log.open("ab") if self.log else subprocess.DEVNULL
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
        wait_for(self._healthy, STARTUP_LIMIT, f"the server on port {self.port} to answer")
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            log = self.log.read_text(errors="replace")[-2000:] if self.log else ""
            raise AssertionError(f"the server exited with {self.proc.returncode}:\n{log}")
        try:
            return httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL, then wait until the port refuses connections."""
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.proc = None

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=15)
        self.proc = None

    def metrics(self) -> str:
        return httpx.get(f"{self.url}/metrics", timeout=5.0).text

    def count(self, status: int | None = None, route: str | None = None) -> int:
        """Requests the server counted on ``/metrics`` (by status and route template)."""
        total = 0
        for line in self.metrics().splitlines():
            if not line.startswith("promptshelf_http_requests_total{"):
                continue
            labels = dict(re.findall(r'(\w+)="([^"]*)"', line))
            if status is not None and labels.get("status") != str(status):
                continue
            if route is not None and labels.get("route") != route:
                continue
            total += int(float(line.rsplit(" ", 1)[1]))
        return total
