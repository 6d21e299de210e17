"""Label routes: list, read (with an ETag), move (If-Match), remove, history, rollback."""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from ..errors import LabelMovedError
from ..models import (
    LabelEvent,
    labels_after,
)
from ..storage.base import missing_label
from ..storage.labelevents import label_seq
from .app import state_of
from .auth import (
    Principal,
    check_label_change,
    require,
)
from .http import (
    _ERRORS,
    _PROBLEM,
    _VERSION,
    REVALIDATE,
    _label,
    _pid,
    _selector,
    caller,
    etag_matches,
    json_models,
    json_response,
    principal,
    version_response,
)
from .problems import LABEL_MOVED, REQUEST_INVALID, ApiError

router = APIRouter()

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


def _state(
    pid: str, name: str, number: str, protected: tuple[str, ...], events: list[LabelEvent]
) -> dict[str, Any]:
    """A :class:`LabelState` as JSON: where ``name`` points, whether it is protected, its ETag."""
    etag = label_etag(events, name)
    assert etag is not None  # a label that points somewhere has an event
    return {
        "prompt_id": pid,
        "label": name,
        "version": number,
        "protected": name in protected,
        "etag": etag,
    }


@router.get(
    "/prompts/{prompt_id}/labels",
    tags=["labels"],
    summary="Every label of a prompt, with its ETag",
    response_model=list[LabelState],
    responses=_ERRORS,
)
async def list_labels(request: Request, prompt_id: str) -> Response:
    state = caller(request)
    pid = _pid(prompt_id)
    events = await state.read(state.storage.label_history, pid)
    protected = state.auth.protected_labels()
    labels = sorted(labels_after(events).items())
    return json_response([_state(pid, name, n, protected, events) for name, n in labels])


@router.get(
    "/prompts/{prompt_id}/history",
    tags=["labels"],
    summary="The label history of a prompt: every set, move and removal, oldest first",
    response_model=list[LabelEvent],
    responses=_ERRORS,
)
async def prompt_history(request: Request, prompt_id: str) -> Response:
    state = caller(request)
    events = await state.read(state.storage.label_history, _pid(prompt_id))
    return json_models(events)


@router.get(
    "/prompts/{prompt_id}/labels/{label}",
    tags=["labels"],
    summary="Where a label points (ETag for If-Match)",
    response_model=LabelState,
    responses=_ERRORS,
)
async def get_label(request: Request, prompt_id: str, label: str) -> Response:
    state = caller(request)
    pid, name = _pid(prompt_id), _label(label)
    events = await state.read(state.storage.label_history, pid)
    number = labels_after(events).get(name)
    if number is None:
        raise missing_label(pid, name)
    body = _state(pid, name, number, state.auth.protected_labels(), events)
    return json_response(body, headers={"etag": body["etag"], "cache-control": REVALIDATE})


@router.get(
    "/prompts/{prompt_id}/labels/{label}/history",
    tags=["labels"],
    summary="The history of one label, oldest first",
    response_model=list[LabelEvent],
    responses=_ERRORS,
)
async def label_history(request: Request, prompt_id: str, label: str) -> Response:
    state = caller(request)
    events = await state.read(state.storage.label_history, _pid(prompt_id), _label(label))
    return json_models(events)


class LabelMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="a number, latest, best or label:NAME")
    reason: str | None = Field(None, max_length=2000)
    actor: str | None = Field(
        None, max_length=200, description="recorded as the actor for admin keys (migrations)"
    )


def _actor(who: Principal, claimed: str | None, given: bool) -> str | None:
    """The actor a label change records: an admin key may name another, or none (the HTTP
    storage backend and migrations carry the original actor over, even a missing one);
    anyone else is recorded as who they are."""
    return claimed if given and who.has("admin") else who.actor


_LABEL_ETAG = re.compile(r'^(?:W/)?"label-([1-9][0-9]{0,17})"$')


async def _expected_seq(request: Request, pid: str, label: str) -> int | None:
    """The condition a change carries, as the store's compare-and-swap takes it
    (``expected_seq``), so the check and the change are one atomic step in the store,
    whichever server process or host makes it: ``If-Match: "label-N"`` is N; ``If-None-Match:
    *`` (the label must be unset) is 0; ``If-Match: *`` or a list of ETags names the current
    state if it matches (412 ``LABEL-MOVED`` otherwise). None: no condition."""
    if_match = request.headers.get("if-match")
    unset = request.headers.get("if-none-match", "").strip() == "*"
    if if_match is None:
        return 0 if unset else None
    single = _LABEL_ETAG.match(if_match.strip())
    if single is not None and not unset:
        return int(single.group(1))
    state = state_of(request)
    events = await state.read(state.storage.label_history, pid)
    current = label_seq(events, label)
    etag = f'"label-{current}"' if current else None
    if unset or etag is None or not etag_matches(if_match, etag):
        raise _moved(
            LabelMovedError(
                f"label {label!r} is not at {if_match} (now {etag or 'unset'})",
                context={"prompt_id": pid, "label": label, "current_seq": current},
            )
        )
    return current


def _moved(exc: LabelMovedError) -> ApiError:
    """412 ``LABEL-MOVED``, naming the label's current ETag (``current_etag``)."""
    current = exc.context.get("current_seq")
    etag = f'"label-{current}"' if current else None
    return ApiError(412, LABEL_MOVED, exc.message, context={**exc.context, "current_etag": etag})


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
    expected = await _expected_seq(request, pid, name)
    actor = _actor(who, body.actor, "actor" in body.model_fields_set)

    def move() -> LabelEvent:
        # Resolving reads the prompt's directory: on the worker thread with the write, not
        # on the event loop, where a read queued behind other writers' fsyncs stalls every
        # request (4 ms a listing was measured under the write benchmark).
        number = state.manager.resolve(pid, selector)
        return state.storage.set_label(
            pid, name, number, actor=actor, reason=body.reason, expected_seq=expected
        )

    try:
        event = await state.write(move)
    except LabelMovedError as exc:
        raise _moved(exc) from None
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
    request: Request,
    prompt_id: str,
    label: str,
    reason: str | None = None,
    actor: str | None = Query(None, max_length=200),
    no_actor: bool = Query(False, description="admin: record no actor (migrations)"),
) -> Response:
    who = principal(request)
    state = state_of(request)
    pid, name = _pid(prompt_id), _label(label)
    check_label_change(who, name, state.auth.protected_labels())
    expected = await _expected_seq(request, pid, name)
    try:
        removed = await state.write(
            state.storage.remove_label,
            pid,
            name,
            actor=_actor(who, None if no_actor else actor, no_actor or actor is not None),
            reason=reason,
            expected_seq=expected,
        )
    except LabelMovedError as exc:
        raise _moved(exc) from None
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
