"""Stores the original implementation can read: ``export DIR`` writes exactly its format.

The original's models forbid unknown keys and its reads trust ``.index.json``; the seed
store (written by it) is the reference for every byte and every field compared here.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

from click.testing import CliRunner

from promptshelf import FileSystemStorage, SQLiteStorage, migrate
from promptshelf.cli import cli
from promptshelf.migrate import compare_stores
from promptshelf.original import ENTRY_KEYS, INDEX_KEYS, original_problems

from helpers import make_version

_TIME = re.compile(r'"\d{4}-\d\d-\d\dT[0-9:.]+"')


def versions_under(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.glob("*/*.json"))
        if not p.name.startswith(".")
    }


def test_export_writes_the_seed_format_byte_for_byte(seed_copy: Path, tmp_path: Path) -> None:
    with SQLiteStorage(tmp_path / "shelf.db") as db:  # through another backend and back
        assert migrate(FileSystemStorage(seed_copy, use_index=False), db).ok
        db.set_label("wf_001_llm_1", "production", "1.1.0", actor="ci", reason="eval passed")
        db.save_version(make_version("wf_002_classifier", "1.0.1", text="soon deleted"))
        db.delete_version("wf_002_classifier", "1.0.1")
    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli, ["export", "--store", f"sqlite:///{tmp_path}/shelf.db", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "exported 6 version(s) of 3 prompt(s); 0 already present; "
        "1 label event(s) and 1 trashed version(s) copied\n"
    )
    # every version file: the very bytes the original wrote (no "sha256", nothing else)
    assert versions_under(out) == versions_under(seed_copy)
    # the index: the original's keys in its order and layout, current, field by field
    mine, seed = (json.loads((d / ".index.json").read_text()) for d in (out, seed_copy))
    assert tuple(mine) == tuple(seed) == INDEX_KEYS
    assert (mine["total_prompts"], mine["total_versions"]) == (3, 6)
    assert (mine["total_prompts"], mine["total_versions"]) == (
        seed["total_prompts"],
        seed["total_versions"],
    )
    assert list(mine["index"]) == list(seed["index"])
    for prompt_id, entry in seed["index"].items():
        exported = mine["index"][prompt_id]
        assert tuple(exported) == tuple(entry) == ENTRY_KEYS
        for key in ("latest_version", "version_count", "versions"):
            assert exported[key] == entry[key], (prompt_id, key)
        for key in ("created_at", "updated_at"):
            assert datetime.fromisoformat(exported[key]).tzinfo is None
    masked = [_TIME.sub('"T"', (d / ".index.json").read_text()) for d in (out, seed_copy)]
    assert masked[0] == masked[1]  # two-space indent, key order, no trailing newline
    assert original_problems(out) == [] and original_problems(seed_copy) == []
    # what the original has no notion of sits where it does not look, and comes back
    assert (out / "wf_001_llm_1" / ".labels.jsonl").is_file()
    assert [p.parent.name for p in (out / ".trash").rglob("*.json")] == ["wf_002_classifier"]
    with SQLiteStorage(tmp_path / "shelf.db") as db:
        back = FileSystemStorage(out, create=False)
        assert compare_stores(db, back) == [] and compare_stores(back, db) == []
        assert back.list_labels("wf_001_llm_1") == {"production": "1.1.0"}


def test_which_options_write_an_original_readable_store(tmp_path: Path) -> None:
    versions = [make_version("p", f"1.{m}.0") for m in range(3)]
    default = FileSystemStorage(tmp_path / "default")
    default.save_versions(versions)
    default.rebuild_index()
    problems = original_problems(tmp_path / "default")
    assert problems == [f"p/1.{m}.0.json: unknown key 'sha256' in the version" for m in range(3)]
    plain = FileSystemStorage(tmp_path / "plain", checksums=False)
    plain.save_versions(versions[:2])
    plain.rebuild_index()
    plain.save_version(versions[2])  # a save does not rewrite the index: stale for the original
    assert original_problems(tmp_path / "plain") == [
        ".index.json: p lists ['1.0.0', '1.1.0'] (latest 1.1.0); "
        "the files hold ['1.0.0', '1.1.0', '1.2.0']",
        ".index.json: totals (1, 2) do not match the files",
    ]
    plain.rebuild_index()  # checksums=False plus a current index: readable
    assert original_problems(tmp_path / "plain") == []
    plain.compress(keep_recent=1)
    assert "p/1.0.0.json.gz: compressed; the original lists *.json only" in original_problems(
        tmp_path / "plain"
    )


def test_export_into_a_store_with_checksums_is_reported(tmp_path: Path) -> None:
    FileSystemStorage(tmp_path / "src").save_version(make_version("p", "1.0.0"))
    FileSystemStorage(tmp_path / "out").save_version(make_version("p", "1.0.0"))
    result = CliRunner().invoke(
        cli, ["export", "--store", str(tmp_path / "src"), str(tmp_path / "out")]
    )
    assert result.exit_code == 1
    assert (
        "Error: the original implementation would not read p/1.0.0.json: "
        "unknown key 'sha256' in the version" in result.stderr
    )
    assert b'"sha256"' in (tmp_path / "out" / "p" / "1.0.0.json").read_bytes()  # left as it was
