"""The REST API under ``/api/v1`` (docs/api.md describes every route, status and shape).

A version is always answered as its canonical JSON (the bytes the store
checksums), with ``ETag: "<sha256 of those bytes>"``: a client can check the
body against the ETag end to end, and revalidate with ``If-None-Match`` (304,
no body). Every id in a path goes through the library's validation before
anything is read.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError
from starlette.responses import Response

from .. import semver
from ..errors import (
    InvalidPromptIdError,
    LabelNotFoundError,
    ValidationError,
    VersionNotFoundError,
)
from ..ids import validate_name, validate_prompt_id
from ..manager import LABEL_SELECTOR
from ..models import (
    LabelEvent,
    OptimizationResult,
    Prompt,
    PromptAnalysis,
    PromptVersion,
    TrashEntry,
    labels_after,
)
from ..storage.base import missing_label
from .app import ServerState, state_of
from .auth import (
    KEYS_NAMESPACE,
    SETTINGS_NAMESPACE,
    Principal,
    check_label_change,
    require,
    set_protected_labels,
)
from .problems import LABEL_MOVED, REQUEST_INVALID, ApiError, safe_json

router = APIRouter()

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


# -- helpers --------------------------------------------------------------------------


def principal(request: Request, scope: str = "read") -> Principal:
    """Who is asking (401 if unknown), checked for ``scope`` (403)."""
    state = state_of(request)
    client = request.scope.get("client")
    who = state.auth.principal(request.headers.get("authorization"), client[0] if client else None)
    request.scope["promptshelf.principal"] = who.actor
    require(who, scope)
    return who


def encode(version: PromptVersion) -> tuple[bytes, str]:
    """The canonical bytes of a version and its strong ETag (their SHA-256)."""
    body = version.model_dump_json(indent=2).encode("utf-8")
    return body, f'"{hashlib.sha256(body).hexdigest()}"'


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
    version: PromptVersion,
    *,
    pinned: bool,
    status: int = 200,
    extra: dict[str, str] | None = None,
) -> Response:
    body, etag = encode(version)
    headers = {
        "etag": etag,
        "cache-control": IMMUTABLE if pinned else REVALIDATE,
        "x-promptshelf-version": version.version,
    }
    if extra:
        headers.update(extra)
    if status == 200 and etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return Response(body, status_code=status, media_type=JSON, headers=headers)


def json_response(value: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(safe_json(value), status_code=status, media_type=JSON, headers=headers)


def _pid(prompt_id: str) -> str:
    return validate_prompt_id(prompt_id)


def _label(name: str) -> str:
    return validate_name(name, "label")


async def resolve(
    state: ServerState, prompt_id: str, label: str | None, version: str | None
) -> tuple[PromptVersion, bool, dict[str, str]]:
    """The version a request names, whether it is pinned, and headers saying how."""
    storage = state.storage
    if label is not None and version is not None:
        raise ApiError(400, REQUEST_INVALID, "give ?label= or ?version=, not both")
    if version is not None:
        if version == "latest":
            found = await state.read(storage.get_latest_version, prompt_id)
            if found is None:
                raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
            return found, False, {}
        if version == "best":
            return await state.read(state.manager.get_best_version, prompt_id), False, {}
        semver.validate(version)
        pinned = await state.read(storage.get_version, prompt_id, version)
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
        return latest, False, {"x-promptshelf-resolved": "latest"}
    found = await state.read(storage.get_version, prompt_id, number)
    if found is None:  # deleted between the two reads
        raise VersionNotFoundError(prompt_id, number, {"label": name})
    return found, False, {"x-promptshelf-label": name, "x-promptshelf-resolved": f"label:{name}"}


def _selector(value: str) -> str:
    """A version selector: a number, ``latest``, ``best`` or ``label:NAME``."""
    if value in ("latest", "best"):
        return value
    if value.startswith(LABEL_SELECTOR):
        _label(value[len(LABEL_SELECTOR) :])
        return value
    return semver.validate(value)


# -- prompts and versions -------------------------------------------------------------


class PromptSummary(BaseModel):
    prompt_id: str
    latest_version: str
    versions: int
    labels: dict[str, str]
    updated_at: datetime


class PromptPage(BaseModel):
    items: list[PromptSummary]
    next_cursor: str | None = None


@router.get(
    "/prompts",
    tags=["prompts"],
    summary="List prompts (filter by prefix, label, updated after; cursor pagination)",
    response_model=PromptPage,
    responses=_ERRORS,
)
async def list_prompts(
    request: Request,
    prefix: str | None = None,
    label: str | None = None,
    updated_after: datetime | None = None,
    cursor: str | None = None,
    limit: int = Query(100, ge=1, le=500),
) -> Response:
    principal(request)
    state = state_of(request)
    after = _decode_cursor(cursor) if cursor else None
    if label is not None:
        _label(label)
    ids = await state.read(state.storage.list_prompts)
    items: list[dict[str, Any]] = []
    next_cursor = None
    for prompt_id in ids:
        if after is not None and prompt_id <= after:
            continue
        if prefix and not prompt_id.startswith(prefix):
            continue
        if len(items) == limit:
            next_cursor = _encode_cursor(items[-1]["prompt_id"])
            break
        summary = await state.read(_summary, state, prompt_id)
        if summary is None:
            continue
        if label is not None and label not in summary["labels"]:
            continue
        updated = datetime.fromisoformat(summary["updated_at"])
        if updated_after is not None and _naive(updated) <= _naive(updated_after):
            continue
        items.append(summary)
    return json_response({"items": items, "next_cursor": next_cursor})


def _naive(value: datetime) -> datetime:
    return value.replace(tzinfo=None) if value.tzinfo is not None else value


def _summary(state: ServerState, prompt_id: str) -> dict[str, Any] | None:
    storage = state.storage
    numbers = storage.list_version_numbers(prompt_id)
    latest = storage.get_latest_version(prompt_id) if numbers else None
    if latest is None:
        return None
    events = storage.label_history(prompt_id)
    updated = max([latest.created_at, *(e.at for e in events[-1:])])
    return {
        "prompt_id": prompt_id,
        "latest_version": latest.version,
        "versions": len(numbers),
        "labels": labels_after(events),
        "updated_at": updated.isoformat(),
    }


def _encode_cursor(prompt_id: str) -> str:
    return base64.urlsafe_b64encode(prompt_id.encode("utf-8")).decode("ascii")


def _decode_cursor(cursor: str) -> str:
    try:
        decoded = base64.b64decode(cursor.encode("ascii"), altchars=b"-_", validate=True)
        return validate_prompt_id(decoded.decode("utf-8"))
    except (ValueError, UnicodeError):
        raise ApiError(400, REQUEST_INVALID, "the cursor is not one this server issued") from None


@router.get(
    "/prompts/{prompt_id}",
    tags=["prompts"],
    summary="A prompt's version by label (default production, else latest), number, latest, best",
    response_model=None,
    responses={200: _VERSION, 304: {"description": "not modified"}, **_ERRORS},
)
async def get_prompt(
    request: Request,
    prompt_id: str,
    label: str | None = Query(None, description="a label; the default is production"),
    version: str | None = Query(None, description="a version number, latest or best"),
) -> Response:
    principal(request)
    state = state_of(request)
    found, pinned, headers = await resolve(state, _pid(prompt_id), label, version)
    return version_response(request, found, pinned=pinned, extra=headers)


class VersionInfo(BaseModel):
    version: str
    parent_version: str | None
    created_at: datetime
    overall_score: float
    author: str | None
    etag: str
    labels: list[str]


class VersionList(BaseModel):
    prompt_id: str
    versions: list[VersionInfo]


@router.get(
    "/prompts/{prompt_id}/versions",
    tags=["versions"],
    summary="Every version of a prompt, oldest first, with its ETag and labels",
    response_model=VersionList,
    responses=_ERRORS,
)
async def list_versions(request: Request, prompt_id: str) -> Response:
    principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    versions = await state.read(state.storage.list_versions, pid)
    labels = await state.read(state.storage.list_labels, pid)
    if not versions:
        raise VersionNotFoundError(pid, "any", {"reason": "no versions exist"})
    on: dict[str, list[str]] = {}
    for name, number in sorted(labels.items()):
        on.setdefault(number, []).append(name)
    items = [
        {
            "version": v.version,
            "parent_version": v.parent_version,
            "created_at": v.created_at.isoformat(),
            "overall_score": v.analysis.overall_score,
            "author": v.metadata.get("author"),
            "etag": encode(v)[1],
            "labels": on.get(v.version, []),
        }
        for v in versions
    ]
    return json_response({"prompt_id": pid, "versions": items})


@router.get(
    "/prompts/{prompt_id}/versions/{version}",
    tags=["versions"],
    summary="One version by number (Cache-Control: immutable)",
    response_model=None,
    responses={200: _VERSION, 304: {"description": "not modified"}, **_ERRORS},
)
async def get_version(request: Request, prompt_id: str, version: str) -> Response:
    principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    found = await state.read(state.storage.get_version, pid, semver.validate(version))
    if found is None:
        raise VersionNotFoundError(pid, version)
    return version_response(request, found, pinned=True)


class VersionCreate(BaseModel):
    """A new version. ``prompt.id`` and ``analysis.prompt_id`` default to the URL's id."""

    model_config = ConfigDict(extra="forbid")

    prompt: dict[str, Any] = Field(description="the Prompt (its fields; id optional)")
    analysis: dict[str, Any] = Field(description="the PromptAnalysis (prompt_id optional)")
    optimization_result: dict[str, Any] | None = None
    parent_version: str | None = None
    metadata: dict[str, Any] | None = None
    version: str | None = Field(
        None, description="an explicit number (409 if it exists); default: the next one"
    )
    created_at: datetime | None = Field(None, description="with an explicit version only")
    skip_if_unchanged: bool = False


