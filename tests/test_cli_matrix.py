"""Every command of ``promptshelf`` on every backend, through the real entry point.

One table, ``CASES``: a row per command (a group's subcommands as ``"label set"``),
with the arguments it runs with and, when it needs one, what to set up first. A
command that is registered without a row fails ``test_every_command_has_a_matrix_row``:
adding a command means adding its row here.

Each row runs on every column of ``COLUMNS`` (in-memory, files flat and sharded, SQLite,
PostgreSQL, S3 on the SeaweedFS the tests start, HTTP through a real ``promptshelf serve``
subprocess) in three output formats: the table for people
(``--store`` after the command), ``--json`` given before the command with ``--store``
(``promptshelf --store X --json list``), and ``--nl --quiet`` after it. The SQLite column runs
through a subprocess of the installed ``promptshelf`` script; the others through
click's ``main`` in standalone mode, so exit codes are the real ones. One store per
column is shared by all rows (rows that change things work on a prompt of their own; on
S3 a row that reads the whole store gets a seeded prefix of its own), and one server
serves the HTTP column. A command that makes no sense on a backend is not left out: its
cell expects the one-line refusal (exit code per column, the reason beside the row), and
a row that needs data kept between commands is shown skipped on memory, with that reason.
Whatever the command, the output obeys the same rules: stderr holds at most one
``Error: ... [CODE]`` line (and nothing else with ``--quiet``), ``--json`` is one JSON document
of objects, ``--nl`` is one JSON object per line, and no list holds bare pairs.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest
from click.testing import CliRunner

from client.serverproc import ServerProcess
from promptshelf.cli import cli

from conftest import BUNDLED_SEED, with_prefix

PROMPTSHELF = Path(sys.executable).with_name("promptshelf")


@dataclass(frozen=True)
class Ctx:
    """What a row's arguments are built from."""

    store: str  # the column's store target
    column: str
    tmp: Path  # a directory of the row's own
    pid: str  # a prompt id of the row's own (for rows that change things)


Args = Callable[[Ctx], list[str]]


@dataclass(frozen=True)
class Case:
    command: str  # as registered: "list", "label set"
    args: Args  # the arguments after the command name
    setup: Callable[[Ctx], list[list[str]]] = lambda c: []  # commands run first (with --store)
    exit_code: int | dict[str, int] = 0  # per column where it differs
    on_memory: bool = True  # False: needs data a fresh in-memory store does not have
    store_option: bool = True  # False: the command names its stores itself (migrate)
    stdin: str | None = None
    formats: tuple[str, ...] = ("table", "json", "nl")

    def expected(self, column: str) -> int:
        if isinstance(self.exit_code, int):
            return self.exit_code
        return self.exit_code.get(column, self.exit_code.get("*", 0))

    def __str__(self) -> str:
        return self.command


SEEDED = "wf_001_llm_1"  # in the seed store every column imports


def saved(text: str = "Hello {{name}}") -> Callable[[Ctx], list[list[str]]]:
    return lambda c: [["save", c.pid, "--text", text]]


DIFY_APP = Path(__file__).resolve().parent / "fixtures" / "dify" / "exports"


def dify_app(c: Ctx) -> str:
    """A copy of a Dify export of the row's own (apply may write to it)."""
    copy = c.tmp / "app.yml"
    if not copy.exists():
        shutil.copyfile(DIFY_APP / "translation_workflow.yml", copy)
    return str(copy)


#: Commands of the filesystem layout (compress, reshard): every other backend refuses them
#: with a usage error that says so (exit 2), never a traceback.
NOT_FILES = {"memory": 2, "sqlite": 2, "postgres": 2, "s3": 2, "http": 2, "*": 0}
#: API keys belong to the server's own store: through a server (http) `keys` is refused
#: with AUTH-SCOPE (exit 1); run it where the server's store is.
NOT_THROUGH_A_SERVER = {"http": 1, "*": 0}

