"""The REST API through HTTP against a real server, on the file store, SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx

from .serverkit import Server, fresh_id, version_body


def create(
    client: httpx.Client, pid: str, text: str = "Summarize {{document}}.", **more: Any
) -> httpx.Response:
    body = {**version_body(text, more.pop("score", 60.0)), **more}
    response = client.post(f"/api/v1/prompts/{pid}/versions", json=body)
    assert response.status_code == 201, response.text
    return response


def test_create_answers_201_with_location_and_etag_of_the_body(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        first = create(c, pid)
        assert first.headers["location"] == f"/api/v1/prompts/{pid}/versions/1.0.0"
        assert first.headers["etag"] == f'"{hashlib.sha256(first.content).hexdigest()}"'
        assert first.json()["version"] == "1.0.0"
        assert first.json()["prompt"]["id"] == pid
        second = create(c, pid, "Summarize {{document}} briefly.")
        assert second.json()["version"] == "1.0.1"
        assert (
            second.json()["metadata"]["author"]
            == "admin-key (" + second.json()["metadata"]["author"].split("(")[1]
        )
        fetched = c.get(second.headers["location"])
        assert fetched.status_code == 200
        assert fetched.content == second.content  # the canonical bytes, end to end
        assert fetched.headers["cache-control"] == "public, max-age=31536000, immutable"


def test_explicit_version_and_conflict(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        made = create(c, pid, version="2.5.0")
        assert made.json()["version"] == "2.5.0"
        again = c.post(
            f"/api/v1/prompts/{pid}/versions", json={**version_body(), "version": "2.5.0"}
        )
        assert again.status_code == 409
        assert again.headers["content-type"] == "application/problem+json"
        assert again.json()["error_code"] == "VERSION-CONFLICT"
        assert c.get(f"/api/v1/prompts/{pid}/versions/2.5.0").content == made.content


def test_get_by_label_default_production_falls_back_to_latest(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid)
        create(c, pid, "v2 of {{document}}")
        latest = c.get(f"/api/v1/prompts/{pid}")
        assert latest.status_code == 200
        assert latest.headers["x-promptshelf-version"] == "1.0.1"
        assert latest.headers["x-promptshelf-resolved"] == "latest"
        assert latest.headers["cache-control"] == "no-cache"
        moved = c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"})
        assert moved.status_code == 200, moved.text
        prod = c.get(f"/api/v1/prompts/{pid}")
        assert prod.headers["x-promptshelf-version"] == "1.0.0"
        assert prod.headers["x-promptshelf-resolved"] == "label:production"
        assert (
            c.get(f"/api/v1/prompts/{pid}", params={"label": "production"}).content == prod.content
        )
        missing = c.get(f"/api/v1/prompts/{pid}", params={"label": "staging"})
        assert missing.status_code == 404 and missing.json()["error_code"] == "LABEL-NOT-FOUND"


def test_get_latest_best_and_pinned(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid, score=90.0)
        create(c, pid, "second {{document}}", score=40.0)
        assert (
            c.get(f"/api/v1/prompts/{pid}", params={"version": "latest"}).json()["version"]
            == "1.0.1"
        )
        best = c.get(f"/api/v1/prompts/{pid}", params={"version": "best"})
        assert best.json()["version"] == "1.0.0" and best.headers["cache-control"] == "no-cache"
        pinned = c.get(f"/api/v1/prompts/{pid}", params={"version": "1.0.1"})
        assert pinned.headers["cache-control"].endswith("immutable")
        both = c.get(f"/api/v1/prompts/{pid}", params={"version": "1.0.1", "label": "x"})
        assert both.status_code == 400
        gone = c.get(f"/api/v1/prompts/{pid}", params={"version": "9.9.9"})
        assert gone.status_code == 404 and gone.json()["error_code"] == "VERSION-NOT-FOUND"
        bad = c.get(f"/api/v1/prompts/{pid}", params={"version": "01.2"})
        assert bad.status_code == 400 and bad.json()["error_code"] == "PS-VERSION-001"
        nothing = c.get(f"/api/v1/prompts/{fresh_id()}")
        assert nothing.status_code == 404


def test_etag_revalidation_answers_304_without_a_body(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid)
        first = c.get(f"/api/v1/prompts/{pid}")
        etag = first.headers["etag"]
        for header in (etag, f"W/{etag}", f'"nope", {etag}', "*"):
            again = c.get(f"/api/v1/prompts/{pid}", headers={"if-none-match": header})
            assert again.status_code == 304 and again.content == b""
            assert again.headers["etag"] == etag
        stale = c.get(f"/api/v1/prompts/{pid}", headers={"if-none-match": '"other"'})
        assert stale.status_code == 200 and stale.content == first.content
        pinned = c.get(f"/api/v1/prompts/{pid}/versions/1.0.0", headers={"if-none-match": etag})
        assert pinned.status_code == 304


def test_the_fast_path_and_the_declared_route_answer_alike(server: Server) -> None:
    """Unknown query parameters send a GET past the fast path, to the FastAPI route."""
    pid = fresh_id()
    with server.client() as c:
        create(c, pid)
        fast = c.get(f"/api/v1/prompts/{pid}")
        routed = c.get(f"/api/v1/prompts/{pid}", params={"x": "1"})
        assert fast.status_code == routed.status_code == 200
        assert fast.content == routed.content
        drop = {"date", "content-length"}
        assert {k: v for k, v in fast.headers.items() if k not in drop} == {
            k: v for k, v in routed.headers.items() if k not in drop
        }


def test_versions_list(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        made = [create(c, pid, f"text {i} {{{{document}}}}") for i in range(3)]
        c.put(f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.1"})
        listed = c.get(f"/api/v1/prompts/{pid}/versions").json()
        assert [v["version"] for v in listed["versions"]] == ["1.0.0", "1.0.1", "1.0.2"]
        assert [v["etag"] for v in listed["versions"]] == [m.headers["etag"] for m in made]
        assert listed["versions"][1]["labels"] == ["staging"]
        assert c.get(f"/api/v1/prompts/{fresh_id()}/versions").status_code == 404


def test_list_prompts_filters_and_pages(server: Server) -> None:
    stem = fresh_id("list")
    with server.client() as c:
        for i in range(5):
            create(c, f"{stem}_{i}")
        c.put(f"/api/v1/prompts/{stem}_3/labels/staging", json={"version": "latest"})
        page = c.get("/api/v1/prompts", params={"prefix": stem, "limit": 2}).json()
        assert [p["prompt_id"] for p in page["items"]] == [f"{stem}_0", f"{stem}_1"]
        seen = [p["prompt_id"] for p in page["items"]]
        while page["next_cursor"]:
            page = c.get(
                "/api/v1/prompts",
                params={"prefix": stem, "limit": 2, "cursor": page["next_cursor"]},
            ).json()
            seen += [p["prompt_id"] for p in page["items"]]
        assert seen == [f"{stem}_{i}" for i in range(5)]
        labelled = c.get("/api/v1/prompts", params={"prefix": stem, "label": "staging"}).json()
        assert [p["prompt_id"] for p in labelled["items"]] == [f"{stem}_3"]
        assert labelled["items"][0]["labels"] == {"staging": "1.0.0"}
        future = c.get(
            "/api/v1/prompts", params={"prefix": stem, "updated_after": "2999-01-01T00:00:00"}
        )
        assert future.json()["items"] == []
        assert c.get("/api/v1/prompts", params={"cursor": "%%%"}).status_code == 400
        assert c.get("/api/v1/prompts", params={"limit": 0}).status_code == 422


def test_batch_get(server: Server) -> None:
    a, b = fresh_id(), fresh_id()
    with server.client() as c:
        made_a = create(c, a)
        create(c, b)
        c.put(f"/api/v1/prompts/{b}/labels/production", json={"version": "1.0.0"})
        answer = c.post(
            "/api/v1/prompts:batch-get",
            json={
                "items": [
                    {"prompt_id": a, "version": "1.0.0"},
                    {"prompt_id": b},
                    {"prompt_id": a, "if_none_match": made_a.headers["etag"]},
                    {"prompt_id": fresh_id()},
                    {"prompt_id": "../etc"},
                ]
            },
        )
        assert answer.status_code == 200
        items = answer.json()["items"]
        assert [i["status"] for i in items] == [200, 200, 304, 404, 400]
        assert (
            items[0]["etag"] == made_a.headers["etag"] and items[0]["version"]["version"] == "1.0.0"
        )
        assert items[1]["version_number"] == "1.0.0" and "version" not in items[2]
        assert items[3]["error"]["error_code"] == "VERSION-NOT-FOUND"
        too_many = c.post("/api/v1/prompts:batch-get", json={"items": [{"prompt_id": a}] * 101})
        assert too_many.status_code == 422


def test_labels_put_if_match_412_delete_and_history(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid)
        create(c, pid, "two {{document}}")
        put = c.put(
            f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.0", "reason": "r1"}
        )
        etag = put.headers["etag"]
        got = c.get(f"/api/v1/prompts/{pid}/labels/staging")
        assert got.json()["version"] == "1.0.0" and got.headers["etag"] == etag
        moved = c.put(
            f"/api/v1/prompts/{pid}/labels/staging",
            json={"version": "latest"},
            headers={"if-match": etag},
        )
        assert moved.status_code == 200 and moved.json()["from_version"] == "1.0.0"
        stale = c.put(
            f"/api/v1/prompts/{pid}/labels/staging",
            json={"version": "1.0.0"},
            headers={"if-match": etag},
        )
        assert stale.status_code == 412 and stale.json()["error_code"] == "LABEL-MOVED"
        exists = c.put(
            f"/api/v1/prompts/{pid}/labels/staging",
            json={"version": "1.0.0"},
            headers={"if-none-match": "*"},
        )
        assert exists.status_code == 412
        listed = c.get(f"/api/v1/prompts/{pid}/labels").json()
        assert [(x["label"], x["version"]) for x in listed] == [("staging", "1.0.1")]
        assert (
            c.delete(
                f"/api/v1/prompts/{pid}/labels/staging", headers={"if-match": etag}
            ).status_code
            == 412
        )
        assert c.delete(f"/api/v1/prompts/{pid}/labels/staging").status_code == 204
        assert c.delete(f"/api/v1/prompts/{pid}/labels/staging").status_code == 404
        history = c.get(f"/api/v1/prompts/{pid}/labels/staging/history").json()
        assert [e["action"] for e in history] == ["set", "move", "remove"]
        assert history[0]["reason"] == "r1" and history[0]["actor"].startswith("admin-key")
        assert len(c.get(f"/api/v1/prompts/{pid}/history").json()) == 3
        nowhere = c.put(f"/api/v1/prompts/{pid}/labels/x", json={"version": "7.0.0"})
        assert nowhere.status_code == 404


def test_rollback_label_and_version(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid, "one {{document}}")
        create(c, pid, "two {{document}}")
        c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.0"})
        c.put(f"/api/v1/prompts/{pid}/labels/production", json={"version": "1.0.1"})
        back = c.post(f"/api/v1/prompts/{pid}/rollback", json={"label": "production"})
        assert back.status_code == 200 and back.json()["to_version"] == "1.0.0"
        made = c.post(f"/api/v1/prompts/{pid}/rollback", json={"to_version": "1.0.0"})
        assert made.status_code == 201
        assert made.json()["version"] == "1.0.2"
        assert made.json()["prompt"]["text"] == "one {{document}}"
        assert made.json()["metadata"]["rollback_to"] == "1.0.0"
        neither = c.post(f"/api/v1/prompts/{pid}/rollback", json={})
        assert neither.status_code == 400


def test_render_strict_and_lenient(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid, "Hello {{name}}, summarize {{document}}.")
        ok = c.post(
            f"/api/v1/prompts/{pid}/render",
            json={"variables": {"name": "Ada", "document": "D", "extra": 1}},
        )
        assert ok.status_code == 200
        assert ok.json()["text"] == "Hello Ada, summarize D." and ok.json()["unused"] == ["extra"]
        strict = c.post(f"/api/v1/prompts/{pid}/render", json={"variables": {}})
        assert strict.status_code == 422
        assert strict.json()["error_code"] == "RENDER-MISSING"
        assert strict.json()["context"]["missing"] == ["name", "document"]
        lenient = c.post(f"/api/v1/prompts/{pid}/render", json={"variables": {}, "strict": False})
        assert lenient.json()["missing"] == ["name", "document"]


def test_diff(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        create(c, pid, "alpha {{document}}", score=50.0)
        create(c, pid, "alpha beta {{document}}", score=70.0)
        d = c.get(f"/api/v1/prompts/{pid}/diff", params={"from": "1.0.0", "to": "latest"}).json()
        assert d["version1"] == "1.0.0" and d["version2"] == "1.0.1"
        assert d["improvement"] == 20.0 and d["text_diff"]["lines_added"] == 1
        assert c.get(f"/api/v1/prompts/{pid}/diff", params={"from": "1.0.0"}).status_code == 422


def test_delete_trash_restore(server: Server) -> None:
    pid = fresh_id()
    with server.client() as c:
        created = create(c, pid)
        create(c, pid, "two {{document}}")
        c.put(f"/api/v1/prompts/{pid}/labels/staging", json={"version": "1.0.0"})
        labelled = c.delete(f"/api/v1/prompts/{pid}/versions/1.0.0")
        assert labelled.status_code == 409 and labelled.json()["error_code"] == "LABEL-IN-USE"
        assert (
            c.delete(f"/api/v1/prompts/{pid}/versions/1.0.0", params={"force": "true"}).status_code
            == 204
        )
        assert c.get(f"/api/v1/prompts/{pid}/versions/1.0.0").status_code == 404
        trash = c.get("/api/v1/trash", params={"prompt_id": pid}).json()
        assert [(t["prompt_id"], t["version"]) for t in trash] == [(pid, "1.0.0")]
        restored = c.post(f"/api/v1/prompts/{pid}/versions/1.0.0/restore")
        assert restored.status_code == 200 and restored.content == created.content
        again = c.post(f"/api/v1/prompts/{pid}/versions/1.0.0/restore")
        assert again.status_code == 404
        assert c.delete(f"/api/v1/prompts/{pid}/versions/7.7.7").status_code == 404


def test_stats_verify_and_protected_labels_setting(server: Server) -> None:
    with server.client() as c:
        create(c, fresh_id())
        stats = c.get("/api/v1/stats").json()
        assert stats["total_versions"] >= 1 and "path" not in stats and "storage_dir" not in stats
        report = c.post("/api/v1/admin/verify").json()
        assert report["ok"] is True and report["checked_versions"] >= 1
        assert c.get("/api/v1/admin/protected-labels").json() == {"labels": ["production"]}


def test_documents_over_http(server: Server) -> None:
    ns = fresh_id("ns")
    with server.client() as c:
        made = c.put(f"/api/v1/documents/{ns}/k1", json={"a": 1})
        assert made.status_code == 201 and made.headers["etag"] == '"rev-1"'
        assert c.put(f"/api/v1/documents/{ns}/k1", json={"a": 2}).status_code == 409
        replaced = c.put(
            f"/api/v1/documents/{ns}/k1", json={"a": 2}, headers={"if-match": '"rev-1"'}
        )
        assert replaced.status_code == 200 and replaced.json()["revision"] == 2
        assert c.get(f"/api/v1/documents/{ns}/k1").json()["data"] == {"a": 2}
        assert [d["key"] for d in c.get(f"/api/v1/documents/{ns}").json()] == ["k1"]
        assert (
            c.delete(f"/api/v1/documents/{ns}/k1", headers={"if-match": '"rev-1"'}).status_code
            == 409
        )
        assert c.delete(f"/api/v1/documents/{ns}/k1").status_code == 204
        assert c.get(f"/api/v1/documents/{ns}/k1").status_code == 404
        private = c.get("/api/v1/documents/api-keys")
        assert private.status_code == 403


def test_operations_routes(server: Server) -> None:
    with httpx.Client(base_url=server.url) as c:  # no key: operations are open
        assert c.get("/healthz").json() == {"status": "ok"}
        assert c.get("/readyz").json() == {"status": "ready"}
        with server.client() as k:
            k.get(f"/api/v1/prompts/{fresh_id()}")
        metrics = c.get("/metrics")
        assert metrics.status_code == 200
        text = metrics.text
        assert (
            'promptshelf_http_request_duration_seconds_bucket{method="GET",route="/api/v1/prompts/{prompt_id}",le="0.0005"}'
            in text
        )
        assert (
            'promptshelf_http_errors_total{route="/api/v1/prompts/{prompt_id}",status="404",error_code="VERSION-NOT-FOUND"}'
            in text
        )
        for family in (
            "promptshelf_versions_stored",
            "promptshelf_cache_hit_ratio",
            "promptshelf_prompts_stored",
        ):
            assert f"# TYPE {family} gauge" in text


def test_a_pinned_url_never_serves_other_bytes_after_the_trash_is_emptied(server: Server) -> None:
    """GET ?version=1.0.1 answers immutable: once 1.0.1 is removed for good its number is
    retired, so the next save is 1.0.2 and the pinned URL is 404, never other text."""
    pid = fresh_id()
    with server.client() as c:
        create(c, pid, "one {{document}}")
        create(c, pid, "two {{document}}")
        url = f"/api/v1/prompts/{pid}"
        pinned = c.get(url, params={"version": "1.0.1"})
        assert pinned.headers["cache-control"].endswith("immutable")
        assert c.delete(f"{url}/versions/1.0.1").status_code == 204
        assert c.delete("/api/v1/trash").json()["removed"] >= 1
        assert create(c, pid, "THREE {{document}}").json()["version"] == "1.0.2"
        again = c.get(url, params={"version": "1.0.1"})
        assert again.status_code == 404 and again.content != pinned.content
        forced = c.post(f"{url}/versions", json={**version_body("THREE"), "version": "1.0.1"})
        assert forced.status_code == 409 and forced.json()["error_code"] == "VERSION-CONFLICT"
        assert c.get(url, params={"version": "1.0.1"}).status_code == 404
