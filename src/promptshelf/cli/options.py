"""What every command shares: ``--store``, the output flags, and opening the store."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from ..storage import VersionStorage, open_storage
from ..storage.opener import DEFAULT_TARGET, ENV_VAR

F = TypeVar("F", bound=Callable[..., Any])


def store_option(func: F) -> F:
    return click.option(
        "--store",
        "target",
        envvar=ENV_VAR,
        default=DEFAULT_TARGET,
        show_default=True,
        metavar="TARGET",
        help=(
            f"Store path or URL (file://, sqlite://, postgresql://, memory://, http(s)://); "
            f"${ENV_VAR}."
        ),
    )(func)


def output_options(func: F) -> F:
    func = click.option("--nl", "fmt", flag_value="nl", help="Output one JSON object per line.")(
        func
    )
    func = click.option("--json", "fmt", flag_value="json", help="Output JSON.")(func)
    return click.option("--table", "fmt", flag_value="table", default=True, hidden=True)(func)


@contextmanager
def opened(target: str, *, create: bool = False, **options: Any) -> Iterator[VersionStorage]:
    storage = open_storage(target, create=create, **options)
    try:
        yield storage
    finally:
        storage.close()


def with_store(create: bool = False) -> Callable[[F], F]:
    """Open ``--store`` for the command and pass it on as ``storage``."""

    def decorate(func: F) -> F:
        @store_option
        @functools.wraps(func)
        def wrapper(target: str, **kwargs: Any) -> Any:
            with opened(target, create=create) as storage:
                return func(storage=storage, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
