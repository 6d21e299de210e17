"""The examples in the repository run, twice in a row, on a fresh store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_quickstart_runs_again_and_again(tmp_path: Path) -> None:
    env = {**os.environ, "PROMPTSHELF_DATA": str(tmp_path / "data")}
    first = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "saved wf_001_llm_1 1.0.0" in first.stdout
    second = subprocess.run(
        [sys.executable, str(EXAMPLES / "quickstart.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "saved wf_001_llm_1 1.1.0" in second.stdout
    assert "rollback to 1.0.0: new version 1.1.1" in second.stdout
    assert "store holds 3 prompts, 7 versions" in second.stdout


def test_the_readme_quickstart_runs(tmp_path: Path) -> None:
    readme = (EXAMPLES.parent / "README.md").read_text(encoding="utf-8")
    start = readme.index("## Quickstart")
    code = readme[
        readme.index("```python", start) + len("```python") : readme.index("```\n", start + 20)
    ]
    script = tmp_path / "quickstart.py"
    script.write_text(code + "\nprint(v1.version, latest.version, best.version, rolled.version)\n")
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["1.0.0", "1.0.0", "1.0.0", "1.0.1"]
