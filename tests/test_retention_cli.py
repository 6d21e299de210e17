"""promptshelf retain through the real command line: a linear and a branching history."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from promptshelf import FileSystemStorage
from promptshelf.cli import cli

from helpers import make_version


def linear(store: FileSystemStorage, prompts: int, versions: int) -> None:
    store.save_versions(
        make_version(f"p{i:03}", f"1.{m}.0", score=50 + m, parent=f"1.{m - 1}.0" if m else None)
        for i in range(prompts)
        for m in range(versions)
    )


def test_keep_last_prunes_300_linear_histories(tmp_path: Path) -> None:
    """The issue's figures: 300 prompts x 10 versions, --keep-last 3 kept all 3,000."""
    linear(FileSystemStorage(tmp_path / "s", durable=False), 300, 10)
    dry = CliRunner().invoke(cli, ["retain", "--store", str(tmp_path / "s"), "--keep-last", "3"])
    assert dry.exit_code == 0
    assert dry.stdout.splitlines()[0] == (
        "Would move to the trash (dry run; --apply to do it): 2100 version(s); 900 kept"
    )


def test_retain_apply_on_linear_and_branching_histories(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path / "s")
    linear(store, 2, 5)
    store.save_versions(  # b: 1.0.0 <- 1.1.0 <- 1.2.0 (best) <- 1.3.0, 1.1.0 <- 1.1.1 <- 1.1.2
        make_version("b", number, score=score, parent=parent)
        for number, score, parent in [
            ("1.0.0", 40.0, None),
            ("1.1.0", 50.0, "1.0.0"),
            ("1.1.1", 55.0, "1.1.0"),
            ("1.1.2", 60.0, "1.1.1"),
            ("1.2.0", 90.0, "1.1.0"),
            ("1.3.0", 70.0, "1.2.0"),
        ]
    )
    store.set_label("b", "production", "1.1.2")
    argv = ["retain", "--store", str(tmp_path / "s"), "--keep-last", "1"]
    lineage = CliRunner().invoke(cli, [*argv, "--keep-lineage", "production", "--apply"])
    assert lineage.stdout.splitlines() == [
        "Moved to the trash: 8 version(s); 8 kept",
        *[f"  p00{i} 1.{m}.0" for i in range(2) for m in range(4)],
    ]
    assert store.list_version_numbers("b") == ["1.0.0", "1.1.0", "1.1.1", "1.1.2", "1.2.0", "1.3.0"]
    plain = CliRunner().invoke(cli, [*argv, "--apply", "--json"])
    assert plain.exit_code == 0
    assert json.loads(plain.stdout)["removed"] == [  # objects with named keys, not pairs
        {"prompt_id": "b", "version": number} for number in ("1.0.0", "1.1.0", "1.1.1")
    ]
    assert store.list_version_numbers("b") == ["1.1.2", "1.2.0", "1.3.0"]
    assert store.list_version_numbers("p000") == ["1.4.0"]
    bad = CliRunner().invoke(cli, [*argv, "--keep-lineage", "../x"])
    assert bad.exit_code == 2 and "PS-ID-001" in bad.output
