"""Commands on versions: init, save, list, log, show, diff, rollback, delete."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import render
from ..errors import LabelInUseError, ValidationError, VersionNotFoundError
from ..manager import VersionManager
from ..models import (
    OptimizationResult,
    OptimizationStrategy,
    Prompt,
    PromptAnalysis,
    PromptVersion,
    placeholders,
)
from ..storage import FileSystemStorage, VersionStorage
from . import chat
from .chat import chat_options
from .options import SCORE, note, opened, output_options, resolve_target, store_option, with_store


@click.command()
@store_option
@click.option(
    "--sharding/--no-sharding",
    default=None,
    help="Shard prompt directories by hash prefix (must match an existing store's layout).",
)
@click.option("--shard-depth", type=click.IntRange(1, 8), help="Default: 2, or the store's.")
@output_options
def init(target: str | None, sharding: bool | None, shard_depth: int | None, fmt: str) -> None:
    """Create an empty store (or say what an existing one holds).

    On a store that holds versions, a layout other than its own is refused
    (convert with 'promptshelf reshard'). A flat filesystem store holding
    10,000 prompts or more gets a note recommending the sharded layout.
    """
    options: dict[str, object] = {} if sharding is None else {"enable_sharding": sharding}
    if sharding and shard_depth is not None:
        options["shard_depth"] = shard_depth
    with opened(resolve_target(target), create=True, **options) as storage:
        if isinstance(storage, FileSystemStorage):
            storage.rebuild_index()  # records the layout in .index.json
        prompts = storage.list_prompts()
        where = _where(storage)
        message = (
            f"Store at {where} already holds {len(prompts)} prompt(s)"
            if prompts
            else f"Initialized an empty {storage.backend_name} store at {where}"
        )
        data = {"backend": storage.backend_name, "store": where, "prompts": len(prompts)}
        render.result(message, data, fmt)
        flat = isinstance(storage, FileSystemStorage) and not storage.enable_sharding
        if flat and len(prompts) >= SHARDING_ADVISED_PROMPTS:
            note(
                f"Note: {len(prompts):,} prompts in the flat layout: each new prompt syncs the "
                "store's root, which grows with every prompt; the sharded layout keeps that "
                "cost flat ('promptshelf reshard --sharding', with writers stopped)"
            )


#: From how many prompts ``init`` recommends the sharded layout for a flat store: past it,
#: a new prompt's save grows with the root directory (benchmarks/newprompts.py; README).
SHARDING_ADVISED_PROMPTS = 10_000


def _where(storage: VersionStorage) -> str:
    """Where a store is, for people: a path, or a URL without its password."""
    for attribute in ("storage_dir", "path"):
        if getattr(storage, attribute, None) is not None:
            return str(getattr(storage, attribute))
    url = getattr(storage, "url_display", None)
    if url is not None:
        return f"{url} (schema {getattr(storage, 'schema', 'public')})"
    return storage.backend_name


@click.command()
@click.argument("prompt_id")
@click.argument("source", required=False, metavar="[-]", callback=lambda c, p, v: _stdin_text(v))
@click.option("--text", help="The prompt text.")
@click.option(
    "--file",
    "text_file",
    type=click.Path(exists=True, dir_okay=False, allow_dash=True),
    callback=lambda c, p, v: None if v is None else _read_text(v),
    help="Read the text from a UTF-8 file (one final newline is dropped).",
)
@click.option("--role", help="Default: the latest version's, else system.")
@click.option(
    "--variable",
    "variables",
    multiple=True,
    help="A {{variable}}; default: the latest's when the text uses the same ones, else the text's.",
)
@click.option(
    "--context",
    "context_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Prompt context, merged over the latest version's (JSON values allowed).",
)
@click.option(
    "--metadata", multiple=True, metavar="KEY=VALUE", help="Version metadata (JSON values allowed)."
)
@click.option("--parent", help="Parent version or selector (default: the latest).")
@click.option("--workflow-id", help="Default: the latest version's, else the prompt id.")
@click.option("--node-id", help="Default: the latest version's, else the prompt id.")
@click.option("--node-type", help="Default: the latest version's, else llm.")
@click.option("--overall", type=SCORE, help="Overall score 0-100.")
@click.option("--clarity", type=SCORE, help="Clarity score 0-100.")
@click.option("--efficiency", type=SCORE, help="Efficiency score 0-100.")
@click.option(
    "--strategy",
    type=click.Choice([s.value for s in OptimizationStrategy]),
    help="Record an optimization with this strategy (bumps the minor version).",
)
@click.option("--author", help="Stored as metadata author (default: the latest version's).")
@click.option("--force-new", is_flag=True, help="Save even if nothing changed since the latest.")
@chat_options
@output_options
@with_store(create=True)
def save(
    storage: VersionStorage,
    prompt_id: str,
    source: str | None,
    text: str | None,
    text_file: str | None,
    role: str | None,
    variables: tuple[str, ...],
    context_pairs: tuple[str, ...],
    metadata: tuple[str, ...],
    parent: str | None,
    workflow_id: str | None,
    node_id: str | None,
    node_type: str | None,
    overall: float | None,
    clarity: float | None,
    efficiency: float | None,
    strategy: str | None,
    author: str | None,
    force_new: bool,
    messages_file: Any,
    config: str | None,
    commit_message: str | None,
    fmt: str,
) -> None:
    """Save a new version of PROMPT_ID from --text, --file or standard input (-).

    A chat prompt: --messages FILE (a JSON list of {role, text} objects; "-" for
    stdin). What the command does not set is inherited from the latest version:
    workflow and node ids, node type, role, context, config, variables (while the
    text uses the same placeholders) and author. Scores are not inherited by a new
    text (they describe the text they were measured on); an unchanged text keeps
    its analysis. When text, messages, role, variables, context and config equal
    the latest version's, nothing is saved (unless --force-new).
    """
    given = [t for t in (text, text_file, source, messages_file) if t is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give the text once: --text TEXT, --file FILE, - for stdin "
            "(or --messages FILE for a chat prompt)"
        )
    manager = VersionManager(storage)
    latest = storage.get_latest_version(prompt_id)
    if parent is not None:
        parent = manager.resolve(prompt_id, parent)
    fields: dict[str, Any] = {}
    if messages_file is not None:
        fields["messages"] = chat.read_messages(messages_file)
    else:
        fields["text"] = given[0]
    prompt = _inherited_prompt(
        prompt_id,
        latest.prompt if latest else None,
        fields,
        workflow_id=workflow_id,
        node_id=node_id,
        node_type=node_type,
        role=role,
        variables=list(variables),
        context=_parse_pairs(context_pairs, "--context"),
    )
    body = prompt.text
    scores = {"overall_score": overall, "clarity_score": clarity, "efficiency_score": efficiency}
    analysis = _analysis(prompt_id, latest, body, scores)
    result = None
    if strategy is not None:
        result = OptimizationResult(
            prompt_id=prompt_id,
            original_prompt=latest.prompt.text if latest else "",
            optimized_prompt=body,
            strategy=OptimizationStrategy(strategy),
            confidence=1.0,
            improvement_score=analysis.overall_score
            - (latest.analysis.overall_score if latest else 0.0),
        )
    extra = _parse_pairs(metadata, "--metadata")
    inherited_author = latest.metadata.get("author") if latest else None
    if author or (inherited_author and "author" not in extra):
        extra["author"] = author or inherited_author
    created = manager.create_version(
        prompt,
        analysis,
        result,
        parent or (latest.version if latest else None),
        metadata=extra,
        skip_if_unchanged=not force_new,
        config=chat.parse_config(config) if config is not None else chat.inherited_config(latest),
        commit_message=commit_message,
    )
    saved = latest is None or created.version != latest.version
    message = (
        f"Saved {prompt_id} {created.version}"
        if saved
        else f"Unchanged: {prompt_id} is already at {created.version} (--force-new saves anyway)"
    )
    data = {
        "prompt_id": prompt_id,
        "version": created.version,
        "saved": saved,
        "parent": created.parent_version,
    }
    render.result(message, data, fmt)


def _stdin_text(source: str | None) -> str | None:
    """The ``-`` argument: standard input, read while the command line is parsed (before
    the store is opened, so bad input leaves nothing behind)."""
    if source is None:
        return None
    if source != "-":
        raise click.BadParameter(f"{source!r}: only - (standard input) goes here")
    return _read_text("-")


def _read_text(path: str) -> str:
    """UTF-8 text from a file or stdin (``-``), without one final newline: what ``show
    --text`` printed saves back unchanged."""
    raw: bytes
    if path == "-":
        raw = sys.stdin.buffer.read()
        name = "standard input"
    else:
        with open(path, "rb") as handle:
            raw = handle.read()
        name = path
    try:
        body = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{name} is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "nothing saved",
            error_code="PS-INPUT-001",
            context={"source": name, "offset": exc.start},
        ) from None
    return body[:-1] if body.endswith("\n") else body


def _inherited_prompt(
    prompt_id: str,
    old: Prompt | None,
    fields: dict[str, Any],
    *,
    workflow_id: str | None,
    node_id: str | None,
    node_type: str | None,
    role: str | None,
    variables: list[str],
    context: dict[str, Any],
) -> Prompt:
    """A prompt of ``fields`` (text or messages) with the rest from ``old``, unless given."""
    prompt = Prompt(
        id=prompt_id,
        workflow_id=workflow_id or (old.workflow_id if old else prompt_id),
        node_id=node_id or (old.node_id if old else prompt_id),
        node_type=node_type or (old.node_type if old else "llm"),
        role=role or (old.role if old else "system"),
        variables=variables,
        context={**(old.context if old else {}), **context},
        **fields,
    )
    if not variables:
        used = placeholders(prompt.text)
        same = old is not None and set(old.variables) == set(used)
        prompt = prompt.model_copy(
            update={"variables": list(old.variables) if same and old is not None else used}
        )
    return prompt


def _analysis(
    prompt_id: str, latest: PromptVersion | None, body: str, scores: dict[str, float | None]
) -> PromptAnalysis:
    """The latest analysis when the text is unchanged (given scores replace its scores);
    else a new one with the given scores, 0 for those not given."""
    given = {k: v for k, v in scores.items() if v is not None}
    if latest is not None and latest.prompt.text == body:
        return latest.analysis.model_copy(update=given)
    return PromptAnalysis(prompt_id=prompt_id, **{k: v or 0.0 for k, v in scores.items()})


def _parse_pairs(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint=option)
        try:
            parsed[key] = json.loads(value)
        except ValueError:
            parsed[key] = value
    return parsed


@click.command(name="list")
@output_options
@with_store()
def list_(storage: VersionStorage, fmt: str) -> None:
    """Prompts with their latest version, version count and last update."""
    rows = []
    for prompt_id in storage.list_prompts():
        latest = storage.get_latest_version(prompt_id)
        if latest is None:
            continue
        rows.append(
            {
                "prompt_id": prompt_id,
                "latest": latest.version,
                "versions": len(storage.list_version_numbers(prompt_id)),
                "updated": latest.created_at,
            }
        )
    render.emit(rows, ["prompt_id", "latest", "versions", "updated"], fmt)


@click.command()
@click.argument("prompt_id")
@output_options
@with_store()
def log(storage: VersionStorage, prompt_id: str, fmt: str) -> None:
    """The history of PROMPT_ID, oldest first: scores, strategy, parent, author."""
    history = VersionManager(storage).get_version_history(prompt_id)
    if not history:
        raise VersionNotFoundError(prompt_id, "any", {"reason": "no versions exist"})
    rows = [
        {
            "version": v.version,
            "score": v.analysis.overall_score,
            "strategy": v.optimization_result.strategy.value
            if v.optimization_result
            else v.metadata.get("strategy"),
            "parent": v.parent_version,
            "author": v.metadata.get("author"),
            "created": v.created_at,
            "message": render.short(v.commit_message)
            if fmt == "table" and v.commit_message
            else v.commit_message,
            "config": v.config,
        }
        for v in history
    ]
    columns = ["version", "score", "strategy", "parent", "author", "created"]
    columns += [c for c in ("message", "config") if any(r[c] is not None for r in rows)]
    render.emit(rows, columns, fmt)


@click.command()
@click.argument("prompt_id")
@click.argument("version", default="latest")
@click.option("--text", "text_only", is_flag=True, help="Print only the prompt text.")
@click.option(
    "--messages",
    "messages_only",
    is_flag=True,
    help="Print only a chat prompt's messages, as JSON (save --messages reads it back).",
)
@output_options
@with_store()
def show(
    storage: VersionStorage,
    prompt_id: str,
    version: str,
    text_only: bool,
    messages_only: bool,
    fmt: str,
) -> None:
    """One version of PROMPT_ID: a number, latest (default), best or label:NAME."""
    found = VersionManager(storage).get_version(prompt_id, version)
    if fmt in ("json", "nl"):
        render.emit_mapping(found.model_dump(mode="json"), fmt)
    elif messages_only:
        click.echo(render.messages_json(found))
    elif text_only:
        click.echo(found.prompt.text)
    else:
        a = found.analysis
        render.emit_mapping(
            {
                "prompt": found.prompt_id,
                "version": found.version,
                "parent": found.parent_version,
                "created": found.created_at,
                "author": found.metadata.get("author"),
                "strategy": found.optimization_result.strategy.value
                if found.optimization_result
                else None,
                "scores": f"overall {a.overall_score:g}  clarity {a.clarity_score:g}  "
                f"efficiency {a.efficiency_score:g}",
                "kind": found.prompt.kind,
                **({"role": found.prompt.role} if found.prompt.messages is None else {}),
                "variables": ", ".join(found.prompt.variables) or None,
                "metadata": found.metadata,
                **({"config": found.config} if found.config is not None else {}),
                **({"message": found.commit_message} if found.commit_message else {}),
            },
            "table",
        )
        click.echo("")
        click.echo(found.prompt.text)


@click.command()
@click.argument("prompt_id")
@click.argument("version1")
@click.argument("version2")
@click.option(
    "--words", is_flag=True, help="Mark changed words inline ([-old-]{+new+}), not whole lines."
)
@output_options
@with_store()
def diff(
    storage: VersionStorage, prompt_id: str, version1: str, version2: str, words: bool, fmt: str
) -> None:
    """Text diff and score deltas from VERSION1 to VERSION2 (numbers, latest, best, label:NAME).

    A chat prompt is compared message by message, changed words marked inline.
    """
    comparison = VersionManager(storage).compare_versions(prompt_id, version1, version2)
    if fmt in ("json", "nl"):
        render.emit_mapping(comparison, fmt)
        return
    text = comparison["text_diff"]
    click.echo(
        f"{prompt_id} {comparison['version1']} -> {comparison['version2']}: "
        f"overall {comparison['improvement']:+g}, clarity "
        f"{comparison['clarity_improvement']:+g}, efficiency "
        f"{comparison['efficiency_improvement']:+g}, similarity {text['similarity']:.2f}"
    )
    render.comparison_extras(comparison)
    if comparison["messages_diff"] is not None:
        render.messages_diff(comparison["messages_diff"])
    elif text["unified_diff"] and words:
        render.word_lines(text["ops"])
    elif text["unified_diff"]:
        render.diff_lines(text["unified_diff"])
    else:
        click.echo("(the texts are identical)")


@click.command()
@click.argument("prompt_id")
@click.argument("version")
@click.option("--author", default="rollback", show_default=True)
@output_options
@with_store()
def rollback(storage: VersionStorage, prompt_id: str, version: str, author: str, fmt: str) -> None:
    """Make a new version of PROMPT_ID carrying VERSION's content."""
    created = VersionManager(storage).rollback(prompt_id, version, author=author)
    render.result(
        f"Rolled back {prompt_id} to {created.metadata['rollback_to']}: "
        f"new version {created.version}",
        {
            "prompt_id": prompt_id,
            "version": created.version,
            "rollback_to": created.metadata["rollback_to"],
            "rollback_from": created.metadata["rollback_from"],
        },
        fmt,
    )


