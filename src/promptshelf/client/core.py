"""The caching rules shared by :class:`PromptClient` and :class:`AsyncPromptClient`.

Every answer is cached under ``(prompt_id, "label" | "version", name)`` with the
version's ETag and two deadlines:

* ``fresh_until`` = fetched + ``ttl``: until then the answer is served from
  memory with no request at all (the hot path: one dict lookup; a timer thread takes
  each answer out of that dict at its deadline, see :class:`FreshIndex`);
* ``stale_until`` = ``fresh_until`` + ``stale_while_revalidate``: until then the
  cached answer is still served at once while one background request revalidates
  it (``If-None-Match``; a 304 costs no body).

Past ``stale_until`` the caller waits for the revalidation. So a moved label is
seen by every client at most ``ttl + stale_while_revalidate`` (plus one round
trip) after the move: :attr:`CacheCore.staleness_bound`.

When the server answers 404 for a label or version, the entry is dropped from
memory and disk and the error is raised: a removed label is gone, never served
from cache. When the server cannot be reached (connection error, timeout, 5xx),
the last confirmed answer from memory, then the disk cache, then the bundle is
served with ``stale=True`` (and one :class:`StalePromptWarning` per key and
outage); with none of those an explicit ``fallback``; else
:class:`~promptshelf.errors.ServerUnavailableError`.
"""

from __future__ import annotations

import heapq
import itertools
import os
import sys
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import PrivateAttr
from pydantic import ValidationError as PydanticValidationError

from .. import semver
from ..errors import ConfigurationError, OptimizerError, ServerUnavailableError
from ..ids import validate_name, validate_prompt_id
from ..models import Prompt, PromptAnalysis, PromptVersion, placeholders
from .disk import LABEL, VERSION, DiskCache, Key

#: A fallback: the prompt's text, or chat messages (``[{"role": ..., "content": ...}]``).
Fallback = Union[str, Sequence[Mapping[str, Any]]]  # noqa: UP007 - a runtime alias

_NO_FALLBACK: Any = object()

DEFAULT_TTL = 5.0
DEFAULT_SWR = 5.0
DEFAULT_LABEL = "production"


class StalePromptWarning(UserWarning):
    """A prompt was served from a cache or a fallback because the server could not be reached."""


class ServedVersion(PromptVersion):
    """A :class:`PromptVersion` as the client served it, with where it came from.

    Compares equal to a plain ``PromptVersion`` with the same data. Treat it as
    read-only: the cached object is shared by every caller of the hot path.
    """

    _stale: bool = PrivateAttr(default=False)
    _source: str = PrivateAttr(default="server")
    _etag: str | None = PrivateAttr(default=None)

    @property
    def stale(self) -> bool:
        """True when the server could not confirm this answer (cache, bundle or fallback)."""
        return self._stale

    @property
    def source(self) -> str:
        """``server`` (confirmed within the window), ``memory``, ``disk``, ``bundle`` or
        ``fallback``."""
        return self._source

    @property
    def etag(self) -> str | None:
        return self._etag

    def __eq__(self, other: object) -> bool:
        if isinstance(other, PromptVersion):
            return self.__dict__ == other.__dict__
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


def served(version: PromptVersion, etag: str | None, source: str, stale: bool) -> ServedVersion:
    if isinstance(version, ServedVersion):
        out = version.model_copy()
    else:
        out = ServedVersion.model_construct(**dict(version.__dict__))
        object.__setattr__(out, "__pydantic_fields_set__", set(version.model_fields_set))
    out._stale = stale
    out._source = source
    out._etag = etag
    return out


@dataclass(frozen=True, slots=True)
class Entry:
    value: ServedVersion
    etag: str | None
    fresh_until: float
    stale_until: float


