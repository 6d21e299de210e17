"""Reading a Dify DSL export: where its prompts are and what they say.

A Dify app export (``kind: app``, DSL 0.1 to 0.6) keeps its workflow graph in
``workflow.graph.nodes``. Every node's top-level ``type`` is ``custom`` (or
``custom-note`` for a sticky note); what a node *is* lives in ``data.type``.
Prompt-bearing nodes:

* ``llm``, chat model: ``data.prompt_template`` is a list of messages
  ``{id?, role, text, edition_type?, jinja2_text?}``; a message's active text is
  ``jinja2_text`` when ``edition_type == "jinja2"``, else ``text``. Where the
  node has ``memory.query_prompt_template`` (the user turn after the history),
  it is one more ``user`` message with ``slot="memory.query_prompt_template"``.
* ``llm``, completion model: ``data.prompt_template`` is one object
  ``{text, edition_type?, jinja2_text?}``: a text prompt.
* ``question-classifier`` and ``parameter-extractor``: ``data.instruction``;
  ``agent``: ``data.agent_parameters.instruction.value``: text prompts.

Nodes inside an iteration are ordinary members of the node list (with a
``parentId``). A prompt's id is ``<workflow key>_<node id>``: node ids are stable
across re-exports, titles are neither stable nor unique.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Any

import yaml

from ..errors import DifyError
from ..ids import validate_prompt_id
from ..models import ChatMessage, placeholders

#: A Dify variable reference: ``{{#node_id.var#}}``, ``{{#sys.query#}}``, ``{{#context#}}``.
DIFY_REF = re.compile(r"\{\{#([A-Za-z0-9_][A-Za-z0-9_.-]*)#\}\}")

#: The DSL versions this module was written against (0.1.0 ... 0.6.x).
KNOWN_DSL = re.compile(r"0\.[0-6](\.\d+)?")

Path = tuple[str | int, ...]


@dataclass(frozen=True)
class TextField:
    """One text a prompt is made of, and where it lives in the document."""

    path: Path  # keys and list indexes from the document root to the active text
    text: str
    role: str | None = None  # chat messages only
    message_id: str | None = None
    edition_type: str | None = None
    slot: str | None = None

    @property
    def jinja2(self) -> bool:
        return self.edition_type == "jinja2"


@dataclass(frozen=True)
class DifyPrompt:
    """The prompt of one node: a chat prompt (one field per message) or a text prompt."""

    node_id: str
    node_type: str  # data.type: llm, question-classifier, parameter-extractor, agent
    title: str
    kind: str  # "chat" or "text"
    fields: tuple[TextField, ...]
    jinja2_variables: tuple[str, ...]
    context_enabled: bool
    config: dict[str, Any] | None
    parent_id: str | None  # the iteration (or loop) holding the node

    def messages(self) -> list[ChatMessage]:
        return [
            ChatMessage(
                role=f.role or "user",
                text=f.text,
                id=f.message_id,
                edition_type=f.edition_type,
                slot=f.slot,
            )
            for f in self.fields
        ]

    def variables(self) -> list[str]:
        """Dify references in every field, Jinja2 names in Jinja2 fields, then the
        declared Jinja2 variables (in order of first use, each once)."""
        found: dict[str, None] = {}
        for f in self.fields:
            names = placeholders(f.text) if f.jinja2 else DIFY_REF.findall(f.text)
            found.update(dict.fromkeys(names))
        if any(f.jinja2 for f in self.fields):
            found.update(dict.fromkeys(self.jinja2_variables))
        return list(found)

    def required_placeholders(self, texts: list[str] | None = None) -> list[str]:
        """The placeholders a write-back must keep (of ``texts``, by field; default: the
        current ones): every ``{{#ref#}}`` (``{{#context#}}`` only when the node's
        context is enabled) and, in Jinja2 fields, the declared Jinja2 variables used."""
        texts = texts if texts is not None else [f.text for f in self.fields]
        found: dict[str, None] = {}
        for f, text in zip(self.fields, texts, strict=True):
            refs = set(DIFY_REF.findall(text))
            for name in placeholders(text):  # both syntaxes, in order of first use
                if name in refs:
                    keep = name != "context" or self.context_enabled
                else:
                    keep = f.jinja2 and name in self.jinja2_variables
                if keep:
                    found[name] = None
        return list(found)


@dataclass(frozen=True)
class DifyApp:
    """A parsed export: its document, its name, its DSL version and its prompts."""

    document: dict[str, Any]
    name: str
    mode: str
    dsl_version: str
    prompts: list[DifyPrompt]

    @property
    def known_version(self) -> bool:
        return bool(KNOWN_DSL.fullmatch(self.dsl_version))


#: libyaml's safe loader when PyYAML was built with it: the same data, ten times faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def parse_yaml(text: str, where: str) -> Any:
    try:
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise DifyError(
            f"{where} is not valid YAML{at}: {problem}",
            error_code="DIFY-FILE-001",
            context={"path": where},
        ) from None


def load_app(text: str, where: str = "the file") -> DifyApp:
    """Parse a DSL export and find its prompts; ``DifyError`` (``DIFY-FILE-001``) if it is
    not a Dify app export with a workflow."""
    document = parse_yaml(text, where)
    if not isinstance(document, dict) or document.get("kind", "app") != "app":
        raise _not_an_app(where, "no 'kind: app' at the top")
    app = document.get("app")
    workflow = document.get("workflow")
    graph = workflow.get("graph") if isinstance(workflow, dict) else None
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(app, dict) or not isinstance(nodes, list):
        raise _not_an_app(where, "no 'app' and 'workflow.graph.nodes'")
    prompts = []
    for index, node in enumerate(nodes):
        found = _node_prompt(node, index)
        if found is not None:
            prompts.append(found)
    return DifyApp(
        document=document,
        name=str(app.get("name") or ""),
        mode=str(app.get("mode") or ""),
        dsl_version=str(document.get("version") or ""),
        prompts=prompts,
    )


def _not_an_app(where: str, why: str) -> DifyError:
    return DifyError(
        f"{where} is not a Dify app export with a workflow ({why})",
        error_code="DIFY-FILE-001",
        context={"path": where},
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _node_prompt(node: Any, index: int) -> DifyPrompt | None:
    if not isinstance(node, dict) or not isinstance(node.get("data"), dict):
        return None
    if node.get("type") == "custom-note":
        return None
    data: dict[str, Any] = node["data"]
    kind = data.get("type")
    base: Path = ("workflow", "graph", "nodes", index, "data")
    fields: list[TextField] = []
    chat = False
    config: dict[str, Any] | None = None
    if kind == "llm":
        template = data.get("prompt_template")
        config = _model_config(data.get("model"))
        if isinstance(template, list):
            chat = True
            fields = _chat_fields(template, base)
            memory = data.get("memory")
            query = memory.get("query_prompt_template") if isinstance(memory, dict) else None
            if isinstance(query, str) and query:
                slot = "memory.query_prompt_template"
                fields.append(TextField((*base, *slot.split(".")), query, role="user", slot=slot))
        elif isinstance(template, dict):
            field = _active_field(template, (*base, "prompt_template"))
            fields = [field] if field is not None else []
    elif kind in ("question-classifier", "parameter-extractor"):
        text = _text(data.get("instruction"))
        if text:
            fields = [TextField((*base, "instruction"), text)]
        config = _model_config(data.get("model"))
    elif kind == "agent":
        params = data.get("agent_parameters")
        instruction = params.get("instruction") if isinstance(params, dict) else None
        text = _text(instruction.get("value")) if isinstance(instruction, dict) else None
        if text:
            fields = [TextField((*base, "agent_parameters", "instruction", "value"), text)]
        model = params.get("model") if isinstance(params, dict) else None
        config = _model_config(model.get("value") if isinstance(model, dict) else None)
    if not fields or not any(f.text.strip() for f in fields):
        return None
    prompt_config = data.get("prompt_config")
    jinja2 = prompt_config.get("jinja2_variables") if isinstance(prompt_config, dict) else None
    context = data.get("context")
    return DifyPrompt(
        node_id=str(node.get("id")),
        node_type=str(kind),
        title=str(data.get("title") or ""),
        kind="chat" if chat else "text",
        fields=tuple(fields),
        jinja2_variables=tuple(
            str(v["variable"]) for v in jinja2 or [] if isinstance(v, dict) and v.get("variable")
        ),
        context_enabled=bool(isinstance(context, dict) and context.get("enabled")),
        config=config,
        parent_id=str(node["parentId"]) if node.get("parentId") is not None else None,
    )


def _chat_fields(template: list[Any], base: Path) -> list[TextField]:
    fields = []
    for k, message in enumerate(template):
        if not isinstance(message, dict):
            continue
        field = _active_field(message, (*base, "prompt_template", k))
        if field is not None:
            fields.append(field)
    return fields


def _active_field(item: dict[str, Any], path: Path) -> TextField | None:
    """The active text of a message or completion template (``jinja2_text`` for Jinja2)."""
    edition = _text(item.get("edition_type"))
    key = "jinja2_text" if edition == "jinja2" else "text"
    text = item.get(key)
    if text is None:
        text = ""
    if not isinstance(text, str):
        return None
    role = _text(item.get("role"))
    message_id = item.get("id")
    return TextField(
        (*path, key),
        text,
        role=role,
        message_id=str(message_id) if message_id is not None else None,
        edition_type=edition,
    )


def _model_config(model: Any) -> dict[str, Any] | None:
    return {"model": model} if isinstance(model, dict) else None


def workflow_key(app_name: str, fallback: str = "app") -> str:
    """A stable prompt-id prefix from an app name: lower case, runs of anything but letters,
    digits, ``.`` and ``-`` made one ``_`` (``Deep Researcher On Dify`` ->
    ``deep_researcher_on_dify``; ``Agent工具调用`` -> ``agent工具调用``)."""
    name = unicodedata.normalize("NFC", app_name).lower()
    key = re.sub(r"[^\w.-]+", "_", name).strip("_.-")
    key = key or fallback
    validate_prompt_id(key)
    return key
