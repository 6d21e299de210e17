"""Builders shared by the tests: small valid prompts, analyses and versions."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from promptshelf import (
    OptimizationResult,
    OptimizationStrategy,
    Prompt,
    PromptAnalysis,
    PromptVersion,
)


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
