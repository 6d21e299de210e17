"""Model validation, as strict as the original's and a little stricter."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from promptshelf import OptimizationResult, PromptAnalysis, PromptVersion

from helpers import make_analysis, make_prompt, make_version


def test_empty_text_is_refused() -> None:
    with pytest.raises(ValidationError):
        make_prompt(text="   ")


@pytest.mark.parametrize("score", [-0.1, 100.1])
def test_scores_are_bounded(score: float) -> None:
    with pytest.raises(ValidationError):
        PromptAnalysis(prompt_id="p", overall_score=score, clarity_score=50, efficiency_score=50)


@pytest.mark.parametrize("confidence", [-0.01, 1.01])
def test_confidence_is_bounded(confidence: float) -> None:
    with pytest.raises(ValidationError):
        OptimizationResult(
            prompt_id="p",
            original_prompt="a",
            optimized_prompt="b",
            strategy="auto",
            improvement_score=1,
            confidence=confidence,
        )


@pytest.mark.parametrize("version", ["1.0", "a.b.c", "-1.0.0", "1.0.0.0"])
def test_versions_must_be_semantic(version: str) -> None:
    with pytest.raises(ValidationError):
        make_version(version=version)


def test_unknown_keys_are_refused() -> None:
    data = make_version().model_dump()
    data["surprise"] = 1
    with pytest.raises(ValidationError):
        PromptVersion.model_validate(data)


def test_helpers() -> None:
    v = make_version(version="1.2.3")
    assert v.get_version_number() == (1, 2, 3)
    assert v.is_baseline()
    assert make_analysis().issues == []
