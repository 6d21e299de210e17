"""The command line as people use it: what save inherits, stores it must not write into,
one-line errors, global options, confirmation. Each test names the issue item it pins."""

from __future__ import annotations

import hashlib
import json
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner, Result

from promptshelf import PostgresStorage, Prompt, PromptAnalysis, VersionManager, open_storage
from promptshelf.cli import cli

from conftest import BUNDLED_SEED, fresh_schema
from helpers import make_version

PROMPTSHELF = Path(sys.executable).with_name("promptshelf")


def run(*argv: str, input: str | bytes | None = None) -> Result:
    return CliRunner().invoke(cli, list(argv), input=input, catch_exceptions=False)


def one_error_line(result: Result, code: str, exit_code: int = 1) -> str:
    """The result failed with exactly one ``Error: ... [CODE]`` line and no traceback."""
    assert result.exit_code == exit_code, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert lines[0].endswith(f"[{code}]"), lines[0]
    return lines[0]


def tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` with the SHA-256 of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# -- item 7: save inherits what it was not told ---------------------------------------------


@pytest.fixture
def rich(tmp_path: Path) -> str:
    """A store whose prompt has context, a role, ids and an author the command line never set."""
    store = str(tmp_path / "store")
    with open_storage(store) as storage:
        VersionManager(storage).create_version(
            Prompt(
                id="p",
                workflow_id="wf_9",
                node_id="llm_3",
                node_type="question-classifier",
                text="Classify {{ticket}}.",
                role="user",
                variables=["ticket"],
                context={"label": "Classifier", "model": "gpt-4o"},
            ),
            PromptAnalysis(prompt_id="p", overall_score=81, clarity_score=77, efficiency_score=64),
            metadata={"author": "ana", "run": 7},
        )
    return store


def test_save_inherits_everything_it_was_not_given(rich: str) -> None:
    result = run("save", "p", "--text", "Classify {{ticket}} by urgency.", "--store", rich)
    assert result.stdout == "Saved p 1.0.1\n"
    with open_storage(rich) as storage:
        new = storage.get_version("p", "1.0.1")
    assert new is not None
    prompt = new.prompt
    assert (prompt.workflow_id, prompt.node_id, prompt.node_type, prompt.role) == (
        "wf_9",
        "llm_3",
        "question-classifier",
        "user",
    )
    assert prompt.context == {"label": "Classifier", "model": "gpt-4o"}
    assert prompt.variables == ["ticket"]
    assert new.metadata["author"] == "ana"
    assert "run" not in new.metadata  # describes one version, not the prompt
    # a new text is not silently given the old text's scores
    assert (new.analysis.overall_score, new.analysis.clarity_score) == (0.0, 0.0)


def test_save_sets_what_it_is_given_and_keeps_an_unchanged_texts_analysis(rich: str) -> None:
    result = run(
        "save",
        "p",
        "--text",
        "Classify {{ticket}} and {{customer}}.",
        "--role",
        "system",
        "--context",
        "model=gpt-5",
        "--author",
        "bo",
        "--overall",
        "90",
        "--store",
        rich,
    )
    assert result.exit_code == 0, result.output
    forced = run("save", "p", "--text", "Classify {{ticket}} and {{customer}}.", "--force-new")
    assert forced.exit_code == 0
    again = run(
        "save",
        "p",
        "--text",
        "Classify {{ticket}} and {{customer}}.",
        "--force-new",
        "--store",
        rich,
    )
    assert again.stdout == "Saved p 1.0.2\n"
    with open_storage(rich) as storage:
        changed, same = storage.get_version("p", "1.0.1"), storage.get_version("p", "1.0.2")
    assert changed is not None and same is not None
    assert changed.prompt.role == "system" and changed.metadata["author"] == "bo"
    assert changed.prompt.context == {"label": "Classifier", "model": "gpt-5"}
    assert changed.prompt.variables == ["ticket", "customer"]  # the text's placeholders
    assert changed.analysis.overall_score == 90.0
    assert same.analysis.overall_score == 90.0  # same text: same analysis
    assert same.prompt.role == "system" and same.metadata["author"] == "bo"


@pytest.mark.parametrize("text", ["One line", "Ends with a newline\n", "Two\n\n", "  spaced  "])
def test_show_text_piped_into_save_is_a_no_op(tmp_path: Path, text: str) -> None:
    store = str(tmp_path / "store")
    assert run("save", "p", "--text", text, "--store", store).exit_code == 0
    for _ in range(3):
        shown = run("show", "p", "--text", "--store", store).stdout
        again = run("save", "p", "-", "--store", store, input=shown)
        assert again.stdout.startswith("Unchanged: p is already at 1.0.0"), again.output
    with open_storage(store) as storage:
        assert storage.list_version_numbers("p") == ["1.0.0"]


def test_the_round_trip_through_the_installed_script_and_a_pipe(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert run("save", "p", "--text", "Hello {{name}}", "--store", store).exit_code == 0
    exe = f"'{PROMPTSHELF}'"
    script = f"{exe} show p --text --store '{store}' | {exe} save p - --store '{store}'"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True)
    assert done.stdout.startswith("Unchanged: p is already at 1.0.0"), done.stderr


# -- item 6 on the command line: --parent names an existing version ------------------------


def test_parent_must_name_an_existing_version(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run("save", "p", "--text", "one", "--store", store)
    missing = run("save", "p", "--text", "two", "--parent", "7.0.0", "--store", store)
    one_error_line(missing, "VERSION-NOT-FOUND")
    assert "a parent must be an existing version" in missing.stderr
    assert run("save", "p", "--text", "two", "--parent", "latest", "--store", store).exit_code == 0
    with open_storage(store) as storage:
        assert storage.list_version_numbers("p") == ["1.0.0", "1.0.1"]


def test_label_set_where_it_points_says_so(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run("save", "p", "--text", "one", "--store", store)
    run("label", "set", "p", "production", "1.0.0", "--store", store)
    again = run("label", "set", "p", "production", "latest", "--store", store)
    assert again.stdout == "p production already points at 1.0.0\n"
    history = json.loads(run("label", "log", "p", "--store", store, "--json").stdout)
    assert [event["action"] for event in history] == ["set"]


# -- item 9: reading never writes into what is not a store ----------------------------------


READ_ONLY = [["list"], ["stats"], ["verify"], ["log", "p"], ["show", "p"], ["trash"]]


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: a[0])
def test_a_foreign_sqlite_file_is_refused_and_left_as_it_was(
    tmp_path: Path, argv: list[str]
) -> None:
    app = tmp_path / "app.db"
    conn = sqlite3.connect(app)
    conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.commit()
    conn.close()
    before = tree(tmp_path)
    result = run(*argv, "--store", str(app))
    assert "not a promptshelf store" in one_error_line(result, "STORE-NOT-FOUND")
    assert tree(tmp_path) == before  # no tables, no journal mode change, no -wal/-shm files
    conn = sqlite3.connect(app)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")]
    conn.close()
    assert tables == ["users"]


def test_a_foreign_sqlite_file_becomes_a_store_only_when_asked(tmp_path: Path) -> None:
    app = tmp_path / "app.db"
    sqlite3.connect(app).close()  # an empty database file
    assert run("save", "p", "--text", "one", "--store", str(app)).exit_code == 0  # creates
    assert json.loads(run("list", "--store", str(app), "--json").stdout)[0]["prompt_id"] == "p"


def test_reading_a_promptshelf_sqlite_store_does_not_change_it(tmp_path: Path) -> None:
    db = tmp_path / "shelf.db"
    assert run("import", str(BUNDLED_SEED), "--store", str(db)).exit_code == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    for argv in READ_ONLY:
        run(*argv, "--store", str(db))
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("argv", READ_ONLY, ids=lambda a: a[0])
def test_a_directory_that_is_not_a_store_is_refused(tmp_path: Path, argv: list[str]) -> None:
    home = tmp_path / "home"
    (home / "projects").mkdir(parents=True)
    (home / "notes.txt").write_text("mine")
    (home / "projects" / "README").write_text("also mine")
    before = tree(home)
    result = run(*argv, "--store", str(home))
    assert "not a promptshelf store" in one_error_line(result, "STORE-NOT-FOUND")
    assert tree(home) == before and sorted(p.name for p in home.iterdir()) == [
        "notes.txt",
        "projects",
    ]


def test_a_postgres_schema_without_a_store_is_refused_and_left_empty(
    postgres_url: str, request: pytest.FixtureRequest
) -> None:
    schema = fresh_schema(request)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".orders (id int)')
    target = (
        f"{postgres_url}&schema={schema}"
        if "?" in postgres_url
        else f"{postgres_url}?schema={schema}"
    )
    for argv in READ_ONLY:
        one_error_line(run(*argv, "--store", target), "STORE-NOT-FOUND")
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        tables = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        ).fetchall()
    assert tables == [("orders",)]
    assert run("init", "--store", target).exit_code == 0  # init creates it
    assert run("list", "--store", target).exit_code == 0


def test_reading_a_postgres_store_writes_nothing(
    postgres_url: str, request: pytest.FixtureRequest
) -> None:
    schema = fresh_schema(request)
    PostgresStorage(postgres_url, schema=schema).close()  # created at the current schema

    def meta_row_versions() -> list[tuple[str, str]]:
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            return conn.execute(
                f'SELECT xmin::text, value FROM "{schema}".promptshelf_meta'
            ).fetchall()

    before = meta_row_versions()
    for _ in range(3):
        PostgresStorage(postgres_url, schema=schema, create=False).close()
    assert meta_row_versions() == before  # no UPSERT of the schema version on every open


# -- item 4: crashes become one coded line ---------------------------------------------------


def test_a_store_that_is_a_file_or_under_one(tmp_path: Path) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    one_error_line(run("init", "--store", str(a_file)), "FS-DIR-001", 2)
    one_error_line(run("save", "p", "--text", "x", "--store", f"{a_file}/sub"), "FS-DIR-001", 2)
    one_error_line(run("list", "--store", f"{a_file}/sub"), "FS-DIR-001", 2)
    assert a_file.read_text() == "x"


@pytest.mark.parametrize("how", ["file", "stdin"])
def test_non_utf8_text_is_refused_and_nothing_is_created(tmp_path: Path, how: str) -> None:
    store = tmp_path / "store"
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("Résumé {{x}}".encode("latin-1"))
    if how == "file":
        result = run("save", "p", "--file", str(bad), "--store", str(store))
    else:
        result = run("save", "p", "-", "--store", str(store), input=bad.read_bytes())
    line = one_error_line(result, "PS-INPUT-001", 2)
    assert "not UTF-8" in line and "offset 1" in line
    assert not store.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["list", "--bogus"],
        ["bogus"],
        ["show"],
        ["save", "p", "--text", "x", "--overall", "101"],
        ["label", "set", "p"],
        ["--json", "nothing"],
    ],
    ids=lambda a: " ".join(a),
)
def test_usage_errors_are_one_line(tmp_path: Path, argv: list[str]) -> None:
    result = run(*argv)
    line = one_error_line(result, "PS-USAGE-001", 2)
    assert "--help" in line  # where to look next, on the same line
    assert "Usage:" not in result.output


def test_yaml_errors_are_one_line(tmp_path: Path) -> None:
    config = tmp_path / "shelf.yaml"
    config.write_text("optimizer:\n  storage: [unclosed\n   backend: x\n")
    line = one_error_line(run("list", "--store", str(config)), "PS-CONFIG-001", 2)
    assert "is not valid YAML" in line


def test_an_empty_store_is_an_error_not_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    one_error_line(run("list", "--store", ""), "PS-USAGE-001", 2)
    one_error_line(run("--store", " ", "save", "p", "--text", "x"), "PS-USAGE-001", 2)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ValueError, match="empty store target"):
        open_storage("")


def test_memory_says_it_keeps_nothing() -> None:
    result = run("save", "p", "--text", "x", "--store", "memory://")
    assert result.exit_code == 0 and result.stdout == "Saved p 1.0.0\n"
    assert result.stderr.startswith("Warning: memory:// keeps nothing")
    quiet = run("--quiet", "save", "p", "--text", "x", "--store", "memory://")
    assert quiet.stderr == ""


def test_an_unreachable_postgres_is_one_line_saying_connection_refused() -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = subprocess.run(
        [str(PROMPTSHELF), "list", "--store", f"postgresql://nobody@127.0.0.1:{port}/none"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr  # no repeated driver warnings
    assert "connection refused" in lines[0] and lines[0].endswith("[DB-CONN-001]")


def test_messages_speak_the_command_lines_language(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run("save", "p", "--text", "x", "--store", store)
    run("label", "set", "p", "production", "1.0.0", "--store", store)
    line = one_error_line(run("delete", "p", "1.0.0", "--yes", "--store", store), "LABEL-IN-USE")
    assert "--force" in line and "force=True" not in line


# -- item 5: global options, confirmation ----------------------------------------------------


def test_global_options_before_the_command(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'x.db'}"
    assert run("--store", db, "save", "p", "--text", "one").exit_code == 0
    assert json.loads(run("--store", db, "--json", "list").stdout)[0]["prompt_id"] == "p"
    lines = run("--store", db, "--nl", "label", "ls", "p").stdout.splitlines()
    assert lines == []
    other = str(tmp_path / "other")
    after = run("--store", db, "list", "--store", other, "--json")  # the later one wins
    assert after.exit_code == 1 and "no store at" in after.stderr


def test_trash_empty_asks_first(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run("save", "p", "--text", "x", "--store", store)
    run("delete", "p", "1.0.0", "--yes", "--store", store)
    refused = run("trash", "--empty", "--store", store, input="n\n")
    assert refused.exit_code == 1
    assert "Delete the 1 version(s) in the trash for good? [y/N]" in refused.stderr
    assert len(json.loads(run("trash", "--json", "--store", store).stdout)) == 1
    done = run("trash", "--empty", "--yes", "--store", store, "--json")
    assert json.loads(done.stdout) == {"removed": 1}


# -- item 5: progress on a terminal, counted in versions ------------------------------------


def on_a_terminal(*argv: str) -> tuple[int, str, str]:
    """Run the installed script with stderr on a pseudo-terminal: (exit, stdout, stderr)."""
    import os
    import pty

    main, secondary = pty.openpty()
    child = subprocess.Popen(
        [str(PROMPTSHELF), *argv], stdout=subprocess.PIPE, stderr=secondary, text=True
    )
    os.close(secondary)
    chunks = []
    while True:
        try:
            chunk = os.read(main, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(main)
    out, _ = child.communicate()
    return child.returncode, out, b"".join(chunks).decode()


@pytest.mark.parametrize(
    ("argv", "label"),
    [
        (["verify"], "verifying"),
        (["repair"], "repairing"),
        (["retain", "--keep-last", "1"], "retaining"),
        (["compress", "--keep", "1"], "compressing"),
        (["rebuild-index"], "indexing"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else v,
)
def test_long_operations_show_progress_on_a_terminal_only(
    tmp_path: Path, argv: list[str], label: str
) -> None:
    store = str(tmp_path / "store")
    assert run("import", str(BUNDLED_SEED), "--store", store).exit_code == 0
    code, out, err = on_a_terminal(*argv, "--store", store)
    assert code == 0 and out.strip()
    assert label in err and "6/6" in err  # counted in versions: the seed store holds 6
    _, _, quiet = on_a_terminal(*argv, "--store", store, "--quiet")
    assert quiet == ""
    piped = subprocess.run(
        [str(PROMPTSHELF), *argv, "--store", store], capture_output=True, text=True
    )
    assert piped.stderr == ""  # not a terminal: no bar


@pytest.mark.parametrize("command", ["import", "export", "export-jsonl", "migrate"])
def test_transfers_show_progress_in_versions_on_a_terminal_only(
    tmp_path: Path, command: str
) -> None:
    """import, export and migrate count versions (the seed store holds 6 in 3 prompts)."""
    store = str(tmp_path / "store")
    assert run("import", str(BUNDLED_SEED), "--store", store).exit_code == 0

    def argv(n: int) -> list[str]:
        return {
            "import": ["import", str(BUNDLED_SEED), "--store", store],
            "export": ["export", str(tmp_path / f"out{n}"), "--store", store],
            "export-jsonl": ["export", str(tmp_path / f"out{n}.jsonl"), "--store", store],
            "migrate": ["migrate", store, str(tmp_path / f"copy{n}")],
        }[command]

    code, out, err = on_a_terminal(*argv(1))
    assert code == 0 and out.strip()
    assert "6/6" in err and "/3" not in err  # versions, not prompts
    _, _, quiet = on_a_terminal(*argv(2), "--quiet")
    assert quiet == ""
    piped = subprocess.run([str(PROMPTSHELF), *argv(3)], capture_output=True, text=True)
    assert piped.returncode == 0 and piped.stderr == ""  # not a terminal: no bar


def test_the_library_reports_progress_in_versions(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    with open_storage(str(tmp_path / "store")) as storage:
        storage.save_versions([make_version("p", f"1.{n}.0") for n in range(3)])
        storage.verify(progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (3, 3) and [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_a_read_only_sqlite_store_is_read_without_writing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file is read-only (simulated: the tests run as root, whom chmod does not stop):
    reading opens it with mode=ro, so nothing can be written."""
    db = tmp_path / "shelf.db"
    assert run("import", str(BUNDLED_SEED), "--store", str(db)).exit_code == 0
    before = tree(tmp_path)["shelf.db"]
    monkeypatch.setattr("promptshelf.storage.sqlite.os.access", lambda path, mode: False)
    listing = run("list", "--store", str(db), "--json")
    assert listing.exit_code == 0 and len(json.loads(listing.stdout)) == 3
    for argv in READ_ONLY:
        assert run(*argv, "--store", str(db)).exit_code in (0, 1)  # 1: no prompt "p"
    assert tree(tmp_path)["shelf.db"] == before  # (a WAL reader may add its -shm file)
