"""Commands that look after a store: stats, rebuild-index, verify, repair, retain, compress,
trash, restore, reshard."""

from __future__ import annotations

import sys
from datetime import timedelta

import click

from .. import render
from ..errors import ConfigurationError
from ..retention import RetentionPolicy
from ..storage import FileSystemStorage, VersionStorage
from ..storage.filesystem import reshard as reshard_store
from .options import (
    DAYS,
    opened,
    output_options,
    progress_bar,
    resolve_target,
    store_option,
    with_store,
)


@click.command()
@output_options
@with_store()
def stats(storage: VersionStorage, fmt: str) -> None:
    """Counts, sizes and settings of the store."""
    render.emit_mapping(storage.get_storage_stats(), fmt)


@click.command(name="rebuild-index")
@output_options
@with_store()
def rebuild_index(storage: VersionStorage, fmt: str) -> None:
    """Re-read every prompt and rewrite the index (filesystem stores)."""
    with progress_bar("indexing") as progress:
        done = storage.rebuild_index(progress=progress)
    render.emit_mapping(done, fmt)


@click.command()
@output_options
@with_store()
def verify(storage: VersionStorage, fmt: str) -> None:
    """Read every version and check it; list each problem with its location (exit 1 if any)."""
    with progress_bar("verifying") as progress:
        report = storage.verify(progress=progress)
    if fmt in ("json", "nl"):
        render.emit_mapping(report.to_dict(), fmt)
    elif report.ok:
        click.echo(
            f"OK: {report.checked_prompts} prompt(s), {report.checked_versions} version(s) checked"
        )
    else:
        click.echo(
            render.table([vars(p) for p in report.problems], ["code", "location", "message"])
        )
    if fmt not in ("json", "nl"):
        for notice in report.notices:  # worth knowing, not damage
            click.echo(f"Notice: {notice.location}: {notice.message} [{notice.code}]")
    if not report.ok:
        sys.exit(1)


@click.command()
@output_options
@with_store()
def repair(storage: VersionStorage, fmt: str) -> None:
    """Fix what verify reports: damaged versions to the quarantine, indexes rebuilt."""
    with progress_bar("repairing") as progress:
        report = storage.repair(progress=progress)
    if fmt in ("json", "nl"):
        render.emit_mapping(report.to_dict(), fmt)
    elif not report.actions:
        click.echo("Nothing to repair")
    else:
        click.echo(render.table([vars(a) for a in report.actions], ["code", "location", "done"]))


@click.command()
@click.option("--keep-last", type=click.IntRange(min=0), help="Keep each prompt's newest N.")
@click.option(
    "--younger-than",
    type=DAYS,
    metavar="DAYS",
    help="Keep versions created less than DAYS ago.",
)
@click.option(
    "--keep-lineage",
    "lineage",
    multiple=True,
    metavar="LABEL",
    help="Also keep the ancestors of the version LABEL points at (repeatable; '*': every label).",
)
@click.option("--apply", "apply_", is_flag=True, help="Delete (into the trash); default: dry run.")
@output_options
@with_store()
def retain(
    storage: VersionStorage,
    keep_last: int | None,
    younger_than: float | None,
    lineage: tuple[str, ...],
    apply_: bool,
    fmt: str,
) -> None:
    """Apply a retention policy: each prompt keeps its newest N versions (and/or those younger
    than DAYS), its latest, its best and its labelled versions; the ancestors of a labelled
    version only with --keep-lineage. The rest goes to the trash."""
    if keep_last is None and younger_than is None:
        raise click.UsageError("give --keep-last N and/or --younger-than DAYS")
    age = None if younger_than is None else timedelta(days=younger_than)
    policy = RetentionPolicy(
        keep_last=keep_last, keep_younger_than=age, keep_lineage_of=frozenset(lineage)
    )
    with progress_bar("retaining") as progress:
        report = storage.apply_retention(policy, dry_run=not apply_, progress=progress)
    if fmt in ("json", "nl"):
        data = report.to_dict()
        data["removed"] = [{"prompt_id": p, "version": v} for p, v in report.removed]
        render.emit_mapping(data, fmt)
        return
    verb = "Moved to the trash" if apply_ else "Would move to the trash (dry run; --apply to do it)"
    click.echo(f"{verb}: {len(report.removed)} version(s); {report.kept} kept")
    for prompt_id, version in report.removed:
        click.echo(f"  {prompt_id} {version}")


