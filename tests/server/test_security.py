"""Security through HTTP: keys and scopes, protected labels, hostile ids, XSS, bad bodies."""

from __future__ import annotations

import http.client
import json
import time
from urllib.parse import urlsplit

import httpx
import pytest

from promptshelf.storage import MAX_VERSION_BYTES

from .serverkit import Server, cli, fresh_id, version_body


def raw_request(server: Server, method: str, path: str, token: str) -> tuple[int, bytes, str]:
    """Send ``path`` byte for byte (httpx would normalize dot segments)."""
    parts = urlsplit(server.url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=30)
    try:
        conn.request(method, path, headers={"authorization": f"Bearer {token}"})
        response = conn.getresponse()
        return response.status, response.read(), response.getheader("content-type") or ""
    finally:
        conn.close()


def make(client: httpx.Client, pid: str, text: str = "Summarize {{document}}.") -> None:
    response = client.post(f"/api/v1/prompts/{pid}/versions", json=version_body(text))
    assert response.status_code == 201, response.text


def test_no_key_is_401_and_a_bad_key_too(server: Server) -> None:
    pid = fresh_id()
    with server.client() as admin:
        make(admin, pid)
    with httpx.Client(base_url=server.url) as anonymous:
        missing = anonymous.get(f"/api/v1/prompts/{pid}")
        assert missing.status_code == 401
        assert missing.json()["error_code"] == "AUTH-MISSING"
        assert missing.headers["www-authenticate"].startswith("Bearer")
        for header in (
            "Bearer psk_000000000000_nope",
            "Bearer not-a-key",
            "Basic !!!",
            "Token abc",
            f"Bearer {server.keys['read']}x",
        ):
            bad = anonymous.get(f"/api/v1/prompts/{pid}", headers={"authorization": header})
            assert bad.status_code == 401, header
            assert bad.json()["error_code"] == "AUTH-INVALID"


def test_scopes_read_cannot_write_write_cannot_admin(server: Server) -> None:
    pid = fresh_id()
    with server.client("admin") as admin:
        make(admin, pid)
    with server.client("read") as reader:
        assert reader.get(f"/api/v1/prompts/{pid}").status_code == 200
        refused = reader.post(f"/api/v1/prompts/{pid}/versions", json=version_body())
        assert refused.status_code == 403 and refused.json()["error_code"] == "AUTH-SCOPE"
        assert (
            reader.put(
                f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.0"}
            ).status_code
            == 403
        )
        assert reader.delete(f"/api/v1/prompts/{pid}/versions/1.0.0").status_code == 403
    with server.client("write") as writer:
        make(writer, pid, "second {{document}}")
        assert writer.post("/api/v1/admin/verify").status_code == 403
        assert writer.delete("/api/v1/trash").status_code == 403
        assert writer.put("/api/v1/admin/protected-labels", json={"labels": []}).status_code == 403
        assert writer.get(f"/api/v1/documents/{fresh_id()}").status_code == 403


