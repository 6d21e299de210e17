"""Errors as RFC 9457 ``application/problem+json``, each with promptshelf's ``error_code``.

Every error the API returns goes through :func:`problem`: the standard members
(``type``, ``title``, ``status``, ``detail``, ``instance``) plus ``error_code``,
``message`` (the same text as ``detail``) and, when there is one, ``context``.
Library errors (:class:`OptimizerError`) map to a status by their class, once,
here.
"""

from __future__ import annotations

import json
from http import HTTPStatus
from typing import Any

from starlette.responses import Response

from ..errors import (
    ConfigurationError,
    ConnectionLostError,
    DocumentConflictError,
    InvalidPromptIdError,
    InvalidVersionError,
    LabelInUseError,
    LabelMovedError,
    LabelNotFoundError,
    LockTimeoutError,
    OptimizerError,
    PayloadTooLargeError,
    RenderError,
    StoreNotFoundError,
    ValidationError,
    VersionConflictError,
    VersionError,
    VersionNotFoundError,
)

PROBLEM_JSON = "application/problem+json"

#: Codes the server adds to the library's (README's error table lists them all).
AUTH_MISSING = "AUTH-MISSING"  # 401: no credentials, and keys exist
AUTH_INVALID = "AUTH-INVALID"  # 401: unknown or revoked key
AUTH_SCOPE = "AUTH-SCOPE"  # 403: the key lacks the scope
LABEL_PROTECTED = "LABEL-PROTECTED"  # 403: a protected label needs admin
LABEL_MOVED = "LABEL-MOVED"  # 412: If-Match names a state the label left
CSRF_FAILED = "CSRF-FAILED"  # 403: a form without a valid CSRF token
HTTP_NOT_FOUND = "HTTP-NOT-FOUND"  # 404: no such route
HTTP_METHOD = "HTTP-METHOD"  # 405
REQUEST_MALFORMED = "REQUEST-MALFORMED"  # 400: the body is not JSON
REQUEST_INVALID = "REQUEST-INVALID"  # 422: the body or query does not fit the schema
REQUEST_TOO_LARGE = PayloadTooLargeError.default_code  # 413
SERVER_ERROR = "SERVER-ERROR"  # 500: a bug; the log has the traceback
NOT_READY = "NOT-READY"  # 503: the store is not reachable

# Most specific first: the first class an error is an instance of decides its status.
_STATUS: list[tuple[type[OptimizerError], int]] = [
    (PayloadTooLargeError, 413),
    (InvalidPromptIdError, 400),
    (InvalidVersionError, 400),
    (VersionNotFoundError, 404),
    (LabelNotFoundError, 404),
    (StoreNotFoundError, 404),
    (VersionConflictError, 409),
    (DocumentConflictError, 409),
    (LabelInUseError, 409),
    (LabelMovedError, 412),
    (RenderError, 422),
    (ValidationError, 422),
    (ConfigurationError, 400),
    (LockTimeoutError, 503),
    (ConnectionLostError, 503),
    (VersionError, 409),
]


class ApiError(Exception):
    """An error the API answers with directly (auth, preconditions, bad requests)."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        context: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.context = context or {}
        self.headers = headers or {}


def status_of(exc: OptimizerError) -> int:
    for cls, status in _STATUS:
        if isinstance(exc, cls):
            return status
    return 500


def problem_body(
    status: int,
    error_code: str,
    message: str,
    *,
    instance: str | None = None,
    context: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": f"urn:promptshelf:error:{error_code}",
        "title": _title(status),
        "status": status,
        "detail": message,
        "error_code": error_code,
        "message": message,
    }
    if instance is not None:
        body["instance"] = instance
    if context:
        body["context"] = context
    return body


def problem(
    status: int,
    error_code: str,
    message: str,
    *,
    instance: str | None = None,
    context: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    body = problem_body(status, error_code, message, instance=instance, context=context)
    return Response(
        safe_json(body),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


def from_library(exc: OptimizerError, instance: str | None = None) -> Response:
    return problem(
        status_of(exc),
        exc.error_code,
        exc.message,
        instance=instance,
        context=_jsonable(exc.context),
    )


def from_api(exc: ApiError, instance: str | None = None) -> Response:
    return problem(
        exc.status,
        exc.error_code,
        exc.message,
        instance=instance,
        context=_jsonable(exc.context),
        headers=exc.headers,
    )


_HTML_SAFE = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def safe_json(value: Any) -> bytes:
    """JSON that no browser can take for HTML: ``<``, ``>`` and ``&`` are escaped."""
    return json.dumps(value, ensure_ascii=True, default=str).translate(_HTML_SAFE).encode("ascii")


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _jsonable(context: dict[str, Any]) -> dict[str, Any]:
    """Context values JSON can carry (anything else as its ``str``); file paths are kept
    out: a client has no business learning the server's directories."""
    return {k: v for k, v in json.loads(json.dumps(context, default=str)).items() if k != "path"}
