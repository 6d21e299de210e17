"""The web page's machinery: templates, the request context, errors, CSRF and sign-in.

Pages call :class:`VersionStorage` and :class:`VersionManager` directly, in the
server's process (not through the REST API). Every string from the store
reaches HTML through Jinja2 with autoescaping on, so a prompt or a label reason
containing ``<script>`` shows as text; the Content-Security-Policy runs only the
server's own script file besides. Every POST carries the CSRF token
(:mod:`.security`); changes need a signed-in key whose scope the server's own
auth accepts (:mod:`.access`).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...errors import OptimizerError
from ...manager import VersionManager
from ..auth import csrf_secret
from ..problems import CSRF_FAILED, REQUEST_MALFORMED, REQUEST_TOO_LARGE, ApiError, status_of
from . import security
from .access import Gate, Principal, top_scope

HERE = Path(__file__).parent
#: Largest form body accepted (a render's variables are the biggest form).
MAX_FORM_BYTES = 256 * 1024

#: Only this server's own script and stylesheet run; no inline script ever does.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass
class PageResult:
    """A template and its values, or a redirect after a change."""

    template: str | None = None
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    redirect: str | None = None
    sign_in: str | None = None  # an API key to remember (a successful sign-in)
    sign_out: bool = False


class PageContext:
    """What a page handler gets: the library, the request's parameters, who is acting."""

    def __init__(
        self,
        manager: VersionManager,
        gate: Gate,
        request: Request,
        form: Mapping[str, str],
        principal: Principal | None,
    ) -> None:
        self.manager = manager
        self.storage = manager.storage
        self.gate = gate
        self.request = request
        self.method = request.method
        self.path = request.path_params
        self.query = request.query_params
        self.form = form
        self.principal = principal
        self.base = str(request.scope.get("root_path", ""))

    @property
    def params(self) -> Mapping[str, str]:
        """The form of a POST, the query string of a GET."""
        return self.form if self.method == "POST" else self.query

    def url(self, *parts: str, **query: str) -> str:
        path = "/".join(quote(p, safe="") for p in parts)
        tail = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items() if v)
        return f"{self.base}/{path}" + (f"?{tail}" if tail else "")


Handler = Callable[[PageContext], PageResult]


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["q"] = lambda value: quote(str(value), safe="")
    env.filters["when"] = lambda value: (
        "-" if value is None else value.isoformat(sep=" ", timespec="seconds")
    )
    env.filters["score"] = lambda value: f"{value:g}"
    return env


class Pages:
    """Binds page handlers to the library, the gate and the templates."""

    def __init__(self, manager: VersionManager, gate: Gate, *, public: frozenset[Handler]) -> None:
        self.manager = manager
        self.gate = gate
        self.public = public  # handlers shown without a key (the sign-in page)
        self.env = environment()
        self._secret: bytes | None = None
        self._lock = threading.Lock()

    def secret(self) -> bytes:
        """The store's CSRF secret, read (or created) once."""
        with self._lock:
            if self._secret is None:
                self._secret = csrf_secret(self.manager.storage)
            return self._secret

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            form: dict[str, str] = {}
            if request.method == "POST":
                try:
                    form = await _read_form(request)
                except ApiError as exc:
                    return await run_in_threadpool(self._error, request, None, exc)
            return await run_in_threadpool(self._run, handler, request, form)

        return serve

    def _run(self, handler: Handler, request: Request, form: dict[str, str]) -> Response:
        principal: Principal | None = None
        try:
            client = request.client.host if request.client else None
            principal = self.gate.principal(security.signed_in_key(request), client)
            if request.method == "POST" and not security.form_ok(
                self.secret(), request, form.get(security.CSRF_FIELD)
            ):
                raise ApiError(
                    403,
                    CSRF_FAILED,
                    "the form's CSRF token is missing or is not this browser's; "
                    "reload the page and try again",
                )
            if principal is None and handler not in self.public:
                return RedirectResponse(self._base(request) + "/signin", status_code=303)
            result = handler(PageContext(self.manager, self.gate, request, form, principal))
        except ApiError as exc:
            return self._error(request, principal, exc)
        except OptimizerError as exc:
            return self._error(request, principal, exc)
        return self._respond(request, principal, result)

    def _respond(
        self, request: Request, principal: Principal | None, result: PageResult
    ) -> Response:
        if result.redirect is None:
            assert result.template is not None
            return self._html(request, principal, result.template, result.values, result.status)
        response: Response = RedirectResponse(result.redirect, status_code=303)
        if result.sign_in is not None or result.sign_out:
            security.new_session(request)  # a new session (and CSRF token) per sign-in
            security.remember_session(request, response)
        if result.sign_in is not None:
            security.remember_key(request, response, result.sign_in)
        if result.sign_out:
            security.forget_key(request, response)
        return response

    def _html(
        self,
        request: Request,
        principal: Principal | None,
        template: str,
        values: dict[str, Any],
        status: int,
    ) -> Response:
        page = self.env.get_template(template).render(
            base=self._base(request),
            csrf_field=security.CSRF_FIELD,
            csrf_token=security.form_token(self.secret(), request),
            principal=principal,
            scope=top_scope(principal) if principal else None,
            keys_required=self.gate.keys_required(),
            **values,
        )
        response = HTMLResponse(page, status_code=status)
        security.remember_session(request, response)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _error(
        self, request: Request, principal: Principal | None, exc: ApiError | OptimizerError
    ) -> Response:
        status = exc.status if isinstance(exc, ApiError) else status_of(exc)
        request.scope["promptshelf.error_code"] = exc.error_code  # for the access log
        values = {"code": exc.error_code, "message": exc.message, "status": status}
        return self._html(request, principal, "error.html", values, status)

    @staticmethod
    def _base(request: Request) -> str:
        return str(request.scope.get("root_path", ""))


async def _read_form(request: Request) -> dict[str, str]:
    """A URL-encoded form body (the only kind the pages send), size-limited."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise ApiError(413, REQUEST_TOO_LARGE, f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, REQUEST_MALFORMED, "the form is not UTF-8 URL-encoded") from None
