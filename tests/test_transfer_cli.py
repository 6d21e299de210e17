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
