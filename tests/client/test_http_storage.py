"""``open_storage("http://...")``: the manager, the command line, migrate and pull on a server.

The contract suite itself runs on this backend through ``conftest.BACKENDS["http"]``;
these tests cover what is particular to it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from localserver import LocalServer
from promptshelf import FileSystemStorage, VersionManager, migrate, open_storage
from promptshelf.errors import ConfigurationError, OptimizerError, ServerUnavailableError
from promptshelf.storage.http import HTTPStorage

from .serverproc import free_port
from helpers import make_analysis, make_prompt, make_version


@pytest.fixture
def served(http_server: LocalServer, tmp_path: Path) -> FileSystemStorage:
    """A fresh file store behind the session's server; the test may also write to it."""
    store = FileSystemStorage(tmp_path / "served")
    http_server.serve(store)
    return store


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "promptshelf", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_urls_open_an_http_storage_without_a_request() -> None:
    store = open_storage("https://prompts.example.invalid:8443/base/?api_key=k&timeout=3")
    assert isinstance(store, HTTPStorage)
    assert store.url == "https://prompts.example.invalid:8443/base"
    assert open_storage({"url": "http://127.0.0.1:8420"}).backend_name == "http"  # type: ignore[union-attr]
    with pytest.raises(ConfigurationError) as caught:
        open_storage("http://127.0.0.1:8420?shard_depth=2")
    assert caught.value.error_code == "PS-CONFIG-001"


def test_an_unreachable_server_is_one_coded_error() -> None:
    store = open_storage(f"http://127.0.0.1:{free_port()}", timeout=2)
    with pytest.raises(ServerUnavailableError) as caught:
        store.list_prompts()
    assert caught.value.error_code == "CLIENT-OFFLINE-001"
    assert isinstance(caught.value, ConnectionError)


def test_version_manager_over_http(http_server: LocalServer, served: FileSystemStorage) -> None:
    manager = VersionManager(open_storage(http_server.url))
    first = manager.create_version(make_prompt(), make_analysis(score=60))
    second = manager.create_version(
        make_prompt(text="Summarize {{document}} briefly."), make_analysis(score=80), None, "1.0.0"
    )
    assert (first.version, second.version) == ("1.0.0", "1.0.1")
    assert manager.get_best_version("wf_001_llm_1").version == "1.0.1"  # type: ignore[union-attr]
    manager.promote("wf_001_llm_1", "best", "production", actor="ci")
    # what the client wrote is what the server's store holds, byte for byte
    assert served.get_version("wf_001_llm_1", "1.0.1") == second
    assert served.label_history("wf_001_llm_1")[-1].actor == "ci"


def test_the_server_refuses_what_a_key_may_not_do(
    http_server: LocalServer, served: FileSystemStorage
) -> None:
    from promptshelf.server.auth import create_key

    _, reader = create_key(served, "reader", ["read"])
    http_server.serve(served)  # the new key is read on the next request
    store = open_storage(http_server.url, api_key=reader)
    assert store.list_prompts() == []
    with pytest.raises(OptimizerError) as caught:
        store.save_version(make_version("p", "1.0.0"))
    assert caught.value.error_code == "AUTH-SCOPE"
    with pytest.raises(OptimizerError) as anonymous:
        open_storage(http_server.url).list_prompts()
    assert anonymous.value.error_code == "AUTH-MISSING"


def test_migrate_a_file_store_to_a_server_and_back(
    http_server: LocalServer, served: FileSystemStorage, seed_copy: Path, tmp_path: Path
) -> None:
    source = open_storage(seed_copy)
    remote = open_storage(http_server.url)
    report = migrate(source, remote)
    assert report.copied == source.get_storage_stats()["total_versions"] > 0
    back = FileSystemStorage(tmp_path / "back")
    migrate(remote, back)
    for prompt_id in source.list_prompts():
        assert back.list_versions(prompt_id) == source.list_versions(prompt_id)
    assert remote.verify().ok


def test_the_command_line_against_a_server(
    http_server: LocalServer, served: FileSystemStorage
) -> None:
    served.save_version(make_version("p1", "1.0.0", text="First."))
    served.set_label("p1", "production", "1.0.0")
    listed = cli("list", "--store", http_server.url, "--json")
    assert listed.returncode == 0, listed.stderr
    assert "p1" in listed.stdout
    shown = cli("show", "p1", "1.0.0", "--store", http_server.url)
    assert shown.returncode == 0 and "First." in shown.stdout
    missing = cli("show", "p1", "9.0.0", "--store", http_server.url)
    assert missing.returncode == 1
    assert missing.stderr.startswith("Error: ") and "[VERSION-NOT-FOUND]" in missing.stderr
    down = cli("list", "--store", f"http://127.0.0.1:{free_port()}")
    assert down.returncode == 1 and "[CLIENT-OFFLINE-001]" in down.stderr


