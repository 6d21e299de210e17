"""Inputs a new user found that gave tracebacks or wrong messages, through the real
``promptshelf`` entry point: each is now one line with a code, exit 1 or 2, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

PROMPTSHELF = str(Path(sys.executable).with_name("promptshelf"))


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMPTSHELF, *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def one_line(result: subprocess.CompletedProcess[str], code: str, exit_code: int) -> str:
    assert result.returncode == exit_code, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert lines[0].endswith(f"[{code}]"), lines[0]
    return lines[0]


DEEP = "[" * 2000 + "]" * 2000


@pytest.mark.parametrize(
    ("args", "code", "exit_code"),
    [
        (("save", "p", "--text", "hi", "--config", "@deep.json"), "PS-CHAT-001", 2),
        (("save", "p", "--messages", "deep.json"), "PS-CHAT-001", 2),
        (("import", "deep.json"), "PS-IMPORT-001", 1),
    ],
)
def test_json_nested_too_deeply_is_one_line(
    tmp_path: Path, args: tuple[str, ...], code: str, exit_code: int
) -> None:
    (tmp_path / "deep.json").write_text(DEEP + "\n")
    line = one_line(run(tmp_path, "--store", "t", *args), code, exit_code)
    assert "nested too deeply" in line
    assert not (tmp_path / "t").exists() or not any((tmp_path / "t").glob("*/*.json"))


@pytest.mark.parametrize("value", ["99999999999", "1e308", "nan", "inf", "-1"])
@pytest.mark.parametrize(
    "args",
    [("trash", "--empty", "--yes", "--older-than"), ("retain", "--younger-than")],
)
def test_an_age_out_of_range_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], value: str
) -> None:
    assert run(tmp_path, "--store", "t", "save", "p", "--text", "hi").returncode == 0
    line = one_line(run(tmp_path, "--store", "t", *args, value), "PS-USAGE-001", 2)
    assert "must be a number between 0 and 365250" in line


def test_the_longest_age_still_works(tmp_path: Path) -> None:
    assert run(tmp_path, "--store", "t", "save", "p", "--text", "hi").returncode == 0
    emptied = run(tmp_path, "--store", "t", "trash", "--empty", "--yes", "--older-than", "365250")
    assert emptied.returncode == 0, emptied.stderr
    kept = run(tmp_path, "--store", "t", "--json", "retain", "--younger-than", "365250")
    assert kept.returncode == 0, kept.stderr


def test_an_unknown_postgres_url_option_is_a_configuration_error(tmp_path: Path) -> None:
    """Refused before connecting, like an unknown option on sqlite:// and file://."""
    pytest.importorskip("psycopg")
    url = "postgresql://postgres@/postgres?host=/tmp/nowhere-at-all&foo=1"
    line = one_line(run(tmp_path, "--store", url, "list"), "PS-CONFIG-001", 2)
    assert '"foo"' in line and "schema" in line
    sqlite = run(tmp_path, "--store", "sqlite:///x.db?foo=1", "list")
    one_line(sqlite, "PS-CONFIG-001", 2)


@pytest.mark.parametrize("value", ["nan", "101", "-0.5", "inf"])
def test_a_score_must_be_a_number_between_0_and_100(tmp_path: Path, value: str) -> None:
    result = run(tmp_path, "--store", "t", "save", "p", "--text", "hi", "--overall", value)
    line = one_line(result, "PS-USAGE-001", 2)
    assert "must be a number between 0 and 100 (NaN and infinity refused)" in line
    saved = run(tmp_path, "--store", "t", "--json", "save", "p", "--text", "hi", "--overall", "55")
    assert saved.returncode == 0, saved.stderr


def test_a_store_at_a_dangling_symlink_says_so(tmp_path: Path) -> None:
    (tmp_path / "dang").symlink_to(tmp_path / "gone")
    for args in (("list",), ("save", "p", "--text", "hi")):
        line = one_line(run(tmp_path, "--store", "dang", *args), "FS-DIR-001", 2)
        assert "'dang' is a dangling symlink" in line and "is a file" not in line
    line = one_line(run(tmp_path, "--store", "dang/sub", "list"), "FS-DIR-001", 2)
    assert "is under 'dang', which is a dangling symlink" in line
    assert not (tmp_path / "gone").exists()


def test_keys_create_json_field_matches_readme(tmp_path: Path) -> None:
    created = run(tmp_path, "--store", "t", "--json", "keys", "create", "ci")
    assert created.returncode == 0, created.stderr
    data = json.loads(created.stdout)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert data["token"].startswith("psk_")
    assert "with `--json` it is the field `token`" in readme
    assert set(data) >= {"key_id", "name", "scopes", "created_at"}


README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_quickstart_comment_holds_after_the_tour(tmp_path: Path) -> None:
    """``make run`` imports the seed store first; the quickstart's version is still 1.0.0."""
    seed = Path(__file__).resolve().parents[1] / "examples" / "seed-store"
    assert run(tmp_path, "import", str(seed)).returncode == 0  # the tour, on ./promptshelf-data
    readme = README.read_text(encoding="utf-8")
    start = readme.index("## Quickstart")
    code = readme[
        readme.index("```python", start) + len("```python") : readme.index("```\n", start + 20)
    ]
    promised = code.split("create_version(prompt, analysis)")[1].split("#")[1].split()[0]
    script = tmp_path / "quickstart.py"
    script.write_text(code + "\nprint(v1.version)\n")
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == [promised] == ["1.0.0"]


def test_pull_refuses_a_directory_that_is_not_a_bundle(tmp_path: Path) -> None:
    """A subdirectory holding a .json file does not make a directory a bundle."""
    assert run(tmp_path, "--store", "s", "save", "p", "--text", "hi").returncode == 0
    assert run(tmp_path, "--store", "s", "label", "set", "p", "production", "1.0.0").returncode == 0
    cfg = tmp_path / "cfg"
    (cfg / "settings").mkdir(parents=True)
    (cfg / "settings" / "app.json").write_text('{"db": "x"}\n')
    (cfg / "README.txt").write_text("notes\n")
    before = sorted(str(p.relative_to(cfg)) for p in cfg.rglob("*"))
    line = one_line(run(tmp_path, "--store", "s", "pull", "-o", "cfg"), "PULL-TARGET-001", 1)
    assert "cfg exists and is not a bundle" in line
    assert sorted(str(p.relative_to(cfg)) for p in cfg.rglob("*")) == before

    first = run(tmp_path, "--store", "s", "pull", "-o", "bundle")  # new: marked as a bundle
    assert first.returncode == 0, first.stderr
    assert json.loads((tmp_path / "bundle" / ".promptshelf-bundle.json").read_text())["version"]
    again = run(tmp_path, "--store", "s", "pull", "-o", "bundle")
    assert again.returncode == 0, again.stderr
    (tmp_path / "bundle" / ".promptshelf-bundle.json").unlink()  # pulled before the marker
    legacy = run(tmp_path, "--store", "s", "pull", "-o", "bundle")
    assert legacy.returncode == 0, legacy.stderr
    (tmp_path / "bundle" / ".promptshelf-bundle.json").unlink()
    (tmp_path / "bundle" / "p" / "notes.json").write_text("{}")  # not only versions: refused
    one_line(run(tmp_path, "--store", "s", "pull", "-o", "bundle"), "PULL-TARGET-001", 1)
    listed = run(tmp_path, "--store", "bundle", "list")  # still a store the CLI reads
    assert listed.returncode == 0, listed.stderr
