"""The ``promptshelf`` command: work with any store without writing Python.

Every command takes ``--store`` (anything ``open_storage`` accepts; default
``$PROMPTSHELF_URL``, else ``./promptshelf-data``), before or after the
command name. Every error becomes one line, ``Error: ... [CODE]``, on stderr,
here and only here: exit 1 for not found, conflicts, failed checks and
failed I/O, exit 2 for bad input on the command line (usage, values, configuration).
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any, NamedTuple

import click

from .. import __version__
from ..errors import ConfigurationError, OptimizerError, ValidationError
from .options import Settings, format_options, store_option

USAGE_CODE = "PS-USAGE-001"
IO_CODE = "PS-IO-001"


class OneLineError(click.ClickException):
    """An error shown as exactly one line: ``Error: <message> [<code>]``."""

    def __init__(self, message: str, code: str, exit_code: int) -> None:
        super().__init__(message)
        self.code = code
        self.exit_code = exit_code  # type: ignore[misc]  # click declares it on the class

    def show(self, file: Any = None) -> None:
        one_line = " ".join(self.format_message().split())
        click.echo(f"Error: {one_line} [{self.code}]", err=True)


def _usage(exc: click.UsageError) -> OneLineError:
    hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
    return OneLineError(exc.format_message() + hint, USAGE_CODE, 2)


def _translated(exc: Exception) -> OneLineError | None:
    """The one-line form of an error raised below the command line, or None to re-raise."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        return None  # bare ``promptshelf``: click prints the help
    if isinstance(exc, click.UsageError):
        return _usage(exc)
    if isinstance(exc, OptimizerError):
        usage = isinstance(exc, ValidationError | ConfigurationError)
        return OneLineError(exc.message, exc.error_code, 2 if usage else 1)
    pydantic = sys.modules.get("pydantic")  # only a command that imported it can raise its errors
    if pydantic is not None and isinstance(exc, pydantic.ValidationError):  # from CLI values
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return OneLineError(f"{where}: {first['msg']}", "PS-VALID-001", 2)
    if isinstance(exc, RecursionError):  # JSON (or a value built from it) nested too deeply
        return OneLineError("input nested too deeply to process", "PS-VALID-001", 2)
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        where = f": {exc.filename}" if exc.filename else ""
        return OneLineError(f"{exc.strerror or exc}{where}", IO_CODE, 1)
    return None


class Entry(NamedTuple):
    """Where a command lives and what ``--help`` says of it before it is imported."""

    module: str  # in this package
    attribute: str
    help: str  # the first sentence of its help (or its short_help when ``explicit``)
    explicit: bool = False  # the command sets short_help itself


