"""API keys, scopes, the request's principal, protected labels and CSRF tokens.

Keys live in the store (documents in the ``api-keys`` namespace), hashed: the
server keeps no state of its own, so every server process on a shared store
agrees on who may do what. A key is shown once, when created::

    psk_<12 hex: the key id>_<43 url-safe characters: the secret>

and stored as its SHA-256 (a 256-bit random secret needs no slow hash). Scopes
nest: ``admin`` includes ``write``, which includes ``read``. Labels named in the
store's ``protected-labels`` setting (``production`` when unset) move only with
``admin``.

With no key in the store, the server answers loopback clients as the ``local``
principal (every scope): that is why ``promptshelf serve`` refuses to bind any
other address until a key exists. Verified keys and the settings are cached for
``ttl`` seconds (2 by default), so a revocation reaches every process within it.

The web page uses the same helpers: :meth:`Authenticator.principal` for who is
signed in (its API key from a cookie), :func:`require` for scopes,
:func:`check_label_change` for protected labels, and :func:`csrf_token` /
:func:`csrf_ok` for its forms (the secret is a document too, so every process
accepts a token any process issued).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import DocumentConflictError, ValidationError
from ..ids import validate_name
from ..storage.base import VersionStorage
from ..timestamps import utc_now
from .problems import AUTH_INVALID, AUTH_MISSING, AUTH_SCOPE, LABEL_PROTECTED, ApiError

SCOPES = ("read", "write", "admin")
KEYS_NAMESPACE = "api-keys"
SETTINGS_NAMESPACE = "server-settings"
PROTECTED_LABELS_KEY = "protected-labels"
CSRF_SECRET_KEY = "csrf-secret"
DEFAULT_PROTECTED_LABELS = ("production",)
TOKEN_PREFIX = "psk_"
_ID_LEN = 12
_LOOPBACK_NAMES = {"localhost", "::1"}


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "key_id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
        }


@dataclass(frozen=True)
class Principal:
    """Who makes a request: an API key, or ``local`` (loopback, no key in the store)."""

    name: str
    key_id: str | None
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes

    @property
    def actor(self) -> str:
        """What label history records as the actor."""
        return self.name if self.key_id is None else f"{self.name} ({self.key_id})"


LOCAL = Principal("local", None, frozenset(SCOPES))


def expand_scopes(scopes: Iterable[str]) -> tuple[str, ...]:
    """Validated scopes with what each includes (admin > write > read), in order."""
    given = set()
    for scope in scopes:
        if scope not in SCOPES:
            raise ValidationError(
                f"unknown scope {scope!r}; valid: {', '.join(SCOPES)}", context={"scope": scope}
            )
        given.add(scope)
    if not given:
        raise ValidationError("a key needs at least one scope")
    top = max(SCOPES.index(s) for s in given)
    return SCOPES[: top + 1]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def key_id_of(token: str) -> str | None:
    """The key id a token names, or None when it does not look like one of ours."""
    if not token.startswith(TOKEN_PREFIX) or len(token) < len(TOKEN_PREFIX) + _ID_LEN + 2:
        return None
    key_id = token[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + _ID_LEN]
    if token[len(TOKEN_PREFIX) + _ID_LEN] != "_" or not all(
        c in "0123456789abcdef" for c in key_id
    ):
        return None
    return key_id


def create_key(storage: VersionStorage, name: str, scopes: Iterable[str]) -> tuple[ApiKey, str]:
    """A new key and its token (shown once: only its hash is stored)."""
    validate_name(name, "key name")
    expanded = expand_scopes(scopes)
    while True:
        key_id = secrets.token_hex(_ID_LEN // 2)
        token = f"{TOKEN_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        created = utc_now().isoformat(timespec="seconds")
        data = {"name": name, "scopes": list(expanded), "sha256": token_hash(token)}
        data["created_at"] = created
        try:
            storage.put_document(KEYS_NAMESPACE, key_id, data)
        except DocumentConflictError:  # 48 random bits collided: draw again
            continue
        return ApiKey(key_id, name, expanded, created), token


def list_keys(storage: VersionStorage) -> list[ApiKey]:
    return [_key(doc.key, doc.data) for doc in storage.list_documents(KEYS_NAMESPACE)]


def revoke_key(storage: VersionStorage, key_id: str) -> bool:
    """Delete a key; True if it existed. Other processes stop accepting it within their TTL."""
    if key_id.startswith(TOKEN_PREFIX):  # a whole token was given
        key_id = key_id_of(key_id) or key_id
    return storage.delete_document(KEYS_NAMESPACE, validate_name(key_id, "key id"))


def _key(key_id: str, data: dict[str, Any]) -> ApiKey:
    return ApiKey(
        key_id, str(data.get("name", "")), tuple(data.get("scopes", ())), str(data["created_at"])
    )


def protected_labels(storage: VersionStorage) -> tuple[str, ...]:
    doc = storage.get_document(SETTINGS_NAMESPACE, PROTECTED_LABELS_KEY)
    if doc is None:
        return DEFAULT_PROTECTED_LABELS
    return tuple(str(label) for label in doc.data.get("labels", ()))


def set_protected_labels(storage: VersionStorage, labels: Iterable[str]) -> tuple[str, ...]:
    wanted = sorted({validate_name(label, "label") for label in labels})
    while True:
        doc = storage.get_document(SETTINGS_NAMESPACE, PROTECTED_LABELS_KEY)
        try:
            storage.put_document(
                SETTINGS_NAMESPACE,
                PROTECTED_LABELS_KEY,
                {"labels": wanted},
                expected_revision=None if doc is None else doc.revision,
            )
            return tuple(wanted)
        except DocumentConflictError:
            continue


def is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    return host in _LOOPBACK_NAMES or host.startswith("127.") or host == "::ffff:127.0.0.1"


def require(principal: Principal, scope: str) -> None:
    if not principal.has(scope):
        raise ApiError(
            403,
            AUTH_SCOPE,
            f"this needs the {scope!r} scope; key {principal.name!r} has "
            f"{', '.join(sorted(principal.scopes)) or 'none'}",
            context={"needed": scope},
        )


def check_label_change(principal: Principal, label: str, protected: Iterable[str]) -> None:
    """Moving or removing a label needs ``write``; a protected one needs ``admin``."""
    if label in set(protected):
        if not principal.has("admin"):
            raise ApiError(
                403,
                LABEL_PROTECTED,
                f"label {label!r} is protected: moving it needs an admin key",
                context={"label": label},
            )
    else:
        require(principal, "write")


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal`, with a short cache."""

    def __init__(self, storage: VersionStorage, *, ttl: float = 2.0) -> None:
        self.storage = storage
        self.ttl = ttl
        self._lock = threading.Lock()
        self._verified: dict[str, tuple[float, Principal]] = {}
        self._keys_exist: tuple[float, bool] = (0.0, False)
        self._protected: tuple[float, tuple[str, ...]] = (0.0, ())

    def keys_exist(self) -> bool:
        now = time.monotonic()
        if now >= self._keys_exist[0]:
            exist = bool(self.storage.list_documents(KEYS_NAMESPACE))
            self._keys_exist = (now + self.ttl, exist)
        return self._keys_exist[1]

    def protected_labels(self) -> tuple[str, ...]:
        now = time.monotonic()
        if now >= self._protected[0]:
            self._protected = (now + self.ttl, protected_labels(self.storage))
        return self._protected[1]

    def forget(self) -> None:
        """Drop every cached answer (after this process changed keys or settings)."""
        with self._lock:
            self._verified.clear()
        self._keys_exist = (0.0, False)
        self._protected = (0.0, ())

    def principal(self, authorization: str | None, client_host: str | None) -> Principal:
        """Who sent the request; ``ApiError`` 401 when that cannot be established."""
        if not authorization:
            if not self.keys_exist() and is_loopback(client_host):
                return LOCAL
            raise ApiError(
                401,
                AUTH_MISSING,
                "this server needs an API key: send 'Authorization: Bearer <key>'",
                headers={"WWW-Authenticate": 'Bearer realm="promptshelf"'},
            )
        return self.principal_for_token(_token_of(authorization))

    def principal_for_token(self, token: str) -> Principal:
        digest = token_hash(token)
        now = time.monotonic()
        with self._lock:
            cached = self._verified.get(digest)
        if cached is not None and now < cached[0]:
            return cached[1]
        key_id = key_id_of(token)
        doc = None if key_id is None else self.storage.get_document(KEYS_NAMESPACE, key_id)
        if doc is None or not hmac.compare_digest(str(doc.data.get("sha256", "")), digest):
            raise ApiError(
                401,
                AUTH_INVALID,
                "unknown or revoked API key",
                headers={"WWW-Authenticate": 'Bearer realm="promptshelf", error="invalid_token"'},
            )
        key = _key(doc.key, doc.data)
        principal = Principal(key.name, key.key_id, frozenset(key.scopes))
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[digest] = (now + self.ttl, principal)
        return principal


