"""The hot path, ``GET /api/v1/prompts/{id}``, answered beside FastAPI rather than through it.

Fetching the production prompt is what applications do on every start and
every cache revalidation, so it should cost what a bare ASGI endpoint costs
plus the store read. FastAPI's routing, dependency solving and response
classes add about a millisecond per request on this machine, more than the
store read itself. So :func:`serve_fast` recognises the route by a string
test, reads the two headers it needs straight from the ASGI scope, runs the
same checks (:class:`Authenticator`, :func:`validate_prompt_id`, the shared
:func:`resolve`) and sends the version's canonical bytes with the same
headers as the declared FastAPI route.

It only ever answers successes (200 and 304). Anything else (an unknown query
parameter, a missing key, a bad id, a missing version) returns ``False``, and
the request goes on to the FastAPI route, which answers it with its
problem+json; the route also carries the OpenAPI description.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from starlette.types import Scope, Send

from ..ids import validate_prompt_id
from .app import ServerState
from .http import JSON, etag_matches, resolve, version_headers

PREFIX = "/api/v1/prompts/"
ROUTE = "/api/v1/prompts/{prompt_id}"
_CONTENT_TYPE = (b"content-type", JSON.encode())


async def serve_fast(state: ServerState, scope: Scope, send: Send) -> bool:
    """Answer a GET of a prompt version if nothing about it is unusual; True when answered."""
    if scope["method"] != "GET":
        return False
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return False
    prompt_id = path[len(PREFIX) :]
    if not prompt_id or "/" in prompt_id or ":" in prompt_id:
        return False
    label = version = None
    query: bytes = scope.get("query_string", b"")
    if query:
        try:
            pairs = parse_qsl(query.decode("ascii"), keep_blank_values=True, strict_parsing=True)
        except (UnicodeDecodeError, ValueError):
            return False
        for key, value in pairs:
            if key == "label" and label is None:
                label = value
            elif key == "version" and version is None:
                version = value
            else:
                return False
    authorization = if_none_match = None
    for name, value in scope["headers"]:
        if name == b"authorization":
            authorization = value.decode("latin-1")
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    client = scope.get("client")
    try:
        who = state.auth.principal(authorization, client[0] if client else None)
        if not who.has("read"):
            return False
        found, pinned, extra = await resolve(state, validate_prompt_id(prompt_id), label, version)
    except Exception:  # the FastAPI route answers with the same checks and a problem+json
        return False
    body, etag = found.body, found.etag
    headers = [
        (k.encode("latin-1"), v.encode("latin-1"))
        for k, v in version_headers(found.version, etag, pinned, extra).items()
    ]
    scope["promptshelf.principal"] = who.actor
    scope["promptshelf.route"] = ROUTE
    if etag_matches(if_none_match, etag):
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return True
    headers += [_CONTENT_TYPE, (b"content-length", str(len(body)).encode("ascii"))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return True