CASES: list[Case] = [
    Case("init", lambda c: ["--sharding"] if c.column == "files-sharded" else []),
    Case("save", lambda c: [c.pid, "--text", "Summarize {{document}}.", "--overall", "70"]),
    Case("list", lambda c: []),
    Case("log", lambda c: [SEEDED], on_memory=False),
    Case("show", lambda c: [SEEDED, "best"], on_memory=False),
    Case("diff", lambda c: [SEEDED, "1.0.0", "latest"], on_memory=False),
    Case(
        "rollback",
        lambda c: [c.pid, "1.0.0"],
        setup=lambda c: [["save", c.pid, "--text", "one"], ["save", c.pid, "--text", "two"]],
        on_memory=False,
    ),
    Case("delete", lambda c: [c.pid, "1.0.0", "--yes"], setup=saved(), on_memory=False),
    Case("render", lambda c: [c.pid, "latest", "-V", "name=Ada"], setup=saved(), on_memory=False),
    Case("label set", lambda c: [c.pid, "production", "1.0.0"], setup=saved(), on_memory=False),
    Case(
        "label rm",
        lambda c: [c.pid, "production"],
        setup=lambda c: [*saved()(c), ["label", "set", c.pid, "production", "latest"]],
        on_memory=False,
    ),
    Case(
        "label ls",
        lambda c: [c.pid],
        setup=lambda c: [*saved()(c), ["label", "set", c.pid, "staging", "latest"]],
        on_memory=False,
    ),
    Case(
        "label log",
        lambda c: [c.pid],
        setup=lambda c: [*saved()(c), ["label", "set", c.pid, "staging", "latest"]],
        on_memory=False,
    ),
    Case("import", lambda c: [str(BUNDLED_SEED)]),
    Case("export", lambda c: [str(c.tmp / "out.jsonl")]),
    Case("migrate", lambda c: [c.store, str(c.tmp / "copy")], store_option=False),
    Case("stats", lambda c: []),
    Case("rebuild-index", lambda c: []),
    Case("verify", lambda c: []),
    Case("repair", lambda c: []),
    Case("retain", lambda c: ["--keep-last", "1"]),
    Case("compress", lambda c: ["--keep", "1"], exit_code=NOT_FILES),
    Case(
        "restore",
        lambda c: [c.pid, "1.0.0"],
        setup=lambda c: [*saved()(c), ["delete", c.pid, "1.0.0", "--yes"]],
        on_memory=False,
    ),
    Case("trash", lambda c: []),
    Case("dify import", lambda c: [dify_app(c), "--workflow-id", c.pid]),
    Case(
        "dify apply",
        lambda c: [dify_app(c), "--label", "latest", "--dry-run"],
        setup=lambda c: [["dify", "import", dify_app(c), "--workflow-id", c.pid]],
        on_memory=False,
    ),
    Case(
        "keys create", lambda c: [f"ci-{c.pid}", "--scope", "read"], exit_code=NOT_THROUGH_A_SERVER
    ),
    Case("keys list", lambda c: [], exit_code=NOT_THROUGH_A_SERVER),
    Case("keys revoke", lambda c: ["no-such-key"], exit_code=1),  # its id is only printed
    # serve runs until stopped; this row opens the store on every backend and then stops
    # with exit 2 before serving: 192.0.2.1 (TEST-NET) is refused without keys
    # (SERVE-NO-KEYS) and cannot be bound with them (SERVE-BIND)
    # Through a server (http) it stops at once with AUTH-SCOPE (exit 1): the keys a server
    # checks live in its own store, not in another server's.
    Case(
        "serve",
        lambda c: ["--host", "192.0.2.1", "--port", "0"],
        exit_code={"http": 1, "*": 2},
        formats=("table", "json"),  # it prints no results: no --nl (NO_RESULTS)
    ),
    # to the layout the store has: a conversion that moves nothing, then verifies
    Case(
        "reshard",
        lambda c: (
            ["--sharding", "--shard-depth", "2"]
            if c.column == "files-sharded"
            else ["--no-sharding"]
        ),
        exit_code=NOT_FILES,
    ),
    Case(
        "pull",
        lambda c: ["--label", "production", "--prefix", c.pid, "-o", str(c.tmp / "bundle")],
        setup=lambda c: [*saved()(c), ["label", "set", c.pid, "production", "latest"]],
        on_memory=False,
    ),
    Case("backup", lambda c: [str(c.tmp / "backup")]),
    Case("sync", lambda c: [c.store, str(c.tmp / "standby")], store_option=False),
]

#: Rows that read or copy the whole store (on S3 each gets a seeded prefix of its own).
WHOLE_STORE = {
    "list",
    "stats",
    "rebuild-index",
    "verify",
    "repair",
    "retain",
    "trash",
    "export",
    "migrate",
    "backup",
    "sync",
}

#: Commands that print no results (serve logs to stderr while it runs): no --json needed.
NO_RESULTS = {"serve"}
#: Commands still without --nl/--quiet and the global --json.
NOT_YET: set[str] = set()


