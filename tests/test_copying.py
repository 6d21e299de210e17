"""fresh_copy: what a cache hit hands out must share no mutable object with the cached master."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from promptshelf import FileSystemStorage, OptimizationResult, PromptVersion
from promptshelf.copying import fresh_copy
from promptshelf.models import STORED, ChatMessage, PromptIssue
from promptshelf.storage.filesystem.index import RACY_NS

from helpers import make_version


def rich_version() -> PromptVersion:
    """Every kind of mutable container a version can hold, nested."""
    base = make_version("chat_1", "1.1.0", metadata={"author": "t", "tags": ["a", {"k": [1]}]})
    prompt = base.prompt.model_copy(
        update={"messages": None, "context": {"deep": {"list": [1, 2]}}}
    )
    prompt.messages = [
        ChatMessage(role="system", text="Be brief."),
        ChatMessage(role="user", text="{{q}}"),
    ]
    analysis = base.analysis.model_copy(
        update={
            "issues": [PromptIssue(type="vague_language", severity="warning", description="vague")]
        }
    )
    data = base.model_dump(mode="json")
    data.update(
        prompt=prompt.model_dump(mode="json"),
        analysis=analysis.model_dump(mode="json"),
        optimization_result=OptimizationResult(
            prompt_id="chat_1",
            original_prompt="a",
            optimized_prompt="b",
            strategy="clarity_focus",
            improvement_score=3,
            confidence=0.5,
            changes=["x"],
            metadata={"trace": {"steps": [1]}},
        ).model_dump(mode="json"),
        config={"model": "gpt", "params": {"stop": ["\n"]}},
        commit_message="tighter",
        future_key={"from": ["a newer writer"]},  # kept on a stored read
    )
    return PromptVersion.model_validate(data, context=STORED)


def mutable_ids(value: Any, found: set[int]) -> set[int]:
    if isinstance(value, BaseModel):
        found.add(id(value))
        for item in [*value.__dict__.values(), *(value.__pydantic_extra__ or {}).values()]:
            mutable_ids(item, found)
    elif isinstance(value, dict):
        found.add(id(value))
        for item in value.values():
            mutable_ids(item, found)
    elif isinstance(value, list | set):
        found.add(id(value))
        for item in value:
            mutable_ids(item, found)
    return found


def test_a_fresh_copy_is_equal_and_shares_no_mutable_object() -> None:
    original = rich_version()
    copy = fresh_copy(original)
    assert copy == original
    assert copy.model_dump_json() == original.model_dump_json()
    assert copy.model_extra == {"future_key": {"from": ["a newer writer"]}}
    assert not mutable_ids(copy, set()) & mutable_ids(original, set())


def test_mutating_a_cached_read_changes_nothing_for_the_next_reader(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path / "store")
    saved = rich_version()
    store.save_version(saved)
    # a file is cached once it is older than the racy-timestamp window: wait for that
    written = (tmp_path / "store" / "chat_1" / "1.1.0.json").stat().st_mtime_ns
    while time.time_ns() - written <= RACY_NS:
        time.sleep(0.005)
    first = store.get_version("chat_1", "1.1.0")  # fills the cache
    assert first is not None
    hits_before = store.get_storage_stats()["cache_stats"]["hits"]
    for _ in range(2):
        got = store.get_version("chat_1", "1.1.0")
        assert got is not None and got == first
        assert got.prompt.messages is not None and got.config is not None
        got.prompt.messages[0].text = "changed"
        got.config["params"]["stop"].append("x")
        got.metadata["tags"][1]["k"].append(2)
        got.analysis.issues[0].description = "changed"
        got.model_extra["future_key"]["from"].append("x")  # type: ignore[index]
    assert store.get_storage_stats()["cache_stats"]["hits"] > hits_before
    assert store.get_version("chat_1", "1.1.0") == first
    assert store.get_latest_version("chat_1") == first
    assert store.list_versions("chat_1") == [first]
