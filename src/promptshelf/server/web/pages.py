"""The web page: server-rendered HTML over the library, in the server's process.

Pages call :class:`VersionStorage` and :class:`VersionManager` directly (not
the REST API). Every string from the store reaches HTML through Jinja2 with
autoescaping on, so a prompt or a label reason containing ``<script>`` shows
as text. Every form that changes something carries the CSRF token
(:mod:`.security`) and needs a signed-in key whose scope the server's
:class:`~.access.Gate` accepts: the same checks the API makes.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response

from ...errors import LabelError, OptimizerError, ValidationError
from ...manager import VersionManager
from . import security
from .access import Gate, Principal, Refused

HERE = Path(__file__).parent
#: Largest form body accepted (a render's variables are the biggest form).
MAX_FORM_BYTES = 256 * 1024

Handler = Callable[["PageContext"], "PageResult"]


class PageResult:
    """A template and its values, or a redirect after a successful change."""

    def __init__(
        self,
        template: str | None = None,
        values: dict[str, Any] | None = None,
        *,
        status: int = 200,
        redirect: str | None = None,
    ) -> None:
        self.template = template
        self.values = values or {}
        self.status = status
        self.redirect = redirect


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
        self.path = request.path_params
        self.query = request.query_params
        self.form = form
        self.principal = principal
        self.base = str(request.scope.get("root_path", ""))

    def url(self, *parts: str, **query: str) -> str:
        path = "/".join(quote(p, safe="") for p in parts)
        tail = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items() if v)
        return f"{self.base}/{path}" + (f"?{tail}" if tail else "")


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

    def __init__(self, manager: VersionManager, gate: Gate) -> None:
        self.manager = manager
        self.gate = gate
        self.env = environment()

    def endpoint(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def serve(request: Request) -> Response:
            form: dict[str, str] = {}
            if request.method == "POST":
                form, problem = await _read_form(request)
                if problem is not None:
                    return self._error(request, None, problem, status=problem.status)
                if not security.csrf_ok(request, form.get(security.CSRF_FIELD)):
                    refused = Refused(
                        "the form is missing its CSRF token or it does not match; reload "
                        "the page and try again",
                        code="WEB-CSRF",
                    )
                    return self._error(request, None, refused, status=403)
            return await run_in_threadpool(self._run, handler, request, form)

        return serve

    def _run(self, handler: Handler, request: Request, form: dict[str, str]) -> Response:
        principal: Principal | None = None
        try:
            principal = self.gate.principal(security.signed_in_key(request))
            if principal is None and self.gate.keys_required() and handler is not sign_in:
                target = f"{request.scope.get('root_path', '')}/signin"
                return RedirectResponse(target, status_code=303)
            result = handler(PageContext(self.manager, self.gate, request, form, principal))
        except Refused as exc:
            return self._error(request, principal, exc, status=exc.status)
        except OptimizerError as exc:
            return self._error(request, principal, exc, status=_status(exc))
        if result.redirect is not None:
            response: Response = RedirectResponse(result.redirect, status_code=303)
            if "set_key" in result.values:
                security.remember_key(request, response, result.values["set_key"])
            if result.values.get("forget_key"):
                security.forget_key(request, response)
            return response
        assert result.template is not None
        return self._html(request, principal, result.template, result.values, result.status)

    def _html(
        self,
        request: Request,
        principal: Principal | None,
        template: str,
        values: dict[str, Any],
        status: int,
    ) -> Response:
        page = self.env.get_template(template).render(
            base=str(request.scope.get("root_path", "")),
            csrf_field=security.CSRF_FIELD,
            csrf_token=security.csrf_token(request),
            principal=principal,
            keys_required=self.gate.keys_required(),
            **values,
        )
        response = HTMLResponse(page, status_code=status)
        security.remember_csrf(request, response)
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _error(
        self, request: Request, principal: Principal | None, exc: Exception, *, status: int
    ) -> Response:
        code = getattr(exc, "error_code", None) or getattr(exc, "code", "PS-000")
        message = getattr(exc, "message", str(exc))
        values = {"code": code, "message": message, "status": status}
        return self._html(request, principal, "error.html", values, status)


#: Only this server's own scripts and styles run; inline scripts never do.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class FormProblem(Refused):
    pass


async def _read_form(request: Request) -> tuple[dict[str, str], FormProblem | None]:
    """A URL-encoded form body (the only kind the pages send), size-limited."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return {}, FormProblem(
                f"the form is over {MAX_FORM_BYTES} bytes", status=413, code="PS-SIZE-001"
            )
    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False)
    except (UnicodeDecodeError, ValueError):
        return {}, FormProblem("the form is not UTF-8 URL-encoded", status=400, code="WEB-FORM")
    return dict(pairs), None


def _status(exc: OptimizerError) -> int:
    if isinstance(exc, LookupError):
        return 404
    if isinstance(exc, FileExistsError | LabelError):
        return 409
    if isinstance(exc, ValidationError | ValueError):
        return 400
    return 500


def sign_in(ctx: PageContext) -> PageResult:
    """Shown and accepted without a key (the one page that must be)."""
    if ctx.request.method == "GET":
        return PageResult("signin.html", {"error": None})
    secret = ctx.form.get("api_key", "").strip()
    principal = ctx.gate.principal(secret) if secret else None
    if principal is None or not ctx.gate.keys_required():
        message = "no API keys exist on this server" if not ctx.gate.keys_required() else None
        return PageResult(
            "signin.html", {"error": message or "that key is unknown or revoked"}, status=401
        )
    back = ctx.form.get("next", "")
    target = back if back.startswith("/") and not back.startswith("//") else ctx.url("")
    return PageResult(redirect=target, values={"set_key": secret})


def sign_out(ctx: PageContext) -> PageResult:
    return PageResult(redirect=ctx.url("signin"), values={"forget_key": True})
