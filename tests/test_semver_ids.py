"""Property tests for version ordering and bumping, and for id validation."""

from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from promptshelf import InvalidPromptIdError, InvalidVersionError, semver
from promptshelf.ids import MAX_ID_BYTES, validate_prompt_id

components = st.integers(min_value=0, max_value=semver.MAX_COMPONENT)
keys = st.tuples(components, components, components)


@given(keys)
def test_format_and_parse_round_trip(key: tuple[int, int, int]) -> None:
    assert semver.parse(semver.format_key(key)) == key


@given(st.lists(keys, min_size=1, max_size=30))
def test_sorting_is_numeric_per_component(items: list[tuple[int, int, int]]) -> None:
    versions = [semver.format_key(k) for k in items]
    assert [semver.parse(v) for v in semver.sort_versions(versions)] == sorted(items)


below_max = st.integers(min_value=0, max_value=semver.MAX_COMPONENT - 1)


@given(st.tuples(below_max, below_max, below_max))
def test_bumps_are_strictly_increasing(key: tuple[int, int, int]) -> None:
    version = semver.format_key(key)
    minor, patch = semver.bump(version, minor=True), semver.bump(version, minor=False)
    assert semver.parse(minor) > semver.parse(patch) > semver.parse(version)
    assert semver.parse(minor)[2] == 0


def test_bump_examples() -> None:
    assert semver.bump("1.2.0", minor=False) == "1.2.1"
    assert semver.bump("1.2.7", minor=True) == "1.3.0"
    assert semver.sort_versions(["1.10.0", "1.9.0"]) == ["1.9.0", "1.10.0"]
    with pytest.raises(InvalidVersionError):
        semver.bump(f"1.{semver.MAX_COMPONENT}.0", minor=True)


@given(st.text(max_size=20))
@example("1.0.0 ")
@example("٣.0.0")
@example("01.0.0")
def test_parse_accepts_exactly_the_canonical_form(text: str) -> None:
    try:
        key = semver.parse(text)
    except InvalidVersionError:
        assert semver.try_parse(text) is None
        return
    assert semver.format_key(key) == text  # accepted means canonical: one string per version


@settings(max_examples=500)
@given(st.text(max_size=80))
@example("../x")
@example("a/b")
@example("café")
@example("cafe\u0301")
def test_accepted_ids_are_safe_single_path_components(text: str) -> None:
    try:
        validate_prompt_id(text)
    except InvalidPromptIdError as exc:
        assert exc.error_code == "PS-ID-001"
        return
    assert text and len(text.encode()) <= MAX_ID_BYTES
    assert os.path.basename(text) == text and text not in (".", "..")
    assert not text.startswith(".") and "\x00" not in text and "/" not in text
    assert unicodedata.is_normalized("NFC", text)
    assert os.path.normpath(os.path.join("/root", text)) == "/root/" + text


def test_id_length_limit_counts_bytes() -> None:
    assert validate_prompt_id("x" * MAX_ID_BYTES)
    with pytest.raises(InvalidPromptIdError):
        validate_prompt_id("x" * (MAX_ID_BYTES + 1))
    assert validate_prompt_id("é" * (MAX_ID_BYTES // 2))
    with pytest.raises(InvalidPromptIdError):
        validate_prompt_id("é" * (MAX_ID_BYTES // 2 + 1))


@pytest.mark.parametrize("good", ["wf_001_llm_1", "1711528914102", "café", "节点-1", "a.b", "A b"])
def test_ordinary_ids_are_accepted(good: str) -> None:
    assert validate_prompt_id(good) == good
