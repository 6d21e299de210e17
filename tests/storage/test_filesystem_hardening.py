"""Regression tests for the filesystem backend's maintenance paths (issue 10).

Each test reproduces a way the store lost or hid data before: compress
trusting a garbage ``.gz``, a symlink followed out of the store, a layout
option that hid every version, ``clear_all`` leaving compressed versions,
one damaged file breaking every listing.
"""

from __future__ import annotations

import gzip
import json
import logging
import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage, PromptVersion
from promptshelf.errors import ConfigurationError, OptimizerError

from helpers import make_version

# -- 1. compress never deletes the only good copy ------------------------------------------


def _store_with_history(root: Path) -> FileSystemStorage:
    store = FileSystemStorage(root)
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        store.save_version(make_version("a", number, text=f"text {number}"))
    return store


def _quarantined(root: Path) -> list[Path]:
    base = root / ".quarantine"
    return sorted(p for p in base.rglob("*") if p.is_file()) if base.exists() else []


def test_compress_keeps_the_good_copy_beside_a_garbage_gz(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path)
    (tmp_path / "a" / "1.0.0.json.gz").write_bytes(b"garbage, not gzip")
    report = store.verify()
    assert [p.code for p in report.problems] == ["FS-LOAD-001"]  # the shadow copy is reported
    assert report.problems[0].location.endswith("a/1.0.0.json.gz")

    assert store.compress(keep_recent=0) == 3
    assert store.get_version("a", "1.0.0") == make_version("a", "1.0.0", text="text 1.0.0")
    assert [p.read_bytes() for p in _quarantined(tmp_path)] == [b"garbage, not gzip"]
    assert store.verify().ok


def test_compress_quarantines_a_gz_of_other_content(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path)
    other = make_version("a", "1.0.0", text="an older, different text")
    (tmp_path / "a" / "1.0.0.json.gz").write_bytes(
        gzip.compress(other.model_dump_json(indent=2).encode())
    )
    problems = store.verify().problems
    assert [p.code for p in problems] == ["SHADOW-COPY"]
    assert store.compress(keep_recent=0) == 3
    assert store.get_version("a", "1.0.0") == make_version("a", "1.0.0", text="text 1.0.0")
    kept = _quarantined(tmp_path)
    assert len(kept) == 1 and b"different text" in gzip.decompress(kept[0].read_bytes())


def test_repair_quarantines_a_disagreeing_copy_never_deletes(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path)
    other = make_version("a", "1.1.0", text="another text")
    packed = gzip.compress(other.model_dump_json(indent=2).encode())
    (tmp_path / "a" / "1.1.0.json.gz").write_bytes(packed)
    actions = store.repair().actions
    assert [a.code for a in actions] == ["SHADOW-COPY"]
    assert store.get_version("a", "1.1.0") == make_version("a", "1.1.0", text="text 1.1.0")
    assert [p.read_bytes() for p in _quarantined(tmp_path)] == [packed]
    assert store.verify().ok


def test_repair_removes_only_a_proven_duplicate(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path)
    plain = tmp_path / "a" / "1.0.0.json"
    (tmp_path / "a" / "1.0.0.json.gz").write_bytes(gzip.compress(plain.read_bytes()))
    assert store.verify().ok  # an interrupted compress: both copies agree
    assert [a.code for a in store.repair().actions] == ["DUPLICATE"]
    assert plain.exists() and not (tmp_path / "a" / "1.0.0.json.gz").exists()


# -- 4. clear_all removes compressed versions -----------------------------------------------


def test_clear_all_removes_compressed_versions(tmp_path: Path) -> None:
    store = _store_with_history(tmp_path)
    assert store.compress(keep_recent=1) == 2
    store.clear_all()
    assert store.list_prompts() == []
    assert store.get_storage_stats()["total_versions"] == 0
    assert not (tmp_path / "a").exists()


# -- 5. one damaged file does not break the store --------------------------------------------


