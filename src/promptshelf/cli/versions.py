"""Commands on versions: init, save, list, log, show, diff, rollback, delete."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from .. import render
from ..errors import VersionNotFoundError
from ..manager import VersionManager
from ..models import (
    OptimizationResult,
    OptimizationStrategy,
    Prompt,
    PromptAnalysis,
    placeholders,
)
from ..storage import FileSystemStorage, VersionStorage
from . import chat
from .chat import chat_options
from .options import opened, output_options, store_option, with_store


@click.command()
@store_option
@click.option(
    "--sharding/--no-sharding",
    default=None,
    help="Shard prompt directories by hash prefix (must match an existing store's layout).",
)
@click.option("--shard-depth", type=click.IntRange(1, 8), help="Default: 2, or the store's.")
def init(target: str, sharding: bool | None, shard_depth: int | None) -> None:
    """Create an empty store (or say what an existing one holds).

    On a store that holds versions, a layout other than its own is refused
    (convert with 'promptshelf reshard').
    """
    options: dict[str, object] = {} if sharding is None else {"enable_sharding": sharding}
    if sharding and shard_depth is not None:
        options["shard_depth"] = shard_depth
    with opened(target, create=True, **options) as storage:
        if isinstance(storage, FileSystemStorage):
            storage.rebuild_index()  # records the layout in .index.json
        prompts = storage.list_prompts()
        where = getattr(storage, "storage_dir", None) or getattr(storage, "path", target)
        if prompts:
            click.echo(f"Store at {where} already holds {len(prompts)} prompt(s)")
        else:
            click.echo(f"Initialized an empty {storage.backend_name} store at {where}")


@click.command()
@click.argument("prompt_id")
@click.argument("source", required=False, metavar="[-]")
@click.option("--text", help="The prompt text.")
@click.option(
    "--file", "text_file", type=click.File("r", encoding="utf-8"), help="Read the text from a file."
)
@click.option("--role", default="system", show_default=True)
@click.option(
    "--variable", "variables", multiple=True, help="A {{variable}}; default: those in the text."
)
@click.option(
    "--metadata", multiple=True, metavar="KEY=VALUE", help="Version metadata (JSON values allowed)."
)
@click.option("--parent", help="Parent version (default: the latest).")
@click.option("--workflow-id", help="Default: the prompt id.")
@click.option("--node-id", help="Default: the prompt id.")
@click.option("--node-type", default="llm", show_default=True)
@click.option("--overall", type=click.FloatRange(0, 100), default=0.0, help="Overall score 0-100.")
@click.option("--clarity", type=click.FloatRange(0, 100), default=0.0, help="Clarity score 0-100.")
@click.option("--efficiency", type=click.FloatRange(0, 100), default=0.0, help="Efficiency score.")
@click.option(
    "--strategy",
    type=click.Choice([s.value for s in OptimizationStrategy]),
    help="Record an optimization with this strategy (bumps the minor version).",
)
@click.option("--author", help="Stored as metadata author.")
@click.option("--force-new", is_flag=True, help="Save even if nothing changed since the latest.")
@chat_options
@with_store(create=True)
def save(
    storage: VersionStorage,
    prompt_id: str,
    source: str | None,
    text: str | None,
    text_file: Any,
    role: str,
    variables: tuple[str, ...],
    metadata: tuple[str, ...],
    parent: str | None,
    workflow_id: str | None,
    node_id: str | None,
    node_type: str,
    overall: float,
    clarity: float,
    efficiency: float,
    strategy: str | None,
    author: str | None,
    force_new: bool,
    messages_file: Any,
    config: str | None,
    commit_message: str | None,
) -> None:
    """Save a new version of PROMPT_ID from --text, --file or standard input (-).

    A chat prompt: --messages FILE (a JSON list of {role, text} objects; "-" for
    stdin). When text, messages, role, variables, context and config equal the
    latest version's, nothing is saved (unless --force-new) and the latest
    version is named. --config defaults to the latest version's.
    """
    given = [
        s
        for s in (
            text is not None,
            text_file is not None,
            source == "-",
            messages_file is not None,
        )
        if s
    ]
    if len(given) != 1 or (source not in (None, "-")):
        raise click.UsageError(
            "give the text once: --text TEXT, --file FILE, - for stdin "
            "(or --messages FILE for a chat prompt)"
        )
    manager = VersionManager(storage)
    latest = storage.get_latest_version(prompt_id)
    fields: dict[str, Any] = {}
    if messages_file is not None:
        fields["messages"] = chat.read_messages(messages_file)
    else:
        fields["text"] = text if text is not None else (text_file or sys.stdin).read()
    prompt = Prompt(
        id=prompt_id,
        workflow_id=workflow_id or prompt_id,
        node_id=node_id or prompt_id,
        node_type=node_type,
        role=role,
        variables=list(variables),
        **fields,
    )
    body = prompt.text
    if not variables:
        prompt = prompt.model_copy(update={"variables": placeholders(body)})
    analysis = PromptAnalysis(
        prompt_id=prompt_id,
        overall_score=overall,
        clarity_score=clarity,
        efficiency_score=efficiency,
    )
    result = None
    if strategy is not None:
        result = OptimizationResult(
            prompt_id=prompt_id,
            original_prompt=latest.prompt.text if latest else "",
            optimized_prompt=body,
            strategy=OptimizationStrategy(strategy),
            confidence=1.0,
            improvement_score=overall - (latest.analysis.overall_score if latest else 0.0),
        )
    extra = _parse_metadata(metadata)
    if author:
        extra["author"] = author
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
    if latest is not None and created.version == latest.version:
        click.echo(
            f"Unchanged: {prompt_id} is already at {latest.version} (--force-new saves anyway)"
        )
    else:
        click.echo(f"Saved {prompt_id} {created.version}")


def _parse_metadata(pairs: tuple[str, ...]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE", param_hint="--metadata")
        try:
            metadata[key] = json.loads(value)
        except ValueError:
            metadata[key] = value
    return metadata


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
                "prompt": prompt_id,
                "latest": latest.version,
                "versions": len(storage.list_version_numbers(prompt_id)),
                "updated": latest.created_at,
            }
        )
    render.emit(rows, ["prompt", "latest", "versions", "updated"], fmt)


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
    if messages_only:
        click.echo(render.messages_json(found))
    elif text_only:
        click.echo(found.prompt.text)
    elif fmt in ("json", "nl"):
        click.echo(found.model_dump_json(indent=2))
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
        click.echo(render.dumps(comparison))
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
@with_store()
def rollback(storage: VersionStorage, prompt_id: str, version: str, author: str) -> None:
    """Make a new version of PROMPT_ID carrying VERSION's content."""
    created = VersionManager(storage).rollback(prompt_id, version, author=author)
    click.echo(
        f"Rolled back {prompt_id} to {created.metadata['rollback_to']}: "
        f"new version {created.version}"
    )


@click.command()
@click.argument("prompt_id")
@click.argument("version")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@click.option("--force", is_flag=True, help="Also remove the labels on it (recorded).")
@with_store()
def delete(storage: VersionStorage, prompt_id: str, version: str, yes: bool, force: bool) -> None:
    """Delete one version of PROMPT_ID (it is kept in the trash; see restore)."""
    if storage.get_version(prompt_id, version) is None:
        raise VersionNotFoundError(prompt_id, version)
    if not yes:
        click.confirm(f"Delete {prompt_id} {version}?", abort=True, err=True)
    storage.delete_version(prompt_id, version, force=force)
    click.echo(f"Deleted {prompt_id} {version}")


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
@with_store()
def render_(
    storage: VersionStorage, prompt_id: str, version: str, pairs: tuple[str, ...], lenient: bool
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
        click.echo(f"Warning: {name} is not used by {prompt_id} {found.version}", err=True)
    if found.prompt.messages is not None:
        click.echo(render.dumps(list(result.messages)))  # ready for a chat-completion API
    else:
        click.echo(result.text)
