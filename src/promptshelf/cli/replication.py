"""Backups and standbys: ``backup``, ``backup verify`` and ``sync``."""

from __future__ import annotations

import signal
import sys
import threading
import time
from types import FrameType

import click

from .. import backup as backups
from .. import render
from ..replicate import SyncReport, follow, sync
from .options import Number, opened, output_options, resolve_target, store_option

_BACKUP_HELP = """Back up the store (--store) into DEST, or check a backup.

\b
  promptshelf backup --store SRC DEST      take a backup (incremental if DEST has one)
  promptshelf backup verify DEST           check DEST against its manifest

DEST is a directory, a .tar.gz file, or an s3:// prefix. The backup is itself a
store: restore it with `promptshelf migrate DEST TARGET`. Writers may keep
writing while it is taken: it holds the store as of its watermark, read before
anything is copied (docs/operations.md). Documents (API keys) are carried too.
Exit 1 when the backup or the check found problems."""


def _redacted(target: str) -> str:
    """``target`` without a password or query string, for the manifest."""
    head = target.split("?", 1)[0]
    if "://" in head and "@" in head.split("://", 1)[1].split("/", 1)[0]:
        scheme, rest = head.split("://", 1)
        head = f"{scheme}://{rest.split('@', 1)[1]}"
    return head


@click.command(name="backup", help=_BACKUP_HELP, short_help="Back up a store, or check a backup.")
@store_option
@click.argument("args", nargs=-1, required=True, metavar="[verify] DEST")
@output_options
def backup(target: str | None, args: tuple[str, ...], fmt: str) -> None:
    target = resolve_target(target)  # --store before or after the command, env, default
    if len(args) == 2 and args[0] == "verify":
        _verify(args[1], fmt)
        return
    if len(args) != 1:
        raise click.UsageError("expected DEST, or `verify DEST`")
    dest = args[0]
    with opened(target) as source:
        report = backups.take(source, dest, describe=_redacted(target))
    if fmt in ("json", "nl"):
        render.emit_mapping(report.to_dict(), fmt)
    else:
        t, c = report.totals, report.sync
        kind = "incremental" if report.previous else "full"
        click.echo(
            f"{kind} backup to {dest}: {t['prompts']} prompt(s), {t['versions']} version(s), "
            f"{t['label_events']} label event(s), {t['trash']} in the trash; this run copied "
            f"{c.versions_copied} version(s), {c.label_events_copied} label event(s), "
            f"{c.trash_copied} trash copie(s), replaced {c.versions_replaced}, removed "
            f"{c.versions_purged + c.trash_purged}"
            + (f", re-copied {len(report.damaged)} damaged" if report.damaged else "")
            + f"; manifest {report.manifest}"
        )
        _problems(c)
    if not report.ok:
        sys.exit(1)


def _problems(report: SyncReport) -> None:
    """A pass's problems on stderr, for people (``--json``/``--nl`` carry them in the output)."""
    for prompt_id, why in report.problems:
        click.echo(f"problem: {prompt_id}: {why}", err=True)


def _verify(dest: str, fmt: str) -> None:
    check = backups.verify(dest)
    if fmt in ("json", "nl"):
        render.emit_mapping(check.to_dict(), fmt)
    else:
        for problem in check.problems:
            click.echo(f"problem: {problem}")
        state = "ok" if check.ok else f"{len(check.problems)} problem(s)"
        if check.manifest is None:  # never finished (or not a backup): nothing was checked
            click.echo(f"backup {dest}: no manifest, nothing checked: {state}")
        else:
            click.echo(
                f"backup {dest} ({check.manifest}): {check.checked_prompts} prompt(s), "
                f"{check.checked_versions} version(s) checked against their SHA-256: {state}"
            )
    if not check.ok:
        sys.exit(1)


def _summary(number: int, report: SyncReport, seconds: float) -> str:
    r = report
    line = (
        f"pass {number}: {r.prompts} prompt(s) in {seconds:.2f} s; copied {r.versions_copied} "
        f"version(s), {r.label_events_copied} label event(s), {r.trash_copied} trash copie(s); "
        f"restored {r.versions_restored}, replaced {r.versions_replaced}, removed "
        f"{r.versions_purged} version(s) and {r.trash_purged} trash copie(s)"
    )
    if r.documents_copied or r.documents_deleted:
        line += f"; documents: {r.documents_copied} copied, {r.documents_deleted} removed"
    if r.cleared:
        line += "; the source was cleared: so was DEST"
    return line + (f"; {len(r.problems)} problem(s)" if r.problems else "")


def _show_pass(number: int, report: SyncReport, seconds: float, fmt: str, lines: bool) -> None:
    """One pass: a summary line for people, or its report as an object (``"pass"`` and
    ``"seconds"`` beside the counts); ``lines``: one JSON object per line (``--follow``)."""
    if fmt in ("json", "nl"):
        data = {"pass": number, "seconds": round(seconds, 3), **report.to_dict()}
        render.emit_mapping(data, "nl" if lines else fmt)
    else:
        click.echo(_summary(number, report, seconds))
        _problems(report)


@click.command(name="sync")
@click.argument("source")
@click.argument("dest")
@click.option(
    "--follow",
    "keep_following",
    is_flag=True,
    help="Keep syncing until interrupted (SIGINT/SIGTERM).",
)
@click.option(
    "--interval",
    type=Number(0, 86_400),
    default=5.0,
    show_default=True,
    help="Seconds between passes with --follow.",
)
@output_options
def sync_(source: str, dest: str, keep_following: bool, interval: float, fmt: str) -> None:
    """Make DEST (a standby store) hold exactly what SOURCE holds: new versions, label
    events replayed in order, deletions, the trash, the documents; a cleared SOURCE
    clears DEST. Only what changed is copied; a pass
    killed midway is finished by the next one. DEST must not be written by anyone else
    (its own changes are reported as problems, never overwritten). Exit 1 on problems.
    With --follow, --json and --nl both print one JSON object per pass, one per line."""
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    if keep_following:
        signal.signal(signal.SIGTERM, request_stop)
        signal.signal(signal.SIGINT, request_stop)
    problems = 0
    with opened(source) as src, opened(dest, create=True) as dst:
        if not keep_following:
            started = time.monotonic()
            report = sync(src, dst)
            _show_pass(1, report, time.monotonic() - started, fmt, lines=False)
            problems = len(report.problems)
        else:
            count = 0
            started = time.monotonic()

            def on_pass(report: SyncReport) -> None:
                nonlocal count, started, problems
                count += 1
                _show_pass(count, report, time.monotonic() - started, fmt, lines=True)
                sys.stdout.flush()
                problems = len(report.problems)
                started = time.monotonic()

            follow(src, dst, interval=interval, should_stop=stop.is_set, on_pass=on_pass)
    if problems:
        sys.exit(1)
