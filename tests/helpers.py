"""Builders shared by the tests: small valid prompts, analyses and versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promptshelf import (
    FileSystemStorage,
    OptimizationResult,
    OptimizationStrategy,
    Prompt,
    PromptAnalysis,
    PromptVersion,
    VersionStorage,
)
from promptshelf.storage.codec import encode_version


def make_prompt(prompt_id: str = "wf_001_llm_1", text: str = "Summarize {{document}}.") -> Prompt:
    return Prompt(
        id=prompt_id,
        workflow_id="wf_001",
        node_id="llm_1",
        node_type="llm",
        text=text,
        variables=["document"] if "{{document}}" in text else [],
        context={"label": prompt_id.upper()},
        extracted_at=datetime(2025, 11, 17, 10, 30),
    )


def make_analysis(prompt_id: str = "wf_001_llm_1", score: float = 60.0) -> PromptAnalysis:
    return PromptAnalysis(
        prompt_id=prompt_id,
        overall_score=score,
        clarity_score=min(100.0, score + 5),
        efficiency_score=max(0.0, score - 5),
        metadata={"token_count": 7},
        analyzed_at=datetime(2025, 11, 17, 10, 31),
    )


def make_result(prompt_id: str = "wf_001_llm_1", text: str = "better") -> OptimizationResult:
    return OptimizationResult(
        prompt_id=prompt_id,
        original_prompt="Summarize {{document}}.",
        optimized_prompt=text,
        strategy=OptimizationStrategy.CLARITY_FOCUS,
        improvement_score=5.0,
        confidence=0.8,
        changes=["clearer"],
    )


def make_version(
    prompt_id: str = "wf_001_llm_1",
    version: str = "1.0.0",
    *,
    text: str | None = None,
    score: float = 60.0,
    parent: str | None = None,
    metadata: dict[str, Any] | None = None,
) -> PromptVersion:
    return PromptVersion(
        prompt_id=prompt_id,
        version=version,
        prompt=make_prompt(prompt_id, text or f"Summarize {{{{document}}}} (v{version})."),
        analysis=make_analysis(prompt_id, score),
        parent_version=parent,
        created_at=datetime(2026, 1, 1, 12, 0),
        metadata=metadata if metadata is not None else {"author": "test"},
    )


# -- one of everything a store holds, and views to compare two stores by ---------------


def fill_everything(store: VersionStorage) -> None:
    """Versions, labels moved and removed by several actors, a labelled version force-deleted,
    a prompt that lives only in the trash and one that only has a label history left."""
    for i in range(4):
        store.save_versions(
            [make_version(f"p{i}", f"1.{minor}.0", score=50 + minor) for minor in range(3 + i)]
        )
        store.set_label(f"p{i}", "production", "1.0.0", actor="ci", reason="first release")
        store.set_label(f"p{i}", "staging", f"1.{1 + i}.0")
        store.set_label(f"p{i}", "production", "1.1.0", actor="alice", reason="scored higher")
    store.remove_label("p1", "staging", actor="bob", reason="not needed")
    store.delete_version("p2", "1.0.0")
    store.delete_version("p3", "1.4.0", force=True)  # staging pointed at it: recorded removal
    store.save_version(make_version("p3", "1.4.0", text="saved again after the delete"))
    store.delete_version("p3", "1.4.0")  # two trashed copies of one version
    store.save_version(make_version("only-trash", "1.0.0"))
    store.delete_version("only-trash", "1.0.0")
    store.save_version(make_version("only-history", "1.0.0"))
    store.set_label("only-history", "production", "1.0.0")
    store.delete_version("only-history", "1.0.0", force=True)
    if isinstance(store, FileSystemStorage):
        store.compress(keep_recent=1)  # compressed versions travel too


def inventory(store: VersionStorage) -> dict[str, object]:
    """Everything the store holds, as comparable values: canonical bytes, events, trash."""
    held: dict[str, object] = {}
    for prompt_id in store.list_held_prompts():
        held[prompt_id] = (
            [encode_version(v) for v in store.list_versions(prompt_id)],
            store.list_labels(prompt_id),
            [e.model_dump() for e in store.label_history(prompt_id)],
            [
                (t.entry.model_dump(), encode_version(t.version))
                for t in store.read_trash(prompt_id)
            ],
        )
    return held


def counts(store: VersionStorage) -> tuple[int, int, int, int]:
    """(versions, current labels, label events, trashed copies)."""
    prompts = store.list_held_prompts()
    return (
        sum(len(store.list_version_numbers(p)) for p in prompts),
        sum(len(store.list_labels(p)) for p in prompts),
        sum(len(store.label_history(p)) for p in prompts),
        len(store.list_trash()),
    )


CHAT_MESSAGES: list[dict[str, Any]] = [
    {"role": "system", "text": "You are a support agent for {{product}}.", "id": "m-sys"},
    {"role": "user", "text": "{{#sys.query#}}\n\nContext: {{#context#}}", "edition_type": "basic"},
    {"role": "assistant", "text": "Understood — 日本語も可。", "name": "helper"},
    {
        "role": "user",
        "text": "{% if lang %}Answer in {{ lang }}.{% endif %}",
        "edition_type": "jinja2",
        "slot": "memory.query_prompt_template",
    },
]


def make_chat_version(
    prompt_id: str = "wf_chat_llm_1",
    version: str = "1.0.0",
    *,
    messages: list[dict[str, Any]] | None = None,
    config: dict[str, Any] | None = None,
    commit_message: str | None = "first chat version",
    parent: str | None = None,
) -> PromptVersion:
    msgs = messages if messages is not None else CHAT_MESSAGES
    return PromptVersion(
        prompt_id=prompt_id,
        version=version,
        prompt=Prompt(
            id=prompt_id,
            workflow_id="wf_chat",
            node_id="llm_1",
            node_type="llm",
            messages=msgs,
            variables=["product", "sys.query", "context", "lang"],
            extracted_at=datetime(2025, 11, 17, 10, 30),
        ),
        analysis=make_analysis(prompt_id),
        parent_version=parent,
        created_at=datetime(2026, 1, 1, 12, 0),
        metadata={"author": "test"},
        config=config
        if config is not None
        else {"model": {"provider": "openai", "name": "gpt-4o"}, "temperature": 0.2},
        commit_message=commit_message,
    )