def test_pull_writes_a_bundle_of_labelled_versions(
    http_server: LocalServer, served: FileSystemStorage, tmp_path: Path
) -> None:
    for pid in ("app_a", "app_b", "other"):
        served.save_version(make_version(pid, "1.0.0", text=f"{pid} v1"))
        served.save_version(make_version(pid, "1.1.0", text=f"{pid} v2"))
        served.set_label(pid, "production", "1.1.0")
    served.set_label("app_a", "staging", "1.0.0")
    bundle = tmp_path / "bundle"
    args = ["pull", "--store", http_server.url, "--label", "production", "--label", "staging"]
    result = cli(*args, "--prefix", "app_", "-o", str(bundle), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "pulled": 3,
        "prompts": 2,
        "labels": ["production", "staging"],
        "output": str(bundle),
    }
    pulled = FileSystemStorage(bundle)
    assert pulled.list_prompts() == ["app_a", "app_b"]
    assert pulled.list_labels("app_a") == {"production": "1.1.0", "staging": "1.0.0"}
    assert pulled.get_version("app_b", "1.1.0") == served.get_version("app_b", "1.1.0")
    assert pulled.verify().ok

    served.set_label("app_a", "production", "1.0.0")  # pulling again brings it up to date
    served.remove_label("app_a", "staging")
    again = cli(*args, "--prefix", "app_", "-o", str(bundle))
    assert again.returncode == 0 and "pulled 2 version(s) of 2 prompt(s)" in again.stdout
    assert FileSystemStorage(bundle).list_labels("app_a") == {"production": "1.0.0"}


def test_pull_errors(http_server: LocalServer, served: FileSystemStorage, tmp_path: Path) -> None:
    served.save_version(make_version("p1", "1.0.0"))
    empty = cli("pull", "--store", http_server.url, "-o", str(tmp_path / "b"))
    assert empty.returncode == 1
    assert empty.stderr.strip().endswith("[PULL-EMPTY]") and empty.stderr.count("\n") == 1
    served.set_label("p1", "production", "1.0.0")
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("not a bundle")
    refused = cli("pull", "--store", http_server.url, "-o", str(occupied))
    assert refused.returncode == 1 and "[PULL-TARGET-001]" in refused.stderr
    assert (occupied / "notes.txt").read_text() == "not a bundle"
    usage = cli("pull", "--store", http_server.url)
    assert usage.returncode == 2 and "--output" in usage.stderr
    assert "bundle" in cli("pull", "--help").stdout


def test_the_storage_routes_refuse_what_does_not_fit(
    http_server: LocalServer, served: FileSystemStorage
) -> None:
    import httpx

    from promptshelf.server.auth import create_key
    from promptshelf.storage.codec import encode_version

    _, admin = create_key(served, "admin", ["admin"])
    _, writer = create_key(served, "writer", ["write"])
    http_server.serve(served)
    body = encode_version(make_version("p", "1.0.0"))
    as_admin = {"Authorization": f"Bearer {admin}"}
    as_writer = {"Authorization": f"Bearer {writer}"}
    with httpx.Client(base_url=f"{http_server.url}/api/v1", timeout=30) as http:
        put = http.put("/prompts/p/versions/1.0.0", content=body, headers=as_writer)
        assert (
            put.status_code == 201 and put.headers["location"] == "/api/v1/prompts/p/versions/1.0.0"
        )
        again = http.put("/prompts/p/versions/1.0.0", content=body, headers=as_writer)
        assert (again.status_code, again.json()["error_code"]) == (409, "VERSION-CONFLICT")
        elsewhere = http.put("/prompts/q/versions/1.0.0", content=body, headers=as_writer)
        assert (elsewhere.status_code, elsewhere.json()["error_code"]) == (422, "PS-VALID-001")
        junk = http.put("/prompts/p/versions/2.0.0", content=b"{not json", headers=as_writer)
        assert junk.status_code == 422 and junk.headers["content-type"].startswith(
            "application/problem+json"
        )
        assert http.post("/admin/repair", headers=as_writer).status_code == 403
        assert http.post("/admin/repair", headers=as_admin).json()["actions"] == []
        refused = http.post("/admin/clear", headers=as_admin)
        assert (refused.status_code, refused.json()["error_code"]) == (400, "REQUEST-INVALID")
        assert served.list_prompts() == ["p"]
        # a claimed actor is recorded for admin keys only
        move = {"version": "1.0.0", "actor": "someone-else"}
        staged = http.put("/prompts/p/labels/staging", json=move, headers=as_writer)
        assert staged.json()["actor"] != "someone-else"
        moved = http.put("/prompts/p/labels/canary", json=move, headers=as_admin)
        assert moved.json()["actor"] == "someone-else"
        cleared = http.post("/admin/clear", params={"confirm": "true"}, headers=as_admin)
        assert cleared.status_code == 204
    assert served.list_prompts() == []
    assert served.get_storage_stats()["total_versions"] == 0
