"""Commands that move versions in and out: import, export, migrate."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from .. import jsonl, render
from ..backup import backup_store, is_archive
from ..errors import OptimizerError
from ..migrate import MigrationReport, migrate
from ..models import PromptVersion
from ..original import original_problems, write_original_index
from ..storage import FileSystemStorage, InMemoryStorage, VersionStorage
from ..storage.filesystem.index import detect_layout
from .options import opened, output_options, progress_bar, with_store
from .staging import staged_directory


@click.command(name="import")
@click.argument("path", type=click.Path(exists=True, path_type=Path))
@output_options
@with_store(create=True)
def import_(storage: VersionStorage, path: Path, fmt: str) -> None:
    """Import a PromptVersion JSON file, a JSON-lines file, or a store in the original layout."""
    if path.is_dir():
        # use_index=False: importing reads the source and leaves it exactly as it was
        layout = detect_layout(str(path))
        source: VersionStorage = FileSystemStorage(path, create=False, use_index=False, **layout)
    else:
        source = InMemoryStorage()
        source.save_versions(_read_versions(path))
        if path.suffix == ".jsonl":
            jsonl.load_side_files(source, path)  # labels and trash exported beside it
    with progress_bar("importing") as progress:
        report = migrate(source, storage, progress=progress)
    _report(report, "imported", fmt)


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
            except RecursionError:
                raise _bad_import(path, 1, "nested too deeply to read") from None
    versions = []
    for number, raw in items:
        try:
            versions.append(PromptVersion.model_validate_json(raw))
        except ValueError as exc:
            raise _bad_import(path, number, str(exc).splitlines()[0]) from None
        except RecursionError:
            raise _bad_import(path, number, "nested too deeply to read") from None
    return versions


def _bad_import(path: Path, item: int, why: str) -> OptimizerError:
    return OptimizerError(
        f"{path} item {item} is not a valid PromptVersion: {why}; nothing imported",
        error_code="PS-IMPORT-001",
        context={"path": str(path), "item": item},
    )


def _report(report: MigrationReport, verb: str, fmt: str) -> None:
    data = report.to_dict()  # named keys, not pairs, as every command's JSON
    for key in ("conflicts", "missing_after"):
        data[key] = [{"prompt_id": p, "version": v} for p, v in getattr(report, key)]
    data["label_conflicts"] = [{"prompt_id": p, "reason": r} for p, r in report.label_conflicts]
    data["document_conflicts"] = [{"namespace": n, "key": k} for n, k in report.document_conflicts]
    data["trash_conflicts"] = [
        {"prompt_id": p, "version": v, "deleted_at": d} for p, v, d in report.trash_conflicts
    ]
    line = (
        f"{verb} {report.copied} version(s) of {report.prompts} prompt(s); "
        f"{report.skipped_identical} already present"
    )
    if report.label_events_copied or report.trash_copied or report.trash_skipped_identical:
        line += (
            f"; {report.label_events_copied} label event(s) and "
            f"{report.trash_copied} trashed version(s) copied"
        )
    if report.documents_copied:
        line += f"; {report.documents_copied} document(s) copied"
    render.result(line, data, fmt)
    for namespace, key in report.document_conflicts:
        click.echo(
            f"Error: document {namespace}/{key} differs from the destination's; kept the "
            "existing one",
            err=True,
        )
    for prompt_id, number in report.conflicts:
        click.echo(
            f"Error: {prompt_id} {number} differs from the existing version; kept the existing one",
            err=True,
        )
    for prompt_id, why in report.label_conflicts:
        click.echo(f"Error: labels of {prompt_id} not copied: {why}", err=True)
    for prompt_id, number, deleted_at in report.trash_conflicts:
        click.echo(
            f"Error: {prompt_id} {number} deleted at {deleted_at} differs from the copy in the "
            "destination's trash; kept the existing one",
            err=True,
        )
    for prompt_id, number in report.missing_after:
        click.echo(f"Error: {prompt_id} {number} is missing after copying", err=True)
    if not report.ok:
        sys.exit(1)


@click.command()
@click.argument("dest")
@output_options
@with_store()
def export(storage: VersionStorage, dest: str, fmt: str) -> None:
    """Export everything to DEST: a directory the original implementation reads (labels and
    trash beside it, where the original does not look), a .jsonl file, or a store URL."""
    if dest.endswith(".jsonl"):
        _export_jsonl(storage, Path(dest), fmt)
    elif "://" in dest:
        with opened(dest, create=True) as target, progress_bar("exporting") as progress:
            report = migrate(storage, target, progress=progress)
        _report(report, "exported", fmt)
    else:
        _export_original(storage, Path(dest), fmt)


def _export_original(storage: VersionStorage, dest: Path, fmt: str) -> None:
    """The original's layout and format: no checksums, nothing compressed, a current
    ``.index.json`` in its exact form; checked against its rules afterwards."""
    if dest.exists() and detect_layout(str(dest)):
        raise OptimizerError(
            f"{dest} holds a sharded store; export writes the original's flat layout",
            error_code="PS-EXPORT-001",
            context={"path": str(dest)},
        )
    with staged_directory(dest) as work:  # a new DEST appears only once complete
        target = FileSystemStorage(work, checksums=False)
        try:
            with progress_bar("exporting") as progress:
                report = migrate(storage, target, progress=progress, documents=False)
            write_original_index(target)
        finally:
            target.close()
    problems = original_problems(dest)
    for problem in problems:
        click.echo(f"Error: the original implementation would not read {problem}", err=True)
    _report(report, "exported", fmt)
    if problems:
        sys.exit(1)


def _export_jsonl(storage: VersionStorage, path: Path, fmt: str) -> None:
    with progress_bar("exporting") as progress:
        versions, events, trashed = jsonl.write(storage, path, progress=progress)
    labels, trash = jsonl.side_files(path)
    line = f"exported {versions} version(s) to {path}"
    line += f"; {events} label event(s) to {labels}" if events else ""
    line += f"; {trashed} trashed version(s) to {trash}" if trashed else ""
    data = {
        "exported": versions,
        "label_events": events,
        "trashed": trashed,
        "dest": str(path),
    }
    render.result(line, data, fmt)


@click.command(name="migrate")
@click.argument("source")
@click.argument("dest")
@output_options
def migrate_(source: str, dest: str, fmt: str) -> None:
    """Copy everything from SOURCE to DEST (any two stores, or a backup archive as SOURCE):
    versions, labels and their history, the trash. Re-running skips what is there; nothing
    differing is overwritten."""
    if is_archive(source):  # a backup archive (promptshelf backup ... x.tar.gz): restore it
        with (
            backup_store(source, create=False) as src,
            opened(dest, create=True) as dst,
            progress_bar("migrating") as progress,
        ):
            report = migrate(src, dst, progress=progress)
    else:
        with (
            opened(source) as src,
            opened(dest, create=True) as dst,
            progress_bar("migrating") as progress,
        ):
            report = migrate(src, dst, progress=progress)
    _report(report, "copied", fmt)
