"""The REST API under ``/api/v1``: prompts, versions, render, diff and batch-get.

docs/api.md describes every route, status and shape; labels are in
:mod:`.labels`, trash and administration in :mod:`.admin`.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Query, Request
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
from ..ids import validate_prompt_id
from ..models import (
    OptimizationResult,
    Prompt,
    PromptAnalysis,
    PromptVersion,
    labels_after,
)
from ..timestamps import as_utc, parse, utc_now
from .app import ServerState, state_of
from .auth import (
    check_label_change,
)
from .http import (
    _ERRORS,
    _PROBLEM,
    _VERSION,
    BATCH_LIMIT,
    JSON,
    _label,
    _pid,
    _selector,
    caller,
    encode,
    etag_matches,
    json_response,
    principal,
    resolve,
    version_response,
)
from .problems import REQUEST_INVALID, ApiError, safe_json

router = APIRouter()

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
    state = caller(request)
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
        updated = parse(summary["updated_at"])
        if updated_after is not None and as_utc(updated) <= as_utc(updated_after):
            continue
        items.append(summary)
    return json_response({"items": items, "next_cursor": next_cursor})


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
        "updated_at": as_utc(updated).isoformat(),
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
    state = caller(request)
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
    state = caller(request)
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
            "created_at": as_utc(v.created_at).isoformat(),
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
    state = caller(request)
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
    config: dict[str, Any] | None = Field(None, description="model settings (free JSON)")
    commit_message: str | None = None
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
            created_at=body.created_at or utc_now(),
            metadata={
                "author": "optimizer" if result else "baseline",
                "strategy": result.strategy.value if result else None,
                **metadata,
            },
            config=body.config,
            commit_message=body.commit_message,
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
            config=body.config,
            commit_message=body.commit_message,
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
    state = caller(request, "write")
    pid = _pid(prompt_id)
    restored = await state.write(state.storage.restore_version, pid, semver.validate(version))
    return version_response(request, restored, pinned=True)


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
    state = caller(request)
    pid = _pid(prompt_id)
    resolved, _, _ = await resolve(state, pid, body.label, body.version)
    found = resolved.version
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
    state = caller(request)
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
    state = caller(request)
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
        data, etag = found.body, found.etag
        head |= {"version_number": found.version.version, "etag": etag, "pinned": pinned}
        if item.if_none_match is not None and etag_matches(item.if_none_match, etag):
            parts.append(safe_json({**head, "status": 304}))
        else:
            parts.append(safe_json({**head, "status": 200})[:-1] + b', "version": ' + data + b"}")
    return Response(b'{"items": [' + b", ".join(parts) + b"]}", media_type=JSON)
