"""The one place the command line turns results into text: tables, JSON, JSON lines, diffs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import click

FORMATS = ("table", "json", "nl")


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
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
    """A record as ``key  value`` lines, or as JSON."""
    if fmt in ("json", "nl"):
        click.echo(dumps(data))
        return
    width = max((len(k) for k in data), default=0)
    for key, value in data.items():
        shown = (
            json.dumps(value, ensure_ascii=False, default=_plain)
            if isinstance(value, dict | list)
            else _cell(value)
        )
        click.echo(f"{key.ljust(width)}  {shown}")


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