@click.command()
@click.option(
    "--keep",
    type=click.IntRange(min=0),
    default=10,
    show_default=True,
    help="Leave each prompt's newest N uncompressed.",
)
@output_options
@with_store()
def compress(storage: VersionStorage, keep: int, fmt: str) -> None:
    """Gzip older versions of a filesystem store (transparent to every reader)."""
    if not isinstance(storage, FileSystemStorage):
        raise ConfigurationError(f"compress works on filesystem stores, not {storage.backend_name}")
    with progress_bar("compressing") as progress:
        count = storage.compress(keep_recent=keep, progress=progress)
    render.result(f"Compressed {count} version(s)", {"compressed": count}, fmt)


@click.command()
@click.argument("prompt_id")
@click.argument("version")
@output_options
@with_store()
def restore(storage: VersionStorage, prompt_id: str, version: str, fmt: str) -> None:
    """Bring a deleted version back from the trash (never over an existing one)."""
    storage.restore_version(prompt_id, version)
    render.result(
        f"Restored {prompt_id} {version}",
        {"prompt_id": prompt_id, "version": version, "restored": True},
        fmt,
    )


@click.command()
@click.option("--sharding/--no-sharding", default=None, help="The layout to convert to.")
@click.option("--shard-depth", type=click.IntRange(1, 8), default=2, show_default=True)
@output_options
@store_option
def reshard(target: str | None, sharding: bool | None, shard_depth: int, fmt: str) -> None:
    """Convert a filesystem store to the flat or the sharded layout, then verify it.

    Every prompt directory (versions, labels, label history) moves with one rename;
    the trash and the quarantine stay. Stop writers first. Interrupted, it loses
    nothing: run it again to finish.
    """
    if sharding is None:
        raise click.UsageError("give --sharding or --no-sharding")
    with opened(resolve_target(target)) as storage:
        if not isinstance(storage, FileSystemStorage):
            raise ConfigurationError(
                f"reshard works on filesystem stores, not {storage.backend_name}"
            )
        root = str(storage.storage_dir)
    report = reshard_store(root, sharding, shard_depth)
    if fmt in ("json", "nl"):
        render.emit_mapping(report.to_dict(), fmt)
    else:
        layout = f"sharded (depth {shard_depth})" if sharding else "flat"
        click.echo(
            f"Resharded {root} to {layout}: moved {report.moved_prompts} prompt(s); "
            f"{report.total_prompts} prompt(s), {report.total_versions} version(s) verified"
        )
        for problem in report.problems:
            click.echo(f"  {problem}")
    if report.problems:
        sys.exit(1)


@click.command()
@click.option("--empty", is_flag=True, help="Delete for good what is in the trash.")
@click.option(
    "--older-than",
    type=DAYS,
    metavar="DAYS",
    help="With --empty: only what was deleted more than DAYS ago.",
)
@click.option("--yes", "-y", is_flag=True, help="With --empty: do not ask for confirmation.")
@output_options
@with_store()
def trash(
    storage: VersionStorage, empty: bool, older_than: float | None, yes: bool, fmt: str
) -> None:
    """List deleted versions kept in the trash, or empty it (asks first unless --yes)."""
    if older_than is not None and not empty:
        raise click.UsageError("--older-than goes with --empty")
    if empty:
        age = None if older_than is None else timedelta(days=older_than)
        if not yes:
            click.confirm(_empty_question(storage, older_than), abort=True, err=True)
        removed = storage.empty_trash(older_than=age)
        render.result(f"Removed {removed} version(s) from the trash", {"removed": removed}, fmt)
        return
    rows = [e.model_dump() for e in storage.list_trash()]
    render.emit(rows, ["prompt_id", "version", "deleted_at"], fmt)


def _empty_question(storage: VersionStorage, older_than: float | None) -> str:
    if older_than is None:
        return f"Delete the {len(storage.list_trash())} version(s) in the trash for good?"
    return f"Delete for good what was deleted more than {older_than:g} day(s) ago?"
