"""The web page of ``promptshelf serve``: prompts, versions, scores, diffs, labels, trash.

``create_web_app(storage, gate)`` returns an ASGI app the server mounts at
``/ui``; templates and static files ship inside the package (no CDN, no build
step, works offline).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ...manager import VersionManager
from ...storage.base import VersionStorage
from . import handlers
from .access import Gate, OpenGate, Principal, Refused
from .pages import HERE, Pages, sign_in, sign_out

__all__ = ["Gate", "OpenGate", "Principal", "Refused", "create_web_app"]


def create_web_app(storage: VersionStorage | VersionManager, gate: Gate | None = None) -> Starlette:
    manager = storage if isinstance(storage, VersionManager) else VersionManager(storage)
    pages = Pages(manager, gate or OpenGate())
    get, post = ["GET"], ["POST"]
    both = ["GET", "POST"]
    routes = [
        Route("/", pages.endpoint(handlers.prompt_list), methods=get),
        Route("/signin", pages.endpoint(sign_in), methods=both),
        Route("/signout", pages.endpoint(sign_out), methods=post),
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
