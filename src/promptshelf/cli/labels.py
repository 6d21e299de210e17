"""The ``label`` command group: set, rm, ls, log."""

from __future__ import annotations

from typing import Any

import click

from .. import render
from ..manager import VersionManager
from ..models import LabelEvent
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
@output_options
@with_store()
def label_set(
    storage: VersionStorage,
    prompt_id: str,
    name: str,
    version: str,
    actor: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Point label NAME of PROMPT_ID at VERSION (a number, latest, best or label:OTHER).

    Pointing a label where it already points changes nothing and records nothing.
    """
    before = storage.get_label(prompt_id, name)
    event = VersionManager(storage).promote(prompt_id, version, name, actor=actor, reason=reason)
    if event.to_version == before:  # a no-op: nothing was recorded
        message = f"{prompt_id} {name} already points at {before}"
    else:
        was = f" (was {event.from_version})" if event.from_version else ""
        message = f"{prompt_id} {name} -> {event.to_version}{was}"
    render.result(message, _event_row(event), fmt)


def _event_row(event: LabelEvent) -> dict[str, Any]:
    return {
        "prompt_id": event.prompt_id,
        "seq": event.seq,
        "at": event.at,
        "label": event.label,
        "action": event.action.value,
        "from": event.from_version,
        "to": event.to_version,
        "actor": event.actor,
        "reason": event.reason,
    }


@label.command(name="rm")
@click.argument("prompt_id")
@click.argument("name")
@click.option("--actor", help="Who removes the label (recorded in its history).")
@click.option("--reason", help="Why (recorded in its history).")
@output_options
@with_store()
def label_rm(
    storage: VersionStorage,
    prompt_id: str,
    name: str,
    actor: str | None,
    reason: str | None,
    fmt: str,
) -> None:
    """Remove label NAME of PROMPT_ID (its history keeps the removal)."""
    if not storage.remove_label(prompt_id, name, actor=actor, reason=reason):
        raise missing_label(prompt_id, name)
    render.result(
        f"Removed {prompt_id} {name}", {"prompt_id": prompt_id, "label": name, "removed": True}, fmt
    )


@label.command(name="ls")
@click.argument("prompt_id")
@output_options
@with_store()
def label_ls(storage: VersionStorage, prompt_id: str, fmt: str) -> None:
    """The labels of PROMPT_ID and the versions they point at."""
    rows = [
        {"prompt_id": prompt_id, "label": k, "version": v}
        for k, v in sorted(storage.list_labels(prompt_id).items())
    ]
    render.emit(rows, ["label", "version"], fmt)


@label.command(name="log")
@click.argument("prompt_id")
@click.argument("name", required=False)
@output_options
@with_store()
def label_log(storage: VersionStorage, prompt_id: str, name: str | None, fmt: str) -> None:
    """Every set, move and removal of PROMPT_ID's labels (or of label NAME), oldest first."""
    rows = [_event_row(e) for e in storage.label_history(prompt_id, name)]
    render.emit(rows, ["seq", "at", "label", "action", "from", "to", "actor", "reason"], fmt)
