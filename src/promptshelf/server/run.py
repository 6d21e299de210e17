"""Running the app under uvicorn, one process or several, without the 40 ms delayed-ACK stall.

uvicorn's ``--workers N`` binds the listening socket itself with ``proto=0``;
accepted sockets inherit it, and asyncio turns on ``TCP_NODELAY`` only for
sockets that report ``IPPROTO_TCP``. So with several workers Nagle stays on
and each keep-alive response after the first waits for the client's delayed
ACK, about 40 ms on Linux (uvicorn issue #3149). We bind the socket ourselves,
with ``proto=IPPROTO_TCP``, for one worker or many, so every accepted
connection gets ``TCP_NODELAY``.

Workers are separate processes: each opens the store from ``$PROMPTSHELF_URL``
through :func:`app_from_env` (a factory uvicorn calls in the worker).
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import os
import shutil
import socket
import sys
import tempfile
from typing import Any

from fastapi import FastAPI

from ..storage.opener import ENV_VAR, open_storage
from .metrics import SHARED_DIR_ENV

ACCESS_LOG_ENV = "PROMPTSHELF_ACCESS_LOG"


def bind_socket(host: str, port: int, backlog: int = 2048) -> socket.socket:
    """A listening TCP socket whose accepted connections asyncio sets ``TCP_NODELAY`` on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    sock.set_inheritable(True)
    return sock


class BatchedLines(logging.StreamHandler):  # type: ignore[type-arg]
    """The access log's writer: lines gathered on the event loop and written together,
    ``delay`` seconds after the first of a batch (or at ``limit`` lines, or at exit:
    logging flushes every handler then). A logging record and a ``write`` per request
    cost a busy server about as much as answering a cached GET."""

    def __init__(self, stream: Any, delay: float = 0.05, limit: int = 512) -> None:
        super().__init__(stream)
        self.delay = delay
        self.limit = limit
        self._pending: list[str] = []
        self._scheduled = False

    def emit(self, record: logging.LogRecord) -> None:
        self.line(self.format(record))

    def line(self, text: str) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._pending.append(text)
            full = len(self._pending) >= self.limit
        if full:
            self.flush()
        elif not self._scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on the event loop: write now
                self.flush()
                return
            self._scheduled = True
            loop.call_later(self.delay, self.flush)

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            self._scheduled = False
            pending, self._pending = self._pending, []
            if pending:
                self.stream.write("\n".join(pending) + "\n")
            super().flush()


def configure_logging(access_log: bool) -> None:
    """One JSON object per request on stderr (``promptshelf.access``) when enabled."""
    from . import app

    server_log = logging.getLogger("promptshelf.server")  # start-up lines, warnings
    if not server_log.handlers:
        said = logging.StreamHandler(sys.stderr)
        said.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
        server_log.addHandler(said)
        server_log.setLevel(logging.INFO)
        server_log.propagate = False
    logger = logging.getLogger("promptshelf.access")
    logger.propagate = False
    logger.handlers.clear()
    app.access_sink = None
    if access_log:
        handler = BatchedLines(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        app.access_sink = handler.line
    else:
        logger.setLevel(logging.WARNING)


def app_from_env() -> FastAPI:
    """The app a uvicorn worker serves: the store named by ``$PROMPTSHELF_URL``."""
    from .app import create_app

    configure_logging(os.environ.get(ACCESS_LOG_ENV, "1") == "1")
    app = create_app(open_storage(os.environ[ENV_VAR]))
    # What start-up made (modules, FastAPI's routes and schemas, pydantic's validators) lives
    # as long as the worker: out of the collector's sight, a full collection under load
    # walks only what requests made (it stalled answers for tens of ms: p99 doubled).
    gc.collect()
    gc.freeze()
    return app


def _fastest(module: str, name: str) -> str:
    """``name`` when ``module`` imports (the server extra installs httptools and uvloop),
    else uvicorn's ``auto``; said explicitly so that a missing one shows in the config."""
    try:
        importlib.import_module(module)
    except ImportError:
        return "auto"
    return name


def serve(
    target: str,
    sock: socket.socket,
    *,
    workers: int = 1,
    access_log: bool = True,
    app: str = "promptshelf.server.run:app_from_env",
    factory: bool = True,
    **uvicorn_options: Any,
) -> None:
    """Serve the store ``target`` on ``sock`` (from :func:`bind_socket`) until interrupted."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    os.environ[ENV_VAR] = target
    os.environ[ACCESS_LOG_ENV] = "1" if access_log else "0"
    config = uvicorn.Config(
        app,
        factory=factory,
        workers=workers,
        http=uvicorn_options.pop("http", _fastest("httptools", "httptools")),
        loop=uvicorn_options.pop("loop", _fastest("uvloop", "uvloop")),
        access_log=False,  # ours is structured (see app.Observe)
        server_header=False,
        log_level=uvicorn_options.pop("log_level", "info"),
        **uvicorn_options,
    )
    if workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
        return
    shared = tempfile.mkdtemp(prefix="promptshelf-metrics-")
    os.environ[SHARED_DIR_ENV] = shared  # the workers' /metrics sum each other's counters
    try:
        Multiprocess(config, sockets=[sock]).run()
    finally:
        shutil.rmtree(shared, ignore_errors=True)
