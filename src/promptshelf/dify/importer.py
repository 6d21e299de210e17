"""Importing a Dify app's prompts: one version per prompt whose content changed."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from ..manager import VersionManager, check_same_kind
from ..models import Prompt, PromptAnalysis, PromptVersion
from ..timestamps import utc_now
from .dsl import DifyApp, DifyPrompt

AUTHOR = "dify-import"


@dataclass
class ImportReport:
    """What an import did: per prompt id, the version saved or found unchanged."""

    workflow_key: str
    saved: dict[str, str] = field(default_factory=dict)  # prompt id -> new version
    unchanged: dict[str, str] = field(default_factory=dict)  # prompt id -> latest version
    kinds: Counter[str] = field(default_factory=Counter)  # "llm (chat)": count ...

    def to_dict(self) -> dict[str, Any]:
        return {
            "workflow_key": self.workflow_key,
            "saved": self.saved,
            "unchanged": self.unchanged,
            "kinds": dict(sorted(self.kinds.items())),
        }


def prompt_id(key: str, prompt: DifyPrompt) -> str:
    return f"{key}_{prompt.node_id}"


def kind_label(prompt: DifyPrompt) -> str:
    """``llm (chat)``, ``llm (completion)``, ``question-classifier`` ..."""
    if prompt.node_type == "llm":
        return "llm (chat)" if prompt.kind == "chat" else "llm (completion)"
    return prompt.node_type


def to_prompt(key: str, app: DifyApp, prompt: DifyPrompt, source: str) -> Prompt:
    fields: dict[str, Any] = {"text": prompt.fields[0].text}
    if prompt.kind == "chat":
        fields = {"messages": prompt.messages()}
    context: dict[str, Any] = {
        "source": "dify",
        "file": source,
        "app": app.name,
        "app_mode": app.mode,
        "dsl_version": app.dsl_version,
        "node_title": prompt.title,
        "context_enabled": prompt.context_enabled,
    }
    if prompt.parent_id is not None:
        context["parent_node_id"] = prompt.parent_id
    if prompt.jinja2_variables:
        context["jinja2_variables"] = list(prompt.jinja2_variables)
    return Prompt(
        id=prompt_id(key, prompt),
        workflow_id=key,
        node_id=prompt.node_id,
        node_type=prompt.node_type,
        variables=prompt.variables(),
        context=context,
        extracted_at=utc_now(),
        **fields,
    )


def _same_content(latest: PromptVersion, prompt: Prompt, config: dict[str, Any] | None) -> bool:
    """Content only: a retitled node or a new DSL version is not a new prompt version."""
    old = latest.prompt
    return (old.text, old.messages, old.variables, latest.config) == (
        prompt.text,
        prompt.messages,
        prompt.variables,
        config,
    )


def import_app(manager: VersionManager, app: DifyApp, key: str, source: str) -> ImportReport:
    """Save a version of every prompt of ``app`` whose text, messages, variables or model
    config differ from its latest version (parent: that latest version)."""
    storage = manager.storage
    report = ImportReport(key)
    planned = []
    for found in app.prompts:
        prompt = to_prompt(key, app, found, source)
        latest = storage.get_latest_version(prompt.id)
        if latest is not None:
            check_same_kind(latest.prompt, prompt)  # refuse before saving anything
        planned.append((found, prompt, latest))
    for found, prompt, latest in planned:
        report.kinds[kind_label(found)] += 1
        if latest is not None and _same_content(latest, prompt, found.config):
            report.unchanged[prompt.id] = latest.version
            continue
        created = manager.create_version(
            prompt,
            PromptAnalysis(
                prompt_id=prompt.id,
                overall_score=0.0,
                clarity_score=0.0,
                efficiency_score=0.0,
                metadata={"analyzed": False},
            ),
            parent_version=latest.version if latest else None,
            metadata={"author": AUTHOR, "source_file": source},
            config=found.config,
            commit_message=f"Imported from {source} (Dify DSL {app.dsl_version or '?'})",
        )
        report.saved[prompt.id] = created.version
    return report