def _build_parts(
    pid: str, body: VersionCreate
) -> tuple[Prompt, PromptAnalysis, OptimizationResult | None]:
    prompt_data = {**body.prompt}
    prompt_data.setdefault("id", pid)
    analysis_data = {**body.analysis}
    analysis_data.setdefault("prompt_id", pid)
    try:
        prompt = Prompt.model_validate(prompt_data)
        analysis = PromptAnalysis.model_validate(analysis_data)
        result = (
            None
            if body.optimization_result is None
            else OptimizationResult.model_validate({"prompt_id": pid, **body.optimization_result})
        )
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ValidationError(
            f"invalid version: {where}: {first['msg']}",
            context={"errors": [{"loc": e["loc"], "msg": e["msg"]} for e in exc.errors()[:20]]},
        ) from None
    if prompt.id != pid:
        raise ValidationError(
            f"prompt.id {prompt.id!r} is not the URL's {pid!r}", context={"prompt_id": pid}
        )
    return prompt, analysis, result


@router.post(
    "/prompts/{prompt_id}/versions",
    tags=["versions"],
    summary="Create a version (the next number, or an explicit one): 201, Location, ETag",
    status_code=201,
    response_model=None,
    responses={201: _VERSION, 409: _PROBLEM, 413: _PROBLEM, **_ERRORS},
)
async def create_version(request: Request, prompt_id: str, body: VersionCreate) -> Response:
    who = principal(request, "write")
    state = state_of(request)
    pid = _pid(prompt_id)
    prompt, analysis, result = _build_parts(pid, body)
    metadata = {"author": who.actor if who.key_id else None, **(body.metadata or {})}
    if metadata["author"] is None:
        del metadata["author"]
    if body.version is not None:
        number = semver.validate(body.version)
        if body.parent_version is not None:
            semver.validate(body.parent_version)
        version = PromptVersion(
            prompt_id=pid,
            version=number,
            prompt=prompt,
            analysis=analysis,
            optimization_result=result,
            parent_version=body.parent_version,
            created_at=body.created_at or datetime.now(),
            metadata={
                "author": "optimizer" if result else "baseline",
                "strategy": result.strategy.value if result else None,
                **metadata,
            },
        )
        await state.write(state.storage.save_version, version)
        created = version
    else:
        created = await state.write(
            state.manager.create_version,
            prompt,
            analysis,
            result,
            body.parent_version,
            metadata=metadata,
            skip_if_unchanged=body.skip_if_unchanged,
        )
    location = f"/api/v1/prompts/{pid}/versions/{created.version}"
    return version_response(request, created, pinned=True, status=201, extra={"location": location})


