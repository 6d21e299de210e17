"""What every route shares: the principal, version bodies and ETags, resolution, JSON answers.

A version is always answered as its canonical JSON (the bytes the store
checksums), with ``ETag: "<sha256 of those bytes>"``: a client can check the
body against the ETag end to end, and revalidate with ``If-None-Match`` (304,
no body). Every id in a path goes through the library's validation before
anything is read.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal

from fastapi import Request
from pydantic import BaseModel
from starlette.responses import Response

from .. import semver
from ..errors import (
    VersionNotFoundError,
)
from ..ids import validate_name, validate_prompt_id
from ..manager import LABEL_SELECTOR
from ..models import (
    PromptVersion,
)
from ..storage.base import missing_label
from .app import Encoded, ServerState, state_of
from .auth import (
    Principal,
    require,
)
from .problems import REQUEST_INVALID, ApiError, safe_json

JSON = "application/json"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
DEFAULT_LABEL = "production"
BATCH_LIMIT = 100

_PROBLEM = {"content": {"application/problem+json": {}}, "description": "a problem (RFC 9457)"}
_VERSION = {"model": PromptVersion, "description": "the version's canonical JSON; ETag its SHA-256"}
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _PROBLEM,
    401: _PROBLEM,
    403: _PROBLEM,
    404: _PROBLEM,
    422: _PROBLEM,
}


def principal(request: Request, scope: str = "read") -> Principal:
    """Who is asking (401 if unknown), checked for ``scope`` (403)."""
    state = state_of(request)
    client = request.scope.get("client")
    who = state.auth.principal(request.headers.get("authorization"), client[0] if client else None)
    request.scope["promptshelf.principal"] = who.actor
    require(who, scope)
    return who


def caller(request: Request, scope: str = "read") -> ServerState:
    """The server's state, once the caller is known to hold ``scope`` (401/403 otherwise):
    how a route that needs no more of the principal starts."""
    principal(request, scope)
    return state_of(request)


async def run_report(request: Request, check: Literal["verify", "repair"]) -> Response:
    """``POST /admin/verify`` and ``/admin/repair``: the store's report, for admins."""
    state = caller(request, "admin")
    report = await state.write(getattr(state.storage, check))
    return json_response(report.to_dict())


def encode(version: PromptVersion) -> tuple[bytes, str]:
    """The canonical bytes of a version and its strong ETag (their SHA-256)."""
    encoded = Encoded.of(version)
    return encoded.body, encoded.etag


def etag_matches(header: str | None, etag: str) -> bool:
    """``If-None-Match`` / ``If-Match`` against one ETag (weak comparison for W/ forms)."""
    if not header:
        return False
    for part in header.split(","):
        tag = part.strip()
        if tag == "*" or tag == etag or (tag.startswith("W/") and tag[2:] == etag):
            return True
    return False


def version_response(
    request: Request,
    version: PromptVersion | Encoded,
    *,
    pinned: bool,
    status: int = 200,
    extra: dict[str, str] | None = None,
) -> Response:
    encoded = version if isinstance(version, Encoded) else Encoded.of(version)
    body, etag = encoded.body, encoded.etag
    headers = version_headers(encoded.version, etag, pinned, extra)
    if status == 200 and etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def version_headers(
    version: PromptVersion, etag: str, pinned: bool, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The headers of every version answer (the fast path sends the same ones)."""
    headers = {
        "etag": etag,
        "cache-control": IMMUTABLE if pinned else REVALIDATE,
        "x-promptshelf-version": version.version,
    }
    if extra:
        headers.update(extra)
    return headers


def json_models(items: Iterable[BaseModel]) -> Response:
    """A JSON list of models (label events, trash entries), each as its JSON form."""
    return json_response([item.model_dump(mode="json") for item in items])


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(safe_json(value), status_code=status, media_type=JSON, headers=headers)


def _pid(prompt_id: str) -> str:
    return validate_prompt_id(prompt_id)


_KNOWN_LABELS: set[str] = set()


def _label(name: str) -> str:
    if name in _KNOWN_LABELS:
        return name
    valid = validate_name(name, "label")
    if len(_KNOWN_LABELS) < 10_000:
        _KNOWN_LABELS.add(valid)
    return valid


async def resolve(
    state: ServerState, prompt_id: str, label: str | None, version: str | None
) -> tuple[Encoded, bool, dict[str, str]]:
    """The version a request names (encoded), whether it is pinned, and headers saying how."""
    storage = state.storage
    if label is not None and version is not None:
        raise ApiError(400, REQUEST_INVALID, "give ?label= or ?version=, not both")
    if version is not None:
        if version == "latest":
            found = await state.read(storage.get_latest_version, prompt_id)
            if found is None:
                raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
            return Encoded.of(found), False, {}
        if version == "best":
            best = await state.read(state.manager.get_best_version, prompt_id)
            return Encoded.of(best), False, {}
        semver.validate(version)
        pinned = await state.read(state.encoded, prompt_id, version)
        if pinned is None:
            raise VersionNotFoundError(prompt_id, version)
        return pinned, True, {}
    name = DEFAULT_LABEL if label is None else _label(label)
    number = await state.read(storage.get_label, prompt_id, name)
    if number is None:
        if label is not None:
            raise missing_label(prompt_id, name)
        latest = await state.read(storage.get_latest_version, prompt_id)  # documented fallback
        if latest is None:
            raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
        return Encoded.of(latest), False, {"x-promptshelf-resolved": "latest"}
    labelled = await state.read(state.encoded, prompt_id, number)
    if labelled is None:  # deleted between the two reads
        raise VersionNotFoundError(prompt_id, number, {"label": name})
    return labelled, False, {"x-promptshelf-resolved": f"label:{name}"}


def _selector(value: str) -> str:
    """A version selector: a number, ``latest``, ``best`` or ``label:NAME``."""
    if value in ("latest", "best"):
        return value
    if value.startswith(LABEL_SELECTOR):
        _label(value[len(LABEL_SELECTOR) :])
        return value
    return semver.validate(value)
