"""The one place the command line turns results into text: tables, JSON, JSON lines, diffs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

from .models import PromptVersion
from .timestamps import as_utc

FORMATS = ("table", "json", "nl")


#: A table cell longer than this is cut, with an ellipsis (the JSON output keeps it whole).
CELL_WIDTH = 48


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):  # UTC (a naive time is UTC), to the second: 09:28:05Z
        return as_utc(value).isoformat(sep=" ", timespec="seconds").replace("+00:00", "Z")
    if isinstance(value, dict | list):
        return short(json.dumps(value, ensure_ascii=False, separators=(",", ":")))
    return str(value)


def short(text: str, width: int = CELL_WIDTH) -> str:
    """``text`` on one line, cut to ``width`` characters with an ellipsis."""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[: width - 1] + "…"


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):  # JSON: UTC with its offset, whatever it was written as
        return as_utc(value).isoformat()
    return value


def table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """Left-aligned columns under upper-case headers, two spaces apart."""
    cells = [[_cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def emit(rows: Sequence[dict[str, Any]], columns: Sequence[str], fmt: str) -> None:
    """Print ``rows`` as a table, one JSON array, or one JSON object per line."""
    if fmt == "json":
        click.echo(dumps([{k: _plain(v) for k, v in r.items()} for r in rows]))
    elif fmt == "nl":
        for row in rows:
            click.echo(json.dumps({k: _plain(v) for k, v in row.items()}, ensure_ascii=False))
    else:
        click.echo(table(rows, columns))


def emit_mapping(data: dict[str, Any], fmt: str) -> None:
    """A record as ``key  value`` lines, as JSON, or as one JSON line (``nl``)."""
    if fmt == "json":
        click.echo(dumps(data))
        return
    if fmt == "nl":
        click.echo(json.dumps(data, ensure_ascii=False, default=_plain))
        return
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        if isinstance(value, dict | list):
            shown = json.dumps(value, ensure_ascii=False, default=_plain)
        elif isinstance(value, str):
            shown = value  # a record shows its strings whole
        else:
            shown = _cell(value)
        click.echo(f"{key.ljust(width)}  {shown}")


def result(message: str, data: dict[str, Any], fmt: str) -> None:
    """What a command did: ``message`` for people, ``data`` (an object) for ``--json``/``--nl``."""
    if fmt in ("json", "nl"):
        emit_mapping(data, fmt)
    else:
        click.echo(message)


def dumps(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=_plain)


def diff_lines(lines: Iterable[str]) -> None:
    """A unified diff, coloured on a terminal (click strips colour elsewhere)."""
    for line in lines:
        if line.startswith(("+++", "---")):
            click.secho(line, bold=True)
        elif line.startswith("@@"):
            click.secho(line, fg="cyan")
        elif line.startswith("+"):
            click.secho(line, fg="green")
        elif line.startswith("-"):
            click.secho(line, fg="red")
        else:
            click.echo(line)


def messages_json(version: PromptVersion) -> str:
    """A version's messages as the JSON list ``save --messages`` reads (a text prompt: one)."""
    if version.prompt.messages is None:
        messages = [{"role": version.prompt.role, "text": version.prompt.text}]
    else:
        messages = [m.model_dump() for m in version.prompt.messages]
    return dumps(messages)


def comparison_extras(comparison: dict[str, Any]) -> None:
    """The commit messages and the config changes of a comparison, when there are any."""
    first, second = comparison.get("commit_message1"), comparison.get("commit_message2")
    if first or second:
        click.echo(f"message: {first or '-'} -> {second or '-'}")
    changes = comparison.get("config_diff") or []
    if changes:
        click.echo("config:")
    for change in changes:
        old, new = (json.dumps(change[k], ensure_ascii=False) for k in ("old", "new"))
        shown = {"added": f"+ {new}", "removed": f"- {old}", "changed": f"{old} -> {new}"}
        click.secho(f"  {change['path']}: {shown[change['op']]}", fg="yellow")


_MESSAGE_MARK = {"equal": "=", "changed": "~", "moved": ">", "added": "+", "removed": "-"}
_MESSAGE_COLOUR = {"changed": "yellow", "moved": "magenta", "added": "green", "removed": "red"}


def messages_diff(ops: list[dict[str, Any]]) -> None:
    """A chat diff: one header per message, word-level changes inside changed messages."""
    if all(op["op"] == "equal" for op in ops):
        click.echo("(the messages are identical)")
    for op in ops:
        index = op["new_index"] if op["new_index"] is not None else op["old_index"]
        role = op["new_role"] or op["old_role"]
        if op["role_changed"]:
            role = f"{op['old_role']} -> {op['new_role']}"
        detail = op["op"]
        if op["op"] == "moved":
            detail = f"moved from #{op['old_index'] + 1}"
        if op["op"] in ("changed", "moved") and op["fields"]:
            detail += f" ({', '.join(op['fields'])})"
        click.secho(
            f"{_MESSAGE_MARK[op['op']]} #{index + 1} {role}: {detail}",
            fg=_MESSAGE_COLOUR.get(op["op"]),
            bold=op["op"] != "equal",
        )
        if op["op"] in ("added", "removed"):
            sign = "+" if op["op"] == "added" else "-"
            for line_op in op["text"]["ops"]:
                diff_lines(f"{sign}{line}" for line in line_op["old" if sign == "-" else "new"])
        elif "text" in op["fields"]:
            word_lines(op["text"]["ops"])


def word_lines(ops: list[dict[str, Any]], context: int = 2) -> None:
    """Line ops as text: unchanged lines near a change, ``-``/``+`` lines, and changed lines
    with their words marked ``[-old-]{+new+}``."""
    for k, op in enumerate(ops):
        if op["op"] == "equal":
            lines = op["old"]
            near_before = k + 1 < len(ops)
            near_after = k > 0
            if len(lines) > 2 * context and near_before and near_after:
                shown = [*lines[:context], "…", *lines[-context:]]
            elif near_before and near_after:
                shown = lines
            elif near_before:
                shown = (["…"] if len(lines) > context else []) + lines[-context:]
            elif near_after:
                shown = lines[:context] + (["…"] if len(lines) > context else [])
            else:
                shown = lines
            for line in shown:
                click.echo(f"  {line}")
        elif op["words"] is not None:
            for line in "".join(_marked(w) for w in op["words"]).split("\n"):
                click.echo(f"~ {line}")
        else:
            for line in op["old"]:
                click.secho(f"- {line}", fg="red")
            for line in op["new"]:
                click.secho(f"+ {line}", fg="green")


def _marked(word: dict[str, str]) -> str:
    if word["op"] == "equal":
        return word["old"]
    removed = click.style(f"[-{word['old']}-]", fg="red") if word["old"] else ""
    added = click.style(f"{{+{word['new']}+}}", fg="green") if word["new"] else ""
    return removed + added
