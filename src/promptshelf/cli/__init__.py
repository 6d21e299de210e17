"""The ``promptshelf`` command: work with any store without writing Python.

Every command takes ``--store`` (anything ``open_storage`` accepts; default
``$PROMPTSHELF_URL``, else ``./promptshelf-data``). Library errors become one
line, ``Error: ...``, on stderr, here and only here: exit 1 for not found,
conflicts and failed checks, exit 2 for bad input on the command line.
"""

from __future__ import annotations

from typing import Any

import click
import pydantic

from .. import __version__
from ..errors import ConfigurationError, OptimizerError, ValidationError
from . import dify, keys, labels, maintenance, pull, replication, serve, transfer, versions


class ShelfGroup(click.Group):
    """Turns library errors into ``Error: ...`` and the documented exit codes, once, here."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except OptimizerError as exc:
            click.echo(f"Error: {exc.message} [{exc.error_code}]", err=True)
            usage = isinstance(exc, ValidationError | ConfigurationError)
            ctx.exit(2 if usage else 1)
        except pydantic.ValidationError as exc:  # a model built from command-line values
            first = exc.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            click.echo(f"Error: {where}: {first['msg']} [PS-VALID-001]", err=True)
            ctx.exit(2)


@click.group(cls=ShelfGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="promptshelf")
def cli() -> None:
    """Keep, compare and roll back every version of your LLM prompts."""


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
