"""Who may do what on the page: the server's own auth rules, not a copy of them.

The page signs in with an API key (kept in a cookie) and asks the server's
:class:`~promptshelf.server.auth.Authenticator` who that is, exactly as the API
does with an ``Authorization`` header; scopes go through the same
:func:`~promptshelf.server.auth.require` and protected labels through the same
:func:`~promptshelf.server.auth.check_label_change`. A write key therefore cannot
move ``production`` here any more than through ``/api/v1``.
"""

from __future__ import annotations

from ..auth import (
    LOCAL,
    SCOPES,
    Authenticator,
    Principal,
    check_label_change,
    is_loopback,
    require,
)
from ..problems import AUTH_MISSING, ApiError

__all__ = ["Gate", "Principal", "require", "top_scope"]


class Gate:
    """The page's questions to the server's :class:`Authenticator`."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def principal(self, token: str | None, client_host: str | None) -> Principal | None:
        """Who is signed in (None: nobody, or a key that is unknown or revoked).

        With no key in the store a loopback browser is the ``local`` principal, as
        for the API; otherwise reading needs a signed-in key too.
        """
        if token:
            try:
                return self.auth.principal_for_token(token)
            except ApiError:
                return None
        if not self.auth.keys_exist() and is_loopback(client_host):
            return LOCAL
        return None

    def keys_required(self) -> bool:
        return self.auth.keys_exist()

    def require(self, principal: Principal | None, scope: str) -> Principal:
        if principal is None:
            raise ApiError(401, AUTH_MISSING, f"sign in with an API key that has {scope!r}")
        require(principal, scope)
        return principal

    def check_label_move(self, principal: Principal | None, label: str) -> Principal:
        """``write`` for a label, ``admin`` for a protected one (``ApiError`` 401/403)."""
        if principal is None:
            raise ApiError(401, AUTH_MISSING, "sign in with an API key to move a label")
        check_label_change(principal, label, self.auth.protected_labels())
        return principal


def top_scope(principal: Principal) -> str:
    """The widest scope a principal has (scopes nest: admin > write > read)."""
    held = [s for s in SCOPES if principal.has(s)]
    return held[-1] if held else "none"