def test_protected_labels_need_admin(server: Server) -> None:
    pid = fresh_id()
    with server.client("admin") as admin, server.client("write") as writer:
        make(admin, pid)
        make(admin, pid, "two {{document}}")
        staged = writer.put(f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.0"})
        assert staged.status_code == 200
        refused = writer.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"})
        assert refused.status_code == 403 and refused.json()["error_code"] == "LABEL-PROTECTED"
        assert (
            admin.put(
                f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"}
            ).status_code
            == 200
        )
        assert (
            admin.put(
                f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.1"}
            ).status_code
            == 200
        )
        assert writer.delete(f"/api/v1/prompts/{pid}/labels/production").status_code == 403
        back = writer.post(f"/api/v1/prompts/{pid}/rollback", json={"label": "production"})
        assert back.status_code == 403
        forced = writer.delete(f"/api/v1/prompts/{pid}/versions/1.0.1", params={"force": "true"})
        assert forced.status_code == 403
        assert writer.get(f"/api/v1/prompts/{pid}").headers["x-promptshelf-version"] == "1.0.1"
        # the setting lives in the store: protect staging too, then put it back
        set_ = admin.put(
            "/api/v1/admin/protected-labels", json={"labels": ["production", "staging"]}
        )
        assert set_.json() == {"labels": ["production", "staging"]}
        try:
            moved = writer.put(f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.1"})
            assert moved.status_code == 403
        finally:
            admin.put("/api/v1/admin/protected-labels", json={"labels": ["production"]})


def test_a_revoked_key_stops_working(
    server: Server, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir = tmp_path_factory.mktemp("revoke")
    made = cli(
        "keys", "create", "temp", "--scope", "read", "--json", "--store", server.store, cwd=workdir
    )
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    headers = {"authorization": f"Bearer {key['token']}"}
    with httpx.Client(base_url=server.url, headers=headers) as c:
        assert c.get("/api/v1/admin/protected-labels").status_code == 200
        listed = cli("keys", "list", "--json", "--store", server.store, cwd=workdir)
        assert key["key_id"] in listed.stdout and key["token"] not in listed.stdout
        revoked = cli("keys", "revoke", key["key_id"], "--store", server.store, cwd=workdir)
        assert revoked.returncode == 0, revoked.stderr
        deadline = time.monotonic() + 15  # every process drops cached keys within 2 s
        while c.get("/api/v1/admin/protected-labels").status_code != 401:
            assert time.monotonic() < deadline, "the revoked key still works"
            time.sleep(0.1)


HOSTILE_PATHS = [
    "/api/v1/prompts/a%2Fb",
    "/api/v1/prompts/x%2fversions",
    "/api/v1/prompts/%2e%2e",
    "/api/v1/prompts/%2E%2E%2Fadmin",
    "/api/v1/prompts/..%5Cwin",
    "/api/v1/prompts/nul%00byte",
    "/api/v1/prompts/%ff%fe",
    "/api/v1/prompts/.hidden",
    "/api/v1/prompts/CON",
    "/api/v1/prompts/%20padded",
    "/api/v1/prompts/a%3Ab",
    "/api/v1/prompts/x/labels/%2e%2e",
    "/api/v1/prompts/x/versions/..%2F..%2F1.0.0",
    "/api/v1/prompts/x/versions/1.0.0%00",
    "/api/public/v2/prompts/..%2F..%2Fetc",
]


@pytest.mark.parametrize("path", HOSTILE_PATHS)
def test_hostile_ids_in_urls_are_refused(server: Server, path: str) -> None:
    status, body, content_type = raw_request(server, "GET", path, server.keys["admin"])
    assert status == 400, (path, body)
    assert content_type == "application/problem+json"
    assert json.loads(body)["error_code"] in ("PS-ID-001", "PS-VERSION-001")


def test_literal_dot_segments_resolve_nothing(server: Server) -> None:
    for path in (
        "/api/v1/prompts/../../etc/passwd",
        "/api/v1/prompts/..",
        "/api/v1/../v1/prompts/x",
    ):
        status, body, content_type = raw_request(server, "GET", path, server.keys["admin"])
        assert status in (400, 404) and content_type == "application/problem+json", path
        assert b"root:" not in body


def test_xss_in_texts_and_reasons_is_never_html(server: Server) -> None:
    pid = fresh_id()
    script = "<script>alert(1)</script> {{document}}"
    with server.client() as c:
        make(c, pid, script)
        got = c.get(f"/api/v1/prompts/{pid}")
        assert got.headers["content-type"] == "application/json"
        assert got.headers["x-content-type-options"] == "nosniff"
        assert got.json()["prompt"]["text"] == script  # kept exactly, served as JSON
        c.put(
            f"/api/v1/prompts/{pid}/labels/staging",
            json={"version": "1.0.0", "reason": "<img src=x onerror=alert(1)>"},
        )
        history = c.get(f"/api/v1/prompts/{pid}/history")
        assert b"<img" not in history.content and history.json()[0]["reason"].startswith("<img")
        listed = c.get(f"/api/v1/prompts/{pid}/labels")
        assert b"<" not in listed.content
        hostile = c.get("/api/v1/prompts/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert b"<script" not in hostile.content
        bad_label = c.get(f"/api/v1/prompts/{pid}", params={"label": "<b>x</b>"})
        assert bad_label.status_code == 400 and b"<b>" not in bad_label.content


def test_oversized_bodies_get_413(server: Server) -> None:
    pid = fresh_id()
    too_big = MAX_VERSION_BYTES + 128 * 1024
    with server.client() as c:
        huge = c.post(
            f"/api/v1/prompts/{pid}/versions",
            content=b"{" + b" " * too_big + b"}",
            headers={"content-type": "application/json"},
        )
        assert huge.status_code == 413 and huge.json()["error_code"] == "PS-SIZE-001"

        def chunks():  # no Content-Length: counted while reading
            for _ in range(too_big // 65536 + 1):
                yield b" " * 65536

        chunked = c.post(
            f"/api/v1/prompts/{pid}/versions",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert chunked.status_code == 413
        # under the body cap, but over the version limit once stored
        body = version_body("x" * (MAX_VERSION_BYTES - 100))
        stored_too_big = c.post(f"/api/v1/prompts/{pid}/versions", json=body)
        assert (
            stored_too_big.status_code == 413
            and stored_too_big.json()["error_code"] == "PS-SIZE-001"
        )
        assert c.get(f"/api/v1/prompts/{pid}/versions").status_code == 404  # nothing written


@pytest.mark.parametrize(
    ("content", "status", "code"),
    [
        (b"{not json", 400, "REQUEST-MALFORMED"),
        (b"", 422, "REQUEST-INVALID"),
        (b'{"prompt": 5, "analysis": {}}', 422, "REQUEST-INVALID"),
        (b'{"prompt": {}, "analysis": {}, "surprise": 1}', 422, "REQUEST-INVALID"),
        (b"[1, 2]", 422, "REQUEST-INVALID"),
        (
            b'{"prompt": {"workflow_id": "w", "node_id": "n", "node_type": "llm", "text": "  "},'
            b' "analysis": {"overall_score": 1, "clarity_score": 1, "efficiency_score": 1}}',
            422,
            "PS-VALID-001",
        ),
        (
            b'{"prompt": {"workflow_id": "w", "node_id": "n", "node_type": "llm", "text": "t"},'
            b' "analysis": {"overall_score": 500, "clarity_score": 1, "efficiency_score": 1}}',
            422,
            "PS-VALID-001",
        ),
        (
            b'{"prompt": {"id": "other", "workflow_id": "w", "node_id": "n", "node_type": "llm",'
            b' "text": "t"}, "analysis": {"overall_score": 1, "clarity_score": 1,'
            b' "efficiency_score": 1}}',
            422,
            "PS-VALID-001",
        ),
        (b'{"prompt": {}, "analysis": {}, "version": "1.0"}', 422, "PS-VALID-001"),
    ],
)
def test_malformed_and_invalid_bodies(
    server: Server, content: bytes, status: int, code: str
) -> None:
    pid = fresh_id()
    with server.client() as c:
        answer = c.post(
            f"/api/v1/prompts/{pid}/versions",
            content=content,
            headers={"content-type": "application/json"},
        )
        assert (answer.status_code, answer.json()["error_code"]) == (status, code), answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert set(answer.json()) >= {"type", "title", "status", "detail", "error_code", "message"}
        assert c.get(f"/api/v1/prompts/{pid}/versions").status_code == 404  # nothing written


def test_unknown_route_and_method_are_problems(server: Server) -> None:
    with server.client() as c:
        nowhere = c.get("/api/v1/nowhere")
        assert nowhere.status_code == 404 and nowhere.json()["error_code"] == "HTTP-NOT-FOUND"
        wrong = c.patch(f"/api/v1/prompts/{fresh_id()}")
        assert wrong.status_code == 405 and wrong.json()["error_code"] == "HTTP-METHOD"