def test_a_damaged_version_does_not_break_other_prompts_or_listings(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = _store_with_history(tmp_path)
    store.save_version(make_version("b", "1.0.0"))
    (tmp_path / "b" / "1.0.0.json").write_bytes(b"garbage")
    (tmp_path / "a" / "1.1.0.json").write_bytes(b"{}")
    assert store.list_prompts() == ["a", "b"]
    with caplog.at_level(logging.WARNING):
        assert [v.version for v in store.list_versions("a")] == ["1.0.0", "1.2.0"]
        assert store.get_latest_version("a").version == "1.2.0"  # type: ignore[union-attr]
        assert store.get_latest_version("b") is None
        assert store.list_versions("b") == []
    assert "a/1.1.0.json" in caplog.text and "skipped" in caplog.text
    assert store.list_version_numbers("a") == ["1.0.0", "1.1.0", "1.2.0"]  # numbers still taken
    with pytest.raises(OptimizerError) as caught:  # reported where it is read
        store.get_version("a", "1.1.0")
    assert caught.value.error_code == "FS-LOAD-001"
    assert sorted(p.code for p in store.verify().problems) == ["FS-LOAD-001", "FS-LOAD-001"]


def test_an_unknown_extra_key_is_kept_and_noticed_not_damage(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path, checksums=False)
    store.save_version(make_version("a", "1.0.0"))
    path = tmp_path / "a" / "1.0.0.json"
    raw = json.loads(path.read_bytes())
    raw["reviewed_by"] = "a newer writer"
    path.write_text(json.dumps(raw, indent=2))
    found = store.get_version("a", "1.0.0")
    assert found is not None and found.model_extra == {"reviewed_by": "a newer writer"}
    report = store.verify()
    assert report.ok and [n.code for n in report.notices] == ["PS-EXTRA-KEYS"]
    assert "reviewed_by" in report.notices[0].message
    copy = FileSystemStorage(tmp_path / "copy")
    copy.save_version(found)  # round trip: the key survives a copy
    again = copy.get_version("a", "1.0.0")
    assert again is not None and again.model_extra == {"reviewed_by": "a newer writer"}
    assert copy.verify().ok


def test_extra_keys_are_still_refused_from_callers() -> None:
    data = make_version("a", "1.0.0").model_dump()
    with pytest.raises(ValueError):
        PromptVersion(**data, typo_field=1)


def test_a_damaged_checksum_trailer_is_never_an_extra_key(tmp_path: Path) -> None:
    store = FileSystemStorage(tmp_path)
    store.save_version(make_version("a", "1.0.0"))
    path = tmp_path / "a" / "1.0.0.json"
    path.write_bytes(path.read_bytes().replace(b'"sha256": "', b'"sha256": "0', 1))
    assert [p.code for p in store.verify().problems] == ["FS-LOAD-001"]


# -- 3. layout safety ------------------------------------------------------------------------


def test_opening_with_a_contradicting_layout_names_both(tmp_path: Path) -> None:
    FileSystemStorage(tmp_path).save_version(make_version("a", "1.0.0"))
    with pytest.raises(ConfigurationError) as caught:
        FileSystemStorage(tmp_path, enable_sharding=True)
    assert caught.value.error_code == "FS-LAYOUT-001"
    assert "flat (not sharded) on disk" in caught.value.message
    assert "sharded (shard depth 2)" in caught.value.message
    assert FileSystemStorage(tmp_path).get_version("a", "1.0.0") is not None

    sharded = tmp_path / "sharded"
    FileSystemStorage(sharded, enable_sharding=True, shard_depth=3).save_version(
        make_version("a", "1.0.0")
    )
    for options in ({"enable_sharding": False}, {"enable_sharding": True, "shard_depth": 2}):
        with pytest.raises(ConfigurationError, match="shard depth 3"):
            FileSystemStorage(sharded, **options)  # type: ignore[arg-type]
    opened = FileSystemStorage(sharded)  # no layout options: the layout on disk
    assert opened.enable_sharding and opened.shard_depth == 3
    assert opened.get_version("a", "1.0.0") is not None


def test_an_empty_store_takes_any_layout(tmp_path: Path) -> None:
    FileSystemStorage(tmp_path).rebuild_index()  # records "flat" in the index
    store = FileSystemStorage(tmp_path, enable_sharding=True)
    store.save_version(make_version("a", "1.0.0"))
    assert FileSystemStorage(tmp_path).enable_sharding


# -- 2. symlinks inside the store are refused, never followed --------------------------------

Plant = Callable[[Path, Path], None]


def _outside(tmp_path: Path) -> Path:
    """A directory outside the store holding files a followed symlink would touch."""
    outside = tmp_path / "outside"
    (outside / "a").mkdir(parents=True)
    (outside / "a" / "1.0.0.json").write_bytes(
        make_version("a", "1.0.0", text="outside").model_dump_json(indent=2).encode()
    )
    (outside / "a" / "9.0.0@1.json").write_bytes(b"precious")
    (outside / "1.5.0.json").write_bytes(b"precious")
    (outside / ".labels.jsonl").write_bytes(b"precious\n")
    return outside


def _snapshot(path: Path) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _swap_for_link(path: Path, target: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.symlink_to(target)


PLANTS: dict[str, Plant] = {
    "prompt-dir": lambda root, out: _swap_for_link(root / "b", out / "a"),
    "version-file": lambda root, out: (root / "a" / "1.5.0.json").symlink_to(out / "1.5.0.json"),
    "labels-file": lambda root, out: _swap_for_link(
        root / "a" / ".labels.jsonl", out / ".labels.jsonl"
    ),
    "trash-dir": lambda root, out: _swap_for_link(root / ".trash", out),
    "trash-prompt-dir": lambda root, out: _swap_for_link(root / ".trash" / "a", out / "a"),
    "quarantine-dir": lambda root, out: (root / ".quarantine").symlink_to(out),
    "index-file": lambda root, out: _swap_for_link(root / ".index.json", out / "1.5.0.json"),
}


def _prepared(tmp_path: Path, plant: str) -> tuple[Path, Path]:
    root = tmp_path / "store"
    store = FileSystemStorage(root)
    for number in ("1.0.0", "1.1.0"):
        store.save_version(make_version("a", number))
    store.save_version(make_version("b", "1.0.0"))
    store.set_label("a", "production", "1.1.0")
    store.save_version(make_version("a", "1.2.0"))
    store.delete_version("a", "1.2.0")  # something in the trash
    store.rebuild_index()
    store.close()
    outside = _outside(tmp_path)
    PLANTS[plant](root, outside)
    return root, outside


OPERATIONS: dict[str, Callable[[FileSystemStorage], object]] = {
    "get": lambda s: [s.get_version(p, "1.0.0") for p in ("a", "b")],
    "get-planted": lambda s: s.get_version("a", "1.5.0"),
    "latest": lambda s: [s.get_latest_version(p) for p in ("a", "b")],
    "list": lambda s: [s.list_versions(p) for p in s.list_prompts()],
    "list-b": lambda s: s.list_versions("b"),
    "labels": lambda s: s.list_labels("a"),
    "label-history": lambda s: s.label_history("a"),
    "set-label": lambda s: s.set_label("a", "staging", "1.0.0"),
    "save": lambda s: s.save_version(make_version("b", "1.1.0")),
    "delete": lambda s: s.delete_version("a", "1.0.0", force=True),
    "trash-list": lambda s: s.list_trash(),
    "trash-empty": lambda s: s.empty_trash(),
    "restore": lambda s: s.restore_version("a", "1.2.0"),
    "verify": lambda s: s.verify(),
    "repair": lambda s: s.repair(),
    "compress": lambda s: s.compress(keep_recent=0),
    "stats": lambda s: s.get_storage_stats(),
    "rebuild-index": lambda s: s.rebuild_index(),
    "clear-all": lambda s: s.clear_all(),
}


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
@pytest.mark.parametrize("plant", sorted(PLANTS))
def test_no_operation_follows_a_symlink_out_of_the_store(
    tmp_path: Path, plant: str, operation: str
) -> None:
    root, outside = _prepared(tmp_path, plant)
    before = _snapshot(outside)
    store = FileSystemStorage(root)
    try:
        result = OPERATIONS[operation](store)
    except OptimizerError as exc:  # refused with a code, one line
        assert exc.error_code in {"FS-SYMLINK-001", "VERSION-NOT-FOUND"}, exc
        assert "\n" not in exc.message
        result = None
    finally:
        store.close()
    assert _snapshot(outside) == before, "a file outside the store was changed"
    assert all(p.exists() for p in map(Path, before)), "a file outside the store was removed"
    if operation == "get-planted" or (operation == "get" and plant == "prompt-dir"):
        assert result is None or b"outside" not in repr(result).encode()
    if isinstance(result, list):  # nothing read from outside
        assert "outside" not in repr(result)


def test_verify_then_repair_a_symlinked_version_file(tmp_path: Path) -> None:
    root, outside = _prepared(tmp_path, "version-file")
    store = FileSystemStorage(root)
    problems = store.verify().problems
    assert [(p.code, Path(p.location).name) for p in problems] == [("FS-SYMLINK-001", "1.5.0.json")]
    actions = store.repair().actions
    assert [a.code for a in actions] == ["FS-SYMLINK-001"]
    assert store.verify().ok
    assert (outside / "1.5.0.json").read_bytes() == b"precious"
    moved = [p for p in (root / ".quarantine" / "a").iterdir()]
    assert len(moved) == 1 and moved[0].is_symlink()  # the link itself, kept for inspection


def test_verify_and_repair_a_symlinked_label_log(tmp_path: Path) -> None:
    root, outside = _prepared(tmp_path, "labels-file")
    store = FileSystemStorage(root)
    assert "FS-SYMLINK-001" in {p.code for p in store.verify().problems}
    assert "FS-SYMLINK-001" in {a.code for a in store.repair().actions}
    assert store.verify().ok and store.list_labels("a") == {}
    assert (outside / ".labels.jsonl").read_bytes() == b"precious\n"


def test_verify_reports_a_symlinked_prompt_directory(tmp_path: Path) -> None:
    root, _ = _prepared(tmp_path, "prompt-dir")
    store = FileSystemStorage(root)
    assert [(p.code, Path(p.location).name) for p in store.verify().problems] == [
        ("FS-SYMLINK-001", "b")
    ]
    with pytest.raises(OptimizerError) as caught:
        store.list_versions("b")
    assert caught.value.error_code == "FS-SYMLINK-001"
    assert os.path.islink(root / "b")
