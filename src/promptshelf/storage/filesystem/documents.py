"""Documents on disk: ``<storage_dir>/.documents/<namespace>/<key>``, one small file each.

A file holds ``{"revision": n, "data": {...}}``. Writers take the namespace
directory's ``flock``, read the current revision, compare, then write a temp
file (name starting with ``.``, never read as a document), fsync it, rename it
over the key and fsync the directory: a reader sees the old or the new
document whole, and two writers expecting the same revision cannot both win,
in any number of processes. The directory starts with ``.``, so the version
scanner never takes it for a prompt. Every directory and file is opened from
the root's descriptor with ``O_NOFOLLOW`` (:mod:`.io`): a symlink is refused.
"""

from __future__ import annotations

import builtins
import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

from ...errors import CorruptStoreError, LockTimeoutError
from ..base import document_conflict
from ..documents import MAX_DOCUMENT_BYTES
from . import io

DOCUMENTS_DIR = ".documents"
_MAX_FILE = MAX_DOCUMENT_BYTES + 4096


class DocumentFiles:
    def __init__(self, root: str, durable: bool, lock_timeout: float) -> None:
        self._base = os.path.join(root, DOCUMENTS_DIR)
        self._root = root
        self._durable = durable
        self._lock_timeout = lock_timeout

    @contextmanager
    def _opened(self, namespace: str, create: bool) -> Iterator[int | None]:
        """The namespace directory's descriptor (None if missing and not ``create``)."""
        root_fd = io.open_root(self._root)
        try:
            fds: list[int] = []
            try:
                parent = root_fd
                for name in (DOCUMENTS_DIR, namespace):
                    if create:
                        io.make_dir(parent, name, self._durable)
                    try:
                        parent = io.open_dir_at(parent, name)
                    except FileNotFoundError:
                        yield None
                        return
                    fds.append(parent)
                yield parent
            finally:
                for fd in fds:
                    io.close(fd)
        finally:
            io.close(root_fd)

    def _read(self, dir_fd: int, name: str) -> tuple[bytes, int] | None:
        path = f"{self._base}/{name}"
        try:
            raw, _ = io.read_file(dir_fd, name, _MAX_FILE)
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
        with self._opened(namespace, create=False) as fd:
            return None if fd is None else self._read(fd, key)

    def list(self, namespace: str) -> dict[str, tuple[bytes, int]]:
        found: dict[str, tuple[bytes, int]] = {}
        with self._opened(namespace, create=False) as fd:
            if fd is None:
                return found
            for name in io.listdir(fd):
                if not name.startswith("."):
                    doc = self._read(fd, name)
                    if doc is not None:
                        found[name] = doc
        return found

    def namespaces(self) -> builtins.list[str]:
        root_fd = io.open_root(self._root)
        try:
            try:
                base = io.open_dir_at(root_fd, DOCUMENTS_DIR)
            except FileNotFoundError:
                return []
            try:
                names = [n for n in io.listdir(base) if not n.startswith(".")]
            finally:
                io.close(base)
        finally:
            io.close(root_fd)
        return [n for n in names if self.list(n)]

    @contextmanager
    def _locked(self, namespace: str) -> Iterator[int]:
        with self._opened(namespace, create=True) as dir_fd:
            assert dir_fd is not None  # create=True never yields None
            if not io.lock(dir_fd, self._lock_timeout):
                raise LockTimeoutError(
                    f"could not lock documents {namespace!r} within {self._lock_timeout} s",
                    context={"namespace": namespace},
                )
            yield dir_fd  # closing the descriptor releases the flock

    def put(self, namespace: str, key: str, data: bytes, expected: int | None) -> int:
        with self._locked(namespace) as dir_fd:
            current = self._read(dir_fd, key)
            if (current[1] if current else None) != expected:
                raise document_conflict(namespace, key, expected)
            revision = 1 if current is None else current[1] + 1
            body = b'{"revision": %d, "data": %s}\n' % (revision, data)
            temp = f"{io.TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
            io.write_new(dir_fd, temp, body, self._durable)
            try:
                io.replace(dir_fd, temp, key)
            except BaseException:
                io.unlink(dir_fd, temp)
                raise
            if self._durable:
                io.fsync(dir_fd)
            return revision

    def delete(self, namespace: str, key: str, expected: int | None) -> bool:
        if self.get(namespace, key) is None:
            return False
        with self._locked(namespace) as dir_fd:
            current = self._read(dir_fd, key)
            if current is None:
                return False
            if expected is not None and current[1] != expected:
                raise document_conflict(namespace, key, expected)
            io.unlink(dir_fd, key)
            if self._durable:
                io.fsync(dir_fd)
            return True
