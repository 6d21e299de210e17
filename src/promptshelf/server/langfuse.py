"""A read-only route in Langfuse's shape, so Langfuse's SDK ``get_prompt`` works unchanged.

``GET /api/public/v2/prompts/{name}?label=&version=`` answers like Langfuse's
API. Langfuse numbers versions 1, 2, 3...: here version ``n`` is the prompt's
``n``-th version in semantic order (oldest first), so deleting a version
renumbers the later ones; pin with a label to be safe. Without ``label`` and
``version`` the ``production`` label is served, as Langfuse does; ``latest`` is
the highest version. Authentication: Basic ``public_key:secret_key`` with the
API key as the secret (or Bearer).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from ..errors import VersionNotFoundError
from ..storage.base import missing_label
from .http import caller, encode, etag_matches, json_response

router = APIRouter()


@router.get(
    "/api/public/v2/prompts/{name}",
    tags=["langfuse"],
    summary="A prompt in Langfuse's shape (read-only; for Langfuse's SDK get_prompt)",
    response_model=None,
)
async def get_prompt(
    request: Request,
    name: str,
    label: str | None = None,
    version: int | None = Query(None, ge=1),
) -> Response:
    state = caller(request)
    storage = state.storage
    from ..ids import validate_name, validate_prompt_id

    pid = validate_prompt_id(name)
    numbers = await state.read(storage.list_version_numbers, pid)
    if not numbers:
        raise VersionNotFoundError(pid, "any", {"reason": "no versions exist"})
    if version is not None and label is not None:
        from .problems import REQUEST_INVALID, ApiError

        raise ApiError(400, REQUEST_INVALID, "give label or version, not both")
    labels = await state.read(storage.list_labels, pid)
    if version is not None:
        if version > len(numbers):
            raise VersionNotFoundError(pid, str(version), {"reason": "no such version number"})
        number = numbers[version - 1]
    elif label == "latest":
        number = numbers[-1]
    else:
        wanted = validate_name(label or "production", "label")
        found_number = labels.get(wanted)
        if found_number is None:
            raise missing_label(pid, wanted)
        number = found_number
    found = await state.read(storage.get_version, pid, number)
    if found is None:
        raise VersionNotFoundError(pid, number)
    _, etag = encode(found)
    on_it = sorted(n for n, v in labels.items() if v == number)
    if number == numbers[-1]:
        on_it.append("latest")
    messages = found.prompt.messages
    body: dict[str, Any] = {
        "id": f"{pid}@{number}",
        "name": pid,
        "type": "text" if messages is None else "chat",
        "prompt": found.prompt.text
        if messages is None
        else [{"role": m.role, "content": m.text} for m in messages],
        "version": numbers.index(number) + 1,
        "config": {**(found.config or {}), "promptshelf_version": number},
        "labels": on_it,
        "tags": [],
        "commitMessage": found.commit_message,
    }
    headers = {"etag": etag, "cache-control": "no-cache"}
    if etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers)
    return json_response(body, headers=headers)
