"""The server's cache of encoded versions never serves bytes the store no longer holds."""

from __future__ import annotations

import time
from pathlib import Path

from promptshelf import FileSystemStorage, SQLiteStorage
from promptshelf.server.app import EncodedCache

from helpers import make_version


def settled_token(store: FileSystemStorage, prompt_id: str, version: str) -> object:
    deadline = time.monotonic() + 10
    while (token := store.version_token(prompt_id, version)) is None:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return token


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
