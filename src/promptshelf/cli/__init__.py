"""The ``promptshelf`` command: work with any store without writing Python.

Every command takes ``--store`` (anything ``open_storage`` accepts; default
``$PROMPTSHELF_URL``, else ``./promptshelf-data``), before or after the
command name. Every error becomes one line, ``Error: ... [CODE]``, on stderr,
here and only here: exit 1 for not found, conflicts, failed checks and
failed I/O, exit 2 for bad input on the command line (usage, values, configuration).
"""

from __future__ import annotations

from typing import Any

import click
import pydantic

from .. import __version__
from ..errors import ConfigurationError, OptimizerError, ValidationError
from . import dify, keys, labels, maintenance, pull, replication, serve, transfer, versions
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
    if isinstance(exc, pydantic.ValidationError):  # a model built from command-line values
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return OneLineError(f"{where}: {first['msg']}", "PS-VALID-001", 2)
    if isinstance(exc, OSError) and not isinstance(exc, BrokenPipeError):
        where = f": {exc.filename}" if exc.filename else ""
        return OneLineError(f"{exc.strerror or exc}{where}", IO_CODE, 1)
    return None


class ShelfGroup(click.Group):
    """Turns every error into one line and the documented exit codes, once, here."""

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


@click.group(cls=ShelfGroup, context_settings={"help_option_names": ["-h", "--help"]})
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


for _command in (
    versions.init,
    versions.save,
    versions.list_,
    versions.log,
    versions.show,
    versions.diff,
    versions.rollback,
    versions.delete,
    versions.render_,
    labels.label,
    transfer.import_,
    transfer.export,
    transfer.migrate_,
    replication.backup,
    replication.sync_,
    maintenance.stats,
    maintenance.rebuild_index,
    maintenance.verify,
    maintenance.repair,
    maintenance.retain,
    maintenance.compress,
    maintenance.restore,
    maintenance.trash,
    dify.dify,
    serve.serve,
    keys.keys,
    maintenance.reshard,
    pull.pull,
):
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="promptshelf")
