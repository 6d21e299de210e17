"""The floor of the server benchmark: bare ASGI endpoints under the same uvicorn settings.

``GET`` answers the bytes of ``$FLOOR_BODY_FILE`` (a version's canonical JSON, as
the API sends it) with an ETag; ``POST``/``PUT`` first do one durable write
(temp file, fsync, rename, fsync the directory: what a version save or a label
move costs the disk at least) on a worker thread, as the server does.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any

import anyio.to_thread

BODY = open(os.environ["FLOOR_BODY_FILE"], "rb").read()  # noqa: SIM115 - read once at import
ETAG = f'"{hashlib.sha256(BODY).hexdigest()}"'.encode()
HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(BODY)).encode()),
    (b"etag", ETAG),
]
WRITE_DIR = os.environ.get("FLOOR_WRITE_DIR", "/tmp")


def durable_write() -> None:
    directory = os.path.join(WRITE_DIR, "floor")
    os.makedirs(directory, exist_ok=True)
    name = uuid.uuid4().hex
    temp = os.path.join(directory, f".tmp-{name}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        os.write(fd, BODY)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(temp, os.path.join(directory, f"{name}.json"))
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["method"] in ("POST", "PUT"):
        while (await receive()).get("more_body"):
            pass
        await anyio.to_thread.run_sync(durable_write)
        status = 201
    else:
        status = 200
    await send({"type": "http.response.start", "status": status, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
