"""``create_app``: the ASGI application behind ``promptshelf serve``.

FastAPI, because it writes the OpenAPI document (``/api/v1/openapi.json``) and
the interactive docs (``/docs``) from the routes' own types, and validates
request bodies against the same pydantic models the library stores. The hot
read path stays cheap anyway: it declares no dependencies, answers with
pre-serialized bytes (a version's canonical JSON, whose SHA-256 is its ETag),
and reads from local stores on the event loop instead of a thread hop.

What wraps every request is one pure-ASGI middleware (:class:`Observe`, not
Starlette's ``BaseHTTPMiddleware``, which costs a task per request): it refuses
URL-encoded separators in paths, caps request bodies (413), times the request
for ``/metrics`` and writes the structured access log.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _js
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .. import __version__
from ..errors import InvalidPromptIdError, OptimizerError
from ..manager import VersionManager
from ..models import PromptVersion
from ..storage.base import VersionStorage
from ..storage.codec import MAX_VERSION_BYTES
from . import problems
from .auth import Authenticator
from .metrics import Metrics
from .problems import ApiError

access_log = logging.getLogger("promptshelf.access")
log = logging.getLogger("promptshelf.server")

T = TypeVar("T")

#: A request body may carry one version at the size limit plus its JSON envelope.
DEFAULT_MAX_BODY = MAX_VERSION_BYTES + 64 * 1024
#: Backends whose reads are local and short: run them on the event loop, no thread hop.
INLINE_READ_BACKENDS = frozenset({"memory", "filesystem", "sqlite"})


@dataclass(frozen=True)
class Encoded:
    """A version with its canonical bytes and strong ETag (their SHA-256)."""

    version: PromptVersion
    body: bytes
    etag: str

    @classmethod
    def of(cls, version: PromptVersion) -> Encoded:
        body = version.model_dump_json(indent=2).encode("utf-8")
        return cls(version, body, f'"{hashlib.sha256(body).hexdigest()}"')


class EncodedCache:
    """Encoded versions by the store's :meth:`~VersionStorage.version_token`: a hit costs the
    token (a ``stat`` on the file store) instead of a read, a parse and a serialization."""

    def __init__(self, size: int = 4096) -> None:
        self._items: OrderedDict[Hashable, Encoded] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, storage: VersionStorage, prompt_id: str, number: str) -> Encoded | None:
        token = storage.version_token(prompt_id, number)
        if token is not None:
            with self._lock:
                found = self._items.get(token)
                if found is not None:
                    self._items.move_to_end(token)
                    self.hits += 1
                    return found
        self.misses += 1
        version = storage.get_version(prompt_id, number)
        if version is None:
            return None
        encoded = Encoded.of(version)
        if token is not None and self._size:
            with self._lock:
                self._items[token] = encoded
                if len(self._items) > self._size:
                    self._items.popitem(last=False)
        return encoded


@dataclass
class ServerState:
    """What every route needs; ``request.app.state.promptshelf`` (see :func:`state_of`)."""

    storage: VersionStorage
    manager: VersionManager
    auth: Authenticator
    metrics: Metrics = field(default_factory=Metrics.from_env)
    max_body: int = DEFAULT_MAX_BODY
    inline_reads: bool = True
    bodies: EncodedCache = field(default_factory=EncodedCache)

    def encoded(self, prompt_id: str, number: str) -> Encoded | None:
        """One version, encoded, through the cache when the store vouches for it."""
        return self.bodies.get(self.storage, prompt_id, number)

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store read: inline for local backends, on a worker thread otherwise."""
        if self.inline_reads:
            return fn(*args)
        return await run_in_threadpool(fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store write (durable writes wait on fsync or a commit) on a worker thread."""
        return await run_in_threadpool(fn, *args, **kwargs)


def state_of(request: Request) -> ServerState:
    state: ServerState = request.app.state.promptshelf
    return state


def create_app(
    storage: VersionStorage,
    *,
    max_body: int = DEFAULT_MAX_BODY,
    key_cache_seconds: float = 2.0,
    web: bool = True,
) -> FastAPI:
    """The application serving ``storage``: the API under ``/api/v1``, the Langfuse-compatible
    read route, ``/healthz``, ``/readyz``, ``/metrics`` and (when installed) the web page."""
    from . import admin, api, docs, labels, langfuse, storage_api

    state = ServerState(
        storage=storage,
        manager=VersionManager(storage),
        auth=Authenticator(storage, ttl=key_cache_seconds),
        max_body=max_body,
        inline_reads=storage.backend_name in INLINE_READ_BACKENDS,
    )
    app = App(
        **_without_telemetry(),
        lifespan=_warmed_up,
        title="promptshelf",
        version=__version__,
        summary="The version history of LLM prompts over HTTP",
        openapi_url=OPENAPI_URL,
        docs_url=None,  # ours, with Swagger UI served locally (see .docs)
        redoc_url=None,
    )
    app.state.promptshelf = state
    for module in (api, labels, admin, storage_api):
        app.include_router(module.router, prefix=API_PREFIX)
    app.include_router(langfuse.router)
    docs.install(app, OPENAPI_URL)
    _operations(app, state)
    _error_handlers(app, state)
    if web:
        _install_web(app, state)
    app.add_middleware(Observe, state=state)
    from .fastpath import FastPath  # it builds on the routes' helpers, which import this module

    fast = app.fast = FastPath(state)
    bodies = state.bodies
    state.metrics.cache_counts = lambda: (fast.hits + bodies.hits, bodies.misses)
    return app


@asynccontextmanager
async def _warmed_up(app: FastAPI) -> AsyncIterator[None]:
    """Under uvicorn, each worker warms up before it takes a connection (see :func:`warm_up`)."""
    await warm_up(app)
    yield


async def warm_up(app: FastAPI) -> float:
    """Build now what FastAPI builds on a worker's first request: the middleware stack and,
    for every route, its dependencies and pydantic adapters (0.1-0.4 s on this machine).
    Otherwise the first request that each worker takes pays it, which with ``--workers N``
    looks like "the first request is sometimes slow". One request to a path no route has
    walks every route; it goes to the router, not through ``Observe`` (nothing counted or
    logged). Returns the seconds it took (the worker's start-up line says it)."""
    started = time.perf_counter()
    if app.middleware_stack is None:
        app.middleware_stack = app.build_middleware_stack()
    scope: Scope = {
        "type": "http",
        "method": "GET",
        "path": "/.well-known/promptshelf-warm-up",
        "raw_path": b"/.well-known/promptshelf-warm-up",
        "query_string": b"",
        "headers": [],
        "client": None,
        "server": None,
        "scheme": "http",
        "http_version": "1.1",
        "root_path": "",
        "app": app,
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        pass

    try:
        await app.router(scope, receive, send)
    except StarletteHTTPException:  # the 404 it was meant to find
        pass
    elapsed = time.perf_counter() - started
    log.info("worker %d warmed up in %.0f ms (routes built)", os.getpid(), elapsed * 1000)
    return elapsed


def _without_telemetry() -> dict[str, Any]:
    """FastAPI >= 0.165 checks for OpenTelemetry on every request (tens of microseconds once
    ``opentelemetry`` is installed); ``/metrics`` and the access log are ours, so turn it off."""
    if "telemetry" not in inspect.signature(FastAPI.__init__).parameters:
        return {}
    return {"telemetry": {"tracing": False, "metrics": False, "logs": False}}


def _install_web(app: FastAPI, state: ServerState) -> None:
    """Mount the web page when its package is there: ``promptshelf.server.web.install``."""
    try:
        web_module = importlib.import_module(f"{__package__}.web")
    except ModuleNotFoundError as exc:
        if exc.name != f"{__package__}.web":
            raise
        return
    install: Callable[[FastAPI, ServerState], None] | None = getattr(web_module, "install", None)
    if install is not None:
        install(app, state)


def _operations(app: FastAPI, state: ServerState) -> None:
    @app.get("/healthz", tags=["operations"], summary="The process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["operations"], summary="The store is reachable")
    async def readyz() -> Response:
        try:
            await run_in_threadpool(state.storage.get_document, "server-settings", "readyz")
        except Exception as exc:  # any failure means not ready; the log says why
            log.warning("not ready: %s", exc)
            return problems.problem(503, problems.NOT_READY, f"the store is not reachable: {exc}")
        return Response(b'{"status":"ready"}', media_type="application/json")

    @app.get("/metrics", tags=["operations"], summary="Prometheus metrics of every worker")
    async def metrics() -> Response:
        stats = await run_in_threadpool(state.storage.get_storage_stats)
        return Response(
            state.metrics.render(stats), media_type="text/plain; version=0.0.4; charset=utf-8"
        )


def _error_handlers(app: FastAPI, state: ServerState) -> None:
    def answer(request: Request, response: Response, code: str) -> Response:
        request.scope["promptshelf.error_code"] = code
        return response

    @app.exception_handler(OptimizerError)
    async def library_error(request: Request, exc: OptimizerError) -> Response:
        return answer(request, problems.from_library(exc, request.url.path), exc.error_code)

    @app.exception_handler(ApiError)
    async def api_error(request: Request, exc: ApiError) -> Response:
        return answer(request, problems.from_api(exc, request.url.path), exc.error_code)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = exc.errors()
        if any(e.get("type") == "json_invalid" for e in errors):
            code, status, message = problems.REQUEST_MALFORMED, 400, "the body is not valid JSON"
        else:
            code, status = problems.REQUEST_INVALID, 422
            message = "; ".join(
                f"{'.'.join(str(p) for p in e.get('loc', ()))}: {e.get('msg')}" for e in errors[:5]
            )
        context = {"errors": [{k: e.get(k) for k in ("loc", "msg", "type")} for e in errors[:20]]}
        response = problems.problem(
            status, code, message, instance=request.url.path, context=context
        )
        return answer(request, response, code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code = {
            404: problems.HTTP_NOT_FOUND,
            405: problems.HTTP_METHOD,
            413: problems.REQUEST_TOO_LARGE,
            400: problems.REQUEST_MALFORMED,
        }.get(exc.status_code, f"HTTP-{exc.status_code}")
        message = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        response = problems.problem(
            exc.status_code,
            code,
            message,
            instance=request.url.path,
            headers=dict(exc.headers or {}),
        )
        return answer(request, response, code)

    @app.exception_handler(Exception)
    async def crash(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = problems.problem(
            500, problems.SERVER_ERROR, "internal error (the server log has the details)"
        )
        return answer(request, response, problems.SERVER_ERROR)


class _TooLarge(StarletteHTTPException):
    pass


class App(FastAPI):
    """FastAPI with the hot GET path in front of its middleware stack (see :mod:`.fastpath`)."""

    fast: Callable[[Scope, Send], Awaitable[bool]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.fast is not None and await self.fast(scope, send):
            return
        await super().__call__(scope, receive, send)


def record(
    state: ServerState,
    scope: Scope,
    method: str,
    template: str,
    status: int,
    elapsed: float,
    sent: int,
) -> None:
    """Count a finished request in ``/metrics`` and write its access-log line."""
    state.metrics.observe(method, template, status, elapsed)
    code = scope.get("promptshelf.error_code")
    if status >= 400:
        state.metrics.error(template, status, code or f"HTTP-{status}")
    if access_log.isEnabledFor(logging.INFO):
        _log_access(scope, method, template, status, elapsed, sent, code)


class Observe:
    """Path checks, body cap, metrics and the access log, around every HTTP request."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500
        sent = 0
        refused = _refuse_path(scope)
        limit = self.state.max_body

        async def send_observed(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), _NOSNIFF]
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        received = 0

        async def receive_capped() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge(413, f"the request body is over {limit} bytes")
            return message

        try:
            if refused is None:
                refused = _refuse_length(scope, limit)
            if refused is not None:
                scope["promptshelf.error_code"] = refused.error_code
                await problems.from_api(refused, scope.get("path"))(scope, receive, send_observed)
            else:
                await self.app(scope, receive_capped, send_observed)
        finally:
            elapsed = time.perf_counter() - start
            template = _template(scope, status)
            record(self.state, scope, scope.get("method", ""), template, status, elapsed, sent)


_NOSNIFF = (b"x-content-type-options", b"nosniff")
API_PREFIX = "/api/v1"
OPENAPI_URL = f"{API_PREFIX}/openapi.json"


def _template(scope: Scope, status: int) -> str:
    """The route's path template (``/api/v1/prompts/{prompt_id}``): bounded metric labels."""
    path: str | None = scope.get("promptshelf.route") or getattr(scope.get("route"), "path", None)
    if path is None:
        return "unmatched" if status == 404 else "other"
    if scope.get("path", "").startswith(API_PREFIX) and not path.startswith(API_PREFIX):
        return API_PREFIX + path  # a route of an included router keeps its own path
    return path


_ENCODED_SEPARATORS = (b"%2f", b"%5c", b"%00")


def _refuse_path(scope: Scope) -> ApiError | None:
    """A path with ``%2F``, ``%5C`` or ``%00`` is refused: an id never holds a separator, and
    decoding one would let ``a%2Fversions`` reach another route. Non-UTF-8 escapes too."""
    raw: bytes = scope.get("raw_path") or b""
    if b"%" not in raw:
        return None
    lowered = raw.lower()
    bad = next((s for s in _ENCODED_SEPARATORS if s in lowered), None)
    reason = f"contains the encoded character {bad.decode().upper()}" if bad else None
    if reason is None:
        try:
            unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            reason = "has percent-escapes that are not UTF-8"
    if reason is None:
        return None
    error = InvalidPromptIdError(f"the request path {reason}; ids never contain one")
    return ApiError(400, error.error_code, error.message)


def _refuse_length(scope: Scope, limit: int) -> ApiError | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                length = int(value)
            except ValueError:
                return ApiError(400, problems.REQUEST_MALFORMED, "Content-Length is not a number")
            if length > limit:
                return ApiError(
                    413,
                    problems.REQUEST_TOO_LARGE,
                    f"the request body is {length} bytes; the limit is {limit}",
                    context={"bytes": length, "limit": limit},
                )
    return None


def _log_access(
    scope: Scope,
    method: str,
    route: str,
    status: int,
    elapsed: float,
    sent: int,
    code: str | None,
) -> None:
    """One JSON object per request; built by hand (a third of ``json.dumps``'s cost), every
    string through the JSON encoder's own escaping."""
    client = scope.get("client")
    principal = scope.get("promptshelf.principal")
    line = (
        f'{{"event": "request", "method": {_js(method)}, "path": {_js(scope.get("path", ""))}, '
        f'"route": {_js(route)}, "status": {status}, "ms": {round(elapsed * 1000, 3)!r}, '
        f'"bytes": {sent}, "client": {_js(client[0]) if client else "null"}'
        + ("" if principal is None else f', "principal": {_js(principal)}')
        + ("" if code is None else f', "error_code": {_js(code)}')
        + "}"
    )
    if access_sink is not None:
        access_sink(line)
    else:
        access_log.info(line)


#: Where access-log lines go when ``run.configure_logging`` installed its batched writer
#: (one write per batch instead of a logging record and a write per request).
access_sink: Callable[[str], None] | None = None
