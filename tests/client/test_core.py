"""The client's parts that need no server: served versions, fallbacks, keys, errors, disk."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptshelf import PromptVersion
from promptshelf.client import PromptClient
from promptshelf.client.core import fallback_version, served
from promptshelf.client.disk import DiskCache
from promptshelf.client.wire import error_from_problem, error_from_response, etag_of, parse_etag
from promptshelf.errors import (
    ConfigurationError,
    InvalidPromptIdError,
    InvalidVersionError,
    LabelNotFoundError,
    OptimizerError,
    StorageError,
    VersionConflictError,
)

from helpers import make_version


def test_a_served_version_is_a_prompt_version_and_equals_one() -> None:
    plain = make_version("p", "1.0.0")
    answer = served(plain, etag_of(plain), "disk", True)
    assert isinstance(answer, PromptVersion)
    assert answer == plain and plain == answer
    assert (answer.stale, answer.source, answer.etag) == (True, "disk", etag_of(plain))
    assert answer.model_dump() == plain.model_dump()
    assert served(answer, None, "server", False).stale is False and answer.stale is True


def test_fallbacks_text_and_messages() -> None:
    text = fallback_version("p", "Hi {{name}}")
    assert (text.source, text.stale, text.version) == ("fallback", True, "0.0.0")
    assert text.render(name="Ada") == "Hi Ada"
    chat = fallback_version("p", [{"role": "system", "content": "Be brief, {{name}}."}])
    assert chat.prompt.messages is not None and chat.prompt.messages[0].text.startswith("Be")
    assert chat.prompt.variables == ["name"]
    for bad in ("", "   ", [{"role": "user"}], [], [{"role": "wizard", "content": "x"}]):
        with pytest.raises(ConfigurationError):
            fallback_version("p", bad)  # type: ignore[arg-type]


def test_bad_arguments_are_refused_before_any_request() -> None:
    client = PromptClient("http://127.0.0.1:9", timeout=0.5)
    try:
        with pytest.raises(InvalidPromptIdError):
            client.get("../etc/passwd")
        with pytest.raises(InvalidVersionError):
            client.get("p", version="1.0")
        with pytest.raises(InvalidPromptIdError):
            client.get("p", "bad/label")
        assert client.stats.requests == 0
    finally:
        client.close()


def test_problems_become_the_library_classes() -> None:
    conflict = error_from_problem(
        409,
        {"error_code": "VERSION-CONFLICT", "message": "x", "context": {"version": "1.0.0"}},
        {"prompt_id": "p"},
    )
    assert isinstance(conflict, VersionConflictError)
    assert conflict.context == {"prompt_id": "p", "version": "1.0.0"}
    missing = error_from_problem(404, {"error_code": "LABEL-NOT-FOUND", "message": "no label"})
    assert isinstance(missing, LabelNotFoundError) and missing.message == "no label"
    unknown = error_from_problem(403, {"error_code": "AUTH-SCOPE", "message": "read only"})
    assert type(unknown) is OptimizerError and str(unknown) == "[AUTH-SCOPE] read only"
    crashed = error_from_response(502, b"<html>bad gateway</html>")
    assert isinstance(crashed, StorageError) and crashed.error_code == "HTTP-502"
    assert parse_etag('W/"abc"') == "abc" and parse_etag(None) is None


def test_the_disk_cache_sets_a_damaged_entry_aside(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache")
    version = make_version("p", "1.0.0", text="Intact text.")
    key = ("p", "label", "production")
    cache.put(key, version)
    assert cache.load(key) == version
    path = tmp_path / "cache" / "p" / "1.0.0.json"
    data = path.read_bytes()
    path.write_bytes(data.replace(b"Intact", b"Intacu"))
    assert cache.load(key) is None
    assert cache.corrupt_found == 1
    cache.put(key, version)  # refetched: written back whole
    assert cache.load(key) == version
    cache.forget(key)
    assert cache.load(key) is None
    assert cache.load(("p", "version", "1.0.0")) == version
    cache.forget(("p", "version", "1.0.0"))
    assert cache.load(("p", "version", "1.0.0")) is None
    cache.close()
