"""The data model, in exactly the JSON format the original implementation wrote.

Field names, order and types follow the original ``optimizer.models`` so that
a store it wrote reads unchanged and a version we write reads in it. Two
checks are stricter than the original's, on purpose: versions are parsed by
:mod:`promptshelf.semver` (ASCII digits, no leading zeros), and unknown keys
are refused everywhere (``extra="forbid"``), as the original did for most models.

Two kinds of prompt share the format. A *text* prompt is the original's, byte for
byte. A *chat* prompt also carries ``prompt.messages`` (an ordered list of
:class:`ChatMessage`); its ``text`` is then derived from the messages (see
:func:`chat_text`), so every reader of ``prompt.text`` keeps working. A version
may carry a ``config`` (free JSON: model, provider, temperature ...) and a
``commit_message``. The keys added for these are left out of the JSON when
absent, which is what keeps text prompts byte-identical to the original's files.

An exception to the unknown keys rule: a *stored* :class:`PromptVersion` (parsed with
``context=STORED``, as every backend does) keeps unknown top-level keys, so a
file from a newer writer or a hand edit reads, and survives a copy unchanged.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError

from . import semver
from .errors import RenderError
from .timestamps import Timestamp, UtcTimestamp, utc_now

#: A placeholder: ``{{name}}`` (optional whitespace inside the braces, as in the original
#: format; also Jinja2's ``{{ name }}``) or a Dify reference ``{{#node_id.var#}}`` /
#: ``{{#context#}}`` (node ids may start with a digit). Group 1 or group 2 is the name.
PLACEHOLDER = re.compile(
    r"\{\{(?:\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*|#([A-Za-z0-9_][A-Za-z0-9_.-]*)#)\}\}"
)


class RenderWarning(UserWarning):
    """Values were given for variables the text does not use."""


@dataclass(frozen=True)
class Rendered:
    text: str
    missing: tuple[str, ...]  # placeholders with no value (left visible in ``text``)
    unused: tuple[str, ...]  # values given for no placeholder
    #: A chat prompt's messages, rendered, ready for a chat-completion API
    #: (``{"role": ..., "content": ...}``); a text prompt's one message otherwise.
    messages: tuple[dict[str, str], ...] = ()


def placeholders(text: str) -> list[str]:
    """The distinct placeholder names of a text, in order of first use."""
    return list(dict.fromkeys(a or b for a, b in PLACEHOLDER.findall(text)))


def render_text(text: str, variables: Mapping[str, object]) -> Rendered:
    """Substitute every placeholder that has a value, once (values are never re-scanned)."""
    missing: dict[str, None] = {}

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name in variables:
            return str(variables[name])
        missing[name] = None
        return match.group(0)

    rendered = PLACEHOLDER.sub(substitute, text)
    used = set(placeholders(text))
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

#: Message roles of Dify and OpenAI-style chat-completion APIs.
CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")

#: Dify's ``edition_type`` values: plain text with ``{{#refs#}}``, or a Jinja2 template.
EDITION_TYPES = ("basic", "jinja2")


def _without_absent(data: Any, optional: tuple[str, ...]) -> Any:
    """Drop the keys in ``optional`` whose value is None (they did not exist in the original)."""
    if isinstance(data, dict):
        for key in optional:
            if key in data and data[key] is None:
                del data[key]
    return data


class ChatMessage(BaseModel):
    """One message of a chat prompt.

    ``text`` is the message's active text: for a Dify message edited as Jinja2
    (``edition_type="jinja2"``) it is the Jinja2 template. ``id`` (Dify's
    message id), ``name`` (OpenAI's participant name), ``edition_type`` and
    ``slot`` (a named place in the source workflow this message fills, such as
    Dify's ``memory.query_prompt_template``) are kept for writing the prompt back.
    """

    model_config = _STRICT

    role: str
    text: str
    id: str | None = None
    name: str | None = None
    edition_type: str | None = None
    slot: str | None = None

    @field_validator("role")
    @classmethod
    def _known_role(cls, v: str) -> str:
        if v not in CHAT_ROLES:
            raise ValueError(f"unknown message role {v!r}; use one of {', '.join(CHAT_ROLES)}")
        return v

    @field_validator("edition_type")
    @classmethod
    def _known_edition(cls, v: str | None) -> str | None:
        if v is not None and v not in EDITION_TYPES:
            raise ValueError(f"unknown edition_type {v!r}; use basic or jinja2")
        return v

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_absent(handler(self), ("id", "name", "edition_type", "slot"))


def chat_text(messages: list[ChatMessage]) -> str:
    """The one text a chat prompt's messages read as: ``[role]`` headers, blank-line separated.

    It is what ``prompt.text`` holds for a chat prompt, so code that reads only
    ``text`` (search, scores, the original's readers) still sees every message.
    """
    return "\n\n".join(f"[{m.role}]\n{m.text}" for m in messages)


class Prompt(BaseModel):
    """A prompt extracted from one workflow node: a text prompt, or a chat prompt
    when ``messages`` is given (then ``text`` is derived from them; pass none)."""

    model_config = _STRICT

    id: str
    workflow_id: str
    node_id: str
    node_type: str
    text: str
    role: str = "system"
    variables: list[str] = Field(default_factory=list)
    context: dict[str, Any] = Field(default_factory=dict)
    extracted_at: Timestamp = Field(default_factory=utc_now)
    messages: list[ChatMessage] | None = None

    @model_validator(mode="before")
    @classmethod
    def _derive_chat_text(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("messages") is not None:
            if isinstance(data["messages"], list) and not data["messages"]:
                raise ValueError("a chat prompt needs at least one message")
            try:
                messages = [
                    m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m)
                    for m in data["messages"]
                ]
            except (PydanticValidationError, TypeError):
                # Field validation reports the bad message where it is (not a missing text).
                return {**data, "text": data.get("text") or "(invalid messages)"}
            data = {**data, "messages": messages, "text": chat_text(messages)}
        return data

    @model_validator(mode="after")
    def _chat_text_current(self) -> Prompt:
        # An assignment to ``messages`` (validate_assignment) keeps ``text`` derived.
        if self.messages is not None:
            derived = chat_text(self.messages)
            if self.text != derived:
                object.__setattr__(self, "text", derived)
        return self

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_absent(handler(self), ("messages",))

    @property
    def kind(self) -> str:
        """``"chat"`` for a prompt with messages, else ``"text"``."""
        return "text" if self.messages is None else "chat"

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
    analyzed_at: Timestamp = Field(default_factory=utc_now)


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
    optimized_at: Timestamp = Field(default_factory=utc_now)


#: Validation context of a version read from a store: unknown top-level keys are kept.
STORED: dict[str, Any] = {"stored": True}


class PromptVersion(BaseModel):
    """One immutable version of one prompt: the unit every backend stores.

    Unknown keys are refused from callers; a version read from a store
    (``model_validate_json(data, context=STORED)``) keeps them in ``model_extra``.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)

    prompt_id: str
    version: str
    prompt: Prompt
    analysis: PromptAnalysis
    optimization_result: OptimizationResult | None = None
    parent_version: str | None = None
    created_at: Timestamp = Field(default_factory=utc_now)
    metadata: dict[str, Any] = Field(default_factory=dict)
    #: The model settings this version runs with (free JSON: model, provider, temperature ...).
    config: dict[str, Any] | None = None
    #: Why this version exists, in the author's words.
    commit_message: str | None = None

    @model_serializer(mode="wrap")
    def _serialize(self, handler: SerializerFunctionWrapHandler) -> Any:
        return _without_absent(handler(self), ("config", "commit_message"))

    @model_validator(mode="before")
    @classmethod
    def _known_keys_unless_stored(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, dict) and not (info.context or {}).get("stored"):
            unknown = sorted(set(data) - set(cls.model_fields))
            if unknown:
                raise ValueError(f"unknown field(s): {', '.join(map(str, unknown))}")
        return data

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

    def render_messages(
        self, variables: Mapping[str, object] | None = None, *, strict: bool = True
    ) -> list[dict[str, str]]:
        """The prompt as chat-completion messages (``{"role", "content"}``), placeholders filled.

        A text prompt is one message with its ``role``. Strict and warnings as :meth:`render`.
        """
        result = self.render_report(variables or {})
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
        return [dict(m) for m in result.messages]

    def render_report(self, variables: Mapping[str, object]) -> Rendered:
        """Render without raising or warning: the text, the missing and the unused names
        (over every message of a chat prompt) and the rendered messages."""
        whole = render_text(self.prompt.text, variables)
        if self.prompt.messages is None:
            message = {"role": self.prompt.role, "content": whole.text}
            return Rendered(whole.text, whole.missing, whole.unused, (message,))
        messages = []
        for m in self.prompt.messages:
            rendered = {"role": m.role, "content": render_text(m.text, variables).text}
            if m.name is not None:
                rendered["name"] = m.name
            messages.append(rendered)
        return Rendered(whole.text, whole.missing, whole.unused, tuple(messages))

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
    at: Timestamp = Field(default_factory=utc_now)


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
    deleted_at: UtcTimestamp