@dataclass(frozen=True)
class Column:
    name: str
    subprocess: bool = False  # through the installed script instead of click's main
    persistent: bool = True


COLUMNS = [
    Column("memory", persistent=False),
    Column("files"),
    Column("files-sharded"),
    Column("sqlite", subprocess=True),
    Column("postgres"),
    Column("s3"),  # the SeaweedFS the tests start (tests/s3server.py), a prefix of its own
    Column("http"),  # a real `promptshelf serve` subprocess over a store of its own
]
FORMATS = ["table", "json", "nl"]
IN_PROCESS = Column("setup")  # setups run in-process whatever the column


def all_commands() -> dict[str, click.Command]:
    """Every command, with a group's subcommands as ``"group sub"``."""
    found: dict[str, click.Command] = {}
    for name, command in cli.commands.items():
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
        else:
            found[name] = command
    return found


@dataclass
class Shelves:
    """One store per column, seeded once with the bundled seed store."""

    root: Path
    postgres_url: Callable[[], str]
    s3_url: Callable[[], str]
    targets: dict[str, str] = field(default_factory=dict)
    schemas: list[str] = field(default_factory=list)
    servers: list[ServerProcess] = field(default_factory=list)

    def target(self, column: str, case: Case) -> str:
        """The column's shared store; on S3 a row that reads the whole store gets a seeded
        prefix of its own (S3 reads cost a request each: a scan of the shared prefix, which
        grows with every row, took seconds)."""
        if column == "s3" and case.command in WHOLE_STORE:
            return self._create(column)
        if column not in self.targets:
            self.targets[column] = self._create(column)
        return self.targets[column]

    def _create(self, column: str) -> str:
        if column == "memory":
            return "memory://"
        if column == "postgres":
            schema = f"m_{uuid.uuid4().hex[:12]}"
            self.schemas.append(schema)
            sep = "&" if "?" in self.postgres_url() else "?"
            target = f"{self.postgres_url()}{sep}schema={schema}"
        elif column == "sqlite":
            target = f"sqlite:///{self.root / 'shelf.db'}"
        elif column == "s3":
            target = with_prefix(self.s3_url(), f"matrix-{uuid.uuid4().hex[:12]}")
        elif column == "http":
            server = ServerProcess(self.root / "served").start()
            self.servers.append(server)
            target = server.url
        else:
            target = str(self.root / column)
        init = ["init", "--store", target]
        if column == "files-sharded":
            init.append("--sharding")
        for argv in (init, ["import", str(BUNDLED_SEED), "--store", target]):
            result = CliRunner().invoke(cli, argv, catch_exceptions=False)
            assert result.exit_code == 0, result.output
        return target


