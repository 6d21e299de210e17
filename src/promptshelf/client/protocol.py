"""Requests the clients send and what each answer means for the cache (no I/O here)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import httpx

from ..errors import ConfigurationError, OptimizerError, ProtocolError, ServerUnavailableError
from .core import CacheCore, Entry, ServedVersion
from .disk import LABEL, Key
from .wire import (
    API,
    decode_version_body,
    error_from_problem,
    error_from_response,
    parse_etag,
    prompt_path,
    quoted,
    version_from_data,
)

#: Answers that mean "the server cannot answer now" (serve stale), not "no such prompt".
UNAVAILABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
GONE_STATUSES = frozenset({404, 410})


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"a promptshelf server URL looks like http://host:8420, got {url!r}",
            context={"url": url},
        )
    return url.rstrip("/")


def build_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json", "User-Agent": "promptshelf-client"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


def request_for(key: Key, prior: Entry | None) -> Request:
    prompt_id, kind, name = key
    request = Request("GET", prompt_path(prompt_id), params={kind: name})
    if prior is not None and prior.etag:
        request.headers["If-None-Match"] = quoted(prior.etag)
    return request


def unavailable(url: str, exc: Exception) -> ServerUnavailableError:
    return ServerUnavailableError(
        f"cannot reach the promptshelf server at {url}: {type(exc).__name__}: {exc}",
        context={"url": url},
    )


def handle_response(
    core: CacheCore, key: Key, prior: Entry | None, response: httpx.Response
) -> Entry:
    """Apply one answer to the cache; the fresh entry, or raise what it means."""
    status = response.status_code
    where = f"{key[0]} ({key[1]} {key[2]})"
    if status == 200:
        version = decode_version_body(response.content, where)
        if version.prompt_id != key[0] or (key[1] != LABEL and version.version != key[2]):
            raise ProtocolError(
                f"{where}: the server answered {version.prompt_id} {version.version}"
            )
        core.stats.fetched += 1
        return core.confirmed(key, version, parse_etag(response.headers.get("etag")))
    if status == 304:
        if prior is None:
            raise ProtocolError(f"{where}: 304 Not Modified to a request without a tag")
        core.stats.not_modified += 1
        return core.not_modified(key, prior)
    if status in GONE_STATUSES:
        core.gone(key)
        raise error_from_response(status, response.content, _context(key))
    if status in UNAVAILABLE_STATUSES:
        raise ServerUnavailableError(
            f"the promptshelf server answered {status} for {where}",
            context={"status": status, "url": str(response.request.url)},
        )
    raise error_from_response(status, response.content, _context(key))


def _context(key: Key) -> dict[str, Any]:
    return {"prompt_id": key[0], key[1]: key[2]}


def batch_request(keys: list[Key], core: CacheCore) -> Request:
    items: list[dict[str, Any]] = []
    for key in keys:
        item: dict[str, Any] = {"prompt_id": key[0], key[1]: key[2]}
        prior = core.entries.get(key)
        if prior is not None and prior.etag:
            item["if_none_match"] = quoted(prior.etag)
        items.append(item)
    return Request("POST", f"{API}/prompts:batch-get", body={"items": items})


def handle_batch(
    core: CacheCore, keys: list[Key], status: int, content: bytes
) -> dict[str, ServedVersion | OptimizerError]:
    """Cache each item of a batch answer; each prompt's version or its error."""
    if status in UNAVAILABLE_STATUSES:
        raise ServerUnavailableError(f"the promptshelf server answered {status} to a batch get")
    if status != 200:
        raise error_from_response(status, content)
    try:
        body = json.loads(content)
    except ValueError as exc:
        raise ProtocolError(f"batch get: malformed JSON: {exc}") from None
    items = body.get("items") if isinstance(body, Mapping) else body
    if not isinstance(items, list) or len(items) != len(keys):
        raise ProtocolError("batch get: the answer does not hold one item per request")
    out: dict[str, ServedVersion | OptimizerError] = {}
    for key, item in zip(keys, items, strict=True):
        if not isinstance(item, Mapping):
            raise ProtocolError("batch get: an item is not an object")
        item_status = int(item.get("status", 200 if "version" in item else 404))
        etag = parse_etag(item.get("etag"))
        if item_status == 304 or item.get("not_modified"):
            prior = core.entries.get(key)
            if prior is None:
                raise ProtocolError("batch get: 304 for an item without a tag")
            core.stats.not_modified += 1
            out[key[0]] = core.not_modified(key, prior).value
        elif item_status == 200:
            version = version_from_data(item.get("version"), f"batch get {key[0]}")
            core.stats.fetched += 1
            out[key[0]] = core.confirmed(key, version, etag).value
        else:
            problem = item.get("error") or item.get("problem") or item
            error = error_from_problem(item_status, problem, _context(key))
            if item_status in GONE_STATUSES:
                core.gone(key)
            out[key[0]] = error
    return out