def _token_of(authorization: str) -> str:
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return value
    if scheme.lower() == "basic" and value:  # Langfuse's SDK: public_key:secret_key
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            decoded = ""
        _, sep, password = decoded.partition(":")
        if sep and password:
            return password
    raise ApiError(
        401,
        AUTH_INVALID,
        "the Authorization header must be 'Bearer <key>' (or Basic with the key as password)",
        headers={"WWW-Authenticate": 'Bearer realm="promptshelf"'},
    )


# -- CSRF: an HMAC of the session's token, with a secret every process shares -------


def csrf_secret(storage: VersionStorage) -> bytes:
    """The store's CSRF secret, created on first use (any process may win the race)."""
    doc = storage.get_document(SETTINGS_NAMESPACE, CSRF_SECRET_KEY)
    if doc is None:
        try:
            storage.put_document(
                SETTINGS_NAMESPACE, CSRF_SECRET_KEY, {"secret": secrets.token_hex(32)}
            )
        except DocumentConflictError:
            pass
        doc = storage.get_document(SETTINGS_NAMESPACE, CSRF_SECRET_KEY)
        assert doc is not None  # created just now, by us or by the winner
    return bytes.fromhex(str(doc.data["secret"]))


def csrf_token(secret: bytes, session: str) -> str:
    """The token a form of ``session`` (e.g. the signed-in key's hash) must carry."""
    return hmac.new(secret, session.encode("utf-8"), hashlib.sha256).hexdigest()


def csrf_ok(secret: bytes, session: str, token: str | None) -> bool:
    return bool(token) and hmac.compare_digest(csrf_token(secret, session), str(token))