#: Every command. A command's module is imported only when that command runs (or its own
#: help is asked for), so ``promptshelf show`` does not pay for the server, Dify or
#: replication code; ``--help`` lists every command from this table.
#: tests/test_cli_lazy.py checks it against the real commands.
COMMANDS: dict[str, Entry] = {
    "init": Entry("versions", "init", "Create an empty store (or say what an existing one holds)."),
    "save": Entry(
        "versions",
        "save",
        "Save a new version of PROMPT_ID from --text, --file or standard input (-).",
    ),
    "list": Entry(
        "versions",
        "list_",
        "Prompts with their latest version, version count and last update.",
    ),
    "log": Entry(
        "versions",
        "log",
        "The history of PROMPT_ID, oldest first: scores, strategy, parent, author.",
    ),
    "show": Entry(
        "versions",
        "show",
        "One version of PROMPT_ID: a number, latest (default), best or label:NAME.",
    ),
    "diff": Entry(
        "versions",
        "diff",
        "Text diff and score deltas from VERSION1 to VERSION2 (numbers, latest, best, label:NAME).",
    ),
    "rollback": Entry(
        "versions",
        "rollback",
        "Make a new version of PROMPT_ID carrying VERSION's content.",
    ),
    "delete": Entry(
        "versions",
        "delete",
        "Delete one version of PROMPT_ID (it is kept in the trash; see restore).",
    ),
    "render": Entry(
        "versions",
        "render_",
        "Print a version's text with its {{placeholders}} filled (default: label:production).",
    ),
    "label": Entry(
        "labels",
        "label",
        "Named pointers such as production or staging: set, rm, ls, log.",
    ),
    "import": Entry(
        "transfer",
        "import_",
        "Import a PromptVersion JSON file, a JSON-lines file, or a store in the original layout.",
    ),
    "export": Entry(
        "transfer",
        "export",
        "Export everything to DEST: a directory the original implementation reads (labels and"
        " trash beside it, where the original does not look), a .jsonl file, or a store URL.",
    ),
    "migrate": Entry(
        "transfer",
        "migrate_",
        "Copy everything from SOURCE to DEST (any two stores, or a backup archive as SOURCE):"
        " versions, labels and their history, the trash.",
    ),
    "backup": Entry("replication", "backup", "Back up a store, or check a backup.", True),
    "sync": Entry(
        "replication",
        "sync_",
        "Make DEST (a standby store) hold exactly what SOURCE holds: new versions, label events"
        " replayed in order, deletions, the trash, the documents; a cleared SOURCE clears DEST.",
    ),
    "stats": Entry("maintenance", "stats", "Counts, sizes and settings of the store."),
    "rebuild-index": Entry(
        "maintenance",
        "rebuild_index",
        "Re-read every prompt and rewrite the index (filesystem stores).",
    ),
    "verify": Entry(
        "maintenance",
        "verify",
        "Read every version and check it; list each problem with its location (exit 1 if any).",
    ),
    "repair": Entry(
        "maintenance",
        "repair",
        "Fix what verify reports: damaged versions to the quarantine, indexes rebuilt.",
    ),
    "retain": Entry(
        "maintenance",
        "retain",
        "Apply a retention policy: each prompt keeps its newest N versions (and/or those"
        " younger than DAYS), its latest, its best and its labelled versions; the ancestors of"
        " a labelled version only with --keep-lineage.",
    ),
    "compress": Entry(
        "maintenance",
        "compress",
        "Gzip older versions of a filesystem store (transparent to every reader).",
    ),
    "restore": Entry(
        "maintenance",
        "restore",
        "Bring a deleted version back from the trash (never over an existing one).",
    ),
    "trash": Entry(
        "maintenance",
        "trash",
        "List deleted versions kept in the trash, or empty it (asks first unless --yes).",
    ),
    "dify": Entry("dify", "dify", "Round trips with Dify workflow files (DSL exports, kind: app)."),
    "serve": Entry(
        "serve",
        "serve",
        "Serve the store over HTTP: the API at /api/v1, docs at /docs, the web page at /.",
    ),
    "keys": Entry("keys", "keys", "API keys for `promptshelf serve`: create, list, revoke."),
    "reshard": Entry(
        "maintenance",
        "reshard",
        "Convert a filesystem store to the flat or the sharded layout, then verify it.",
    ),
    "pull": Entry(
        "pull",
        "pull",
        "Write the version each LABEL names, for every prompt, to a bundle directory.",
    ),
}


class LazyCommands(MutableMapping[str, click.Command]):
    """``Group.commands`` that imports a command's module on first access by name."""

    def __init__(self, table: dict[str, Entry]) -> None:
        self.table = table
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self.loaded.get(name)
        if command is None:
            entry = self.table[name]  # KeyError: no such command
            module = importlib.import_module(f"{__name__}.{entry.module}")
            command = getattr(module, entry.attribute)
            self.loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        del self.loaded[name]

    def __iter__(self) -> Iterator[str]:
        yield from self.table
        yield from (name for name in self.loaded if name not in self.table)

    def __len__(self) -> int:
        return len(self.table) + sum(1 for name in self.loaded if name not in self.table)

    def __contains__(self, name: object) -> bool:
        return name in self.table or name in self.loaded

    def short_help(self, name: str, limit: int) -> str:
        """The command's short help without importing it (from the table until it is loaded)."""
        command = self.loaded.get(name)
        if command is not None or name not in self.table:
            return self[name].get_short_help_str(limit)
        entry = self.table[name]
        stand_in = click.Command(
            name, help=entry.help, short_help=entry.help if entry.explicit else None
        )
        return stand_in.get_short_help_str(limit)


class ShelfGroup(click.Group):
    """Turns every error into one line and the documented exit codes, once, here."""

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The command list from the table: ``--help`` imports no command module."""
        commands = self.commands
        if not isinstance(commands, LazyCommands):
            super().format_commands(ctx, formatter)
            return
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        with formatter.section("Commands"):
            formatter.write_dl([(name, commands.short_help(name, limit)) for name in names])

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as exc:
            raise _translated(exc) or exc from None

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.Exit, click.Abort, OneLineError):
            raise
        except Exception as exc:
            one_line = _translated(exc)
            if one_line is None:
                raise
            raise one_line from None


@click.group(
    cls=ShelfGroup,
    commands=LazyCommands(COMMANDS),
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(__version__, prog_name="promptshelf")
@format_options
@store_option
@click.pass_context
def cli(ctx: click.Context, target: str | None, fmt: str | None, quiet: bool | None) -> None:
    """Keep, compare and roll back every version of your LLM prompts.

    --store, --json, --nl and --quiet work before the command too, like git -C:

    \b
        promptshelf --store sqlite:///shelf.db --json list
    """
    ctx.obj = Settings(target=target, fmt=fmt, quiet=bool(quiet))


def main() -> None:
    cli(prog_name="promptshelf")
