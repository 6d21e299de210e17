"""T12-T15: damaged files. Every truncation and bit flip of a version file is detected
with a coded error, reported by verify() with its location, and repaired without
losing any intact version; a damaged SQLite file never yields wrong data."""

from __future__ import annotations

import random
import shutil
import sqlite3
from pathlib import Path

import pytest

from promptshelf import CorruptVersionError, FileSystemStorage, OptimizerError, SQLiteStorage

from helpers import make_version

INTACT = [make_version("p", "1.0.0", text="intact one"), make_version("q", "1.0.0", text="two")]
VICTIM = make_version("p", "1.1.0", text="the victim")


def _store(root: Path) -> Path:
    FileSystemStorage(root).save_versions([*INTACT, VICTIM])
    return root / "p" / "1.1.0.json"


def _expect_detected(root: Path, data: bytes) -> str:
    """Plant ``data`` as the victim's file: refused with a code, reported, repaired."""
    (root / "p" / "1.1.0.json").write_bytes(data)
    store = FileSystemStorage(root, use_cache=False)
    with pytest.raises(CorruptVersionError) as caught:
        store.get_version("p", "1.1.0")
    report = store.verify()
    assert [p.location for p in report.problems] == [str(root / "p" / "1.1.0.json")]
    store.repair()
    assert store.verify().ok
    for version in INTACT:
        assert store.get_version(version.prompt_id, version.version) == version
    return caught.value.error_code


def test_truncation_at_every_offset(tmp_path: Path) -> None:
    template = tmp_path / "template"
    original = _store(template).read_bytes()
    codes: dict[str, int] = {}
    for cut in range(len(original)):
        root = tmp_path / "run"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root)
        code = _expect_detected(root, original[:cut])
        codes[code] = codes.get(code, 0) + 1
    print(f"T12 truncations tried {len(original)}, detected {sum(codes.values())}: {codes}")
    assert sum(codes.values()) == len(original)


def test_bit_flips(tmp_path: Path) -> None:
    template = tmp_path / "template"
    original = _store(template).read_bytes()
    rng = random.Random(12)
    offsets = sorted(rng.sample(range(len(original)), min(400, len(original))))
    codes: dict[str, int] = {}
    for offset in offsets:
        root = tmp_path / "run"
        shutil.rmtree(root, ignore_errors=True)
        shutil.copytree(template, root)
        damaged = bytearray(original)
        damaged[offset] ^= 1 << rng.randrange(8)
        code = _expect_detected(root, bytes(damaged))
        codes[code] = codes.get(code, 0) + 1
    print(f"T13 bit flips tried {len(offsets)} (seed 12), detected {sum(codes.values())}: {codes}")


@pytest.mark.parametrize(
    "content",
    [b"", b"\xff\xfe\xfd not utf-8", b"null", b"[]", b"{}", b"\x00" * 100],
    ids=["empty", "invalid-utf8", "null", "array", "empty-object", "zeros"],
)
def test_other_damage(tmp_path: Path, content: bytes) -> None:
    _store(tmp_path)
    assert _expect_detected(tmp_path, content) in ("FS-LOAD-001", "PS-CHECKSUM-001")


def test_a_misnamed_file(tmp_path: Path) -> None:
    _store(tmp_path)
    other = (tmp_path / "q" / "1.0.0.json").read_bytes()
    assert _expect_detected(tmp_path, other) == "FS-LOAD-001"


def test_a_damaged_sqlite_file_never_gives_wrong_data(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    store = SQLiteStorage(path)
    versions = [
        make_version(f"p{i}", f"1.{j}.0", text=f"text {i} {j} " * 20)
        for i in range(10)
        for j in range(5)
    ]
    store.save_versions(versions)
    store.close()
    rng = random.Random(5)
    original = path.read_bytes()
    outcomes = {"correct": 0, "coded error": 0}
    for trial in range(60):
        damaged = bytearray(original)
        for _ in range(8):
            damaged[rng.randrange(100, len(damaged))] ^= 0xFF
        path.write_bytes(bytes(damaged))
        try:
            reader = SQLiteStorage(path)
            for version in versions:
                found = reader.get_version(version.prompt_id, version.version)
                assert found is None or found == version, f"wrong data in trial {trial}"
            outcomes["correct"] += 1
            reader.close()
        except OptimizerError as exc:
            assert exc.error_code
            outcomes["coded error"] += 1
        except sqlite3.Error as exc:  # pragma: no cover - the failure this test looks for
            pytest.fail(f"raw sqlite3 error leaked: {exc!r}")
    print(f"T30 SQLite damaged files: {outcomes}, wrong data 0")
