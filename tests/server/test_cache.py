"""The server's cache of encoded versions never serves bytes the store no longer holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import httpx

from promptshelf import FileSystemStorage, SQLiteStorage
from promptshelf.server.app import EncodedCache

from .serverkit import start_server
from helpers import make_version


def settled(token_of: Callable[[], object]) -> object:
    """The token once the store vouches for it (a file changed in the last 50 ms is not)."""
    deadline = time.monotonic() + 10
    while (token := token_of()) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return token


def settled_token(store: FileSystemStorage, prompt_id: str, version: str) -> object:
    return settled(lambda: store.version_token(prompt_id, version))


def test_a_recreated_version_is_read_again(tmp_path: Path) -> None:
    server_side = FileSystemStorage(tmp_path / "s")
    other_process = FileSystemStorage(tmp_path / "s")
    other_process.save_version(make_version("p", "1.0.0", text="first {{document}}"))
    cache = EncodedCache()
    first_token = settled_token(server_side, "p", "1.0.0")
    first = cache.get(server_side, "p", "1.0.0")
    assert first is not None and cache.misses == 1
    assert cache.get(server_side, "p", "1.0.0") is first and cache.hits == 1
    other_process.delete_version("p", "1.0.0")
    assert cache.get(server_side, "p", "1.0.0") is None  # gone: never served from the cache
    other_process.save_version(make_version("p", "1.0.0", text="second {{document}}"))
    assert settled_token(server_side, "p", "1.0.0") != first_token
    again = cache.get(server_side, "p", "1.0.0")
    assert again is not None and again.version.prompt.text == "second {{document}}"
    assert again.etag != first.etag


def test_backends_without_tokens_are_always_read(tmp_path: Path) -> None:
    store = SQLiteStorage(tmp_path / "s.db")
    store.save_version(make_version("p", "1.0.0"))
    cache = EncodedCache()
    assert store.version_token("p", "1.0.0") is None
    assert cache.get(store, "p", "1.0.0") is not None
    assert cache.get(store, "p", "1.0.0") is not None
    assert (cache.hits, cache.misses) == (0, 2)


def settled_label_token(store: FileSystemStorage, prompt_id: str) -> object:
    return settled(lambda: store.label_token(prompt_id))


def test_label_token_changes_with_every_label_event(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path / "s")
    other_process = FileSystemStorage(tmp_path / "s")
    store.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    assert store.label_token("p") is None  # no label log yet
    other_process.set_label("p", "production", "1.0.0")
    first = settled_label_token(store, "p")
    assert store.label_token("p") == first
    other_process.set_label("p", "production", "1.1.0")
    assert settled_label_token(store, "p") != first
    assert SQLiteStorage(tmp_path / "x.db").label_token("p") is None


def test_a_label_moved_by_another_process_is_served_at_once(tmp_path: Path) -> None:
    """The server keeps label answers and revalidates them on every GET: a move made by
    another process is what the very next GET answers, in the body, the ETag and a 304."""
    store_dir = tmp_path / "store"
    other_process = FileSystemStorage(store_dir)
    other_process.save_versions(
        [make_version("p", "1.0.0", text="one {{document}}"), make_version("p", "1.1.0")]
    )
    other_process.set_label("p", "production", "1.0.0")
    server = start_server(str(store_dir), tmp_path)
    try:
        with httpx.Client(base_url=server.url) as c:
            settled_label_token(other_process, "p")
            first = c.get("/api/v1/prompts/p")
            assert first.headers["x-promptshelf-version"] == "1.0.0"
            etag = first.headers["etag"]
            again = c.get("/api/v1/prompts/p", headers={"if-none-match": etag})
            assert again.status_code == 304  # from the kept answer
            for target in ("1.1.0", "1.0.0", "1.1.0"):
                other_process.set_label("p", "production", target)
                moved = c.get("/api/v1/prompts/p", headers={"if-none-match": etag})
                assert moved.status_code == 200
                assert moved.headers["x-promptshelf-version"] == target
                assert moved.headers["x-promptshelf-resolved"] == "label:production"
                etag = moved.headers["etag"]
                settled_label_token(other_process, "p")  # now the kept answer is used
                kept = c.get("/api/v1/prompts/p?label=production", headers={"if-none-match": etag})
                assert kept.status_code == 304
            other_process.remove_label("p", "production")
            fallback = c.get("/api/v1/prompts/p")
            assert fallback.headers["x-promptshelf-resolved"] == "latest"
            assert c.get("/api/v1/prompts/p?label=production").status_code == 404
    finally:
        server.stop()
