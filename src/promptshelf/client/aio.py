"""``AsyncPromptClient``: the same cache and rules as ``PromptClient``, for asyncio.

::

    async with AsyncPromptClient("http://127.0.0.1:8420") as client:
        version = await client.get("support_reply")

Concurrent ``get`` calls for one key share one request (an ``asyncio.gather`` of
200 gets on a cold key sends one); background revalidations are tasks on the
running loop. Disk-cache reads and writes run in a worker thread so they never
block the loop.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

import httpx

from ..errors import OptimizerError, ServerUnavailableError
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


class AsyncPromptClient:
    """An asyncio client with an in-memory (and optional disk) cache; one per event loop."""

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
        transport: httpx.AsyncBaseTransport | None = None,
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
        self._http = httpx.AsyncClient(
            base_url=self.url, headers=build_headers(api_key), timeout=timeout, transport=transport
        )
        self._flights: dict[Key, asyncio.Future[Entry]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False

    async def get(
        self,
        prompt_id: str,
        label: str | None = None,
        *,
        version: str | None = None,
        fallback: Fallback | None = _NO_FALLBACK,
    ) -> ServedVersion:
        """See :meth:`PromptClient.get`."""
        if version is None:
            found = self._fresh_labels.get((prompt_id, label or self._default_label))
        else:
            found = self._fresh_pinned.get((prompt_id, version))
        if found is not None:
            return found
        return await self._get_slow(self._core.key(prompt_id, label, version), fallback)

    async def render(
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
        found = await self.get(prompt_id, label, version=version, fallback=fallback)
        return found.render(variables, strict=strict, **more)

    async def prefetch(
        self, prompt_ids: Iterable[str | tuple[str, str]], label: str | None = None
    ) -> dict[str, ServedVersion | OptimizerError]:
        """See :meth:`PromptClient.prefetch`."""
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
            response = await self._send(request)
        except ServerUnavailableError:
            self._core.stats.unavailable += 1
            raise
        return await asyncio.to_thread(
            handle_batch, self._core, keys, response.status_code, response.content
        )

    def invalidate(self, prompt_id: str | None = None) -> None:
        self._core.invalidate(prompt_id)

    @property
    def stats(self) -> ClientStats:
        return self._core.stats

    @property
    def staleness_bound(self) -> float:
        return self._core.staleness_bound

    async def _get_slow(self, key: Key, fallback: Any) -> ServedVersion:
        if self._closed:
            raise OptimizerError("the client is closed", error_code="PS-CLOSED-001")
        answer, revalidate = self._core.serve_now(key, time.monotonic())
        if answer is not None:
            if revalidate and key not in self._flights:
                self._core.stats.background_refreshes += 1
                task = asyncio.get_running_loop().create_task(self._refresh_quietly(key))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return answer
        try:
            entry = await self._flight(key)
            return entry.value
        except ServerUnavailableError as exc:
            if self._core.disk is None:
                return self._core.unreachable(key, exc, fallback)
            return await asyncio.to_thread(self._core.unreachable, key, exc, fallback)

    async def _flight(self, key: Key) -> Entry:
        future = self._flights.get(key)
        if future is not None:
            return await asyncio.shield(future)
        future = self._flights[key] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_retrieve)
        try:
            entry = self._entries.get(key)
            if entry is not None and time.monotonic() < entry.fresh_until:
                result = entry
            else:
                result = await self._fetch(key)
            future.set_result(result)
            return result
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
            raise
        finally:
            del self._flights[key]

    async def _fetch(self, key: Key) -> Entry:
        disk = self._core.disk is not None
        prior = await asyncio.to_thread(self._core.known, key) if disk else self._core.known(key)
        self._core.stats.requests += 1
        response = await self._send(request_for(key, prior))
        if disk and response.status_code in (200, 404, 410):
            return await asyncio.to_thread(handle_response, self._core, key, prior, response)
        return handle_response(self._core, key, prior, response)

    async def _send(self, request: Request) -> httpx.Response:
        try:
            return await self._http.request(
                request.method,
                request.path,
                params=request.params,
                headers=request.headers,
                json=request.body,
            )
        except httpx.HTTPError as exc:
            raise unavailable(self.url, exc) from exc

    async def _refresh_quietly(self, key: Key) -> None:
        try:
            await self._flight(key)
        except OptimizerError:
            pass

    async def aclose(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._http.aclose()
        self._core.close()

    async def __aenter__(self) -> AsyncPromptClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def _retrieve(future: asyncio.Future[Entry]) -> None:
    """Mark a flight's exception as seen (its waiters, if any, raise it themselves)."""
    if not future.cancelled():
        future.exception()
