"""Routes that make the whole ``VersionStorage`` contract reachable over HTTP.

``open_storage("http://host:8420")`` (:mod:`promptshelf.storage.http`) needs a few
operations the application-facing API has no reason to offer: saving a version
exactly as given (its number, timestamps and metadata byte for byte, as
``migrate`` and ``import`` do), ``repair`` and ``clear_all``. They live here so
the main API module stays about prompts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, TypeAdapter
from pydantic import ValidationError as PydanticValidationError
from starlette.responses import Response

from .. import semver
from ..errors import ValidationError
from ..ids import validate_prompt_id
from ..models import LabelEvent, PromptVersion, TrashEntry
from ..storage.base import TrashedVersion
from ..storage.codec import encode_version
from .app import state_of
from .http import (
    _ERRORS,
    _PROBLEM,
    _VERSION,
    caller,
    json_response,
    principal,
    run_report,
    version_response,
)
from .problems import REQUEST_INVALID, ApiError

router = APIRouter()


@router.get(
    "/prompts:ids",
    tags=["prompts"],
    summary="Ids of the prompts that have a version, sorted (no summaries: one store call)",
    responses=_ERRORS,
)
async def prompt_ids(request: Request) -> Response:
    state = caller(request)
    return json_response(await state.read(state.storage.list_prompts))


@router.get(
    "/prompts/{prompt_id}/versions:full",
    tags=["versions"],
    summary="Every version of a prompt, whole, oldest first ([] when none)",
    responses=_ERRORS,
)
async def full_versions(request: Request, prompt_id: str) -> Response:
    state = caller(request)
    versions = await state.read(state.storage.list_versions, validate_prompt_id(prompt_id))
    body = b"[" + b", ".join(encode_version(v) for v in versions) + b"]"
    return Response(body, media_type="application/json")


@router.put(
    "/prompts/{prompt_id}/versions/{version}",
    tags=["versions"],
    summary="Save a version exactly as given (create only: 409 if it exists); for migrations",
    status_code=201,
    response_model=None,
    responses={201: _VERSION, 409: _PROBLEM, 413: _PROBLEM, **_ERRORS},
)
async def put_version(request: Request, prompt_id: str, version: str) -> Response:
    state = caller(request, "write")
    pid = validate_prompt_id(prompt_id)
    number = semver.validate(version)
    body = await request.body()
    try:
        given = PromptVersion.model_validate_json(body)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationError(
            f"not a prompt version: {where}: {first['msg']}", context={"prompt_id": pid}
        ) from None
    if (given.prompt_id, given.version) != (pid, number):
        raise ValidationError(
            f"the body is {given.prompt_id!r} {given.version!r}, not the URL's {pid!r} {number!r}",
            context={"prompt_id": pid, "version": number},
        )
    await state.write(state.storage.save_version, given)
    location = f"/api/v1/prompts/{pid}/versions/{number}"
    return version_response(request, given, pinned=True, status=201, extra={"location": location})


@router.post(
    "/admin/repair",
    tags=["operations"],
    summary="Fix what verify reports, losing nothing intact (quarantine, never delete): admin",
    responses=_ERRORS,
)
async def repair(request: Request) -> Response:
    return await run_report(request, "repair")


@router.post(
    "/admin/clear",
    tags=["operations"],
    summary="Delete every version, label and trash entry (?confirm=true): admin",
    status_code=204,
    response_model=None,
    responses=_ERRORS,
)
async def clear(request: Request, confirm: bool = False) -> Response:
    principal(request, "admin")
    if not confirm:
        raise ApiError(400, REQUEST_INVALID, "clearing the whole store needs ?confirm=true")
    state = state_of(request)
    await state.write(state.storage.clear_all)
    return Response(status_code=204)


# -- carrying a whole store over HTTP (migrate, backup, sync) -----------------------------


@router.get(
    "/prompts:held",
    tags=["transfer"],
    summary="Ids of every prompt the store holds anything of (versions, label history, trash)",
    responses=_ERRORS,
)
async def held_prompts(request: Request) -> Response:
    state = caller(request)
    return json_response(await state.read(state.storage.list_held_prompts))


@router.get(
    "/trash:read",
    tags=["transfer"],
    summary="The trash with what each deleted version held, oldest deletion first",
    responses=_ERRORS,
)
async def read_trash(request: Request, prompt_id: str | None = None) -> Response:
    state = caller(request)
    pid = None if prompt_id is None else validate_prompt_id(prompt_id)
    items = await state.read(state.storage.read_trash, pid)
    return json_response(
        [
            {"entry": t.entry.model_dump(mode="json"), "version": _canonical(t.version)}
            for t in items
        ]
    )


@router.post(
    "/prompts/{prompt_id}/history:import",
    tags=["transfer"],
    summary="Make a whole label history this prompt's, verbatim (idempotent): admin",
    responses={409: _PROBLEM, **_ERRORS},
)
async def import_history(request: Request, prompt_id: str) -> Response:
    state = caller(request, "admin")
    pid = validate_prompt_id(prompt_id)
    events = _parse(list[LabelEvent], await request.body(), "label history")
    appended = await state.write(state.storage.import_label_events, pid, events)
    return json_response({"appended": appended})


class _Trashed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    entry: TrashEntry
    version: PromptVersion


@router.post(
    "/trash:import",
    tags=["transfer"],
    summary="Put a deleted version into the trash verbatim, with its deletion time: admin",
    responses={409: _PROBLEM, **_ERRORS},
)
async def import_trashed(request: Request) -> Response:
    state = caller(request, "admin")
    item = _parse(_Trashed, await request.body(), "trash item")
    added = await state.write(
        state.storage.import_trashed, TrashedVersion(item.entry, item.version)
    )
    return json_response({"added": added})


def _canonical(version: PromptVersion) -> Any:
    return json.loads(encode_version(version))


def _parse(kind: Any, body: bytes, what: str) -> Any:
    try:
        return TypeAdapter(kind).validate_json(body)
    except PydanticValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise ValidationError(f"not a {what}: {where}: {first['msg']}") from None


class _Purge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: str
    version: str
    trashed_at: datetime | None = None


@router.post(
    "/purge",
    tags=["transfer"],
    summary="Remove a live version (no trash copy), or one trash copy, for good: admin",
    responses={409: _PROBLEM, **_ERRORS},
)
async def purge(request: Request) -> Response:
    state = caller(request, "admin")
    item = _parse(_Purge, await request.body(), "purge request")
    if item.trashed_at is None:
        done = await state.write(state.storage.purge_version, item.prompt_id, item.version)
    else:
        entry = TrashEntry(
            prompt_id=item.prompt_id, version=item.version, deleted_at=item.trashed_at
        )
        done = await state.write(state.storage.purge_trashed, entry)
    return json_response({"purged": done})
