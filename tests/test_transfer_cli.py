"""migrate, export and import through the real command line carry labels, history and trash."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from promptshelf import FileSystemStorage, SQLiteStorage
from promptshelf.cli import cli

from helpers import counts, fill_everything, inventory


def test_migrate_command_carries_labels_history_and_trash(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    db = f"sqlite:///{tmp_path}/shelf.db"
    first = CliRunner().invoke(cli, ["migrate", str(tmp_path / "src"), db])
    assert first.exit_code == 0, first.output
    assert first.stdout == (
        "copied 16 version(s) of 6 prompt(s); 0 already present; "
        "16 label event(s) and 5 trashed version(s) copied\n"
    )
    again = CliRunner().invoke(cli, ["migrate", str(tmp_path / "src"), db])
    assert again.stdout == (
        "copied 0 version(s) of 6 prompt(s); 16 already present; "
        "0 label event(s) and 0 trashed version(s) copied\n"
    )
    with SQLiteStorage(tmp_path / "shelf.db") as dest:
        assert inventory(dest) == inventory(source)
        assert counts(dest) == (16, 6, 16, 5)


def test_migrate_command_reports_a_diverged_history_and_exits_1(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    with SQLiteStorage(tmp_path / "shelf.db") as dest:
        dest.save_version(source.get_version("p0", "1.0.0"))  # type: ignore[arg-type]
        dest.set_label("p0", "production", "1.0.0", actor="someone else")
    result = CliRunner().invoke(
        cli, ["migrate", str(tmp_path / "src"), f"sqlite:///{tmp_path}/shelf.db"]
    )
    assert result.exit_code == 1
    assert "Error: labels of p0 not copied:" in result.stderr
    assert "[LABEL-DIVERGED]" not in result.stdout
    with SQLiteStorage(tmp_path / "shelf.db") as dest:
        assert [e.actor for e in dest.label_history("p0")] == ["someone else"]


def test_jsonl_export_and_import_carry_labels_history_and_trash(tmp_path: Path) -> None:
    source = FileSystemStorage(tmp_path / "src")
    fill_everything(source)
    out = tmp_path / "all.jsonl"
    exported = CliRunner().invoke(cli, ["export", "--store", str(tmp_path / "src"), str(out)])
    assert exported.stdout == (
        f"exported 16 version(s) to {out}; 16 label event(s) to {tmp_path}/all.labels.jsonl; "
        f"5 trashed version(s) to {tmp_path}/all.trash.jsonl\n"
    )
    assert len(out.read_text().splitlines()) == 16  # still one PromptVersion per line
    again = CliRunner().invoke(cli, ["export", "--store", str(tmp_path / "src"), str(out)])
    assert again.exit_code == 1 and "PS-EXPORT-001" in again.output
    imported = CliRunner().invoke(cli, ["import", "--store", str(tmp_path / "back"), str(out)])
    assert imported.exit_code == 0, imported.output
    back = FileSystemStorage(tmp_path / "back")
    assert inventory(back) == inventory(source)
    (tmp_path / "all.trash.jsonl").write_text('{"deleted_at": "yesterday"}\n')
    bad = CliRunner().invoke(cli, ["import", "--store", str(tmp_path / "none"), str(out)])
    assert bad.exit_code == 1 and "all.trash.jsonl line 1 is not valid" in bad.output
    assert "missing key 'version'" in bad.output and "PS-IMPORT-001" in bad.output
    assert FileSystemStorage(tmp_path / "none").list_held_prompts() == []
