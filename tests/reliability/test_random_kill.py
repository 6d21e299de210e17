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

import pytest

from promptshelf import FileSystemStorage

from .harness import version_files
from helpers import make_version

CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
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


PG_CHILD = """
import sys
sys.path.insert(0, sys.argv[2])
from helpers import make_version
from promptshelf import PostgresStorage
store = PostgresStorage(sys.argv[1], schema=sys.argv[4])
major, i = sys.argv[3], 0
while True:
    store.save_versions([make_version(f"p{i % 3}", f"{major}.{i}.{k}") for k in range(3)])
    print(f"ACK p{i % 3} {major}.{i}", flush=True)
    i += 1
"""


def test_killed_postgres_clients_leave_no_half_written_rows(
    postgres_url: str, request: pytest.FixtureRequest
) -> None:
    """T31: SIGKILL clients mid-transaction; every acknowledged batch is whole, none is half."""
    from promptshelf import PostgresStorage

    from conftest import fresh_schema

    schema = fresh_schema(request)
    PostgresStorage(postgres_url, schema=schema).close()
    tests_dir = str(Path(__file__).resolve().parents[1])
    rng = random.Random(31)
    acked: list[tuple[str, str]] = []
    for kill in range(1, 6):
        child = subprocess.Popen(
            [sys.executable, "-c", PG_CHILD, postgres_url, tests_dir, str(kill), schema],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        lines = [child.stdout.readline()]  # the writer is in its loop, however slow start-up was
        time.sleep(rng.uniform(0.0, 0.3))  # then a random moment, most likely mid-transaction
        os.kill(child.pid, signal.SIGKILL)
        out, _ = child.communicate()
        acked += [
            (line.split()[1], line.split()[2])
            for line in [*lines, *out.splitlines()]
            if line.startswith("ACK")
        ]
    store = PostgresStorage(postgres_url, schema=schema)
    assert acked
    for prompt_id, batch in acked:
        assert [store.get_version(prompt_id, f"{batch}.{k}") is not None for k in range(3)] == [
            True,
            True,
            True,
        ]
    numbers = [n for p in ("p0", "p1", "p2") for n in store.list_version_numbers(p)]
    batches: dict[str, int] = {}
    for number in numbers:
        batch = number.rsplit(".", 1)[0]
        batches[batch] = batches.get(batch, 0) + 1
    assert set(batches.values()) == {3}, "a batch was half written"
    assert store.verify().ok
    print(f"T31 client kills 5, acknowledged batches {len(acked)}, half-written batches 0")
    store.close()