@dataclass
class ClientStats:
    """Counters of what the client did; read them, never rely on their exact timing."""

    requests: int = 0  # requests sent (each refresh, prefetch batch)
    fetched: int = 0  # 200 answers with a body
    not_modified: int = 0  # 304 answers
    gone: int = 0  # 404 answers that dropped a cached entry
    unavailable: int = 0  # connection errors, timeouts, 5xx
    stale_served: int = 0
    fallback_served: int = 0
    background_refreshes: int = 0
    disk_corrupt: int = 0  # damaged disk-cache entries found (and set aside)

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


class FreshIndex:
    """The answers inside their freshness window, for a hot path with no clock read.

    ``labels[(prompt_id, label)]`` and ``pinned[(prompt_id, version)]`` hold exactly
    the answers whose ``fresh_until`` has not passed: one timer thread removes each
    at its deadline (a few milliseconds late at worst, under load). An answer is
    removed only if its entry is still the current one, under the same lock that
    puts a renewed one in, so a renewal is never lost to an old deadline.
    """

    def __init__(self, entries: dict[Key, Entry]) -> None:
        self.labels: dict[tuple[str, str], ServedVersion] = {}
        self.pinned: dict[tuple[str, str], ServedVersion] = {}
        self._entries = entries
        self._heap: list[tuple[float, int, Key, Entry]] = []
        self._seq = itertools.count()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closed = False

    def _table(self, key: Key) -> dict[tuple[str, str], ServedVersion]:
        return self.labels if key[1] == LABEL else self.pinned

    def put(self, key: Key, entry: Entry) -> None:
        if time.monotonic() >= entry.fresh_until:
            return
        with self._cond:
            if self._closed:
                return
            self._table(key)[key[0], key[2]] = entry.value
            heapq.heappush(self._heap, (entry.fresh_until, next(self._seq), key, entry))
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="promptshelf-expiry", daemon=True
                )
                self._thread.start()
            self._cond.notify()

    def drop(self, key: Key) -> None:
        with self._cond:
            self._table(key).pop((key[0], key[2]), None)

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                while self._heap and self._heap[0][0] <= now:
                    _, _, key, entry = heapq.heappop(self._heap)
                    if self._entries.get(key) is entry:
                        self._table(key).pop((key[0], key[2]), None)
                wait = self._heap[0][0] - now if self._heap else None
                self._cond.wait(wait)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self.labels.clear()
            self.pinned.clear()
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout=5)


