"""The Langfuse-compatible read route, driven by the real ``langfuse`` SDK from PyPI."""

from __future__ import annotations

import pytest

from .serverkit import Server, fresh_id, version_body

langfuse = pytest.importorskip("langfuse")


def test_langfuse_sdk_get_prompt_reads_promptshelf(server: Server) -> None:
    pid = fresh_id("lf")
    with server.client() as c:
        for text in ("First {{document}}.", "Second {{document}}.", "Third {{document}}."):
            made = c.post(f"/api/v1/prompts/{pid}/versions", json=version_body(text))
            assert made.status_code == 201
        c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.1"})
    client = langfuse.Langfuse(
        public_key=fresh_id("pk"),  # the SDK keeps one client per public key
        secret_key=server.keys["read"],
        host=server.url,
        tracing_enabled=False,
    )
    try:
        production = client.get_prompt(pid, cache_ttl_seconds=0)
        assert production.prompt == "Second {{document}}."
        assert production.version == 2
        assert "production" in production.labels
        assert production.compile(document="the report") == "Second the report."
        latest = client.get_prompt(pid, label="latest", cache_ttl_seconds=0)
        assert latest.prompt == "Third {{document}}." and latest.version == 3
        first = client.get_prompt(pid, version=1, cache_ttl_seconds=0)
        assert first.prompt == "First {{document}}."
        with pytest.raises(Exception):  # noqa: B017 - the SDK raises its own NotFoundError
            client.get_prompt(pid, label="staging", cache_ttl_seconds=0, max_retries=0)
    finally:
        client.shutdown()


def test_langfuse_route_shape_and_basic_auth(server: Server) -> None:
    import httpx

    pid = fresh_id("lf")
    with server.client() as c:
        c.post(f"/api/v1/prompts/{pid}/versions", json=version_body())
        c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"})
    with httpx.Client(base_url=server.url, auth=("pk", server.keys["read"])) as basic:
        body = basic.get(f"/api/public/v2/prompts/{pid}").json()
        assert body["name"] == pid and body["type"] == "text" and body["version"] == 1
        assert body["labels"] == ["production", "latest"] and body["tags"] == []
        assert basic.get(f"/api/public/v2/prompts/{pid}", params={"version": 9}).status_code == 404
    with httpx.Client(base_url=server.url, auth=("pk", "wrong")) as wrong:
        assert wrong.get(f"/api/public/v2/prompts/{pid}").status_code == 401


def test_langfuse_sdk_reads_a_chat_prompt_and_its_config(server: Server) -> None:
    pid = fresh_id("lfchat")
    body = {
        "prompt": {
            "workflow_id": "wf",
            "node_id": "n",
            "node_type": "llm",
            "messages": [
                {"role": "system", "text": "You are {{who}}."},
                {"role": "user", "text": "Summarize {{document}}."},
            ],
            "variables": ["who", "document"],
        },
        "analysis": {"overall_score": 80, "clarity_score": 80, "efficiency_score": 80},
        "config": {"model": "gpt-x", "temperature": 0.2},
        "commit_message": "first chat",
    }
    with server.client() as c:
        made = c.post(f"/api/v1/prompts/{pid}/versions", json=body)
        assert made.status_code == 201, made.text
        c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"})
    client = langfuse.Langfuse(
        public_key=fresh_id("pk"),  # the SDK keeps one client per public key
        secret_key=server.keys["read"],
        host=server.url,
        tracing_enabled=False,
    )
    try:
        chat = client.get_prompt(pid, type="chat", cache_ttl_seconds=0)
        assert chat.config["model"] == "gpt-x" and chat.commit_message == "first chat"
        compiled = chat.compile(who="a critic", document="the report")
        assert [m["content"] for m in compiled] == ["You are a critic.", "Summarize the report."]
        assert [m["role"] for m in compiled] == ["system", "user"]
    finally:
        client.shutdown()
