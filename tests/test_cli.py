"""The promptshelf command, driven for real: exact output, exit codes, nothing written on error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from promptshelf import FileSystemStorage, open_storage
from promptshelf.cli import cli

from conftest import BUNDLED_SEED
from helpers import make_version

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture
def store(tmp_path: Path) -> str:
    return str(tmp_path / "store")


@pytest.fixture
def seeded(store: str) -> str:
    assert run(store, "import", str(BUNDLED_SEED)).exit_code == 0
    return store


def run(store: str, *args: str, input: str | None = None) -> Result:
    """``promptshelf COMMAND --store STORE ARGS...`` (``--store`` belongs to each command)."""
    depth = 2 if isinstance(cli.commands[args[0]], click.Group) else 1
    argv = [*args[:depth], "--store", store, *args[depth:]]
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


def files_under(root: Path) -> set[str]:
    return (
        {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
        if root.exists()
        else set()
    )


@pytest.mark.parametrize("sharded", [False, True])
def test_init_recommends_sharding_for_a_large_flat_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, sharded: bool
) -> None:
    import promptshelf.cli.versions as versions_cli

    monkeypatch.setattr(versions_cli, "SHARDING_ADVISED_PROMPTS", 3)  # 10,000 in real use
    store = str(tmp_path / "store")
    shelf = FileSystemStorage(store, enable_sharding=sharded)
    for i in range(2):
        shelf.save_version(make_version(f"p{i}", "1.0.0"))
    below = run(store, "init")
    assert below.exit_code == 0 and below.stderr == ""
    shelf.save_version(make_version("p2", "1.0.0"))
    at = run(store, "init")
    assert at.exit_code == 0 and at.stdout == f"Store at {store} already holds 3 prompt(s)\n"
    if sharded:
        assert at.stderr == ""
    else:
        assert at.stderr.startswith("Note: 3 prompts in the flat layout")
        assert "promptshelf reshard --sharding" in at.stderr and len(at.stderr.splitlines()) == 1
        quiet = run(store, "init", "--quiet")
        assert quiet.exit_code == 0 and quiet.stderr == ""
        as_json = run(store, "init", "--json")
        assert json.loads(as_json.stdout)["prompts"] == 3


def test_init_import_list(store: str) -> None:
    result = run(store, "init")
    assert result.exit_code == 0
    assert result.stdout == f"Initialized an empty filesystem store at {store}\n"
    result = run(store, "import", str(BUNDLED_SEED))
    assert result.stdout == "imported 6 version(s) of 3 prompt(s); 0 already present\n"
    again = run(store, "import", str(BUNDLED_SEED))
    assert again.stdout == "imported 0 version(s) of 3 prompt(s); 6 already present\n"
    listing = run(store, "list")
    assert listing.stdout == (
        "PROMPT_ID          LATEST  VERSIONS  UPDATED\n"
        "wf_001_llm_1       1.2.0   3         2026-11-24 09:28:05Z\n"
        "wf_001_llm_2       1.1.0   2         2026-11-24 09:28:05Z\n"
        "wf_002_classifier  1.0.0   1         2026-11-24 09:28:05Z\n"
    )
    rows = json.loads(run(store, "list", "--json").stdout)
    assert rows[0] == {
        "prompt_id": "wf_001_llm_1",
        "latest": "1.2.0",
        "versions": 3,
        "updated": "2026-11-24T09:28:05.561806+00:00",  # naive in the file: UTC
    }
    lines = run(store, "list", "--nl").stdout.splitlines()
    assert [json.loads(line)["prompt_id"] for line in lines] == [
        "wf_001_llm_1",
        "wf_001_llm_2",
        "wf_002_classifier",
    ]


def test_log(seeded: str) -> None:
    assert run(seeded, "log", "wf_001_llm_1").stdout == (
        "VERSION  SCORE  STRATEGY         PARENT  AUTHOR     CREATED\n"
        "1.0.0    60     -                -       baseline   2026-11-24 09:28:05Z\n"
        "1.1.0    67.5   clarity_focus    1.0.0   optimizer  2026-11-24 09:28:05Z\n"
        "1.2.0    75     structure_focus  1.1.0   optimizer  2026-11-24 09:28:05Z\n"
    )
    rows = json.loads(run(seeded, "log", "wf_001_llm_1", "--json").stdout)
    assert [r["version"] for r in rows] == ["1.0.0", "1.1.0", "1.2.0"]


def test_show(seeded: str) -> None:
    text = run(seeded, "show", "wf_001_llm_2", "1.1.0", "--text").stdout
    assert text == "Traduis {{text}} en français — sois concis. 日本語も可。\n"
    full = run(seeded, "show", "wf_001_llm_1").stdout
    assert full.startswith("prompt     wf_001_llm_1\nversion    1.2.0\nparent     1.1.0\n")
    assert "scores     overall 75  clarity 75  efficiency 72\n" in full
    assert full.endswith(
        "\n\nYou are a precise assistant.\n\n## Task\nSummarize {{document}} "
        "in 3 bullet points.\n## Format\nMarkdown.\n"
    )
    best = json.loads(run(seeded, "show", "wf_001_llm_1", "best", "--json").stdout)
    assert best["version"] == "1.2.0"


def test_diff(seeded: str) -> None:
    result = run(seeded, "diff", "wf_001_llm_1", "1.0.0", "1.1.0")
    assert result.stdout == (
        "wf_001_llm_1 1.0.0 -> 1.1.0: overall +7.5, clarity +10, efficiency +1, similarity 0.66\n"
        "--- 1.0.0\n+++ 1.1.0\n@@ -1 +1,4 @@\n"
        "-You are a helpful assistant. Summarize: {{document}}\n"
        "+You are a precise assistant.\n+\n+## Task\n"
        "+Summarize {{document}} in 3-5 bullet points.\n"
    )
    assert "\x1b[" not in result.stdout  # no colour when not a terminal
    coloured = CliRunner().invoke(
        cli, ["diff", "--store", seeded, "wf_001_llm_1", "1.0.0", "1.1.0"], color=True
    )
    assert "\x1b[32m+You are a precise assistant.\x1b[0m" in coloured.stdout
    same = run(seeded, "diff", "wf_001_llm_1", "1.0.0", "1.0.0")
    assert same.stdout.endswith("(the texts are identical)\n")
    data = json.loads(run(seeded, "diff", "wf_001_llm_1", "1.0.0", "latest", "--json").stdout)
    assert data["improvement"] == 15.0 and data["version2"] == "1.2.0"


def test_save_from_text_file_and_stdin(store: str, tmp_path: Path) -> None:
    result = run(
        store,
        "save",
        "p1",
        "--text",
        "Hello {{name}}",
        "--overall",
        "70",
        "--metadata",
        "run=7",
        "--metadata",
        "note=plain text",
        "--author",
        "me",
    )
    assert (result.exit_code, result.stdout) == (0, "Saved p1 1.0.0\n")
    source = tmp_path / "prompt.txt"
    source.write_text("Hello {{name}}, again", encoding="utf-8")
    assert (
        run(
            store,
            "save",
            "p1",
            "--file",
            str(source),
            "--strategy",
            "clarity_focus",
            "--overall",
            "80",
        ).stdout
        == "Saved p1 1.1.0\n"
    )
    assert run(store, "save", "p1", "-", input="From stdin").stdout == "Saved p1 1.1.1\n"
    storage = open_storage(store)
    first = storage.get_version("p1", "1.0.0")
    assert first is not None
    assert first.prompt.variables == ["name"]
    assert first.metadata == {"author": "me", "strategy": None, "run": 7, "note": "plain text"}
    second = storage.get_version("p1", "1.1.0")
    assert second is not None and second.parent_version == "1.0.0"
    assert second.optimization_result is not None
    assert second.optimization_result.improvement_score == 10.0


def test_rollback_and_delete(seeded: str) -> None:
    result = run(seeded, "rollback", "wf_001_llm_1", "1.0.0")
    assert result.stdout == "Rolled back wf_001_llm_1 to 1.0.0: new version 1.2.1\n"
    refused = run(seeded, "delete", "wf_001_llm_1", "1.2.1", input="n\n")
    assert refused.exit_code == 1
    assert open_storage(seeded).get_version("wf_001_llm_1", "1.2.1") is not None
    deleted = run(seeded, "delete", "wf_001_llm_1", "1.2.1", "--yes")
    assert (deleted.exit_code, deleted.stdout) == (0, "Deleted wf_001_llm_1 1.2.1\n")
    asked = run(seeded, "delete", "wf_001_llm_1", "1.1.0", input="y\n")
    assert asked.exit_code == 0 and "Delete wf_001_llm_1 1.1.0? [y/N]" in asked.stderr


def test_stats_rebuild_verify(seeded: str) -> None:
    stats = json.loads(run(seeded, "stats", "--json").stdout)
    assert (stats["total_prompts"], stats["total_versions"]) == (3, 6)
    assert "total_versions    6\n" in run(seeded, "stats").stdout
    rebuilt = json.loads(run(seeded, "rebuild-index", "--json").stdout)
    assert rebuilt == {"total_prompts": 3, "total_versions": 6, "temp_files_removed": 0}
    ok = run(seeded, "verify")
    assert (ok.exit_code, ok.stdout) == (0, "OK: 3 prompt(s), 6 version(s) checked\n")
    (Path(seeded) / "wf_001_llm_2" / "1.1.0.json").write_text("{broken")
    bad = run(seeded, "verify")
    assert bad.exit_code == 1
    assert bad.stdout.splitlines()[0].split() == ["CODE", "LOCATION", "MESSAGE"]
    assert "FS-LOAD-001" in bad.stdout and "wf_001_llm_2/1.1.0.json" in bad.stdout
    report = json.loads(run(seeded, "verify", "--json").stdout)
    assert report["ok"] is False and report["problems"][0]["code"] == "FS-LOAD-001"


def test_export_and_migrate(seeded: str, tmp_path: Path) -> None:
    jsonl = tmp_path / "all.jsonl"
    assert run(seeded, "export", str(jsonl)).stdout == f"exported 6 version(s) to {jsonl}\n"
    assert len(jsonl.read_text().splitlines()) == 6
    assert run(seeded, "export", str(jsonl)).exit_code == 1  # never overwrites
    copy = tmp_path / "copy"
    assert run(seeded, "export", str(copy)).stdout.startswith("exported 6 version(s)")
    assert files_under(copy) >= {"wf_001_llm_1/1.0.0.json", "wf_002_classifier/1.0.0.json"}
    db = f"sqlite:///{tmp_path}/shelf.db"
    migrated = CliRunner().invoke(cli, ["migrate", seeded, db])
    assert migrated.stdout == "copied 6 version(s) of 3 prompt(s); 0 already present\n"
    reimport = tmp_path / "again"
    assert run(str(reimport), "import", str(jsonl)).stdout.startswith("imported 6 version(s)")


def test_import_single_json_and_sharded_store(store: str, tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(make_version("solo", "2.0.0").model_dump_json())
    assert run(store, "import", str(one)).stdout.startswith("imported 1 version(s)")
    sharded = FileSystemStorage(tmp_path / "sharded", enable_sharding=True, shard_depth=1)
    sharded.save_versions([make_version("s1", "1.0.0"), make_version("s2", "1.0.0")])
    assert run(store, "import", str(tmp_path / "sharded")).stdout.startswith(
        "imported 2 version(s) of 2 prompt(s)"
    )
    assert run(str(tmp_path / "sharded"), "list", "--json").stdout.count('"prompt_id"') == 2


def test_init_sharded(store: str) -> None:
    assert run(store, "init", "--sharding").exit_code == 0
    assert run(store, "save", "p", "--text", "x").exit_code == 0
    assert any(len(p.name) == 2 for p in Path(store).iterdir() if p.is_dir())
    assert json.loads(run(store, "list", "--json").stdout)[0]["prompt_id"] == "p"


# -- bad input: one line on stderr, the right exit code, nothing written ------------------


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["show", "nobody"], 1, "Error: version 'latest' of prompt 'nobody' not found"),
        (["show", "wf_001_llm_1", "9.9.9"], 1, "Error: version '9.9.9' of prompt"),
        (["show", "wf_001_llm_1", "1.x"], 2, "Error: invalid version '1.x'"),
        (["log", "nobody"], 1, "Error: version 'any' of prompt 'nobody' not found"),
        (["diff", "wf_001_llm_1", "1.0.0", "7.0.0"], 1, "Error: version '7.0.0'"),
        (["rollback", "wf_001_llm_1", "3.0.0"], 1, "Error: version '3.0.0'"),
        (["delete", "wf_001_llm_1", "3.0.0", "--yes"], 1, "Error: version '3.0.0'"),
        (["show", "../etc"], 2, "Error: invalid prompt id '../etc'"),
        (["save", "bad/id", "--text", "x"], 2, "Error: invalid prompt id 'bad/id'"),
        (["save", "p", "--text", "   "], 2, "Error:"),
        (["save", "p"], 2, "Error: give the text once"),
        (["save", "p", "--text", "x", "--metadata", "novalue"], 2, "is not KEY=VALUE"),
        (["save", "p", "--text", "x", "--overall", "101"], 2, "Error: Invalid value"),
    ],
)
def test_errors(seeded: str, args: list[str], code: int, message: str) -> None:
    before = {p: (Path(seeded) / p).read_bytes() for p in files_under(Path(seeded))}
    result = run(seeded, *args)
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    after = {p: (Path(seeded) / p).read_bytes() for p in files_under(Path(seeded))}
    assert {k: v for k, v in after.items() if k != ".index.json"} == {
        k: v for k, v in before.items() if k != ".index.json"
    }


def test_conflicting_import_is_reported_and_keeps_the_existing(seeded: str, tmp_path: Path) -> None:
    other = tmp_path / "other.jsonl"
    other.write_text(
        make_version("wf_001_llm_1", "1.0.0", text="different").model_dump_json() + "\n"
    )
    result = run(seeded, "import", str(other))
    assert result.exit_code == 1
    assert "Error: wf_001_llm_1 1.0.0 differs from the existing version" in result.stderr
    kept = open_storage(seeded).get_version("wf_001_llm_1", "1.0.0")
    assert kept is not None and kept.prompt.text.startswith("You are a helpful")


@pytest.mark.parametrize("content", ['{"prompt_id": "x"', "not json at all", "[1, 2]"])
def test_malformed_import_writes_nothing(store: str, tmp_path: Path, content: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(make_version("ok", "1.0.0").model_dump_json() + "\n" + content + "\n")
    result = run(store, "import", str(bad))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error:") and "item 2" in result.stderr
    assert "nothing imported" in result.stderr
    assert files_under(Path(store)) == set()


def test_missing_or_unreadable_store(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nowhere"), "list")
    assert missing.exit_code == 1
    assert missing.stderr == f"Error: no store at '{tmp_path / 'nowhere'}' [STORE-NOT-FOUND]\n"
    assert not (tmp_path / "nowhere").exists()
    (tmp_path / "file").write_text("x")
    assert run(str(tmp_path / "file"), "list").exit_code in (1, 2)
    bad_url = run("ftp://host/x", "list")
    assert bad_url.exit_code == 2 and "unknown storage URL scheme 'ftp'" in bad_url.stderr
    (tmp_path / "junk.db").write_bytes(b"not a database" * 100)
    corrupt = run(str(tmp_path / "junk.db"), "list")
    assert corrupt.exit_code == 1 and "STORE-CORRUPT-001" in corrupt.stderr


def test_store_from_environment(seeded: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTSHELF_URL", seeded)
    result = CliRunner().invoke(cli, ["list", "--json"])
    assert len(json.loads(result.stdout)) == 3


# -- help, version, documentation ---------------------------------------------------------


def all_commands() -> dict[str, click.Command]:
    """Every command, with a group's subcommands as ``"group sub"``."""
    found: dict[str, click.Command] = {}
    for name, command in cli.commands.items():
        found[name] = command
        if isinstance(command, click.Group):
            found.update({f"{name} {sub}": c for sub, c in command.commands.items()})
    return found