class CacheCore:
    """State and rules; the sync and async clients add only the I/O."""

    def __init__(
        self,
        *,
        ttl: float,
        stale_while_revalidate: float,
        cache_dir: str | os.PathLike[str] | None,
        bundle: str | os.PathLike[str] | None,
        fallback: Fallback | Mapping[str, Fallback] | None,
        retry_after: float,
        default_label: str,
        fresh_index: bool = False,
    ) -> None:
        for name, value in (
            ("ttl", ttl),
            ("stale_while_revalidate", stale_while_revalidate),
            ("retry_after", retry_after),
        ):
            if not isinstance(value, int | float) or value < 0:
                raise ConfigurationError(f"{name} must be a number >= 0, got {value!r}")
        self.ttl = float(ttl)
        self.swr = float(stale_while_revalidate)
        self.retry_after = float(retry_after)
        self.default_label = validate_name(default_label, "label")
        self.fallback = fallback
        self.entries: dict[Key, Entry] = {}
        self.stats = ClientStats()
        self.down_until = 0.0
        self._warned: set[Key] = set()
        self._lock = threading.Lock()
        self.disk = DiskCache(cache_dir) if cache_dir is not None else None
        self.seed: dict[Key, ServedVersion] = {}
        self.fresh: FreshIndex | None = FreshIndex(self.entries) if fresh_index else None
        if bundle is not None:
            self.seed = load_bundle(bundle)

    @property
    def staleness_bound(self) -> float:
        """Seconds after a label move by which every ``get`` returns the new version
        (plus one round trip), while the server is reachable."""
        return self.ttl + self.swr

    # -- keys ------------------------------------------------------------------------

    def key(self, prompt_id: str, label: str | None, version: str | None) -> Key:
        validate_prompt_id(prompt_id)
        if version is not None:
            if label is not None:
                raise ConfigurationError("give a label or a version, not both")
            semver.parse(version)
            return (prompt_id, VERSION, version)
        return (prompt_id, LABEL, validate_name(label or self.default_label, "label"))

    # -- what is known without asking ----------------------------------------------------

    def known(self, key: Key) -> Entry | None:
        """The memory entry, else one built from the disk cache or the bundle (due now)."""
        entry = self.entries.get(key)
        if entry is not None:
            return entry
        found = self.disk.load(key) if self.disk is not None else None
        source = "disk"
        if self.disk is not None:
            self.stats.disk_corrupt = self.disk.corrupt_found
        if found is None:
            found, source = self.seed.get(key), "bundle"
        if found is None:
            return None
        from .wire import etag_of

        etag = etag_of(found)
        return Entry(served(found, etag, source, False), etag, 0.0, 0.0)

    def serve_now(self, key: Key, now: float) -> tuple[ServedVersion | None, bool]:
        """``(answer, revalidate_in_background)`` when the cache may answer without
        waiting; ``(None, False)`` when the caller must wait for the server."""
        entry = self.entries.get(key)
        if entry is None:
            return None, False
        if now < entry.fresh_until:
            return entry.value, False
        if now < entry.stale_until:
            return entry.value, True
        if now < self.down_until:  # the server failed moments ago: do not hammer it
            return self.stale_answer(key, entry), False
        return None, False

    # -- outcomes ----------------------------------------------------------------------

    def confirmed(self, key: Key, version: PromptVersion, etag: str | None) -> Entry:
        """The server answered 200 with ``version``."""
        from .wire import etag_of

        etag = etag or etag_of(version)
        now = time.monotonic()
        entry = Entry(served(version, etag, "server", False), etag, now + self.ttl, 0.0)
        entry = Entry(entry.value, etag, entry.fresh_until, entry.fresh_until + self.swr)
        self._store(key, entry)
        if self.disk is not None:
            self.disk.put(key, version)
        return entry

    def not_modified(self, key: Key, prior: Entry) -> Entry:
        """The server answered 304 for ``prior``'s ETag."""
        now = time.monotonic()
        value = prior.value
        if value.stale or value.source != "server":
            value = served(value, prior.etag, "server", False)
        entry = Entry(value, prior.etag, now + self.ttl, now + self.ttl + self.swr)
        self._store(key, entry)
        if self.disk is not None and prior.value.source == "bundle":
            self.disk.put(key, value)
        return entry

    def gone(self, key: Key) -> None:
        """The server answered 404: forget ``key`` everywhere."""
        with self._lock:
            existed = self.entries.pop(key, None) is not None
            self._warned.discard(key)
        if self.fresh is not None:
            self.fresh.drop(key)
        self.seed.pop(key, None)
        if self.disk is not None:
            self.disk.forget(key)
            existed = True
        if existed:
            self.stats.gone += 1

    def unreachable(
        self, key: Key, exc: ServerUnavailableError, fallback: Any = _NO_FALLBACK
    ) -> ServedVersion:
        """The server cannot answer: the last known answer flagged stale, else the fallback,
        else ``exc``."""
        self.stats.unavailable += 1
        self.down_until = time.monotonic() + self.retry_after
        entry = self.known(key)
        if entry is not None:
            if entry.value.source in ("disk", "bundle"):
                with self._lock:  # keep it in memory so the next call does not reread the disk
                    self.entries.setdefault(key, entry)
            return self.stale_answer(key, entry)
        chosen = self._fallback_for(key[0], fallback)
        if chosen is not None:
            self.stats.fallback_served += 1
            self._warn(key, f"{key[0]}: server unreachable and nothing cached; serving fallback")
            return fallback_version(key[0], chosen)
        raise exc

    def stale_answer(self, key: Key, entry: Entry) -> ServedVersion:
        self.stats.stale_served += 1
        source = entry.value.source if entry.value.source != "server" else "memory"
        self._warn(
            key,
            f"{key[0]} ({key[1]} {key[2]}): server unreachable; serving the {source} copy "
            f"of {entry.value.version}, stale",
        )
        return served(entry.value, entry.etag, source, True)

    def _warn(self, key: Key, message: str) -> None:
        with self._lock:
            if key in self._warned:
                return
            self._warned.add(key)
        warnings.warn(message, StalePromptWarning, stacklevel=_caller_level())

    def _store(self, key: Key, entry: Entry) -> None:
        with self._lock:
            self.entries[key] = entry
            self._warned.discard(key)
        if self.fresh is not None:
            self.fresh.put(key, entry)
        self.down_until = 0.0

    def _fallback_for(self, prompt_id: str, override: Any) -> Fallback | None:
        if override is not _NO_FALLBACK:
            return override  # type: ignore[no-any-return]
        table = self.fallback
        if table is None:
            return None
        if isinstance(table, Mapping):
            return table.get(prompt_id)
        return table

    def invalidate(self, prompt_id: str | None = None) -> None:
        with self._lock:
            for key in [k for k in self.entries if prompt_id is None or k[0] == prompt_id]:
                del self.entries[key]
                if self.fresh is not None:
                    self.fresh.drop(key)

    def close(self) -> None:
        if self.fresh is not None:
            self.fresh.close()
        if self.disk is not None:
            self.disk.close()