@pytest.fixture(scope="module")
def shelves(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Iterator[Shelves]:
    made = Shelves(
        tmp_path_factory.mktemp("matrix"),
        lambda: request.getfixturevalue("postgres_url"),
        lambda: request.getfixturevalue("s3_url"),
    )
    yield made
    for server in made.servers:
        server.stop()
    if made.schemas:
        with psycopg.connect(made.postgres_url(), autocommit=True) as conn:
            for schema in made.schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@dataclass(frozen=True)
class Outcome:
    exit_code: int
    stdout: str
    stderr: str


_counter = itertools.count()


def invoke(argv: list[str], column: Column, stdin: str | None = None) -> Outcome:
    """``promptshelf ARGV`` through the column's entry point."""
    if column.subprocess:
        env = {k: v for k, v in os.environ.items() if k != "PROMPTSHELF_URL"}
        done = subprocess.run(
            [str(PROMPTSHELF), *argv],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        return Outcome(done.returncode, done.stdout, done.stderr)
    result = CliRunner().invoke(cli, argv, input=stdin, catch_exceptions=False)
    return Outcome(result.exit_code, result.stdout, result.stderr)


def command_argv(case: Case, ctx: Ctx, fmt: str) -> list[str]:
    """The full command line: the three formats place the global options differently."""
    words = case.command.split()
    args = case.args(ctx)
    store = ["--store", ctx.store] if case.store_option else []
    if fmt == "json":  # global options before the command, like git -C
        return [*store, "--json", *words, *args]
    if fmt == "nl":  # and --quiet: no notes, no warnings
        return [*words, *args, *store, "--nl", "--quiet"]
    return [*words, *store, *args]


def check_stderr(stderr: str, quiet: bool) -> None:
    """At most one ``Error: ... [CODE]`` line; with --quiet nothing else (no notes)."""
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("Error: ")]
    others = [line for line in lines if not line.startswith("Error: ")]
    assert not (quiet and others), f"stderr despite --quiet: {others}"
    assert len(errors) <= 1
    for line in errors:
        assert line.endswith("]") and " [" in line, f"an error without a code: {line}"


def no_pairs(value: Any, where: str = "$") -> None:
    """JSON shapes are objects with named keys: no list holds lists (pairs)."""
    if isinstance(value, dict):
        for key, item in value.items():
            no_pairs(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            assert not isinstance(item, list), f"{where}[{index}] is a bare list: {item!r}"
            no_pairs(item, f"{where}[{index}]")


def check_stdout(stdout: str, fmt: str, ok: bool) -> None:
    if not ok:
        assert stdout == ""
        return
    if fmt == "json":
        document = json.loads(stdout)
        assert isinstance(document, dict | list)
        if isinstance(document, list):
            assert all(isinstance(item, dict) for item in document)
        no_pairs(document)
    elif fmt == "nl":
        for line in stdout.splitlines():
            assert isinstance(json.loads(line), dict), f"not one object per line: {line!r}"
            no_pairs(json.loads(line))
    else:
        assert stdout.strip(), "a command that succeeds says what it did"


def cells() -> Iterator[Any]:
    """Every (row, column, format); through the subprocess only the table format (it is
    slower). A row that needs data kept between commands cannot run in memory (each command
    gets an empty ``memory://``): its memory cells are there, skipped with that reason."""
    for case, column, fmt in itertools.product(CASES, COLUMNS, FORMATS):
        if fmt not in case.formats or (column.subprocess and fmt != "table"):
            continue
        marks = []
        if not (column.persistent or case.on_memory):
            why = f"{case} needs data kept between commands; memory:// keeps nothing"
            marks.append(pytest.mark.skip(reason=why))
        yield pytest.param(case, column, fmt, id=f"{case}-{column.name}-{fmt}", marks=marks)


@pytest.mark.parametrize(("case", "column", "fmt"), list(cells()))
def test_matrix(case: Case, column: Column, fmt: str, shelves: Shelves, tmp_path: Path) -> None:
    pid = f"m{next(_counter)}_{case.command.replace(' ', '_')}"
    ctx = Ctx(shelves.target(column.name, case), column.name, tmp_path, pid)
    for argv in case.setup(ctx):
        depth = 2 if isinstance(cli.commands[argv[0]], click.Group) else 1
        prepared = invoke([*argv[:depth], "--store", ctx.store, *argv[depth:]], IN_PROCESS)
        assert prepared.exit_code == 0, prepared.stderr
    outcome = invoke(command_argv(case, ctx, fmt), column, case.stdin)
    assert outcome.exit_code == case.expected(column.name), outcome.stderr + outcome.stdout
    check_stderr(outcome.stderr, quiet=fmt == "nl")
    check_stdout(outcome.stdout, fmt, ok=outcome.exit_code == 0)


def test_every_command_has_a_matrix_row() -> None:
    rows = {case.command for case in CASES}
    missing = sorted(set(all_commands()) - rows)
    assert not missing, f"commands without a row in tests/test_cli_matrix.py CASES: {missing}"
    assert not rows - set(all_commands()), "rows for commands that do not exist"


def test_every_command_takes_the_output_flags() -> None:
    for name, command in all_commands().items():
        if name in NO_RESULTS | NOT_YET:
            continue
        flags = {opt for param in command.params for opt in getattr(param, "opts", [])}
        assert {"--json", "--nl", "--quiet"} <= flags, f"{name} lacks --json, --nl or --quiet"


def test_matrix_size() -> None:
    """The figure the issue asks for: commands x backends, and what each cell does."""
    pairs = list(itertools.product(CASES, COLUMNS))
    kept = [(c, col) for c, col in pairs if col.persistent or c.on_memory]
    # refused: a command that makes no sense there (its reason beside its row in CASES)
    refused = [(c, col) for c, col in kept if c.expected(col.name) != c.expected("files")]
    print(
        f"\nmatrix: {len(all_commands())} commands x {len(COLUMNS)} backends = {len(pairs)} "
        f"cells: {len(kept) - len(refused)} run, {len(refused)} refused with their reason, "
        f"{len(pairs) - len(kept)} skipped on memory (need data kept between commands); "
        f"{len(list(cells()))} runs with the output formats"
    )
    assert {col.name for col in COLUMNS} >= {"s3", "http", "postgres", "sqlite"}
    assert len(kept) >= len(CASES) * (len(COLUMNS) - 1)
