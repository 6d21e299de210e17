"""``promptshelf dify``: import a Dify app's prompts as versions; write versions back."""

from __future__ import annotations

from pathlib import Path

import click

from .. import render
from ..diff import diff_text
from ..dify import dsl
from ..dify.importer import import_app, prompt_id
from ..dify.writeback import apply_versions, changed_lines, write_atomically
from ..errors import DifyError, LabelNotFoundError, VersionNotFoundError
from ..manager import VersionManager
from ..models import PromptVersion
from ..storage import VersionStorage
from .options import output_options, with_store


@click.group()
def dify() -> None:
    """Round trips with Dify workflow files (DSL exports, kind: app)."""


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise DifyError(
            f"cannot read {path}: {exc.strerror or exc}",
            error_code="DIFY-FILE-001",
            context={"path": path},
        ) from None


def _app(path: str, raw: bytes) -> dsl.DifyApp:
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DifyError(f"{path} is not UTF-8 text: {exc}", error_code="DIFY-FILE-001") from None
    app = dsl.load_app(text, path)
    if not app.known_version:
        click.echo(
            f"Warning: {path} is DSL version {app.dsl_version or '(none)'}; "
            "promptshelf knows 0.1 to 0.6",
            err=True,
        )
    return app


def _key(app: dsl.DifyApp, given: str | None) -> str:
    return dsl.workflow_key(given) if given else dsl.workflow_key(app.name)


workflow_option = click.option(
    "--workflow-id",
    "workflow_id",
    metavar="KEY",
    help="Prompt ids are KEY_<node id> (default: the app name, made a valid id).",
)


@dify.command(name="import")
@click.argument("app_file", metavar="APP.yml")
@workflow_option
@output_options
@with_store(create=True)
def import_(storage: VersionStorage, app_file: str, workflow_id: str | None, fmt: str) -> None:
    """Save a version of every prompt in APP.yml whose content changed since the last import.

    One prompt per LLM node (chat: its messages; completion: its text), question
    classifier, parameter extractor and agent. Importing the same file again saves nothing.
    """
    raw = _read(app_file)
    app = _app(app_file, raw)
    key = _key(app, workflow_id)
    report = import_app(VersionManager(storage), app, key, Path(app_file).name)
    if fmt != "table":
        render.emit_mapping(report.to_dict(), fmt)
        return
    for pid, version in report.saved.items():
        click.echo(f"saved {pid} {version}")
    kinds = ", ".join(f"{kind} {n}" for kind, n in sorted(report.kinds.items())) or "none"
    click.echo(
        f"{len(app.prompts)} prompt(s) in {app_file} ({kinds}): "
        f"{len(report.saved)} saved, {len(report.unchanged)} unchanged"
    )


@dify.command(name="apply")
@click.argument("app_file", metavar="APP.yml")
@click.option(
    "--label",
    default="production",
    show_default=True,
    help="Write the version under this label; 'latest' and 'best' work too.",
)
@click.option(
    "--version-of",
    "pins",
    multiple=True,
    metavar="PROMPT=VERSION",
    help="Write this version of this prompt (id or node id; repeatable). "
    "Given alone, only these prompts change.",
)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write here, not in place.")
@click.option(
    "--allow-placeholder-changes",
    is_flag=True,
    help="Write even when a version drops a placeholder the file's prompt has.",
)
@click.option("--dry-run", is_flag=True, help="Say what would change; write nothing.")
@click.option("--diff", "show_diff", is_flag=True, help="Print the changes to the file as a diff.")
@workflow_option
@output_options
@with_store()
def apply(
    storage: VersionStorage,
    app_file: str,
    label: str,
    pins: tuple[str, ...],
    output: str | None,
    allow_placeholder_changes: bool,
    dry_run: bool,
    show_diff: bool,
    workflow_id: str | None,
    fmt: str,
) -> None:
    """Write chosen versions of APP.yml's prompts back into it (only the prompt texts change).

    A node whose prompt has no version under the label is left as it is (and named).
    An apply that changes nothing leaves the file byte for byte as it was.
    """
    raw = _read(app_file)
    app = _app(app_file, raw)
    key = _key(app, workflow_id)
    manager = VersionManager(storage)
    ids = {prompt_id(key, p) for p in app.prompts}
    pinned = _pins(pins, ids, key)
    only_pinned = bool(pins) and label == "production" and not _label_given()

    def choose(pid: str) -> PromptVersion | None:
        selector = pinned.get(pid)
        if selector is None:
            if only_pinned:
                return None
            selector = label if label in ("latest", "best") else f"label:{label}"
        try:
            return manager.get_version(pid, selector)
        except (VersionNotFoundError, LabelNotFoundError):
            if pid in pinned:
                raise
            return None

    report = apply_versions(
        raw, key, choose, allow_placeholder_changes=allow_placeholder_changes, where=app_file
    )
    target = Path(output) if output else Path(app_file)
    wrote = not dry_run and (report.output != raw or output is not None)
    if wrote:
        write_atomically(target, report.output)
    if fmt != "table":
        render.emit_mapping(
            {
                **report.to_dict(),
                "written": str(target) if wrote else None,
                "changed_lines": changed_lines(raw, report.output),
            },
            fmt,
        )
        return
    for pid, version in report.changed.items():
        click.echo(f"{'would write' if dry_run else 'wrote'} {pid} {version}")
    if show_diff and report.changed:
        old_text, new_text = (b.decode("utf-8-sig") for b in (raw, report.output))
        render.diff_lines(diff_text(old_text, new_text).unified(app_file, str(target)))
    if report.left:
        reason = "no version pinned" if only_pinned else f"no version under {label}"
        click.echo(f"left as they are ({reason}): {', '.join(report.left)}")
    if not report.changed:
        click.echo(f"No change: {app_file} already holds these versions")
    elif wrote:
        lines = changed_lines(raw, report.output)
        click.echo(f"Wrote {target}: {lines} line(s) changed ({report.style})")


def _label_given() -> bool:
    ctx = click.get_current_context()
    source = ctx.get_parameter_source("label")
    return source is not None and source.name != "DEFAULT"


def _pins(pins: tuple[str, ...], ids: set[str], key: str) -> dict[str, str]:
    pinned: dict[str, str] = {}
    for pin in pins:
        name, sep, version = pin.partition("=")
        if not sep or not name or not version:
            raise click.BadParameter(f"{pin!r} is not PROMPT=VERSION", param_hint="--version-of")
        pid = name if name in ids else f"{key}_{name}"
        if pid not in ids:
            raise click.BadParameter(
                f"{name!r} is not a prompt of this file (ids look like {key}_<node id>)",
                param_hint="--version-of",
            )
        pinned[pid] = version
    return pinned


__all__ = ["dify"]