def _caller_level() -> int:
    """The ``stacklevel`` that points a warning at the first frame outside this package."""
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_globals.get("__name__", "").startswith(
        "promptshelf.client"
    ):
        frame = frame.f_back
        level += 1
    return level


def fallback_version(prompt_id: str, fallback: Fallback) -> ServedVersion:
    """A version built from an explicit fallback: ``source="fallback"``, always stale.

    Text makes a text prompt; messages (``{"role", "content"}`` as chat APIs take them,
    or ``{"role", "text"}`` as promptshelf stores them) make a chat prompt."""
    fields: dict[str, Any] = {}
    if isinstance(fallback, str):
        if not fallback.strip():
            raise ConfigurationError(f"the fallback for {prompt_id} is empty")
        fields["text"] = fallback
    else:
        messages = []
        for m in fallback:
            text = m.get("content", m.get("text"))
            if not isinstance(text, str) or not isinstance(m.get("role"), str):
                raise ConfigurationError(
                    f"fallback messages for {prompt_id} need a 'role' and a text 'content'"
                )
            messages.append({"role": m["role"], "text": text})
        if not messages:
            raise ConfigurationError(f"the fallback for {prompt_id} has no messages")
        fields["messages"] = messages
    try:
        prompt = Prompt(
            id=prompt_id, workflow_id="fallback", node_id=prompt_id, node_type="fallback", **fields
        )
    except PydanticValidationError as exc:
        raise ConfigurationError(
            f"the fallback for {prompt_id} is not a prompt: {exc.errors()[0]['msg']}"
        ) from None
    prompt.variables = placeholders(prompt.text)
    analysis = PromptAnalysis(
        prompt_id=prompt_id, overall_score=0.0, clarity_score=0.0, efficiency_score=0.0
    )
    version = PromptVersion(
        prompt_id=prompt_id,
        version="0.0.0",
        prompt=prompt,
        analysis=analysis,
        metadata={"fallback": True},
    )
    return served(version, None, "fallback", True)


def load_bundle(path: str | os.PathLike[str]) -> dict[Key, ServedVersion]:
    """Every label and version of a bundle written by ``promptshelf pull``."""
    from ..errors import StoreNotFoundError
    from .wire import etag_of

    if not os.path.isdir(path):
        raise StoreNotFoundError(f"no bundle at {os.fspath(path)!r}", context={"path": str(path)})
    cache = DiskCache(path)
    try:
        return {
            key: served(version, etag_of(version), "bundle", False)
            for key, version in cache.entries()
        }
    except OptimizerError:
        raise
    finally:
        cache.close()
