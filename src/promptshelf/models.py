"""The data model, in exactly the JSON format the original implementation wrote.

Field names, order and types follow the original ``optimizer.models`` so that
a store it wrote reads unchanged and a version we write reads in it. Two
checks are stricter than the original's, on purpose: versions are parsed by
:mod:`promptshelf.semver` (ASCII digits, no leading zeros), and unknown keys
are refused everywhere (``extra="forbid"``), as the original did for most models.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from . import semver
from .errors import RenderError

#: ``{{name}}`` with optional whitespace inside the braces, as in the original format.
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


class RenderWarning(UserWarning):
    """Values were given for variables the text does not use."""


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # placeholders with no value (left visible in ``text``)
    unused: tuple[str, ...]  # values given for no placeholder


def placeholders(text: str) -> list[str]:
    """The distinct ``{{names}}`` of a text, in order of first use."""
    return list(dict.fromkeys(PLACEHOLDER.findall(text)))


def render_text(text: str, variables: Mapping[str, object]) -> Rendered:
    """Substitute every placeholder that has a value, once (values are never re-scanned)."""
    missing: dict[str, None] = {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name in variables:
            return str(variables[name])
        missing[name] = None
        return match.group(0)

    rendered = PLACEHOLDER.sub(substitute, text)
    used = set(PLACEHOLDER.findall(text))
    return Rendered(rendered, tuple(missing), tuple(k for k in variables if k not in used))


def variable_warnings(text: str, declared: list[str]) -> list[str]:
    """Disagreements between a prompt's declared ``variables`` and its placeholders."""
    used = placeholders(text)
    problems = [
        f"declared variable {name!r} is not used in the text"
        for name in declared
        if name not in used
    ]
    problems += [
        f"placeholder {{{{{name}}}}} is not a declared variable"
        for name in used
        if name not in declared
    ]
    return problems


class IssueSeverity(str, Enum):
    CRITICAL = "critical"
    WARNING = "warning"
    INFO = "info"


class IssueType(str, Enum):
    TOO_LONG = "too_long"
    TOO_SHORT = "too_short"
    VAGUE_LANGUAGE = "vague_language"
    MISSING_STRUCTURE = "missing_structure"
    REDUNDANCY = "redundancy"
    POOR_FORMATTING = "poor_formatting"
    AMBIGUOUS_INSTRUCTIONS = "ambiguous_instructions"


class SuggestionType(str, Enum):
    ADD_STRUCTURE = "add_structure"
    CLARIFY_INSTRUCTIONS = "clarify_instructions"
    REDUCE_LENGTH = "reduce_length"
    ADD_EXAMPLES = "add_examples"
    IMPROVE_FORMATTING = "improve_formatting"


class OptimizationStrategy(str, Enum):
    CLARITY_FOCUS = "clarity_focus"
    EFFICIENCY_FOCUS = "efficiency_focus"
    STRUCTURE_FOCUS = "structure_focus"
    AUTO = "auto"
    LLM_GUIDED = "llm_guided"
    LLM_CLARITY = "llm_clarity"
    LLM_EFFICIENCY = "llm_efficiency"
    HYBRID = "hybrid"


_STRICT = ConfigDict(extra="forbid", validate_assignment=True)


class Prompt(BaseModel):
    """A prompt extracted from one workflow node."""

    model_config = _STRICT

    id: str
    workflow_id: str
    node_id: str
    node_type: str
    text: str
    role: str = "system"
    variables: list[str] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    extracted_at: datetime = Field(default_factory=datetime.now)

    @field_validator("text")
    @classmethod
    def _text_not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("Prompt text cannot be empty")
        return v

    @field_validator("variables")
    @classmethod
    def _variables_not_blank(cls, v: list[str]) -> list[str]:
        for name in v:
            if not name.strip():
                raise ValueError(f"Invalid variable name: {name!r}")
        return v


class PromptIssue(BaseModel):
    model_config = _STRICT

    severity: IssueSeverity
    type: IssueType
    description: str
    location: str | None = None
    suggestion: str | None = None


class PromptSuggestion(BaseModel):
    model_config = _STRICT

    type: SuggestionType
    description: str
    priority: int = Field(..., ge=1, le=10)


