"""``PromptClient``: fetch prompts from a promptshelf server, cached, revalidated, offline-safe.

::

    from promptshelf.client import PromptClient

    with PromptClient("http://127.0.0.1:8420", api_key="...", cache_dir=".prompt-cache") as client:
        version = client.get("support_reply")                 # label "production"
        text = client.render("support_reply", {"name": "Ada"})

See :mod:`promptshelf.client.core` for the caching rules.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType
from typing import Any

import httpx

from ..errors import ConfigurationError, OptimizerError, ServerUnavailableError
from .core import (
    _NO_FALLBACK,
    DEFAULT_LABEL,
    DEFAULT_SWR,
    DEFAULT_TTL,
    CacheCore,
    ClientStats,
    Entry,
    Fallback,
    ServedVersion,
)
from .disk import Key
from .protocol import (
    Request,
    batch_request,
    build_headers,
    check_url,
    handle_batch,
    handle_response,
    request_for,
    unavailable,
)


class PromptClient:
    """A synchronous, thread-safe client with an in-memory (and optional disk) cache."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        bundle: str | os.PathLike[str] | None = None,
        ttl: float = DEFAULT_TTL,
        stale_while_revalidate: float = DEFAULT_SWR,
        fallback: Fallback | Mapping[str, Fallback] | None = None,
        timeout: float = 5.0,
        retry_after: float = 1.0,
        default_label: str = DEFAULT_LABEL,
        max_background: int = 4,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = check_url(url)
        self._core = CacheCore(
            ttl=ttl,
            stale_while_revalidate=stale_while_revalidate,
            cache_dir=cache_dir,
            bundle=bundle,
            fallback=fallback,
            retry_after=retry_after,
            default_label=default_label,
            fresh_index=True,
        )
        assert self._core.fresh is not None
        self._fresh_labels = self._core.fresh.labels
        self._fresh_pinned = self._core.fresh.pinned
        self._entries = self._core.entries
        self._default_label = self._core.default_label
        self._http = httpx.Client(
            base_url=self.url, headers=build_headers(api_key), timeout=timeout, transport=transport
        )
        self._flights: dict[Key, Future[Entry]] = {}
        self._flights_lock = threading.Lock()
        if max_background < 1:
            raise ConfigurationError(f"max_background must be >= 1, got {max_background!r}")
        self._background = ThreadPoolExecutor(
            max_workers=max_background, thread_name_prefix="promptshelf-refresh"
        )
        self._closed = False

    # -- reading ---------------------------------------------------------------------

    def get(
        self,
        prompt_id: str,
        label: str | None = None,
        *,
        version: str | None = None,
        fallback: Fallback | None = _NO_FALLBACK,
    ) -> ServedVersion:
        """The version ``label`` (default ``production``) or ``version`` names.

        Raises the library's not-found errors when the server says it is gone, and
        ``ServerUnavailableError`` when the server is down with nothing cached and no
        fallback.
        """
        if version is None:
            found = self._fresh_labels.get((prompt_id, label or self._default_label))
        else:
            found = self._fresh_pinned.get((prompt_id, version))
        if found is not None:
            return found  # the hot path: inside the window, no clock read, no lock, no request
        return self._get_slow(self._core.key(prompt_id, label, version), fallback)

    def render(
        self,
        prompt_id: str,
        variables: Mapping[str, object] | None = None,
        *,
        label: str | None = None,
        version: str | None = None,
        strict: bool = True,
        fallback: Fallback | None = _NO_FALLBACK,
        **more: object,
    ) -> str:
        """The prompt's text with its ``{{placeholders}}`` filled (strict by default)."""
        found = self.get(prompt_id, label, version=version, fallback=fallback)
        return found.render(variables, strict=strict, **more)

    def prefetch(
        self, prompt_ids: Iterable[str | tuple[str, str]], label: str | None = None
    ) -> dict[str, ServedVersion | OptimizerError]:
        """Fetch many prompts in one round trip (the batch endpoint) and cache them.

        Items are prompt ids (with ``label``, default ``production``) or
        ``(prompt_id, label)`` pairs. Returns each prompt's version, or the error the
        server gave for it (a missing label, say); raises when the server is down.
        """
        keys = [
            self._core.key(item, label, None)
            if isinstance(item, str)
            else self._core.key(item[0], item[1], None)
            for item in prompt_ids
        ]
        if not keys:
            return {}
        request = batch_request(keys, self._core)
        self._core.stats.requests += 1
        try:
            response = self._send(request)
        except ServerUnavailableError:
            self._core.stats.unavailable += 1
            raise
        return handle_batch(self._core, keys, response.status_code, response.content)

    def invalidate(self, prompt_id: str | None = None) -> None:
        """Forget memory-cached answers (of one prompt, or all); the next get asks the server."""
        self._core.invalidate(prompt_id)

    @property
    def stats(self) -> ClientStats:
        return self._core.stats

    @property
    def staleness_bound(self) -> float:
        """Seconds after which a moved label is seen (plus one round trip): ttl + swr."""
        return self._core.staleness_bound

    # -- the slow path ----------------------------------------------------------------

    def _get_slow(self, key: Key, fallback: Any) -> ServedVersion:
        if self._closed:
            raise OptimizerError("the client is closed", error_code="PS-CLOSED-001")
        answer, revalidate = self._core.serve_now(key, time.monotonic())
        if answer is not None:
            if revalidate:
                self._refresh_in_background(key)
            return answer
        try:
            return self._flight(key).value
        except ServerUnavailableError as exc:
            return self._core.unreachable(key, exc, fallback)

    def _flight(self, key: Key) -> Entry:
        """One request per key at a time: concurrent callers wait for the leader's answer."""
        with self._flights_lock:
            future = self._flights.get(key)
            leader = future is None
            if future is None:
                future = self._flights[key] = Future()
        if not leader:
            return future.result()
        try:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() < entry.fresh_until:
                result = entry  # another flight just finished
            else:
                result = self._fetch(key)
            future.set_result(result)
            return result
        except BaseException as exc:
            future.set_exception(exc)
            raise
        finally:
            with self._flights_lock:
                del self._flights[key]

    def _fetch(self, key: Key) -> Entry:
        prior = self._core.known(key)
        request = request_for(key, prior)
        self._core.stats.requests += 1
        response = self._send(request)
        return handle_response(self._core, key, prior, response)

    def _send(self, request: Request) -> httpx.Response:
        try:
            return self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                json=request.body,
            )
        except httpx.HTTPError as exc:
            raise unavailable(self.url, exc) from exc

    def _refresh_in_background(self, key: Key) -> None:
        with self._flights_lock:
            if key in self._flights or self._closed:
                return
        self._core.stats.background_refreshes += 1
        try:
            self._background.submit(self._refresh_quietly, key)
        except RuntimeError:  # shut down meanwhile
            pass

    def _refresh_quietly(self, key: Key) -> None:
        try:
            self._flight(key)
        except OptimizerError:
            pass  # gone: the entry is dropped; unreachable: the window runs out, then stale

    # -- lifecycle ---------------------------------------------------------------------

    def close(self) -> None:
        self._closed = True
        self._background.shutdown(wait=True)
        self._http.close()
        self._core.close()

    def __enter__(self) -> PromptClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
