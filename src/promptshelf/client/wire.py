"""What the client and the HTTP backend share about the wire: paths, ETags, bodies, errors.

The server answers errors as RFC 9457 ``application/problem+json`` carrying our
``error_code``; :func:`error_from_response` turns one back into the library's own
exception class, so code written against an embedded store catches the same
errors against a server.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError as PydanticValidationError

from .. import errors
from ..errors import (
    OptimizerError,
    ProtocolError,
    VersionConflictError,
    VersionNotFoundError,
)
from ..models import PromptVersion
from ..storage import integrity
from ..storage.codec import encode_version

API = "/api/v1"


def q(segment: str) -> str:
    """One URL path segment: everything but unreserved characters percent-encoded."""
    return quote(segment, safe="")


def prompt_path(prompt_id: str) -> str:
    return f"{API}/prompts/{q(prompt_id)}"


def etag_of(version: PromptVersion) -> str:
    """The version's strong ETag: the SHA-256 of its canonical bytes (as the store seals them)."""
    return integrity.digest(encode_version(version))


def parse_etag(header: str | None) -> str | None:
    """The opaque tag of an ``ETag`` header (quotes and a weak prefix removed)."""
    if not header:
        return None
    value = header.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def quoted(etag: str) -> str:
    return f'"{etag}"'


def decode_version_body(content: bytes | str | Mapping[str, Any], where: str) -> PromptVersion:
    """A :class:`PromptVersion` from a response body: the version itself, or wrapped in an
    object under ``version``; anything else is a ``ProtocolError``."""
    try:
        data = json.loads(content) if isinstance(content, bytes | str) else content
    except ValueError as exc:
        raise ProtocolError(f"{where}: the server sent malformed JSON: {exc}") from None
    return version_from_data(data, where)


def version_from_data(data: Any, where: str) -> PromptVersion:
    if isinstance(data, Mapping) and "prompt" not in data:
        for key in ("version", "data", "item"):
            inner = data.get(key)
            if isinstance(inner, Mapping):
                data = inner
                break
    try:
        return PromptVersion.model_validate(data)
    except PydanticValidationError as exc:
        raise ProtocolError(
            f"{where}: the server sent something that is not a prompt version: "
            f"{exc.errors()[0]['msg']}",
            context={"where": where},
        ) from None


def _classes() -> dict[str, type[OptimizerError]]:
    found: dict[str, type[OptimizerError]] = {}
    pending: list[type[OptimizerError]] = [OptimizerError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.default_code, cls)
        pending.extend(cls.__subclasses__())
    # Several classes share a default code: the most specific public ones win.
    found["FS-SAVE-001"] = errors.StorageError
    found["FS-LOAD-002"] = errors.LoadError
    return found


_BY_CODE: dict[str, type[OptimizerError]] | None = None


def error_from_problem(
    status: int, problem: Mapping[str, Any], context: Mapping[str, Any] | None = None
) -> OptimizerError:
    """The library exception a problem+json body describes (``context`` fills what it lacks)."""
    global _BY_CODE
    if _BY_CODE is None:
        _BY_CODE = _classes()
    code = str(problem.get("error_code") or f"HTTP-{status}")
    message = str(problem.get("message") or problem.get("detail") or problem.get("title") or "")
    ctx: dict[str, Any] = dict(context or {})
    extra = problem.get("context")
    if isinstance(extra, Mapping):
        ctx = {**extra, **ctx}
    cls = _BY_CODE.get(code)
    if cls is not None and issubclass(cls, VersionNotFoundError | VersionConflictError):
        prompt_id = str(ctx.pop("prompt_id", ""))
        version = str(ctx.pop("version", ""))
        keep = {k: v for k, v in ctx.items() if k == "reason"}
        return cls(prompt_id, version, keep)
    if cls is None:
        cls = errors.StorageError if status >= 500 else OptimizerError
    return cls(message or f"the server answered {status}", error_code=code, context=ctx)


def error_from_response(
    status: int, content: bytes, context: Mapping[str, Any] | None = None
) -> OptimizerError:
    try:
        problem = json.loads(content) if content else {}
    except ValueError:
        problem = {}
    if not isinstance(problem, Mapping):
        problem = {}
    if "error_code" not in problem:
        text = content[:200].decode("utf-8", "replace").strip()
        problem = {
            "error_code": f"HTTP-{status}",
            "message": f"the server answered {status}" + (f": {text}" if text else ""),
        }
    return error_from_problem(status, problem, context)
