"""The command line loads a command's module only when that command runs.

``promptshelf.cli.COMMANDS`` names every command's module and short help, so
``--help`` lists them all without importing any; these tests keep that table
true to the real commands, and check in fresh processes what a call imports.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

import promptshelf.cli as cli_package
from promptshelf.cli import COMMANDS, Entry, LazyCommands, cli
from promptshelf.console import skip_pydantic_plugins

from helpers import make_version


def real_commands() -> dict[str, click.Command]:
    """Every top-level command defined in the command modules (a group's subcommands
    are left out), found by walking the modules, not through the table."""
    found: list[click.Command] = []
    for info in pkgutil.iter_modules(cli_package.__path__):
        module = importlib.import_module(f"promptshelf.cli.{info.name}")
        found.extend(v for v in vars(module).values() if isinstance(v, click.Command))
    inner = {id(sub) for c in found if isinstance(c, click.Group) for sub in c.commands.values()}
    return {c.name or "": c for c in found if id(c) not in inner and c is not cli}


def test_the_table_names_every_command_with_its_module_and_short_help() -> None:
    real = real_commands()
    assert set(COMMANDS) == set(real)
    for name, entry in COMMANDS.items():
        module = importlib.import_module(f"promptshelf.cli.{entry.module}")
        command = getattr(module, entry.attribute)
        assert command is real[name], name
        assert entry.explicit == (command.short_help is not None), name
        unloaded = LazyCommands({name: entry})
        for limit in (30, 45, 60, 80, 10_000):
            expected = command.get_short_help_str(limit)
            assert unloaded.short_help(name, limit) == expected, (name, limit)
        assert not unloaded.loaded


def test_help_lists_every_command_as_the_commands_themselves_would() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=100)
    assert result.exit_code == 0
    listed = result.stdout.split("Commands:\n", 1)[1]
    eager = click.Group("promptshelf", commands=list(real_commands().values()))
    formatter = click.HelpFormatter(width=100)
    eager.format_commands(click.Context(eager), formatter)
    assert listed == formatter.getvalue().split("Commands:\n", 1)[1]
    assert len(listed.strip().splitlines()) >= len(COMMANDS)


def test_commands_mapping_loads_on_access_and_accepts_additions() -> None:
    commands = LazyCommands({"show": Entry("versions", "show", "x")})
    assert "show" in commands and "nope" not in commands
    assert list(commands) == ["show"] and not commands.loaded
    assert commands["show"].name == "show" and "show" in commands.loaded
    extra = click.Command("extra", help="An extra command added at run time.")
    commands["extra"] = extra
    assert list(commands) == ["show", "extra"] and len(commands) == 2
    assert commands.get("nope") is None
    assert commands.short_help("extra", 80) == "An extra command added at run time."
    del commands["extra"]
    assert len(commands) == 1


def test_the_pydantic_plugin_loader_is_left_alone_once_pydantic_is_loaded() -> None:
    assert "pydantic" in sys.modules  # the test process imported it long ago
    assert skip_pydantic_plugins() is False


PROBE = """
import json, sys
from promptshelf.console import main
sys.argv = ["promptshelf", *sys.argv[1:]]
try:
    main()
except SystemExit:
    pass
loaded = sorted(m for m in sys.modules if m.startswith(("promptshelf", "importlib.metadata")))
print(json.dumps(loaded), file=sys.stderr)
"""


def loaded_by(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The promptshelf modules (and importlib.metadata) a fresh command-line process loads."""
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return set(json.loads(done.stderr.strip().splitlines()[-1]))


def test_help_imports_no_command_module() -> None:
    loaded = loaded_by("--help")
    commands = {m for m in loaded if m.startswith("promptshelf.cli.")}
    assert commands == {"promptshelf.cli.options"}


def test_show_imports_only_what_it_uses(tmp_path: Path) -> None:
    store = tmp_path / "store"
    from promptshelf import FileSystemStorage

    FileSystemStorage(store).save_version(make_version("p", "1.0.0"))
    loaded = loaded_by("show", "p", "latest", "--text", "--store", str(store))
    for absent in (
        "promptshelf.cli.dify",
        "promptshelf.cli.replication",
        "promptshelf.cli.serve",
        "promptshelf.cli.transfer",
        "promptshelf.cli.maintenance",
        "promptshelf.dify",
        "promptshelf.server",
        "promptshelf.backup",
        "promptshelf.diff",
        "promptshelf.storage.sqlite",
        "promptshelf.storage.postgres",
        "importlib.metadata",  # pydantic's plugin discovery is skipped
    ):
        assert absent not in loaded, absent
    assert "promptshelf.cli.versions" in loaded


@pytest.mark.parametrize("setting", ["", "__all__"])
def test_an_explicit_pydantic_plugin_setting_is_honoured(tmp_path: Path, setting: str) -> None:
    loaded = loaded_by("--help", env={"PYDANTIC_DISABLE_PLUGINS": setting})
    # with the variable set, pydantic's own loader runs (and imports importlib.metadata)
    assert "importlib.metadata" in loaded