@router.delete(
    "/prompts/{prompt_id}/versions/{version}",
    tags=["versions"],
    summary="Move a version to the trash (409 if labelled, unless force)",
    status_code=204,
    response_model=None,
    responses={409: _PROBLEM, **_ERRORS},
)
async def delete_version(
    request: Request, prompt_id: str, version: str, force: bool = False
) -> Response:
    who = principal(request, "write")
    state = state_of(request)
    pid = _pid(prompt_id)
    number = semver.validate(version)
    if force:
        labels = await state.read(state.storage.list_labels, pid)
        for name, points_at in labels.items():
            if points_at == number:
                check_label_change(who, name, state.auth.protected_labels())
    deleted = await state.write(state.storage.delete_version, pid, number, force=force)
    if not deleted:
        raise VersionNotFoundError(pid, number)
    return Response(status_code=204)


@router.post(
    "/prompts/{prompt_id}/versions/{version}/restore",
    tags=["trash"],
    summary="Bring a version back from the trash (409 if it exists again)",
    response_model=None,
    responses={200: _VERSION, 409: _PROBLEM, **_ERRORS},
)
async def restore_version(request: Request, prompt_id: str, version: str) -> Response:
    principal(request, "write")
    state = state_of(request)
    pid = _pid(prompt_id)
    restored = await state.write(state.storage.restore_version, pid, semver.validate(version))
    return version_response(request, restored, pinned=True)


