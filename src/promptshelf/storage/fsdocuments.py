"""Documents on disk: ``<storage_dir>/.documents/<namespace>/<key>``, one small file each.

A file holds ``{"revision": n, "data": {...}}``. Writers take the namespace
directory's ``flock``, read the current revision, compare, then write a temp
file (name starting with ``.``, never read as a document), fsync it, rename it
over the key and fsync the directory: a reader sees the old or the new
document whole, and two writers expecting the same revision cannot both win,
in any number of processes. The directory starts with ``.``, so the version
scanner never takes it for a prompt.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from ..errors import CorruptStoreError, LockTimeoutError
from . import fsio
from .base import document_conflict
from .documents import MAX_DOCUMENT_BYTES

DOCUMENTS_DIR = ".documents"
_MAX_FILE = MAX_DOCUMENT_BYTES + 4096


class DocumentFiles:
    def __init__(self, root: str, durable: bool, lock_timeout: float) -> None:
        self._base = os.path.join(root, DOCUMENTS_DIR)
        self._root = root
        self._durable = durable
        self._lock_timeout = lock_timeout

    def _dir(self, namespace: str) -> str:
        return os.path.join(self._base, namespace)

    def _read(self, path: str) -> tuple[bytes, int] | None:
        try:
            raw, _ = fsio.read_file(path, _MAX_FILE)
        except FileNotFoundError:
            return None
        except OverflowError:
            raise CorruptStoreError(f"{path} is larger than {_MAX_FILE} bytes") from None
        try:
            loaded = json.loads(raw)
            revision, data = loaded["revision"], loaded["data"]
        except (ValueError, KeyError, TypeError):
            raise CorruptStoreError(f"{path} is not a promptshelf document") from None
        if type(revision) is not int or not isinstance(data, dict):
            raise CorruptStoreError(f"{path} is not a promptshelf document")
        return json.dumps(data, sort_keys=True, ensure_ascii=False).encode("utf-8"), revision

    def get(self, namespace: str, key: str) -> tuple[bytes, int] | None:
        return self._read(os.path.join(self._dir(namespace), key))

    def list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        directory = self._dir(namespace)
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return {}
        found: dict[str, tuple[bytes, int]] = {}
        for name in names:
            if not name.startswith("."):
                doc = self._read(os.path.join(directory, name))
                if doc is not None:
                    found[name] = doc
        return found

    @contextmanager
    def _locked(self, namespace: str) -> Iterator[int]:
        for path, parent in ((self._base, self._root), (self._dir(namespace), self._base)):
            if not os.path.isdir(path):
                parent_fd = fsio.open_dir(parent)
                try:
                    fsio.make_dir(path, parent_fd, self._durable)
                finally:
                    fsio.close(parent_fd)
        dir_fd = fsio.open_dir(self._dir(namespace))
        try:
            if not fsio.lock(dir_fd, self._lock_timeout):
                raise LockTimeoutError(
                    f"could not lock documents {namespace!r} within {self._lock_timeout} s",
                    context={"namespace": namespace},
                )
            yield dir_fd
        finally:
            fsio.close(dir_fd)  # closing also releases the flock

    def put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        with self._locked(namespace) as dir_fd:
            current = self.get(namespace, key)
            if (current[1] if current else None) != expected:
                raise document_conflict(namespace, key, expected)
            revision = 1 if current is None else current[1] + 1
            body = b'{"revision": %d, "data": %s}\n' % (revision, data)
            temp = f"{fsio.TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            fsio.write_new(dir_fd, temp, body, self._durable)
            try:
                fsio.replace(dir_fd, temp, key)
            except BaseException:
                fsio.unlink(dir_fd, temp)
                raise
            if self._durable:
                fsio.fsync(dir_fd)
            return revision

    def delete(self, namespace: str, key: str, expected: int | None) -> bool:
        if not os.path.isdir(self._dir(namespace)):
            return False
        with self._locked(namespace) as dir_fd:
            current = self.get(namespace, key)
            if current is None:
                return False
            if expected is not None and current[1] != expected:
                raise document_conflict(namespace, key, expected)
            fsio.unlink(dir_fd, key)
            if self._durable:
                fsio.fsync(dir_fd)
            return True
