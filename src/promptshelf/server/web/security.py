"""The page's CSRF tokens and its sign-in cookie.

CSRF: each browser gets a random session id in an HttpOnly, SameSite=Strict
cookie; every form carries ``HMAC(store secret, session id)``
(:func:`promptshelf.server.auth.csrf_token`, the secret a document in the
store, so any server process accepts a token any other issued). A POST is
accepted only when its token matches its session cookie and, when the browser
sends an ``Origin``, that origin is this server. Another site can neither read
the cookie nor compute the token, so it cannot forge a form post, not even to a
key-less server on 127.0.0.1.

Signing in keeps the API key in an HttpOnly, SameSite=Strict cookie (``Secure``
over HTTPS) and starts a new session id; the key is checked against the store on
every request (through the server's short cache), so a revoked key stops
working within seconds on every process.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

from ..auth import csrf_ok, csrf_token

SESSION_COOKIE = "promptshelf_session"
KEY_COOKIE = "promptshelf_key"
CSRF_FIELD = "csrf_token"
_NEW_SESSION = "promptshelf.web.session"


def form_token(secret: bytes, request: Request) -> str:
    """The CSRF token this browser's forms carry (starting a session when it has none)."""
    return csrf_token(secret, session_of(request))


def session_of(request: Request) -> str:
    fresh = request.scope.get(_NEW_SESSION)
    if fresh:
        return str(fresh)
    current = request.cookies.get(SESSION_COOKIE, "")
    if _well_formed(current):
        return current
    return new_session(request)


def new_session(request: Request) -> str:
    """Start a new session id (sent by :func:`remember_session`); at sign-in and sign-out."""
    fresh = secrets.token_urlsafe(32)
    request.scope[_NEW_SESSION] = fresh
    return fresh


def remember_session(request: Request, response: Response) -> None:
    fresh = request.scope.get(_NEW_SESSION)
    if fresh:
        _cookie(request, response, SESSION_COOKIE, str(fresh))


def form_ok(secret: bytes, request: Request, submitted: str | None) -> bool:
    """The form's token belongs to this browser's session, and the origin (if sent) is ours."""
    session = request.cookies.get(SESSION_COOKIE, "")
    if not (_well_formed(session) and csrf_ok(secret, session, submitted)):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")  # "null" never matches


def _well_formed(token: str) -> bool:
    return 32 <= len(token) <= 128 and token.replace("-", "").replace("_", "").isalnum()


def remember_key(request: Request, response: Response, secret: str) -> None:
    _cookie(request, response, KEY_COOKIE, secret)


def forget_key(request: Request, response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path=cookie_path(request))


def signed_in_key(request: Request) -> str | None:
    return request.cookies.get(KEY_COOKIE) or None


def _cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")) or "/"
