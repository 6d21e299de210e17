"""The ``promptshelf`` command: work with any store without writing Python.

Every command takes ``--store`` (anything ``open_storage`` accepts; default
``$PROMPTSHELF_URL``, else ``./promptshelf-data``). Library errors become one
line, ``Error: ...``, on stderr: exit 1 for not found, conflicts and failed
checks, exit 2 for bad input on the command line.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import click
import pydantic

from . import __version__, render
from .errors import ConfigurationError, OptimizerError, ValidationError, VersionNotFoundError
from .manager import VersionManager
from .migrate import MigrationReport, migrate
from .models import OptimizationResult, OptimizationStrategy, Prompt, PromptAnalysis, PromptVersion
from .retention import RetentionPolicy
from .storage import FileSystemStorage, InMemoryStorage, VersionStorage, open_storage
from .storage.base import missing_label
from .storage.fsindex import detect_layout
from .storage.opener import DEFAULT_TARGET, ENV_VAR

F = TypeVar("F", bound=Callable[..., Any])

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}")


class ShelfGroup(click.Group):
    """Turns library errors into ``Error: ...`` and the documented exit codes, once, here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OptimizerError as exc:
            click.echo(f"Error: {exc.message} [{exc.error_code}]", err=True)
            usage = isinstance(exc, ValidationError | ConfigurationError)
            ctx.exit(2 if usage else 1)
        except pydantic.ValidationError as exc:  # a model built from command-line values
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            click.echo(f"Error: {where}: {first['msg']} [PS-VALID-001]", err=True)
            ctx.exit(2)


@click.group(cls=ShelfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="promptshelf")
def cli() -> None:
    """Keep, compare and roll back every version of your LLM prompts."""


def store_option(func: F) -> F:
    return click.option(
        "--store",
        "target",
        envvar=ENV_VAR,
        default=DEFAULT_TARGET,
        show_default=True,
        metavar="TARGET",
        help=f"Store path or URL (file://, sqlite://, postgresql://, memory://); ${ENV_VAR}.",
    )(func)


def output_options(func: F) -> F:
    func = click.option("--nl", "fmt", flag_value="nl", help="Output one JSON object per line.")(
        func
    )
    func = click.option("--json", "fmt", flag_value="json", help="Output JSON.")(func)
    return click.option("--table", "fmt", flag_value="table", default=True, hidden=True)(func)


@contextmanager
def opened(target: str, *, create: bool = False, **options: Any) -> Iterator[VersionStorage]:
    storage = open_storage(target, create=create, **options)
    try:
        yield storage
    finally:
        storage.close()


def with_store(create: bool = False) -> Callable[[F], F]:
    """Open ``--store`` for the command and pass it on as ``storage``."""

    def decorate(func: F) -> F:
        @store_option
        @functools.wraps(func)
        def wrapper(target: str, **kwargs: Any) -> Any:
            with opened(target, create=create) as storage:
                return func(storage=storage, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


# -- commands ------------------------------------------------------------------------


@cli.command()
@store_option
@click.option("--sharding", is_flag=True, help="Shard prompt directories by hash prefix.")
@click.option("--shard-depth", type=click.IntRange(1, 8), default=2, show_default=True)
def init(target: str, sharding: bool, shard_depth: int) -> None:
    """Create an empty store (or say what an existing one holds)."""
    options = {"enable_sharding": True, "shard_depth": shard_depth} if sharding else {}
    with opened(target, create=True, **options) as storage:
        if isinstance(storage, FileSystemStorage):
            storage.rebuild_index()  # records the layout in .index.json
        prompts = storage.list_prompts()
        where = getattr(storage, "storage_dir", None) or getattr(storage, "path", target)
        if prompts:
            click.echo(f"Store at {where} already holds {len(prompts)} prompt(s)")
        else:
            click.echo(f"Initialized an empty {storage.backend_name} store at {where}")


@cli.command()
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
) -> None:
    """Save a new version of PROMPT_ID from --text, --file or standard input (-).

    When text, role, variables and context equal the latest version's, nothing
    is saved (unless --force-new) and the latest version is named.
    """
    given = [s for s in (text is not None, text_file is not None, source == "-") if s]
    if len(given) != 1 or (source not in (None, "-")):
        raise click.UsageError("give the text once: --text TEXT, --file FILE, or - for stdin")
    body = text if text is not None else (text_file or sys.stdin).read()
    manager = VersionManager(storage)
    latest = storage.get_latest_version(prompt_id)
    prompt = Prompt(
        id=prompt_id,
        workflow_id=workflow_id or prompt_id,
        node_id=node_id or prompt_id,
        node_type=node_type,
        text=body,
        role=role,
        variables=list(variables) or list(dict.fromkeys(PLACEHOLDER.findall(body))),
    )
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


