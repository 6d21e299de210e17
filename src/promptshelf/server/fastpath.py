"""The hot path, ``GET /api/v1/prompts/{id}``, answered before FastAPI sees the request.

Fetching the production prompt is what applications do on every start and
every cache revalidation, so it should cost what a bare ASGI endpoint costs.
:class:`FastPath` runs first, in :class:`~.app.App`'s ``__call__``, outside
FastAPI's middleware stack (error, telemetry and body-limit middlewares,
routing, dependency solving, response classes: about half the time of a
request on this machine). It recognises the route by string tests, reads the
two headers it needs straight from the ASGI scope, runs the same checks
(:class:`~.auth.Authenticator`, :func:`~promptshelf.ids.validate_prompt_id`,
the shared :func:`~.http.resolve`) and sends the version's canonical bytes with
the same headers as the declared FastAPI route, then records the request for
``/metrics`` and the access log as :class:`~.app.Observe` does for the rest.

What a request costs once warm: an answer by label is kept per ``(prompt id,
query)`` with its header lists built once (200 and 304), and revalidated on
every request by the store's :meth:`~promptshelf.storage.base.VersionStorage.label_token`
(one ``lstat`` of the prompt's append-only label log on the file store). A label
moved by any process changes that token, so the next request reads the labels
again: an answer is never older than the request (reads stay linearizable), and
nothing is polled. A store that cannot vouch cheaply (SQLite, PostgreSQL, S3,
HTTP: ``label_token`` is None) is read on every request, as before; the
answer's bytes still come from the encoded-version cache. Keys are looked up by
the exact ``Authorization`` value for the key cache's TTL (revocation takes
effect within it, as everywhere).

It only ever answers successes (200 and 304). Anything else (an unknown query
parameter, a percent-escape in the path, a missing key, a bad id, a missing
version) returns ``False``, and the request goes on to the FastAPI route, which
answers it with its problem+json; the route also carries the OpenAPI description.
"""

from __future__ import annotations

import time
from collections.abc import Hashable
from dataclasses import dataclass
from json.encoder import encode_basestring_ascii as _js
from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from ..ids import validate_prompt_id
from . import app
from .app import Encoded, ServerState, record
from .auth import Principal
from .http import JSON, etag_matches, resolve, version_headers

PREFIX = "/api/v1/prompts/"
ROUTE = "/api/v1/prompts/{prompt_id}"
NOSNIFF = (b"x-content-type-options", b"nosniff")
_CONTENT_TYPE = (b"content-type", JSON.encode())
#: Answers and principals kept at most (a dict each; cleared when full: a cache, no LRU cost).
MAX_ANSWERS = 20_000
MAX_PRINCIPALS = 1_000


@dataclass(frozen=True)
class Answer:
    """A version answer, ready to send: its body and both header lists, built once."""

    body: bytes
    etag: str
    etag_bytes: bytes
    headers_200: list[tuple[bytes, bytes]]
    headers_304: list[tuple[bytes, bytes]]
    token: Hashable | None  # the label token it was read under (None: not reusable)
    log_head: str  # the access-log line's start: event, method, path, route

    @classmethod
    def of(
        cls,
        prompt_id: str,
        found: Encoded,
        pinned: bool,
        extra: dict[str, str],
        token: Hashable | None,
    ) -> Answer:
        headers = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in version_headers(found.version, found.etag, pinned, extra).items()
        ]
        headers.append(NOSNIFF)
        full = [*headers, _CONTENT_TYPE, (b"content-length", str(len(found.body)).encode())]
        head = (
            f'{{"event": "request", "method": "GET", "path": {_js(PREFIX + prompt_id)}, '
            f'"route": {_js(ROUTE)}, '
        )
        return cls(found.body, found.etag, found.etag.encode(), full, headers, token, head)


