"""``/docs``: Swagger UI served from this process, so the interactive docs work offline.

FastAPI's own ``/docs`` page loads Swagger UI's script and stylesheet from a
CDN, which a machine without internet access (or a browser that blocks
third-party scripts) never gets. The ``swagger-ui-bundle-v2`` package ships
Swagger UI's dist files (5.x: it renders the OpenAPI 3.1 document FastAPI
writes); they are served under ``/docs/assets/`` and the page names only those.
"""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.staticfiles import StaticFiles

DOCS = "/docs"
ASSETS = f"{DOCS}/assets"
OAUTH2_REDIRECT = f"{DOCS}/oauth2-redirect"


def install(app: FastAPI, openapi_url: str) -> None:
    """Add ``/docs`` (Swagger UI over ``openapi_url``) and its assets; FastAPI's own
    ``/docs`` must be off (``docs_url=None``)."""
    from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{app.title} - API",
            swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
            swagger_css_url=f"{ASSETS}/swagger-ui.css",
            swagger_favicon_url=f"{ASSETS}/favicon-32x32.png",
            oauth2_redirect_url=OAUTH2_REDIRECT,
        )

    async def oauth2_redirect(request: Request) -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()

    app.add_route(DOCS, docs, methods=["GET"], include_in_schema=False)
    app.add_route(OAUTH2_REDIRECT, oauth2_redirect, methods=["GET"], include_in_schema=False)
    app.mount(ASSETS, StaticFiles(directory=str(swagger_ui_path)), name="docs-assets")
