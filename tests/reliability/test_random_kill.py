"""T1: a writer killed at random moments loses no acknowledged save.

The child prints ``ACK`` only after ``save_version`` returned; the parent
kills it with SIGKILL after a random delay, reopens the store, and checks
every acknowledged version byte for byte. Budget: PROMPTSHELF_SOAK_SECONDS
(default 6 s; set it higher for a soak)."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from promptshelf import FileSystemStorage

from .harness import version_files
from helpers import make_version

CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from helpers import make_version
from helpers import make_version
from promptshelf import FileSystemStorage
store = FileSystemStorage(sys.argv[1])
major, i = sys.argv[3], 0
while True:
    prompt = f"p{i % 5}"
    store.save_version(make_version(prompt, f"{major}.{i}.0", text=f"body {major} {i}"))
    print(f"ACK {prompt} {major}.{i}.0", flush=True)
    i += 1
"""


def test_random_sigkill_soak(tmp_path: Path) -> None:
    budget = float(os.environ.get("PROMPTSHELF_SOAK_SECONDS", "6"))
    seed = int(os.environ.get("PROMPTSHELF_SOAK_SEED", "1124"))
    rng = random.Random(seed)
    tests_dir = str(Path(__file__).resolve().parents[1])
    acked: list[tuple[str, str]] = []
    kills = 0
    deadline = time.monotonic() + budget
    while time.monotonic() < deadline:
        kills += 1
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(tmp_path), tests_dir, str(kills)],
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(rng.uniform(0.3, 0.6))  # interpreter start-up takes ~0.25 s of that
        assert child.poll() is None, "the writer exited before it was killed"
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        acked += [
            (line.split()[1], line.split()[2])
            for line in out.splitlines()
            if line.startswith("ACK")
        ]
    store = FileSystemStorage(tmp_path)
    for prompt_id, number in acked:
        major, index = number.split(".")[:2]
        expected = make_version(prompt_id, number, text=f"body {major} {index}")
        found = store.get_version(prompt_id, number)
        assert found is not None, f"acknowledged {prompt_id} {number} lost"
        # byte-identical: the canonical serialization of what was saved
        assert found.model_dump_json(indent=2) == expected.model_dump_json(indent=2)
    for prompt in {p for p, _ in acked}:
        last = max(
            (n for p, n in acked if p == prompt), key=lambda n: tuple(map(int, n.split(".")))
        )
        latest = store.get_latest_version(prompt)
        assert latest is not None
        assert tuple(map(int, latest.version.split("."))) >= tuple(map(int, last.split(".")))
    report = store.verify()
    assert {p.code for p in report.problems} <= {"TEMP-FILE"}
    assert store.get_storage_stats()["total_versions"] == len(version_files(tmp_path))
    print(
        f"T1 kills {kills}, acknowledged saves checked {len(acked)}, lost 0, "
        f"fsck problems {len(report.problems)}, seed {seed}"
    )