class FastPath:
    """The GET-a-prompt fast path of one app (see the module's docstring)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._answers: dict[tuple[str, bytes], Answer] = {}
        self._principals: dict[bytes, tuple[float, Principal, str]] = {}
        self._label_token = state.storage.label_token
        self.hits = 0  # answers sent as kept, without reading the store

    async def __call__(self, scope: Scope, send: Send) -> bool:
        """Answer a GET of a prompt version if nothing about it is unusual; True when answered."""
        if scope["method"] != "GET":
            return False
        path: str = scope["path"]
        if not path.startswith(PREFIX) or b"%" in scope.get("raw_path", b""):
            return False  # escapes go to the full app, which refuses encoded separators
        started = time.perf_counter()
        prompt_id = path[len(PREFIX) :]
        if not prompt_id or "/" in prompt_id or ":" in prompt_id:
            return False
        authorization = if_none_match = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value
            elif name == b"if-none-match":
                if_none_match = value
            elif name == b"content-length" or name == b"transfer-encoding":
                return False  # a GET with a body: the full app decides
        known = self._principal(authorization, scope)
        if known is None:
            return False
        who, actor_js = known
        query: bytes = scope.get("query_string", b"")
        key = (prompt_id, query)
        answer = self._answers.get(key)
        if answer is not None and (
            answer.token is None or self._label_token(prompt_id) != answer.token
        ):
            answer = None
        if answer is not None:
            self.hits += 1
        else:
            answer = await self._read(prompt_id, query)
            if answer is None:
                return False
            if answer.token is not None:
                if len(self._answers) >= MAX_ANSWERS:
                    self._answers.clear()
                self._answers[key] = answer
        scope["promptshelf.principal"] = who.actor
        scope["promptshelf.route"] = ROUTE
        if if_none_match is not None and (
            if_none_match == answer.etag_bytes
            or etag_matches(if_none_match.decode("latin-1"), answer.etag)
        ):
            status, sent = 304, 0
            await send(
                {"type": "http.response.start", "status": 304, "headers": answer.headers_304}
            )
            await send({"type": "http.response.body", "body": b""})
        else:
            status, sent = 200, len(answer.body)
            await send(
                {"type": "http.response.start", "status": 200, "headers": answer.headers_200}
            )
            await send({"type": "http.response.body", "body": answer.body})
        elapsed = time.perf_counter() - started
        sink = app.access_sink
        if sink is None:  # logging configured by someone else (or off): the general way
            record(self.state, scope, "GET", ROUTE, status, elapsed, sent)
            return True
        self.state.metrics.observe("GET", ROUTE, status, elapsed)
        client = scope.get("client")
        sink(
            f'{answer.log_head}"status": {status}, "ms": {round(elapsed * 1000, 3)!r}, '
            f'"bytes": {sent}, "client": {_js(client[0]) if client else "null"}, '
            f'"principal": {actor_js}}}'
        )
        return True

    def _principal(self, authorization: bytes | None, scope: Scope) -> tuple[Principal, str] | None:
        """Who asks, if they may read, and their actor as JSON; None sends the request to
        the full app (401/403)."""
        now = time.monotonic()
        if authorization is not None:
            cached = self._principals.get(authorization)
            if cached is not None and now < cached[0]:
                return cached[1], cached[2]
        client = scope.get("client")
        try:
            who = self.state.auth.principal(
                None if authorization is None else authorization.decode("latin-1"),
                client[0] if client else None,
            )
        except Exception:  # the full app answers with the same checks and a problem+json
            return None
        if not who.has("read"):
            return None
        actor_js = _js(who.actor)
        if authorization is not None:
            if len(self._principals) >= MAX_PRINCIPALS:
                self._principals.clear()
            self._principals[authorization] = (now + self.state.auth.ttl, who, actor_js)
        return who, actor_js

    async def _read(self, prompt_id: str, query: bytes) -> Answer | None:
        """Resolve and encode from the store; the answer is reusable when it was resolved
        by a label and the store gave a label token *before* reading (so a move in between
        makes it stale, never the other way round)."""
        label = version = None
        if query:
            try:
                pairs = parse_qsl(
                    query.decode("ascii"), keep_blank_values=True, strict_parsing=True
                )
            except (UnicodeDecodeError, ValueError):
                return None
            for name, value in pairs:
                if name == "label" and label is None:
                    label = value
                elif name == "version" and version is None:
                    version = value
                else:
                    return None
        try:
            pid = validate_prompt_id(prompt_id)
            token = self._label_token(pid) if version is None else None
            found, pinned, extra = await resolve(self.state, pid, label, version)
        except Exception:  # the FastAPI route answers with the same checks and a problem+json
            return None
        by_label = extra.get("x-promptshelf-resolved", "").startswith("label:")
        return Answer.of(pid, found, pinned, extra, token if by_label else None)