def test_every_command_has_help_and_is_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| promptshelf ([a-z-]+)", readme, flags=re.MULTILINE))
    for name, command in all_commands().items():
        assert command.help and len(command.help) > 20, f"{name} has no help text"
        result = CliRunner().invoke(cli, [*name.split(), "-h"])
        assert result.exit_code == 0 and "Usage: " in result.stdout
        top = name.split()[0]
        assert top in documented, f"'promptshelf {top}' is missing from the README's reference"


def test_version_and_help() -> None:
    assert CliRunner().invoke(cli, ["--version"]).stdout == "promptshelf, version 0.1.0\n"
    assert "Keep, compare and roll back" in CliRunner().invoke(cli, ["-h"]).stdout


def test_the_installed_entry_point_and_python_m(seeded: str) -> None:
    exe = Path(sys.executable).with_name("promptshelf")
    env = {**os.environ, "PROMPTSHELF_URL": seeded}
    out = subprocess.run(
        [str(exe), "show", "wf_002_classifier", "--text"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout == "Classify the ticket {{ticket}} as bug, feature or question.\n"
    out = subprocess.run(
        [sys.executable, "-m", "promptshelf", "show", "nobody"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 1 and out.stderr.startswith("Error: ")


def test_import_leaves_the_source_store_untouched(store: str, seed_copy: Path) -> None:
    before = {p: (seed_copy / p).read_bytes() for p in files_under(seed_copy)}
    assert run(store, "import", str(seed_copy)).exit_code == 0
    assert {p: (seed_copy / p).read_bytes() for p in files_under(seed_copy)} == before


def test_labels(seeded: str) -> None:
    assert (
        run(
            seeded,
            "label",
            "set",
            "wf_001_llm_1",
            "production",
            "1.1.0",
            "--actor",
            "ana",
            "--reason",
            "launch",
        ).stdout
        == "wf_001_llm_1 production -> 1.1.0\n"
    )
    moved = run(seeded, "label", "set", "wf_001_llm_1", "production", "best")
    assert moved.stdout == "wf_001_llm_1 production -> 1.2.0 (was 1.1.0)\n"
    run(seeded, "label", "set", "wf_001_llm_1", "staging", "label:production")
    assert run(seeded, "label", "ls", "wf_001_llm_1").stdout == (
        "LABEL       VERSION\nproduction  1.2.0\nstaging     1.2.0\n"
    )
    shown = run(seeded, "show", "wf_001_llm_1", "label:production", "--text")
    assert shown.stdout.startswith("You are a precise assistant.")
    diff = run(seeded, "diff", "wf_001_llm_1", "1.0.0", "label:staging")
    assert diff.stdout.startswith("wf_001_llm_1 1.0.0 -> 1.2.0:")
    assert run(seeded, "label", "rm", "wf_001_llm_1", "staging").stdout == (
        "Removed wf_001_llm_1 staging\n"
    )
    log = json.loads(run(seeded, "label", "log", "wf_001_llm_1", "--json").stdout)
    assert [(e["label"], e["action"], e["from"], e["to"]) for e in log] == [
        ("production", "set", None, "1.1.0"),
        ("production", "move", "1.1.0", "1.2.0"),
        ("staging", "set", None, "1.2.0"),
        ("staging", "remove", "1.2.0", None),
    ]
    assert log[0]["actor"] == "ana" and log[0]["reason"] == "launch"
    table = run(seeded, "label", "log", "wf_001_llm_1", "production").stdout.splitlines()
    assert table[0].split() == ["SEQ", "AT", "LABEL", "ACTION", "FROM", "TO", "ACTOR", "REASON"]
    assert len(table) == 3
    gone = run(seeded, "label", "rm", "wf_001_llm_1", "staging")
    assert gone.exit_code == 1 and "has no label 'staging'" in gone.stderr
    missing = run(seeded, "label", "set", "wf_001_llm_1", "production", "8.0.0")
    assert missing.exit_code == 1
    bad = run(seeded, "label", "set", "wf_001_llm_1", "../x", "1.0.0")
    assert bad.exit_code == 2 and "invalid label" in bad.stderr
    blocked = run(seeded, "delete", "wf_001_llm_1", "1.2.0", "--yes")
    assert blocked.exit_code == 1 and "LABEL-IN-USE" in blocked.stderr
    forced = run(seeded, "delete", "wf_001_llm_1", "1.2.0", "--yes", "--force")
    assert forced.exit_code == 0
    assert run(seeded, "label", "ls", "wf_001_llm_1").stdout == "LABEL  VERSION\n"


def test_save_skips_unchanged_text(store: str) -> None:
    assert run(store, "save", "p", "--text", "Hello").stdout == "Saved p 1.0.0\n"
    same = run(store, "save", "p", "--text", "Hello", "--overall", "50")
    assert same.stdout == "Unchanged: p is already at 1.0.0 (--force-new saves anyway)\n"
    assert run(store, "save", "p", "--text", "Hello", "--force-new").stdout == "Saved p 1.0.1\n"


def test_trash_restore_repair(seeded: str) -> None:
    assert run(seeded, "delete", "wf_002_classifier", "1.0.0", "--yes").exit_code == 0
    listing = run(seeded, "trash").stdout.splitlines()
    assert listing[0].split() == ["PROMPT_ID", "VERSION", "DELETED_AT"]
    assert listing[1].startswith("wf_002_classifier  1.0.0")
    assert run(seeded, "restore", "wf_002_classifier", "1.0.0").stdout == (
        "Restored wf_002_classifier 1.0.0\n"
    )
    again = run(seeded, "restore", "wf_002_classifier", "1.0.0")
    assert again.exit_code == 1 and "not in the trash" in again.stderr
    run(seeded, "delete", "wf_002_classifier", "1.0.0", "--yes")
    assert run(seeded, "trash", "--empty", "--yes", "--older-than", "1").stdout == (
        "Removed 0 version(s) from the trash\n"
    )
    assert (
        run(seeded, "trash", "--empty", "--yes").stdout == "Removed 1 version(s) from the trash\n"
    )
    assert run(seeded, "repair").stdout == "Nothing to repair\n"
    path = Path(seeded) / "wf_001_llm_2" / "1.0.0.json"
    path.write_bytes(path.read_bytes().replace(b"French", b"German"))
    fixed = run(seeded, "repair")
    assert fixed.stdout.splitlines()[0].split() == ["CODE", "LOCATION", "DONE"]
    assert "wf_001_llm_2/1.0.0.json" in fixed.stdout
    assert run(seeded, "verify").exit_code == 0


def test_retain_and_compress(seeded: str) -> None:
    dry = run(seeded, "retain", "--keep-last", "1")
    # each prompt keeps its newest and its best (here the newest too); ancestors do not stay
    assert dry.stdout.splitlines() == [
        "Would move to the trash (dry run; --apply to do it): 3 version(s); 3 kept",
        "  wf_001_llm_1 1.0.0",
        "  wf_001_llm_1 1.1.0",
        "  wf_001_llm_2 1.0.0",
    ]
    run(
        seeded, "save", "wf_002_classifier", "--text", "A second classifier text", "--overall", "10"
    )
    run(
        seeded,
        "save",
        "wf_002_classifier",
        "--text",
        "A third classifier text",
        "--overall",
        "5",
        "--parent",
        "1.0.0",
    )
    applied = run(seeded, "retain", "--keep-last", "1", "--apply")
    assert applied.stdout.splitlines() == [
        "Moved to the trash: 4 version(s); 4 kept",
        "  wf_001_llm_1 1.0.0",
        "  wf_001_llm_1 1.1.0",
        "  wf_001_llm_2 1.0.0",
        "  wf_002_classifier 1.0.1",
    ]
    for number in ("1.0.0", "1.1.0"):
        assert run(seeded, "restore", "wf_001_llm_1", number).exit_code == 0
    assert run(seeded, "retain").exit_code == 2
    assert run(seeded, "compress", "--keep", "1").stdout == "Compressed 3 version(s)\n"
    assert run(seeded, "verify").exit_code == 0
    assert run(seeded, "show", "wf_001_llm_1", "1.0.0", "--text").stdout.startswith(
        "You are a helpful"
    )


def test_a_fresh_store_verifies(store: str) -> None:
    assert run(store, "init").exit_code == 0
    assert run(store, "verify").stdout == "OK: 0 prompt(s), 0 version(s) checked\n"
    assert run(store, "import", str(BUNDLED_SEED)).exit_code == 0
    assert run(store, "verify").stdout == "OK: 3 prompt(s), 6 version(s) checked\n"


def test_render(seeded: str) -> None:
    run(seeded, "label", "set", "wf_001_llm_2", "production", "1.0.0")
    out = run(seeded, "render", "wf_001_llm_2", "-V", "text=bonjour")
    assert (out.exit_code, out.stdout) == (0, "Translate bonjour into French.\n")
    missing = run(seeded, "render", "wf_001_llm_2")
    assert missing.exit_code == 1 and "no value for text" in missing.stderr
    assert "RENDER-MISSING" in missing.stderr
    lenient = run(seeded, "render", "wf_001_llm_2", "latest", "--lenient")
    assert lenient.stdout == "Traduis {{text}} en français — sois concis. 日本語も可。\n"
    extra = run(seeded, "render", "wf_001_llm_2", "-V", "text=x", "-V", "tone=dry")
    assert "Warning: tone is not used" in extra.stderr
    assert run(seeded, "render", "wf_001_llm_2", "-V", "novalue").exit_code == 2


def test_every_error_code_in_the_source_is_in_the_readme() -> None:
    """Grep the source for codes (string literals shaped like ``FS-LOAD-001``); each one
    the program can print must have a row in one of README's code tables."""
    source = Path(__file__).resolve().parents[1] / "src" / "promptshelf"
    found: set[str] = set()
    for path in source.rglob("*.py"):
        found |= set(re.findall(r"[\"']([A-Z]{2,}(?:-[A-Z0-9]+)+)[\"']", path.read_text()))
    first_cells = [
        line.split("|")[1] for line in README.read_text().splitlines() if line.startswith("| `")
    ]
    documented = {code for cell in first_cells for code in re.findall(r"`([A-Z0-9-]+)`", cell)}
    found -= {"YYYY-MM-DD"}  # a date format, not a code
    assert found, "the grep found no codes at all"
    assert not found - documented, (
        f"codes missing from README's tables: {sorted(found - documented)}"
    )


def test_a_version_number_is_never_reused_after_the_trash_is_emptied(store: str) -> None:
    """The new-user report: delete 1.0.1, empty the trash, save again: 1.0.2, not 1.0.1."""
    assert run(store, "save", "p", "--text", "one").stdout == "Saved p 1.0.0\n"
    assert run(store, "save", "p", "--text", "two").stdout == "Saved p 1.0.1\n"
    assert run(store, "delete", "p", "1.0.1", "--yes").exit_code == 0
    assert run(store, "trash", "--empty", "--yes").exit_code == 0
    assert run(store, "save", "p", "--text", "THREE").stdout == "Saved p 1.0.2\n"
    with open_storage(store) as storage:
        assert storage.get_version("p", "1.0.1") is None
        assert list(storage.retired_versions("p")) == ["1.0.1"]


def test_repair_keeps_the_valid_label_events_of_a_damaged_log(store: str) -> None:
    for text in ("a", "b", "c"):
        run(store, "save", "p", "--text", text)
    run(store, "label", "set", "p", "production", "1.0.0")
    run(store, "label", "set", "p", "staging", "1.0.2")
    run(store, "label", "set", "p", "production", "1.0.1")
    run(store, "label", "set", "p", "staging", "1.0.1")
    log = Path(store) / "p" / ".labels.jsonl"
    original = log.read_bytes()
    lines = original.split(b"\n")
    lines[1] = lines[1].replace(b'"action"', b'"act')  # staging's set: damaged
    log.write_bytes(b"\n".join(lines))
    assert run(store, "label", "ls", "p").exit_code == 1
    fixed = run(store, "repair")
    assert fixed.exit_code == 0
    assert "kept 3 valid event(s)" in fixed.stdout and "damaged line(s) 2" in fixed.stdout
    listing = run(store, "label", "ls", "p").stdout.split()
    assert listing[2:] == ["production", "1.0.1", "staging", "1.0.1"]  # as the valid events say
    quarantined = sorted((Path(store) / ".quarantine" / "p").iterdir())
    assert [p.read_bytes() for p in quarantined][0] == b"\n".join(lines)  # the original, kept
    assert quarantined[1].read_bytes() == b"2: " + lines[1] + b"\n"
    assert run(store, "verify").exit_code == 0
    assert run(store, "repair").stdout == "Nothing to repair\n"
    assert run(store, "label", "set", "p", "production", "1.0.2").exit_code == 0
    with open_storage(store) as storage:
        assert [e.seq for e in storage.label_history("p")] == [1, 2, 3, 4]