@cli.command(name="import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@with_store(create=True)
def import_(storage: VersionStorage, path: Path) -> None:
    """Import a PromptVersion JSON file, a JSON-lines file, or a store in the original layout."""
    if path.is_dir():
        # use_index=False: importing reads the source and leaves it exactly as it was
        layout = detect_layout(str(path))
        source: VersionStorage = FileSystemStorage(path, create=False, use_index=False, **layout)
    else:
        source = InMemoryStorage()
        source.save_versions(_read_versions(path))
    _report(migrate(source, storage, progress=_progress("importing")), "imported")


def _read_versions(path: Path) -> list[PromptVersion]:
    """Every version in a .json (one object or an array) or .jsonl file; all or nothing."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        items = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    else:
        stripped = text.lstrip()
        items = [(1, text)] if not stripped.startswith("[") else []
        if stripped.startswith("["):
            try:
                items = [(i, json.dumps(obj)) for i, obj in enumerate(json.loads(text), 1)]
            except ValueError as exc:
                raise _bad_import(path, 1, str(exc)) from None
    versions = []
    for number, raw in items:
        try:
            versions.append(PromptVersion.model_validate_json(raw))
        except ValueError as exc:
            raise _bad_import(path, number, str(exc).splitlines()[0]) from None
    return versions


def _bad_import(path: Path, item: int, why: str) -> OptimizerError:
    return OptimizerError(
        f"{path} item {item} is not a valid PromptVersion: {why}; nothing imported",
        error_code="PS-IMPORT-001",
        context={"path": str(path), "item": item},
    )


def _report(report: MigrationReport, verb: str) -> None:
    click.echo(
        f"{verb} {report.copied} version(s) of {report.prompts} prompt(s); "
        f"{report.skipped_identical} already present"
    )
    for prompt_id, number in report.conflicts:
        click.echo(
            f"Error: {prompt_id} {number} differs from the existing version; kept the existing one",
            err=True,
        )
    for prompt_id, number in report.missing_after:
        click.echo(f"Error: {prompt_id} {number} is missing after copying", err=True)
    if not report.ok:
        sys.exit(1)


def _progress(label: str) -> Callable[[int, int], None] | None:
    if not sys.stderr.isatty():
        return None
    bar: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bar:
            bar.append(click.progressbar(length=total, label=label, file=sys.stderr))
            bar[0].__enter__()
        bar[0].update(1)
        if done == total:
            bar[0].__exit__(None, None, None)

    return update


@cli.command(name="list")
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


@cli.command()
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
        }
        for v in history
    ]
    render.emit(rows, ["version", "score", "strategy", "parent", "author", "created"], fmt)


@cli.command()
@click.argument("prompt_id")
@click.argument("version", default="latest")
@click.option("--text", "text_only", is_flag=True, help="Print only the prompt text.")
@output_options
@with_store()
def show(storage: VersionStorage, prompt_id: str, version: str, text_only: bool, fmt: str) -> None:
    """One version of PROMPT_ID: a number, latest (default), best or label:NAME."""
    found = VersionManager(storage).get_version(prompt_id, version)
    if text_only:
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
                "role": found.prompt.role,
                "variables": ", ".join(found.prompt.variables) or None,
                "metadata": found.metadata,
            },
            "table",
        )
        click.echo("")
        click.echo(found.prompt.text)


@cli.command()
@click.argument("prompt_id")
@click.argument("version1")
@click.argument("version2")
@output_options
@with_store()
def diff(storage: VersionStorage, prompt_id: str, version1: str, version2: str, fmt: str) -> None:
    """Text diff and score deltas from VERSION1 to VERSION2 (numbers, latest, best, label:NAME)."""
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
    if text["unified_diff"]:
        render.diff_lines(text["unified_diff"])
    else:
        click.echo("(the texts are identical)")


@cli.command()
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


@cli.command()
@click.argument("prompt_id")
@click.argument("version")
@click.option("--yes", "-y", is_flag=True, help="Do not ask for confirmation.")
@with_store()
def delete(storage: VersionStorage, prompt_id: str, version: str, yes: bool) -> None:
    """Delete one version of PROMPT_ID."""
    if storage.get_version(prompt_id, version) is None:
        raise VersionNotFoundError(prompt_id, version)
    if not yes:
        click.confirm(f"Delete {prompt_id} {version}?", abort=True, err=True)
    storage.delete_version(prompt_id, version)
    click.echo(f"Deleted {prompt_id} {version}")


@cli.command()
@output_options
@with_store()
def stats(storage: VersionStorage, fmt: str) -> None:
    """Counts, sizes and settings of the store."""
    render.emit_mapping(storage.get_storage_stats(), fmt)


@cli.command(name="rebuild-index")
@output_options
@with_store()
def rebuild_index(storage: VersionStorage, fmt: str) -> None:
    """Re-read every prompt and rewrite the index (filesystem stores)."""
    render.emit_mapping(storage.rebuild_index(), fmt)


@cli.command()
@output_options
@with_store()
def verify(storage: VersionStorage, fmt: str) -> None:
    """Read every version and check it; list each problem with its location (exit 1 if any)."""
    report = storage.verify()
    if fmt in ("json", "nl"):
        click.echo(render.dumps(report.to_dict()))
    elif report.ok:
        click.echo(
            f"OK: {report.checked_prompts} prompt(s), {report.checked_versions} version(s) checked"
        )
    else:
        click.echo(
            render.table([vars(p) for p in report.problems], ["code", "location", "message"])
        )
    if not report.ok:
        sys.exit(1)


@cli.command()
@output_options
@with_store()
def repair(storage: VersionStorage, fmt: str) -> None:
    """Fix what verify reports: damaged versions to the quarantine, indexes rebuilt."""
    report = storage.repair()
    if fmt in ("json", "nl"):
        click.echo(render.dumps(report.to_dict()))
    elif not report.actions:
        click.echo("Nothing to repair")
    else:
        click.echo(render.table([vars(a) for a in report.actions], ["code", "location", "done"]))


@cli.command()
@click.option("--keep-last", type=click.IntRange(min=0), help="Keep each prompt's newest N.")
@click.option(
    "--younger-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="Keep versions created less than DAYS ago.",
)
@click.option("--apply", "apply_", is_flag=True, help="Delete (into the trash); default: dry run.")
@output_options
@with_store()
def retain(
    storage: VersionStorage,
    keep_last: int | None,
    younger_than: float | None,
    apply_: bool,
    fmt: str,
) -> None:
    """Apply a retention policy: latest, best, labelled versions and their ancestors stay."""
    if keep_last is None and younger_than is None:
        raise click.UsageError("give --keep-last N and/or --younger-than DAYS")
    age = None if younger_than is None else timedelta(days=younger_than)
    policy = RetentionPolicy(keep_last=keep_last, keep_younger_than=age)
    report = storage.apply_retention(policy, dry_run=not apply_)
    if fmt in ("json", "nl"):
        click.echo(render.dumps(report.to_dict()))
        return
    verb = "Moved to the trash" if apply_ else "Would move to the trash (dry run; --apply to do it)"
    click.echo(f"{verb}: {len(report.removed)} version(s); {report.kept} kept")
    for prompt_id, version in report.removed:
        click.echo(f"  {prompt_id} {version}")


@cli.command()
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Leave each prompt's newest N uncompressed.",
)
@with_store()
def compress(storage: VersionStorage, keep: int) -> None:
    """Gzip older versions of a filesystem store (transparent to every reader)."""
    if not isinstance(storage, FileSystemStorage):
        raise ConfigurationError(f"compress works on filesystem stores, not {storage.backend_name}")
    click.echo(f"Compressed {storage.compress(keep_recent=keep)} version(s)")


@cli.command()
@click.argument("prompt_id")
@click.argument("version")
@with_store()
def restore(storage: VersionStorage, prompt_id: str, version: str) -> None:
    """Bring a deleted version back from the trash (never over an existing one)."""
    storage.restore_version(prompt_id, version)
    click.echo(f"Restored {prompt_id} {version}")


@cli.command()
@click.option("--empty", is_flag=True, help="Delete for good what is in the trash.")
@click.option(
    "--older-than",
    type=click.FloatRange(min=0),
    metavar="DAYS",
    help="With --empty: only what was deleted more than DAYS ago.",
)
@output_options
@with_store()
def trash(storage: VersionStorage, empty: bool, older_than: float | None, fmt: str) -> None:
    """List deleted versions kept in the trash, or empty it."""
    if empty:
        age = None if older_than is None else timedelta(days=older_than)
        click.echo(f"Removed {storage.empty_trash(older_than=age)} version(s) from the trash")
        return
    rows = [e.model_dump() for e in storage.list_trash()]
    render.emit(rows, ["prompt_id", "version", "deleted_at"], fmt)


@cli.command()
@click.argument("dest")
@with_store()
def export(storage: VersionStorage, dest: str) -> None:
    """Export to DEST: a directory in the original layout, or a .jsonl file."""
    if dest.endswith(".jsonl"):
        path = Path(dest)
        if path.exists():
            raise OptimizerError(f"{dest} exists; not overwriting it", error_code="PS-EXPORT-001")
        count = 0
        with path.open("x", encoding="utf-8") as handle:
            for prompt_id in storage.list_prompts():
                for version in storage.list_versions(prompt_id):
                    handle.write(version.model_dump_json() + "\n")
                    count += 1
        click.echo(f"exported {count} version(s) to {dest}")
        return
    with opened(dest, create=True) as target:
        _report(migrate(storage, target, progress=_progress("exporting")), "exported")


@cli.command(name="migrate")
@click.argument("source")
@click.argument("dest")
def migrate_(source: str, dest: str) -> None:
    """Copy every version from SOURCE to DEST (any two stores); re-running skips what is there."""
    with opened(source) as src, opened(dest, create=True) as dst:
        _report(migrate(src, dst, progress=_progress("migrating")), "copied")


@cli.group()
def label() -> None:
    """Named pointers such as production or staging: set, rm, ls, log."""


@label.command(name="set")
@click.argument("prompt_id")
@click.argument("name")
@click.argument("version")
@click.option("--actor", help="Who moves the label (recorded in its history).")
@click.option("--reason", help="Why (recorded in its history).")
@with_store()
def label_set(
    storage: VersionStorage,
    prompt_id: str,
    name: str,
    version: str,
    actor: str | None,
    reason: str | None,
) -> None:
    """Point label NAME of PROMPT_ID at VERSION (a number, latest, best or label:OTHER)."""
    event = VersionManager(storage).promote(prompt_id, version, name, actor=actor, reason=reason)
    before = f" (was {event.from_version})" if event.from_version else ""
    click.echo(f"{prompt_id} {name} -> {event.to_version}{before}")


@label.command(name="rm")
@click.argument("prompt_id")
@click.argument("name")
@click.option("--actor", help="Who removes the label (recorded in its history).")
@click.option("--reason", help="Why (recorded in its history).")
@with_store()
def label_rm(
    storage: VersionStorage, prompt_id: str, name: str, actor: str | None, reason: str | None
) -> None:
    """Remove label NAME of PROMPT_ID (its history keeps the removal)."""
    if not storage.remove_label(prompt_id, name, actor=actor, reason=reason):
        raise missing_label(prompt_id, name)
    click.echo(f"Removed {prompt_id} {name}")


@label.command(name="ls")
@click.argument("prompt_id")
@output_options
@with_store()
def label_ls(storage: VersionStorage, prompt_id: str, fmt: str) -> None:
    """The labels of PROMPT_ID and the versions they point at."""
    rows = [{"label": k, "version": v} for k, v in sorted(storage.list_labels(prompt_id).items())]
    render.emit(rows, ["label", "version"], fmt)


@label.command(name="log")
@click.argument("prompt_id")
@click.argument("name", required=False)
@output_options
@with_store()
def label_log(storage: VersionStorage, prompt_id: str, name: str | None, fmt: str) -> None:
    """Every set, move and removal of PROMPT_ID's labels (or of label NAME), oldest first."""
    rows = [
        {
            "seq": e.seq,
            "at": e.at,
            "label": e.label,
            "action": e.action.value,
            "from": e.from_version,
            "to": e.to_version,
            "actor": e.actor,
            "reason": e.reason,
        }
        for e in storage.label_history(prompt_id, name)
    ]
    render.emit(rows, ["seq", "at", "label", "action", "from", "to", "actor", "reason"], fmt)


def main() -> None:
    cli(prog_name="promptshelf")