# -- labels ---------------------------------------------------------------------------


def label_etag(events: list[LabelEvent], label: str) -> str | None:
    """A label's ETag: the sequence number of the last event that touched it."""
    seq = next((e.seq for e in reversed(events) if e.label == label), None)
    return None if seq is None else f'"label-{seq}"'


class LabelState(BaseModel):
    prompt_id: str
    label: str
    version: str
    protected: bool
    etag: str


@router.get(
    "/prompts/{prompt_id}/labels",
    tags=["labels"],
    summary="Every label of a prompt, with its ETag",
    response_model=list[LabelState],
    responses=_ERRORS,
)
async def list_labels(request: Request, prompt_id: str) -> Response:
    principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    events = await state.read(state.storage.label_history, pid)
    protected = state.auth.protected_labels()
    items = [
        {
            "prompt_id": pid,
            "label": name,
            "version": number,
            "protected": name in protected,
            "etag": label_etag(events, name),
        }
        for name, number in sorted(labels_after(events).items())
    ]
    return json_response(items)


@router.get(
    "/prompts/{prompt_id}/history",
    tags=["labels"],
    summary="The label history of a prompt: every set, move and removal, oldest first",
    response_model=list[LabelEvent],
    responses=_ERRORS,
)
async def prompt_history(request: Request, prompt_id: str) -> Response:
    principal(request)
    state = state_of(request)
    events = await state.read(state.storage.label_history, _pid(prompt_id))
    return json_response([e.model_dump(mode="json") for e in events])


@router.get(
    "/prompts/{prompt_id}/labels/{label}",
    tags=["labels"],
    summary="Where a label points (ETag for If-Match)",
    response_model=LabelState,
    responses=_ERRORS,
)
async def get_label(request: Request, prompt_id: str, label: str) -> Response:
    principal(request)
    state = state_of(request)
    pid, name = _pid(prompt_id), _label(label)
    events = await state.read(state.storage.label_history, pid)
    number = labels_after(events).get(name)
    if number is None:
        raise missing_label(pid, name)
    etag = label_etag(events, name)
    assert etag is not None  # a label that points somewhere has an event
    body = {
        "prompt_id": pid,
        "label": name,
        "version": number,
        "protected": name in state.auth.protected_labels(),
        "etag": etag,
    }
    return json_response(body, headers={"etag": etag, "cache-control": REVALIDATE})


@router.get(
    "/prompts/{prompt_id}/labels/{label}/history",
    tags=["labels"],
    summary="The history of one label, oldest first",
    response_model=list[LabelEvent],
    responses=_ERRORS,
)
async def label_history(request: Request, prompt_id: str, label: str) -> Response:
    principal(request)
    state = state_of(request)
    events = await state.read(state.storage.label_history, _pid(prompt_id), _label(label))
    return json_response([e.model_dump(mode="json") for e in events])


class LabelMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="a number, latest, best or label:NAME")
    reason: str | None = Field(None, max_length=2000)


