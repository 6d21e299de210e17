"""The web page of ``promptshelf serve``: prompts, versions, scores, diffs, labels, trash.

:func:`install` mounts it at ``/ui`` of the server's app (``/`` redirects there);
templates and static files ship inside the package: no CDN, no build step, it
works offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...manager import VersionManager
from . import handlers
from .access import Gate
from .pages import HERE, Pages

if TYPE_CHECKING:
    from fastapi import FastAPI

    from ..app import ServerState

__all__ = ["PREFIX", "create_web_app", "install"]

#: Where the page lives on the server.
PREFIX = "/ui"


def install(app: FastAPI, state: ServerState) -> None:
    """Mount the page on the server's app (``create_app`` calls this)."""

    async def home(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    app.add_route("/", home, methods=["GET"], include_in_schema=False)
    app.mount(PREFIX, create_web_app(state.manager, Gate(state.auth)), name="ui")


def create_web_app(manager: VersionManager, gate: Gate) -> Starlette:
    public = frozenset({handlers.sign_in})
    pages = Pages(manager, gate, public=public)
    get, post, both = ["GET"], ["POST"], ["GET", "POST"]
    routes = [
        Route("/", pages.endpoint(handlers.prompt_list), methods=get),
        Route("/signin", pages.endpoint(handlers.sign_in), methods=both),
        Route("/signout", pages.endpoint(handlers.sign_out), methods=post),
        Route("/trash", pages.endpoint(handlers.trash), methods=get),
        Route("/trash/restore", pages.endpoint(handlers.restore), methods=post),
        Route("/prompts/{prompt_id}", pages.endpoint(handlers.prompt_page), methods=get),
        Route("/prompts/{prompt_id}/compare", pages.endpoint(handlers.compare), methods=get),
        Route("/prompts/{prompt_id}/promote", pages.endpoint(handlers.promote), methods=both),
        Route("/prompts/{prompt_id}/render", pages.endpoint(handlers.render), methods=both),
        Route(
            "/prompts/{prompt_id}/labels/{label}/rollback",
            pages.endpoint(handlers.rollback_label),
            methods=both,
        ),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes)
