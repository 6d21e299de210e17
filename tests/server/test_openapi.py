"""The OpenAPI document validates, and names every route the API answers."""

from __future__ import annotations

import re

import httpx
from openapi_spec_validator import validate

from .serverkit import Server

EXPECTED = {
    ("get", "/api/v1/prompts"),
    ("get", "/api/v1/prompts/{prompt_id}"),
    ("get", "/api/v1/prompts/{prompt_id}/versions"),
    ("post", "/api/v1/prompts/{prompt_id}/versions"),
    ("get", "/api/v1/prompts/{prompt_id}/versions/{version}"),
    ("delete", "/api/v1/prompts/{prompt_id}/versions/{version}"),
    ("post", "/api/v1/prompts/{prompt_id}/versions/{version}/restore"),
    ("get", "/api/v1/prompts/{prompt_id}/labels"),
    ("get", "/api/v1/prompts/{prompt_id}/labels/{label}"),
    ("put", "/api/v1/prompts/{prompt_id}/labels/{label}"),
    ("delete", "/api/v1/prompts/{prompt_id}/labels/{label}"),
    ("get", "/api/v1/prompts/{prompt_id}/labels/{label}/history"),
    ("get", "/api/v1/prompts/{prompt_id}/history"),
    ("post", "/api/v1/prompts/{prompt_id}/rollback"),
    ("post", "/api/v1/prompts/{prompt_id}/render"),
    ("get", "/api/v1/prompts/{prompt_id}/diff"),
    ("post", "/api/v1/prompts:batch-get"),
    ("get", "/api/v1/trash"),
    ("delete", "/api/v1/trash"),
    ("post", "/api/v1/admin/verify"),
    ("get", "/api/public/v2/prompts/{name}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
}


def test_openapi_document_validates_and_lists_the_routes(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:
        doc = c.get("/api/v1/openapi.json")
        assert doc.status_code == 200
        spec = doc.json()
        validate(spec)
        present = {(m, p) for p, ops in spec["paths"].items() for m in ops}
        assert present >= EXPECTED, EXPECTED - present
        created = spec["paths"]["/api/v1/prompts/{prompt_id}/versions"]["post"]["responses"]
        assert "201" in created and "409" in created and "413" in created


def test_docs_page_loads_swagger_ui_from_this_server_only(server: Server) -> None:
    """/docs names no other host (it works offline); each asset it names answers 200."""
    with httpx.Client(base_url=server.url) as c:
        docs = c.get("/docs")
        assert docs.status_code == 200 and "SwaggerUIBundle" in docs.text
        urls = re.findall(r"""(?:src|href|url)\s*[=:]\s*['"]([^'"]+)['"]""", docs.text)
        assert urls, docs.text
        assert all(u.startswith("/") and not u.startswith("//") for u in urls), urls
        assert "://" not in docs.text.replace(server.url, "")
        assert {"/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"} <= set(urls)
        assert "/api/v1/openapi.json" in urls
        for url in urls:
            answer = c.get(url)
            assert answer.status_code == 200, url
            assert answer.content, url
        script = c.get("/docs/assets/swagger-ui-bundle.js")
        assert "javascript" in script.headers["content-type"] and len(script.content) > 100_000
        assert c.get("/docs/oauth2-redirect").status_code == 200
