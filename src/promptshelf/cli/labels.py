"""The ``label`` command group: set, rm, ls, log."""

from __future__ import annotations

import click

from .. import render
from ..manager import VersionManager
from ..storage import VersionStorage
from ..storage.base import missing_label
from .options import output_options, with_store


@click.group()
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
