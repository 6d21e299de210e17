"""The ``promptshelf`` executable: the command line, started as quickly as it can be.

A command-line call is a new process each time, so what it imports before its
first answer is most of its cost. Two things keep that small: the command group
imports a command's module only when that command runs (``promptshelf.cli``),
and this entry point skips pydantic's plugin discovery, which imports
``importlib.metadata`` and reads the entry points of every installed
distribution at the first model class (a fifth of a bare ``show``'s start-up).
No pydantic plugin runs inside the command line; set ``PYDANTIC_DISABLE_PLUGINS``
(any value pydantic accepts, e.g. a plugin name to skip, or empty to load them
all) to have pydantic discover them as usual.
"""

from __future__ import annotations

import os
import sys
import types

#: pydantic's plugin loader (pydantic >= 2.5); get_plugins() is all pydantic asks of it.
_LOADER = "pydantic.plugin._loader"


def _no_plugins() -> tuple[()]:
    return ()


def skip_pydantic_plugins() -> bool:
    """Stand in for pydantic's plugin loader with one that finds none, when nothing has
    loaded pydantic yet and ``PYDANTIC_DISABLE_PLUGINS`` is unset; True if it did."""
    if "PYDANTIC_DISABLE_PLUGINS" in os.environ or _LOADER in sys.modules:
        return False
    if "pydantic" in sys.modules:
        return False  # someone imported pydantic first: leave its plugins as they are
    loader = types.ModuleType(_LOADER, "promptshelf's command line loads no pydantic plugin")
    loader.get_plugins = _no_plugins  # type: ignore[attr-defined]
    sys.modules[_LOADER] = loader
    return True


def main() -> None:
    skip_pydantic_plugins()
    from .cli import main as run

    run()