class PromptAnalysis(BaseModel):
    """Quality scores (0-100), issues and suggestions for one prompt text."""

    model_config = _STRICT

    prompt_id: str
    overall_score: float = Field(..., ge=0.0, le=100.0)
    clarity_score: float = Field(..., ge=0.0, le=100.0)
    efficiency_score: float = Field(..., ge=0.0, le=100.0)
    issues: list[PromptIssue] = Field(default_factory=list)
    suggestions: list[PromptSuggestion] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    analyzed_at: datetime = Field(default_factory=datetime.now)


class OptimizationResult(BaseModel):
    """What an optimizer did to a prompt; its presence makes a minor version bump."""

    model_config = _STRICT

    prompt_id: str
    original_prompt: str
    optimized_prompt: str
    strategy: OptimizationStrategy
    improvement_score: float
    confidence: float = Field(..., ge=0.0, le=1.0)
    changes: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)
    optimized_at: datetime = Field(default_factory=datetime.now)


class PromptVersion(BaseModel):
    """One immutable version of one prompt: the unit every backend stores."""

    model_config = _STRICT

    prompt_id: str
    version: str
    prompt: Prompt
    analysis: PromptAnalysis
    optimization_result: OptimizationResult | None = None
    parent_version: str | None = None
    created_at: datetime = Field(default_factory=datetime.now)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version")
    @classmethod
    def _semantic_version(cls, v: str) -> str:
        semver.parse(v)
        return v

    @field_validator("parent_version")
    @classmethod
    def _parent_semantic_version(cls, v: str | None) -> str | None:
        if v is not None:
            semver.parse(v)
        return v

    def get_version_number(self) -> tuple[int, int, int]:
        return semver.parse(self.version)

    def render(
        self,
        variables: Mapping[str, object] | None = None,
        *,
        strict: bool = True,
        **more: object,
    ) -> str:
        """The prompt text with its ``{{placeholders}}`` filled in.

        ``strict`` (the default) raises ``RenderError`` naming every placeholder
        without a value; otherwise they stay visible, never silently empty.
        Values for variables the text does not use are reported with a
        ``RenderWarning``. Pass a mapping to use a variable named ``strict``.
        """
        result = self.render_report({**(variables or {}), **more})
        if strict and result.missing:
            raise RenderError(
                f"no value for {', '.join(result.missing)} in {self.prompt_id} {self.version}",
                context={"missing": list(result.missing), "unused": list(result.unused)},
            )
        if result.unused:
            warnings.warn(
                f"variables not used by {self.prompt_id} {self.version}: "
                f"{', '.join(result.unused)}",
                RenderWarning,
                stacklevel=2,
            )
        return result.text

    def render_report(self, variables: Mapping[str, object]) -> Rendered:
        """Render without raising or warning: the text, the missing and the unused names."""
        return render_text(self.prompt.text, variables)

    def is_baseline(self) -> bool:
        return self.parent_version is None


class LabelAction(str, Enum):
    SET = "set"  # the label pointed nowhere before
    MOVE = "move"  # the label pointed at another version before
    REMOVE = "remove"


class LabelEvent(BaseModel):
    """One entry of a prompt's append-only label history."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    seq: int = Field(..., ge=1)  # position in the prompt's history, from 1
    prompt_id: str
    label: str
    action: LabelAction
    from_version: str | None = None
    to_version: str | None = None
    actor: str | None = None
    reason: str | None = None
    at: datetime = Field(default_factory=datetime.now)


def labels_after(events: list[LabelEvent]) -> dict[str, str]:
    """Where every label points once ``events`` (in order) have happened."""
    current: dict[str, str] = {}
    for event in events:
        if event.action is LabelAction.REMOVE or event.to_version is None:
            current.pop(event.label, None)
        else:
            current[event.label] = event.to_version
    return current


class TrashEntry(BaseModel):
    """A deleted version, kept until the trash is emptied; ``restore_version`` brings it back."""

    model_config = ConfigDict(frozen=True)

    prompt_id: str
    version: str
    deleted_at: datetime
