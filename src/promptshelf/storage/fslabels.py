"""A prompt's labels on disk: ``<prompt_dir>/.labels.jsonl``, an append-only event log.

Where each label points is derived by replaying the log, so the history can
never disagree with the current state. Writers append under the prompt
directory's lock, one ``write`` per event batch, fsynced. A crash can only
leave a torn last line (no newline yet): readers ignore it, and the next
writer cuts it off before appending. Readers take no lock and cache each log
by its ``(inode, size, mtime)``, which any append changes, so a cached read
is exact in every process.
"""

from __future__ import annotations

import errno
import os
import threading
from collections import OrderedDict

from pydantic import ValidationError as PydanticValidationError

from ..errors import CorruptStoreError
from ..models import LabelEvent
from . import fsio

LABELS_FILE = ".labels.jsonl"
MAX_LOG_BYTES = 64 * 1024 * 1024

_Key = tuple[int, int, int]


class LabelLogs:
    """Reads (with a small per-process cache) and appends prompt label logs."""

    def __init__(self, max_prompts: int = 1024) -> None:
        self._cache: OrderedDict[str, tuple[_Key, tuple[LabelEvent, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_prompts

    def read(self, prompt_dir: str) -> list[LabelEvent]:
        path = f"{prompt_dir}/{LABELS_FILE}"
        try:
            data, st = fsio.read_file(path, MAX_LOG_BYTES)
        except FileNotFoundError:
            return []
        except OverflowError:
            raise CorruptStoreError(f"{path} is larger than {MAX_LOG_BYTES} bytes") from None
        key = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._lock:
            cached = self._cache.get(path)
        if cached is not None and cached[0] == key:
            return list(cached[1])
        events = parse_log(data, path)
        with self._lock:
            self._cache[path] = (key, tuple(events))
            self._cache.move_to_end(path)
            if len(self._cache) > self._max:
                self._cache.popitem(last=False)
        return events

    @staticmethod
    def append(dir_fd: int, events: list[LabelEvent], durable: bool) -> None:
        """Append ``events`` to the log in ``dir_fd``; the caller holds the prompt's lock."""
        data = b"".join(e.model_dump_json().encode("utf-8") + b"\n" for e in events)
        flags = os.O_RDWR | os.O_APPEND | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        created = False
        try:
            fd = os.open(LABELS_FILE, flags | os.O_CREAT | os.O_EXCL, fsio.FILE_MODE, dir_fd=dir_fd)
            created = True
        except FileExistsError:
            fd = os.open(LABELS_FILE, flags, dir_fd=dir_fd)
        try:
            _cut_torn_tail(fd)
            written = os.write(fd, data)
            if written != len(data):  # a short append is a torn line: cut it, report it
                _cut_torn_tail(fd)
                raise OSError(errno.ENOSPC, "short write to the label log")
            if durable:
                os.fsync(fd)
        finally:
            fsio.close(fd)
        if created and durable:
            fsio.fsync(dir_fd)


def _cut_torn_tail(fd: int) -> None:
    """Drop a last line a crashed writer left without its newline (it was never acknowledged)."""
    size = os.fstat(fd).st_size
    if size == 0 or os.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - 65536)
    tail = os.pread(fd, size - start, start)
    os.ftruncate(fd, start + tail.rfind(b"\n") + 1)


def parse_log(data: bytes, path: str) -> list[LabelEvent]:
    lines = data.split(b"\n")
    complete = lines[:-1]  # the part after the last newline is a torn append, or empty
    events = []
    for number, line in enumerate(complete, start=1):
        try:
            events.append(LabelEvent.model_validate_json(line))
        except PydanticValidationError as exc:
            raise CorruptStoreError(
                f"{path} line {number} is not a label event: {exc.errors()[0]['msg']}",
                context={"path": path, "line": number},
            ) from None
    return events
