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

import logging
import os
import socket
import sys
from typing import Any

from fastapi import FastAPI

from ..storage.opener import ENV_VAR, open_storage

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


def configure_logging(access_log: bool) -> None:
    """One JSON object per request on stderr (``promptshelf.access``) when enabled."""
    logger = logging.getLogger("promptshelf.access")
    logger.propagate = False
    logger.handlers.clear()
    if access_log:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    else:
        logger.setLevel(logging.WARNING)


def app_from_env() -> FastAPI:
    """The app a uvicorn worker serves: the store named by ``$PROMPTSHELF_URL``."""
    from .app import create_app

    configure_logging(os.environ.get(ACCESS_LOG_ENV, "1") == "1")
    return create_app(open_storage(os.environ[ENV_VAR]))


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
        access_log=False,  # ours is structured (see app.Observe)
        server_header=False,
        log_level=uvicorn_options.pop("log_level", "info"),
        **uvicorn_options,
    )
    if workers > 1:
        Multiprocess(config, sockets=[sock]).run()
    else:
        uvicorn.Server(config).run(sockets=[sock])
