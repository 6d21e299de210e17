"""Trash, statistics, verify, protected labels and the documents routes."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from ..ids import validate_name
from ..models import (
    TrashEntry,
)
from .auth import (
    KEYS_NAMESPACE,
    SETTINGS_NAMESPACE,
    set_protected_labels,
)
from .http import (
    _ERRORS,
    _PROBLEM,
    _pid,
    caller,
    json_models,
    json_response,
    run_report,
)
from .problems import REQUEST_INVALID, ApiError

router = APIRouter()

# -- trash, stats, admin ----------------------------------------------------------------


@router.get(
    "/trash",
    tags=["trash"],
    summary="Deleted versions still in the trash, oldest deletion first",
    response_model=list[TrashEntry],
    responses=_ERRORS,
)
async def list_trash(request: Request, prompt_id: str | None = None) -> Response:
    state = caller(request)
    pid = None if prompt_id is None else _pid(prompt_id)
    entries = await state.read(state.storage.list_trash, pid)
    return json_models(entries)


@router.delete(
    "/trash",
    tags=["trash"],
    summary="Empty the trash (of what was deleted more than older_than_days ago): admin",
    responses=_ERRORS,
)
async def empty_trash(request: Request, older_than_days: float | None = None) -> Response:
    state = caller(request, "admin")

    older = None if older_than_days is None else timedelta(days=older_than_days)
    removed = await state.write(state.storage.empty_trash, older)
    return json_response({"removed": removed})


@router.get("/stats", tags=["operations"], summary="Store statistics", responses=_ERRORS)
async def stats(request: Request) -> Response:
    state = caller(request)
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
    return await run_report(request, "verify")


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
    state = caller(request)
    return json_response({"labels": list(state.auth.protected_labels())})


@router.put(
    "/admin/protected-labels",
    tags=["operations"],
    summary="Set the protected labels (every server process on the store follows): admin",
    response_model=ProtectedLabels,
    responses=_ERRORS,
)
async def put_protected(request: Request, body: ProtectedLabels) -> Response:
    state = caller(request, "admin")
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
    "/documents",
    tags=["documents"],
    summary="The namespaces that hold documents (the server's own left out): admin",
    responses=_ERRORS,
)
async def list_namespaces(request: Request) -> Response:
    state = caller(request, "admin")
    names = await state.read(state.storage.list_document_namespaces)
    return json_response([n for n in names if n not in _PRIVATE_NAMESPACES])


@router.get(
    "/documents/{namespace}",
    tags=["documents"],
    summary="Every document of a namespace: admin",
    responses=_ERRORS,
)
async def list_documents(request: Request, namespace: str) -> Response:
    state = caller(request, "admin")
    docs = await state.read(state.storage.list_documents, _namespace(namespace))
    return json_response([{"key": d.key, "revision": d.revision, "data": d.data} for d in docs])


@router.get(
    "/documents/{namespace}/{key}",
    tags=["documents"],
    summary='One document (ETag "rev-N"): admin',
    responses=_ERRORS,
)
async def get_document(request: Request, namespace: str, key: str) -> Response:
    state = caller(request, "admin")
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
    state = caller(request, "admin")
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
    state = caller(request, "admin")
    expected = _revision(request.headers.get("if-match"))
    deleted = await state.write(
        state.storage.delete_document, _namespace(namespace), key, expected_revision=expected
    )
    if not deleted:
        raise ApiError(404, "DOC-NOT-FOUND", f"no document {namespace}/{key}")
    return Response(status_code=204)
