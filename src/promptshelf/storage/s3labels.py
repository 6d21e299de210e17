"""Labels on S3: one small object per prompt moved by compare-and-swap, and its history.

The label object ``<prefix>/.labels/<prompt_id>.json`` is the commit point::

    {"format": 1, "rev": 7, "seq": 9, "labels": {"production": "1.2.0"},
     "pending": [<the events of revision 7>]}

A change reads it (with its ETag), computes the next events from it, and
writes it back with ``If-Match: <ETag>`` (``If-None-Match: *`` when there is
none yet). Of two writers that read the same revision, exactly one write
succeeds; the other re-reads and tries again. ``rev`` grows on every write:
SeaweedFS's and moto's ETags are the MD5 of the body, so without it a label
moved A -> B -> A would get its old ETag back and a stale compare-and-swap
would succeed (ABA).

The history is append-only, one object per event, ``.events/<prompt_id>/
<seq, 10 digits>.json``, written create-only after the commit. A writer
killed between the commit and those writes leaves them in ``pending``:
every writer first writes the pending events of the revision it read before
committing its own, so all events up to ``seq - len(pending)`` are always
objects, and a reader takes the rest from ``pending``. Nothing is lost and
nothing is written twice with different contents (each ``seq`` is committed
exactly once).
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from ..cache import LRUCache
from ..errors import CorruptStoreError, LockTimeoutError
from ..models import LabelAction, LabelEvent
from .s3client import Bucket, NotModified, PreconditionFailed

LABELS_DIR = ".labels"
EVENTS_DIR = ".events"
#: How long a label change keeps retrying a contended compare-and-swap.
CAS_DEADLINE = 120.0


@dataclass
class LabelState:
    rev: int = 0
    seq: int = 0
    labels: dict[str, str] = field(default_factory=dict)
    pending: list[LabelEvent] = field(default_factory=list)

    def encode(self) -> bytes:
        body = {
            "format": 1,
            "rev": self.rev,
            "seq": self.seq,
            "labels": dict(sorted(self.labels.items())),
            "pending": [e.model_dump(mode="json") for e in self.pending],
        }
        return json.dumps(body, ensure_ascii=False, indent=1).encode("utf-8")

    @classmethod
    def decode(cls, data: bytes, where: str) -> LabelState:
        try:
            body = json.loads(data)
            state = cls(
                rev=int(body["rev"]),
                seq=int(body["seq"]),
                labels={str(k): str(v) for k, v in body["labels"].items()},
                pending=[LabelEvent.model_validate(e) for e in body["pending"]],
            )
        except (ValueError, KeyError, TypeError, AttributeError, PydanticValidationError) as exc:
            raise CorruptStoreError(
                f"label object {where} is damaged: {type(exc).__name__}",
                context={"path": where},
            ) from None
        return state

    def after(self, events: list[LabelEvent]) -> LabelState:
        """The next revision: ``events`` applied."""
        labels = dict(self.labels)
        for event in events:
            if event.action is LabelAction.REMOVE or event.to_version is None:
                labels.pop(event.label, None)
            else:
                labels[event.label] = event.to_version
        return LabelState(self.rev + 1, self.seq + len(events), labels, list(events))


#: Given the current state, the events to commit ([] commits nothing), or raise.
Compute = Callable[[LabelState], list[LabelEvent]]


class LabelLog:
    """Label objects and event objects of one store (``root`` is its key prefix)."""

    def __init__(self, bucket: Bucket, root: str, pool: ThreadPoolExecutor) -> None:
        self.bucket = bucket
        self.root = root
        self.pool = pool
        self._events_cache: LRUCache[tuple[str, bytes]] = LRUCache(4096)

    def state_key(self, prompt_id: str) -> str:
        return f"{self.root}{LABELS_DIR}/{prompt_id}.json"

    def events_prefix(self, prompt_id: str) -> str:
        return f"{self.root}{EVENTS_DIR}/{prompt_id}/"

    def event_key(self, prompt_id: str, seq: int) -> str:
        return f"{self.events_prefix(prompt_id)}{seq:010d}.json"

    def read(self, prompt_id: str) -> tuple[LabelState, str | None]:
        key = self.state_key(prompt_id)
        stored = self.bucket.get(key)
        if stored is None:
            return LabelState(), None
        return LabelState.decode(stored.data, self.bucket.where(key)), stored.etag

    def change(self, prompt_id: str, compute: Compute) -> list[LabelEvent]:
        """Commit ``compute(state)``'s events by compare-and-swap; returns them."""
        deadline = time.monotonic() + CAS_DEADLINE
        attempt = 0
        while True:
            state, etag = self.read(prompt_id)
            self.materialize(prompt_id, state.pending, check=True)
            events = compute(state)
            if not events:
                return []
            new = state.after(events)
            try:
                self.bucket.put(
                    self.state_key(prompt_id),
                    new.encode(),
                    if_none_match=etag is None,
                    if_match=etag,
                )
            except PreconditionFailed:
                attempt += 1
                if time.monotonic() > deadline:
                    raise LockTimeoutError(
                        f"labels of {prompt_id!r} stayed contended for {CAS_DEADLINE:.0f} s "
                        f"({attempt} lost compare-and-swaps)",
                        error_code="S3-CAS-001",
                        context={"prompt_id": prompt_id, "attempts": attempt},
                    ) from None
                time.sleep(random.uniform(0, min(0.01 * 2**attempt, 0.25)))
                continue
            self.materialize(prompt_id, events)
            return events

    def materialize(self, prompt_id: str, events: list[LabelEvent], check: bool = False) -> None:
        """Write committed events as their own objects (create-only: a rerun is harmless).

        With ``check``, an event whose object exists is not written again (a HEAD is
        cheaper than a put that loses): the usual case when a writer finds the
        pending events of the revision before it, which their writer has written.
        """
        for event in events:
            if check and self.bucket.exists(self.event_key(prompt_id, event.seq)):
                continue
            try:
                self.bucket.put(
                    self.event_key(prompt_id, event.seq),
                    event.model_dump_json().encode("utf-8"),
                    if_none_match=True,
                )
            except PreconditionFailed:
                pass  # written already (by us before a crash, or by another writer)

    def events(self, prompt_id: str) -> list[LabelEvent]:
        """The history as of one revision of the label object, oldest first."""
        state, _ = self.read(prompt_id)  # first: every event up to it is an object by now
        return self.events_of(prompt_id, state)

    def events_of(self, prompt_id: str, state: LabelState) -> list[LabelEvent]:
        """The history up to ``state`` (read before this call), oldest first."""
        upto = state.seq - len(state.pending)
        listed = [
            (key, etag)
            for key, etag in self.bucket.objects(self.events_prefix(prompt_id))
            if _seq_of(key) is not None and _seq_of(key) <= upto  # type: ignore[operator]
        ]
        found = list(self.pool.map(lambda item: self._event(*item), listed))
        found.sort(key=lambda e: e.seq)
        return found + list(state.pending)

    def _event(self, key: str, etag: str) -> LabelEvent:
        cached = self._events_cache.get(key)
        data: bytes | None = None
        if cached is not None and cached[0] == etag:
            data = cached[1]
        else:
            try:
                stored = self.bucket.get(key, if_none_match=cached[0] if cached else None)
            except NotModified:
                assert cached is not None
                stored = None
                data = cached[1]
            if stored is not None:
                data = stored.data
                self._events_cache.put(key, (stored.etag, stored.data))
        if data is None:
            raise CorruptStoreError(
                f"label event {self.bucket.where(key)} vanished while it was read",
                context={"path": self.bucket.where(key)},
            )
        try:
            return LabelEvent.model_validate_json(data)
        except PydanticValidationError:
            raise CorruptStoreError(
                f"label event {self.bucket.where(key)} is damaged",
                context={"path": self.bucket.where(key)},
            ) from None

    def prompts(self) -> list[str]:
        """Prompts that have a label object (a history outlives the prompt's versions)."""
        prefix = f"{self.root}{LABELS_DIR}/"
        return sorted(k[len(prefix) : -5] for k in self.bucket.keys(prefix) if k.endswith(".json"))

    def event_gaps(self, prompt_id: str) -> tuple[LabelState, list[int]]:
        """The state and the sequence numbers below its pending events with no object."""
        state, _ = self.read(prompt_id)
        have = {_seq_of(k) for k in self.bucket.keys(self.events_prefix(prompt_id))}
        upto = state.seq - len(state.pending)
        return state, [n for n in range(1, upto + 1) if n not in have]


def _seq_of(key: str) -> int | None:
    name = key.rsplit("/", 1)[-1]
    if len(name) == 15 and name.endswith(".json") and name[:10].isdigit():
        return int(name[:10])
    return None


def new_event(
    state: LabelState,
    prompt_id: str,
    label: str,
    to_version: str | None,
    actor: str | None,
    reason: str | None,
    offset: int = 0,
    labels: dict[str, str] | None = None,
) -> LabelEvent | None:
    """The event moving ``label`` to ``to_version`` (None: removing it) after ``state``;
    None when there is nothing to change (a set where it already points records nothing)."""
    current = (state.labels if labels is None else labels).get(label)
    if to_version is None:
        if current is None:
            return None
        action = LabelAction.REMOVE
    elif to_version == current:
        return None
    else:
        action = LabelAction.SET if current is None else LabelAction.MOVE
    return LabelEvent(
        seq=state.seq + offset + 1,
        prompt_id=prompt_id,
        label=label,
        action=action,
        from_version=current,
        to_version=to_version,
        actor=actor,
        reason=reason,
    )


def describe(state: LabelState) -> dict[str, Any]:
    return {"rev": state.rev, "seq": state.seq, "labels": state.labels}
