"""The page's guards: the CSRF token on every form, and who is signed in.

CSRF: a double-submit token. Every page sets a random token in an HttpOnly,
SameSite=Strict cookie and writes the same token into each form; a POST is
accepted only when the two agree (compared in constant time) and, when the
browser sends an ``Origin``, it is this server's. Another site can neither read
the cookie nor learn the token, so it cannot forge a form post, even to a
server on 127.0.0.1 that needs no key. Stateless, so any number of server
processes agree without sharing a secret.

Signing in: the API key itself is kept in an HttpOnly, SameSite=Strict cookie
and checked against the store on every request, so a revoked key stops working
at once, on every server process.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import Response

CSRF_COOKIE = "promptshelf_csrf"
CSRF_FIELD = "csrf_token"
KEY_COOKIE = "promptshelf_key"


def csrf_token(request: Request) -> str:
    """The token of this browser (from its cookie), or a new one ``remember_csrf`` will set."""
    current = request.cookies.get(CSRF_COOKIE, "")
    if _well_formed(current):
        return current
    fresh: str = request.scope.setdefault("promptshelf.csrf", secrets.token_urlsafe(32))
    return fresh


def remember_csrf(request: Request, response: Response) -> None:
    """Set the CSRF cookie when this request minted the token."""
    fresh = request.scope.get("promptshelf.csrf")
    if fresh:
        _cookie(request, response, CSRF_COOKIE, fresh)


def csrf_ok(request: Request, submitted: str | None) -> bool:
    """True when the form's token matches the cookie's and the origin (if sent) is ours."""
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not (_well_formed(cookie) and submitted):
        return False
    if not hmac.compare_digest(cookie.encode(), submitted.encode()):
        return False
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None  # an opaque origin ("null") is never ours
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _well_formed(token: str) -> bool:
    return 32 <= len(token) <= 128 and token.replace("-", "").replace("_", "").isalnum()


def remember_key(request: Request, response: Response, secret: str) -> None:
    _cookie(request, response, KEY_COOKIE, secret)


def forget_key(request: Request, response: Response) -> None:
    response.delete_cookie(KEY_COOKIE, path=_cookie_path(request))


def signed_in_key(request: Request) -> str | None:
    return request.cookies.get(KEY_COOKIE) or None


def _cookie(request: Request, response: Response, name: str, value: str) -> None:
    response.set_cookie(
        name,
        value,
        path=_cookie_path(request),
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )


def _cookie_path(request: Request) -> str:
    return str(request.scope.get("root_path", "")) or "/"