@click.command()
@click.argument("prompt_id")
@click.argument("version")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also remove the labels on it (recorded).")
@output_options
@with_store()
def delete(
    storage: VersionStorage, prompt_id: str, version: str, yes: bool, force: bool, fmt: str
) -> None:
    """Delete one version of PROMPT_ID (it is kept in the trash; see restore)."""
    if storage.get_version(prompt_id, version) is None:
        raise VersionNotFoundError(prompt_id, version)
    if not yes:
        click.confirm(f"Delete {prompt_id} {version}?", abort=True, err=True)
    try:
        storage.delete_version(prompt_id, version, force=force)
    except LabelInUseError as exc:  # the library says force=True; here it is --force
        labels = ", ".join(exc.context.get("labels", []))
        raise LabelInUseError(
            f"{prompt_id} {version} is labelled {labels}; move the label(s) first "
            "(label set) or delete with --force, which removes them (recorded)",
            context=exc.context,
        ) from None
    render.result(
        f"Deleted {prompt_id} {version}",
        {"prompt_id": prompt_id, "version": version, "deleted": True},
        fmt,
    )


@click.command(name="render")
@click.argument("prompt_id")
@click.argument("version", default="label:production", required=False)
@click.option(
    "--var",
    "-V",
    "pairs",
    multiple=True,
    metavar="NAME=VALUE",
    help="A value for a {{placeholder}} (repeatable).",
)
@click.option("--lenient", is_flag=True, help="Leave placeholders without a value visible.")
@output_options
@with_store()
def render_(
    storage: VersionStorage,
    prompt_id: str,
    version: str,
    pairs: tuple[str, ...],
    lenient: bool,
    fmt: str,
) -> None:
    """Print a version's text with its {{placeholders}} filled (default: label:production).

    A chat prompt prints its messages as a JSON list of {"role", "content"} objects,
    ready for a chat-completion API. Strict by default: a placeholder without a
    value is an error naming all of them.
    """
    variables: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--var")
        variables[name] = value
    found = VersionManager(storage).get_version(prompt_id, version)
    result = found.render_report(variables)
    if result.missing and not lenient:
        found.render(variables)  # raises RenderError naming every missing placeholder
    for name in result.unused:
        note(f"Warning: {name} is not used by {prompt_id} {found.version}")
    if fmt in ("json", "nl"):
        data: dict[str, Any] = {
            "prompt_id": prompt_id,
            "version": found.version,
            "text": result.text,
            "missing": list(result.missing),
            "unused": list(result.unused),
        }
        if found.prompt.messages is not None:
            data["messages"] = list(result.messages)
        render.emit_mapping(data, fmt)
    elif found.prompt.messages is not None:
        click.echo(render.dumps(list(result.messages)))  # ready for a chat-completion API
    else:
        click.echo(result.text)
