"""T16, T24-T26: hostile input. Every id, version, text and metadata is either refused
with a coded validation error or round-trips byte for byte; nothing is ever written
outside the store, and no unhandled exception escapes."""

from __future__ import annotations

import math
import os
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from promptshelf import (
    FileSystemStorage,
    InMemoryStorage,
    SQLiteStorage,
    ValidationError,
    VersionStorage,
)

from helpers import make_version

SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=30))
json_like = st.recursive(
    json_leaf,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
hostile_value = st.one_of(
    json_like,
    st.sets(st.integers(), max_size=3),
    st.tuples(st.integers()),
    st.just(float("nan")),
    st.just(object()),
)


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"k": value}
    return value


@pytest.fixture(params=["memory", "filesystem", "sqlite"])
def store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> VersionStorage:
    base = tmp_path_factory.mktemp("hostile")
    if request.param == "memory":
        return InMemoryStorage()
    if request.param == "sqlite":
        return SQLiteStorage(base / "s.db")
    return FileSystemStorage(base / "store")


def outside_snapshot(root: Path) -> set[str]:
    """Every path in the test's own tree outside ``root``, and the absolute targets a hostile
    id could name. Not all of /tmp: other programs write there, which made this test flaky."""
    top = root.parent.parent
    inside = {str(p) for p in top.rglob("*") if root not in p.parents and p != root}
    return inside | {t for t in ("/tmp/x", "/etc/x", "/x") if os.path.lexists(t)}


@SETTINGS
@given(prompt_id=st.text(max_size=80), version=st.text(max_size=20))
@example(prompt_id="../../etc/passwd", version="1.0.0")
@example(prompt_id="ok", version="1.0.0/../../x")
@example(prompt_id="cafe\u0301", version="1.0.0")
@example(prompt_id="ok\udcff", version="1.0.0")
def test_ids_and_versions(store: VersionStorage, prompt_id: str, version: str) -> None:
    try:
        candidate = make_version("seed", "1.0.0").model_copy(
            update={"prompt_id": prompt_id, "version": version}
        )
        store.save_version(candidate)
    except ValidationError as exc:
        assert exc.error_code.startswith("PS-")
        return
    except Exception as exc:  # a VersionConflictError is fine: the same id came twice
        assert getattr(exc, "error_code", None) == "VERSION-CONFLICT", repr(exc)
        return
    assert unicodedata.is_normalized("NFC", prompt_id)
    back = store.get_version(prompt_id, version)
    assert back == candidate
    if isinstance(store, FileSystemStorage):
        target = (store.storage_dir / prompt_id / f"{version}.json").resolve()
        assert str(target).startswith(str(store.storage_dir.resolve()) + os.sep)


texts = st.one_of(
    st.text(min_size=1, max_size=300),
    st.text(alphabet=st.characters(codec="utf-8"), min_size=1, max_size=50),
    st.just("\x00nul\x00"),
    st.just("\u202eright-to-left\u202c"),
    st.just("🧪" * 100),
    st.just("\ud800 lone surrogate"),
)


@SETTINGS
@given(text=texts, metadata=st.dictionaries(st.text(max_size=10), hostile_value, max_size=4))
@example(text="x" * 100_000, metadata={})
@example(text="deep", metadata={"d": nested(300)})
@example(text="deep", metadata={"d": nested(150)})
def test_texts_and_metadata(store: VersionStorage, text: str, metadata: dict[str, Any]) -> None:
    existing = store.list_version_numbers("hostile")
    number = f"1.{len(existing)}.0"
    try:
        candidate = make_version("hostile", number, text=text, metadata=metadata)
    except Exception:  # the model itself refuses it (blank text): nothing to store
        return
    try:
        store.save_version(candidate)
    except ValidationError as exc:
        assert exc.error_code.startswith("PS-")
        assert store.get_version("hostile", number) is None
        return
    back = store.get_version("hostile", number)
    assert back == candidate
    assert back is not None and back.model_dump_json() == candidate.model_dump_json()
    assert not any(isinstance(v, float) and math.isnan(v) for v in metadata.values())


def test_nothing_is_written_outside_the_store(tmp_path: Path) -> None:
    root = tmp_path / "inner" / "store"
    store = FileSystemStorage(root)
    before = outside_snapshot(root)
    hostile_ids = [
        "../x",
        "../../x",
        "/etc/x",
        "a/../../x",
        "..",
        ".",
        "x\x00y",
        "CON",
        "a\\..\\x",
        "~",
        "$HOME",
        "%2e%2e",
        "a" * 300,
    ]
    rejected = 0
    for prompt_id in hostile_ids:
        try:
            store.save_version(
                make_version("seed", "1.0.0").model_copy(update={"prompt_id": prompt_id})
            )
        except ValidationError:
            rejected += 1
    assert outside_snapshot(root) == before
    print(
        f"T24 hostile ids: {rejected} rejected / {len(hostile_ids)} "
        f"(the rest are plain names inside the store); files created outside the root: 0"
    )