def _check_precondition(request: Request, events: list[LabelEvent], label: str) -> None:
    """``If-Match`` (the label's ETag, or ``*``: it must exist) and ``If-None-Match: *``
    (it must not exist); 412 ``LABEL-MOVED`` when the label is not in the named state."""
    current = label_etag(events, label) if label in labels_after(events) else None
    if_match = request.headers.get("if-match")
    if if_match is not None and (current is None or not etag_matches(if_match, current)):
        raise ApiError(
            412,
            LABEL_MOVED,
            f"label {label!r} is no longer at {if_match} (now {current or 'unset'})",
            context={"label": label, "current_etag": current},
        )
    if request.headers.get("if-none-match", "").strip() == "*" and current is not None:
        raise ApiError(
            412,
            LABEL_MOVED,
            f"label {label!r} exists (If-None-Match: *)",
            context={"label": label, "current_etag": current},
        )


@router.put(
    "/prompts/{prompt_id}/labels/{label}",
    tags=["labels"],
    summary="Point a label at a version (If-Match: 412 when it moved; protected: admin)",
    response_model=LabelEvent,
    responses={409: _PROBLEM, 412: _PROBLEM, **_ERRORS},
)
async def put_label(request: Request, prompt_id: str, label: str, body: LabelMove) -> Response:
    who = principal(request)
    state = state_of(request)
    pid, name = _pid(prompt_id), _label(label)
    check_label_change(who, name, state.auth.protected_labels())
    selector = _selector(body.version)
    events = await state.read(state.storage.label_history, pid)
    _check_precondition(request, events, name)
    number = await state.read(state.manager.resolve, pid, selector)
    event = await state.write(
        state.storage.set_label, pid, name, number, actor=who.actor, reason=body.reason
    )
    etag = f'"label-{event.seq}"'
    return json_response(event.model_dump(mode="json"), headers={"etag": etag})


@router.delete(
    "/prompts/{prompt_id}/labels/{label}",
    tags=["labels"],
    summary="Remove a label (If-Match honoured; protected: admin)",
    status_code=204,
    response_model=None,
    responses={412: _PROBLEM, **_ERRORS},
)
async def delete_label(
    request: Request, prompt_id: str, label: str, reason: str | None = None
) -> Response:
    who = principal(request)
    state = state_of(request)
    pid, name = _pid(prompt_id), _label(label)
    check_label_change(who, name, state.auth.protected_labels())
    events = await state.read(state.storage.label_history, pid)
    _check_precondition(request, events, name)
    removed = await state.write(
        state.storage.remove_label, pid, name, actor=who.actor, reason=reason
    )
    if not removed:
        raise missing_label(pid, name)
    return Response(status_code=204)


