"""What every command shares: ``--store``, the output flags, progress, and opening the store.

The global options (``--store``, ``--json``, ``--nl``, ``--quiet``) are accepted
before the command (``promptshelf --store x.db list``, like ``git -C``) and
after it (``promptshelf list --store x.db``); the one after the command wins.
"""

from __future__ import annotations

import functools
import math
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import click

from ..errors import ConfigurationError
from ..progress import Progress
from ..storage import VersionStorage, open_storage
from ..storage.opener import DEFAULT_TARGET, ENV_VAR

F = TypeVar("F", bound=Callable[..., Any])

#: The most days an age option takes (1000 years): older cut-offs fall before year 1.
MAX_DAYS = 365_250.0


class Number(click.ParamType[float]):
    """A finite number from ``low`` to ``high``: NaN, infinities and numbers too large for a
    date or a timer are refused as a usage error, not a traceback further down."""

    name = "number"

    def __init__(self, low: float, high: float) -> None:
        self.low, self.high = low, high

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> float:
        try:
            number = float(value)
        except (TypeError, ValueError):
            self.fail(f"{value!r} is not a number", param, ctx)
        if math.isnan(number) or not self.low <= number <= self.high:
            self.fail(
                f"{value!r}: must be a number between {self.low:g} and {self.high:g} "
                "(NaN and infinity refused)",
                param,
                ctx,
            )
        return number

    def get_metadata(self, param: click.Parameter, ctx: click.Context) -> dict[str, Any]:
        return {"low": self.low, "high": self.high}


DAYS = Number(0, MAX_DAYS)
SCORE = Number(0, 100)

STORE_HELP = (
    "Store path or URL (file://, sqlite://, postgresql://, memory://, http(s)://); "
    f"default ${ENV_VAR}, "
    f"else {DEFAULT_TARGET}."
)


@dataclass
class Settings:
    """The global options given before the command (``ctx.obj`` of the group)."""

    target: str | None = None
    fmt: str | None = None
    quiet: bool = False


def settings() -> Settings:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_object(Settings) if ctx is not None else None
    return obj if obj is not None else Settings()


def resolve_target(target: str | None) -> str:
    """The command's ``--store``, else the global one, else ``$PROMPTSHELF_URL``, else the
    default store; an empty ``--store ""`` is a usage error, never the current directory."""
    chosen = target if target is not None else settings().target
    if chosen is None:
        chosen = os.environ.get(ENV_VAR) or DEFAULT_TARGET
    if not chosen.strip():
        raise click.BadParameter("needs a path or URL, got an empty string", param_hint="--store")
    return chosen


def store_option(func: F) -> F:
    return click.option("--store", "target", default=None, metavar="TARGET", help=STORE_HELP)(func)


def format_options(func: F) -> F:
    """``--json``, ``--nl`` and ``--quiet`` (also accepted before the command)."""
    func = click.option(
        "--quiet", "-q", is_flag=True, default=None, help="No progress or notes on stderr."
    )(func)
    func = click.option("--nl", "fmt", flag_value="nl", help="Output one JSON object per line.")(
        func
    )
    func = click.option("--json", "fmt", flag_value="json", help="Output JSON.")(func)
    return click.option("--table", "fmt", flag_value="table", hidden=True)(func)


def output_options(func: F) -> F:
    """Give a command ``--json``, ``--nl`` and ``--quiet``; it receives ``fmt`` resolved:
    its own flag, else the global one, else ``"table"``."""

    @format_options
    @functools.wraps(func)
    def wrapper(
        *args: Any, fmt: str | None = None, quiet: bool | None = None, **kwargs: Any
    ) -> Any:
        shared = settings()
        if quiet:
            shared.quiet = True
        return func(*args, fmt=fmt or shared.fmt or "table", **kwargs)

    return wrapper  # type: ignore[return-value]


def is_quiet() -> bool:
    """No progress bars or notes: ``--quiet``, or stderr is not a terminal."""
    return settings().quiet or not sys.stderr.isatty()


@contextmanager
def progress_bar(label: str) -> Iterator[Progress | None]:
    """A ``progress(done, total)`` callback drawing a bar on stderr, counted in versions;
    None (nothing drawn) with ``--quiet`` or when stderr is not a terminal."""
    if is_quiet():
        yield None
        return
    bars: list[Any] = []

    def update(done: int, total: int) -> None:
        if not bars:
            bar = click.progressbar(
                length=max(total, 1), label=label, file=sys.stderr, show_pos=True, show_eta=False
            )
            bars.append(bar.__enter__())
        bar = bars[0]
        bar.length = max(total, 1)
        bar.update(done - bar.pos)

    try:
        yield update
    finally:
        if bars:
            bars[0].__exit__(None, None, None)


def note(message: str) -> None:
    """A warning or note on stderr, unless ``--quiet``."""
    if not settings().quiet:
        click.echo(message, err=True)


@contextmanager
def opened(target: str, *, create: bool = False, **options: Any) -> Iterator[VersionStorage]:
    if target.lower().startswith(("memory:", "mem:")):
        note(f"Warning: {target} keeps nothing: the store is gone when the command ends")
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
        def wrapper(target: str | None, **kwargs: Any) -> Any:
            with opened(resolve_target(target), create=create) as storage:
                return func(storage=storage, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def refuse(message: str, code: str = "PS-CONFIG-001") -> ConfigurationError:
    """A usage error in the command line's words (exit 2)."""
    return ConfigurationError(message, error_code=code)
