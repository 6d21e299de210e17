"""``promptshelf dify import|apply`` through the real entry point."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from promptshelf.cli import cli

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "dify"
APP = FIXTURES / "exports" / "translation_workflow.yml"
KEY = "translation_workflow"


def run(store: str, *args: str, input: str | None = None) -> Result:
    argv = ["dify", args[0], "--store", store, *args[1:]]
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


def plain(store: str, *args: str, input: str | None = None) -> Result:
    argv = [args[0], "--store", store, *args[1:]]
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


@pytest.fixture
def app(tmp_path: Path) -> Path:
    copy = tmp_path / "app.yml"
    shutil.copyfile(APP, copy)
    return copy


@pytest.fixture
def store(tmp_path: Path, app: Path) -> str:
    store = str(tmp_path / "store")
    result = run(store, "import", str(app))
    assert result.exit_code == 0, result.output
    return store


def test_import_then_reimport(store: str, app: Path) -> None:
    again = run(store, "import", str(app))
    assert again.stdout == f"4 prompt(s) in {app} (llm (chat) 4): 0 saved, 4 unchanged\n"
    listed = plain(store, "list").stdout
    assert f"{KEY}_1721117961155" in listed
    data = json.loads(run(store, "import", str(app), "--json").stdout)
    assert data["kinds"] == {"llm (chat)": 4} and len(data["unchanged"]) == 4


def test_first_import_names_what_it_saved(tmp_path: Path, app: Path) -> None:
    result = run(str(tmp_path / "s2"), "import", str(app), "--workflow-id", "wf_001")
    assert result.stdout.splitlines()[0] == "saved wf_001_1721117961155 1.0.0"
    assert result.stdout.endswith("4 saved, 0 unchanged\n")


def test_apply_with_no_label_leaves_every_node_and_the_bytes(store: str, app: Path) -> None:
    before = app.read_bytes()
    result = run(store, "apply", str(app))
    assert result.exit_code == 0
    assert "left as they are (no version under production): " in result.stdout
    assert f"No change: {app} already holds these versions" in result.stdout
    assert app.read_bytes() == before


def test_apply_one_promoted_version_changes_only_its_field(store: str, app: Path) -> None:
    pid = f"{KEY}_1721118559807"
    shown = json.loads(plain(store, "show", pid, "--messages").stdout)
    shown[0]["text"] = shown[0]["text"].replace("translation", "careful translation", 1)
    saved = plain(store, "save", pid, "--messages", "-", "-m", "more care", input=json.dumps(shown))
    assert saved.stdout == f"Saved {pid} 1.0.1\n", saved.output
    label = CliRunner().invoke(cli, ["label", "set", "--store", store, pid, "production", "1.0.1"])
    assert label.exit_code == 0, label.output
    before = app.read_bytes()
    dry = run(store, "apply", str(app), "--dry-run", "--diff")
    assert f"would write {pid} 1.0.1" in dry.stdout and app.read_bytes() == before
    changed = [line for line in dry.stdout.splitlines() if line.startswith(("-", "+"))]
    assert changed[:2] == [f"--- {app}", f"+++ {app}"]
    # the lines of that one double-quoted scalar, nothing else
    assert len(changed) == 2 + 4 and any("careful translation" in c for c in changed[4:])
    out = app.parent / "out.yml"
    result = run(store, "apply", str(app), "-o", str(out))
    assert result.exit_code == 0, result.output
    assert f"wrote {pid} 1.0.1" in result.stdout
    assert f"Wrote {out}: " in result.stdout and "(pyyaml)" in result.stdout
    assert app.read_bytes() == before  # -o leaves the input alone
    old, new = yaml.safe_load(before), yaml.safe_load(out.read_bytes())
    node = next(n for n in new["workflow"]["graph"]["nodes"] if n["id"] == "1721118559807")
    text = node["data"]["prompt_template"][0]["text"]
    assert "careful translation" in text
    node_old = next(n for n in old["workflow"]["graph"]["nodes"] if n["id"] == "1721118559807")
    node_old["data"]["prompt_template"][0]["text"] = text
    assert new == old
    # in place, then a second apply is a no-op
    assert run(store, "apply", str(app)).exit_code == 0
    assert app.read_bytes() == out.read_bytes()
    assert not [p for p in app.parent.iterdir() if p.name.endswith(".tmp")]
    assert "No change" in run(store, "apply", str(app)).stdout


def test_apply_pinned_version_and_latest(store: str, app: Path) -> None:
    pid = f"{KEY}_1721117961155"
    shown = json.loads(plain(store, "show", pid, "--messages").stdout)
    shown[0]["text"] += "\nKeep names untranslated."
    plain(store, "save", pid, "--messages", "-", input=json.dumps(shown))
    pinned = run(store, "apply", str(app), "--version-of", "1721117961155=1.0.0", "--json")
    data = json.loads(pinned.stdout)
    assert data["unchanged"] == {pid: "1.0.0"} and data["changed"] == {}
    assert len(data["left"]) == 3 and data["written"] is None
    latest = json.loads(run(store, "apply", str(app), "--label", "latest", "--json").stdout)
    assert latest["changed"] == {pid: "1.0.1"} and latest["changed_lines"] == 3
    bad = run(store, "apply", str(app), "--version-of", "nope=1.0.0")
    assert bad.exit_code == 2 and "is not a prompt of this file" in bad.stderr


def test_dropped_placeholder_is_refused_through_the_cli(store: str, app: Path) -> None:
    pid = f"{KEY}_1721118559807"
    shown = json.loads(plain(store, "show", pid, "--messages").stdout)
    shown[0]["text"] = "Translate."
    plain(store, "save", pid, "--messages", "-", input=json.dumps(shown))
    before = app.read_bytes()
    refused = run(store, "apply", str(app), "--label", "latest")
    assert refused.exit_code == 1
    assert refused.stderr.startswith("Error: placeholders would be lost")
    assert refused.stderr.rstrip().endswith("[DIFY-PLACEHOLDER-001]")
    assert app.read_bytes() == before
    allowed = run(store, "apply", str(app), "--label", "latest", "--allow-placeholder-changes")
    assert allowed.exit_code == 0 and app.read_bytes() != before


def test_bad_files_are_one_coded_line(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    missing = run(store, "import", str(tmp_path / "none.yml"))
    assert missing.exit_code == 1 and "[DIFY-FILE-001]" in missing.stderr
    broken = tmp_path / "broken.yml"
    broken.write_text("app: [1\n")
    result = run(store, "import", str(broken))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {broken} is not valid YAML (line ")
    assert len(result.stderr.strip().splitlines()) == 1
    other = tmp_path / "other.yml"
    other.write_text("kind: dataset\n")
    assert "not a Dify app export" in run(store, "import", str(other)).stderr


def test_newer_dsl_versions_are_read_with_a_warning(tmp_path: Path) -> None:
    newer = tmp_path / "newer.yml"
    newer.write_text(APP.read_text(encoding="utf-8").replace("version: 0.1.0", "version: 0.9.0"))
    result = run(str(tmp_path / "store"), "import", str(newer))
    assert result.exit_code == 0
    assert "Warning: " in result.stderr and "DSL version 0.9.0" in result.stderr


def test_unwritable_output_is_one_coded_line_and_a_symlink_is_followed(
    store: str, app: Path, tmp_path: Path
) -> None:
    pid = f"{KEY}_1721117961155"
    shown = json.loads(plain(store, "show", pid, "--messages").stdout)
    shown[0]["text"] += "\nOne more rule."
    plain(store, "save", pid, "--messages", "-", input=json.dumps(shown))
    bad = run(store, "apply", str(app), "--label", "latest", "-o", str(tmp_path / "no" / "x.yml"))
    assert bad.exit_code == 1
    assert "cannot write" in bad.stderr and bad.stderr.rstrip().endswith("[DIFY-WRITE-001]")
    link = tmp_path / "link.yml"
    link.symlink_to(app)
    assert run(store, "apply", str(link), "--label", "latest").exit_code == 0
    assert link.is_symlink() and "One more rule." in app.read_text(encoding="utf-8")


def test_nl_is_one_json_object_per_line(store: str, app: Path) -> None:
    for args in (["import", str(app), "--nl"], ["apply", str(app), "--nl"]):
        lines = run(store, *args).stdout.splitlines()
        assert len(lines) == 1 and isinstance(json.loads(lines[0]), dict)