class Rollback(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str | None = Field(None, description="move this label back to where it was before")
    to_version: str | None = Field(
        None, description="or: create a new version carrying this version's content"
    )
    reason: str | None = Field(None, max_length=2000)


@router.post(
    "/prompts/{prompt_id}/rollback",
    tags=["labels"],
    summary="Roll a label back (200, the event) or the prompt to a version (201, a new version)",
    response_model=None,
    responses={201: _VERSION, 409: _PROBLEM, **_ERRORS},
)
async def rollback(request: Request, prompt_id: str, body: Rollback) -> Response:
    who = principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    if (body.label is None) == (body.to_version is None):
        raise ApiError(400, REQUEST_INVALID, "give exactly one of 'label' or 'to_version'")
    if body.label is not None:
        name = _label(body.label)
        check_label_change(who, name, state.auth.protected_labels())
        event = await state.write(
            state.manager.rollback_label, pid, name, actor=who.actor, reason=body.reason
        )
        return json_response(
            event.model_dump(mode="json"), headers={"etag": f'"label-{event.seq}"'}
        )
    require(who, "write")
    assert body.to_version is not None
    created = await state.write(
        state.manager.rollback, pid, _selector(body.to_version), author=who.actor
    )
    location = f"/api/v1/prompts/{pid}/versions/{created.version}"
    return version_response(request, created, pinned=True, status=201, extra={"location": location})


# -- render, diff, batch ------------------------------------------------------------


class RenderRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    variables: dict[str, Any] = Field(default_factory=dict)
    label: str | None = None
    version: str | None = None
    strict: bool = True


class Rendered(BaseModel):
    prompt_id: str
    version: str
    text: str
    missing: list[str]
    unused: list[str]


@router.post(
    "/prompts/{prompt_id}/render",
    tags=["prompts"],
    summary="Fill a version's placeholders (strict: 422 naming each missing variable)",
    response_model=Rendered,
    responses=_ERRORS,
)
async def render(request: Request, prompt_id: str, body: RenderRequest) -> Response:
    principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    found, _, _ = await resolve(state, pid, body.label, body.version)
    report = found.render_report(body.variables)
    if body.strict and report.missing:
        from ..errors import RenderError

        raise RenderError(
            f"no value for {', '.join(report.missing)} in {pid} {found.version}",
            context={"missing": list(report.missing), "unused": list(report.unused)},
        )
    return json_response(
        {
            "prompt_id": pid,
            "version": found.version,
            "text": report.text,
            "missing": list(report.missing),
            "unused": list(report.unused),
        }
    )


@router.get(
    "/prompts/{prompt_id}/diff",
    tags=["prompts"],
    summary="Compare two versions (numbers, latest, best or label:NAME): scores and a text diff",
    responses=_ERRORS,
)
async def diff(
    request: Request,
    prompt_id: str,
    from_: str = Query(..., alias="from"),
    to: str = Query(...),
) -> Response:
    principal(request)
    state = state_of(request)
    pid = _pid(prompt_id)
    result = await state.read(state.manager.compare_versions, pid, _selector(from_), _selector(to))
    return json_response(result)


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: str
    label: str | None = None
    version: str | None = None
    if_none_match: str | None = Field(None, description="an ETag: answered 304 with no version")


class BatchGet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    items: list[BatchItem] = Field(max_length=BATCH_LIMIT)


@router.post(
    "/prompts:batch-get",
    tags=["prompts"],
    summary=f"Many prompts in one round trip (up to {BATCH_LIMIT}), each with its ETag",
    responses=_ERRORS,
)
async def batch_get(request: Request, body: BatchGet) -> Response:
    principal(request)
    state = state_of(request)
    parts: list[bytes] = []
    for item in body.items:
        head: dict[str, Any] = {"prompt_id": item.prompt_id}
        try:
            found, pinned, _ = await resolve(state, _pid(item.prompt_id), item.label, item.version)
        except (InvalidPromptIdError, VersionNotFoundError, LabelNotFoundError) as exc:
            from .problems import problem_body, status_of

            status = status_of(exc)
            head |= {"status": status, "error": problem_body(status, exc.error_code, exc.message)}
            parts.append(safe_json(head))
            continue
        except ValidationError as exc:
            head |= {"status": 400, "error": {"error_code": exc.error_code, "message": exc.message}}
            parts.append(safe_json(head))
            continue
        data, etag = encode(found)
        head |= {"version_number": found.version, "etag": etag, "pinned": pinned}
        if item.if_none_match is not None and etag_matches(item.if_none_match, etag):
            parts.append(safe_json({**head, "status": 304}))
        else:
            parts.append(safe_json({**head, "status": 200})[:-1] + b', "version": ' + data + b"}")
    return Response(b'{"items": [' + b", ".join(parts) + b"]}", media_type=JSON)


# -- trash, stats, admin ----------------------------------------------------------------


@router.get(
    "/trash",
    tags=["trash"],
    summary="Deleted versions still in the trash, oldest deletion first",
    response_model=list[TrashEntry],
    responses=_ERRORS,
)
async def list_trash(request: Request, prompt_id: str | None = None) -> Response:
    principal(request)
    state = state_of(request)
    pid = None if prompt_id is None else _pid(prompt_id)
    entries = await state.read(state.storage.list_trash, pid)
    return json_response([e.model_dump(mode="json") for e in entries])


@router.delete(
    "/trash",
    tags=["trash"],
    summary="Empty the trash (of what was deleted more than older_than_days ago): admin",
    responses=_ERRORS,
)
async def empty_trash(request: Request, older_than_days: float | None = None) -> Response:
    principal(request, "admin")
    state = state_of(request)
    from datetime import timedelta

    older = None if older_than_days is None else timedelta(days=older_than_days)
    removed = await state.write(state.storage.empty_trash, older)
    return json_response({"removed": removed})


@router.get("/stats", tags=["operations"], summary="Store statistics", responses=_ERRORS)
async def stats(request: Request) -> Response:
    principal(request)
    state = state_of(request)
    found = await state.write(state.storage.get_storage_stats)
    hidden = {"path", "storage_dir", "index_file", "url"}
    return json_response({k: v for k, v in found.items() if k not in hidden})


@router.post(
    "/admin/verify",
    tags=["operations"],
    summary="Read every version and report what does not read back whole: admin",
    responses=_ERRORS,
)
async def verify(request: Request) -> Response:
    principal(request, "admin")
    state = state_of(request)
    report = await state.write(state.storage.verify)
    return json_response(report.to_dict())


class ProtectedLabels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    labels: list[str]


@router.get(
    "/admin/protected-labels",
    tags=["operations"],
    summary="Labels that only admin keys move",
    response_model=ProtectedLabels,
    responses=_ERRORS,
)
async def get_protected(request: Request) -> Response:
    principal(request)
    state = state_of(request)
    return json_response({"labels": list(state.auth.protected_labels())})


@router.put(
    "/admin/protected-labels",
    tags=["operations"],
    summary="Set the protected labels (every server process on the store follows): admin",
    response_model=ProtectedLabels,
    responses=_ERRORS,
)
async def put_protected(request: Request, body: ProtectedLabels) -> Response:
    principal(request, "admin")
    state = state_of(request)
    labels = await state.write(set_protected_labels, state.storage, body.labels)
    state.auth.forget()
    return json_response({"labels": list(labels)})


# -- documents (for an HTTP VersionStorage; the server's own namespaces stay private) ----

_PRIVATE_NAMESPACES = {KEYS_NAMESPACE, SETTINGS_NAMESPACE}


def _namespace(namespace: str) -> str:
    validate_name(namespace, "document namespace")
    if namespace in _PRIVATE_NAMESPACES:
        raise ApiError(403, "AUTH-SCOPE", f"namespace {namespace!r} belongs to the server itself")
    return namespace


def _revision(header: str | None) -> int | None:
    if header is None:
        return None
    tag = header.strip().strip('"')
    if not tag.startswith("rev-") or not tag[4:].isdigit():
        raise ApiError(400, REQUEST_INVALID, f"If-Match must be a document ETag, got {header!r}")
    return int(tag[4:])


@router.get(
    "/documents/{namespace}",
    tags=["documents"],
    summary="Every document of a namespace: admin",
    responses=_ERRORS,
)
async def list_documents(request: Request, namespace: str) -> Response:
    principal(request, "admin")
    state = state_of(request)
    docs = await state.read(state.storage.list_documents, _namespace(namespace))
    return json_response([{"key": d.key, "revision": d.revision, "data": d.data} for d in docs])


@router.get(
    "/documents/{namespace}/{key}",
    tags=["documents"],
    summary='One document (ETag "rev-N"): admin',
    responses=_ERRORS,
)
async def get_document(request: Request, namespace: str, key: str) -> Response:
    principal(request, "admin")
    state = state_of(request)
    doc = await state.read(state.storage.get_document, _namespace(namespace), key)
    if doc is None:
        raise ApiError(404, "DOC-NOT-FOUND", f"no document {namespace}/{key}")
    return json_response(
        {"key": doc.key, "revision": doc.revision, "data": doc.data},
        headers={"etag": f'"rev-{doc.revision}"'},
    )


@router.put(
    "/documents/{namespace}/{key}",
    tags=["documents"],
    summary='Create (no If-Match) or compare-and-swap replace (If-Match: "rev-N"): admin',
    responses={409: _PROBLEM, **_ERRORS},
)
async def put_document(
    request: Request, namespace: str, key: str, data: Annotated[dict[str, Any], Body()]
) -> Response:
    principal(request, "admin")
    state = state_of(request)
    expected = _revision(request.headers.get("if-match"))
    doc = await state.write(
        state.storage.put_document, _namespace(namespace), key, data, expected_revision=expected
    )
    return json_response(
        {"key": doc.key, "revision": doc.revision, "data": doc.data},
        status=201 if expected is None else 200,
        headers={"etag": f'"rev-{doc.revision}"'},
    )


@router.delete(
    "/documents/{namespace}/{key}",
    tags=["documents"],
    summary='Delete a document (If-Match: "rev-N" to delete only that revision): admin',
    status_code=204,
    response_model=None,
    responses={409: _PROBLEM, **_ERRORS},
)
async def delete_document(request: Request, namespace: str, key: str) -> Response:
    principal(request, "admin")
    state = state_of(request)
    expected = _revision(request.headers.get("if-match"))
    deleted = await state.write(
        state.storage.delete_document, _namespace(namespace), key, expected_revision=expected
    )
    if not deleted:
        raise ApiError(404, "DOC-NOT-FOUND", f"no document {namespace}/{key}")
    return Response(status_code=204)
