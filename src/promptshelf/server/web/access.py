"""Who may do what on the page: the same rules as the API (one place decides them).

The page asks its :class:`Gate` for the principal behind a request's key and
whether that principal may read, write, or move a given label. The server
passes the gate the API itself uses, so a write key cannot move a protected
label here any more than through ``/api/v1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SCOPES = ("read", "write", "admin")


@dataclass(frozen=True)
class Principal:
    """Who is acting: a key's name (the label history's ``actor``) and its scope."""

    name: str
    scope: str

    def can(self, scope: str) -> bool:
        return SCOPES.index(self.scope) >= SCOPES.index(scope)


class Refused(Exception):
    """An action the principal may not take; ``status`` is 401 (sign in) or 403."""

    def __init__(self, message: str, status: int = 403, code: str = "AUTH-FORBIDDEN") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class Gate(Protocol):
    def principal(self, secret: str | None) -> Principal | None:
        """The principal for ``secret`` (None: not signed in); None when nobody may act."""

    def keys_required(self) -> bool:
        """True once any API key exists: then reading needs a key too."""

    def check_label_move(self, principal: Principal | None, prompt_id: str, label: str) -> None:
        """Raise ``Refused`` unless ``principal`` may move ``label`` of ``prompt_id``."""


def require(principal: Principal | None, scope: str) -> Principal:
    if principal is None:
        raise Refused(f"sign in with an API key to {scope}", status=401, code="AUTH-REQUIRED")
    if not principal.can(scope):
        raise Refused(
            f"the key {principal.name!r} has scope {principal.scope!r}; this needs {scope!r}"
        )
    return principal


class OpenGate:
    """No keys at all (a loopback-only server): everyone local acts as ``local``, an admin."""

    def principal(self, secret: str | None) -> Principal | None:
        return Principal("local", "admin")

    def keys_required(self) -> bool:
        return False

    def check_label_move(self, principal: Principal | None, prompt_id: str, label: str) -> None:
        require(principal, "write")
