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

import threading
from collections import OrderedDict

from pydantic import ValidationError as PydanticValidationError

from ...errors import CorruptStoreError
from ...models import LabelAction, LabelEvent
from . import io

LABELS_FILE = ".labels.jsonl"
MAX_LOG_BYTES = 64 * 1024 * 1024

_Key = tuple[int, int, int]


class LabelLogs:
    """Reads (with a small per-process cache) and appends prompt label logs."""

    def __init__(self, max_prompts: int = 1024) -> None:
        self._cache: OrderedDict[str, tuple[_Key, tuple[LabelEvent, ...]]] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_prompts

    def read(self, dir_fd: int, prompt_dir: str) -> list[LabelEvent]:
        """The events of the log in the prompt directory ``dir_fd`` (``ELOOP`` if the log
        is a symlink); ``prompt_dir`` names it in errors and keys the cache."""
        path = f"{prompt_dir}/{LABELS_FILE}"
        try:
            data, st = io.read_file(dir_fd, LABELS_FILE, MAX_LOG_BYTES)
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
        io.append(dir_fd, LABELS_FILE, data, durable, prepare=_cut_torn_tail)


def _cut_torn_tail(fd: int) -> None:
    """Drop a last line a crashed writer left without its newline (it was never acknowledged)."""
    size = io.fstat(fd).st_size
    if size == 0 or io.pread(fd, 1, size - 1) == b"\n":
        return
    start = max(0, size - 65536)
    tail = io.pread(fd, size - start, start)
    io.ftruncate(fd, start + tail.rfind(b"\n") + 1)


def salvage_log(
    data: bytes, prompt_id: str
) -> tuple[list[LabelEvent], list[tuple[int, bytes]], int]:
    """What ``repair`` keeps of a damaged log: the events of every line that reads as an event
    of ``prompt_id``, in order, renumbered 1, 2, ... and made a consistent history again (a
    move or removal whose label the damaged lines had set starts where the label now stands:
    a move of an unset label becomes a set, a removal of one is dropped), so that
    ``import_label_events`` (sync, migrate, backup) accepts it; every label ends where the
    valid events put it. Returns (events, damaged lines as (line number, bytes), how many
    valid events were adjusted). A torn last line (no newline) is left out, as readers do."""
    kept: list[LabelEvent] = []
    damaged: list[tuple[int, bytes]] = []
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        try:
            event = LabelEvent.model_validate_json(line)
        except PydanticValidationError:
            damaged.append((number, line))
            continue
        if event.prompt_id != prompt_id:
            damaged.append((number, line))
            continue
        kept.append(event)
    events: list[LabelEvent] = []
    current: dict[str, str] = {}
    adjusted = 0
    for event in kept:
        before = current.get(event.label)
        if event.to_version is None or event.action is LabelAction.REMOVE:
            if before is None:
                adjusted += 1
                continue
            action, to = LabelAction.REMOVE, None
        else:
            action = LabelAction.SET if before is None else LabelAction.MOVE
            to = event.to_version
        fixed = event.model_copy(
            update={
                "seq": len(events) + 1,
                "action": action,
                "from_version": before,
                "to_version": to,
            }
        )
        if (fixed.action, fixed.from_version) != (event.action, event.from_version):
            adjusted += 1
        events.append(fixed)
        if to is None:
            current.pop(event.label, None)
        else:
            current[event.label] = to
    return events, damaged, adjusted


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
