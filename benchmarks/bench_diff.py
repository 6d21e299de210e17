"""Diff benchmark: time and peak memory of ``compare_versions``' text diff on large texts.

Cases: 30 KB and 8 MB texts, each against itself, against a copy with scattered
one-word edits, and against an unrelated text of the same size. Then the whole
command, as a user runs it: ``promptshelf diff`` of a 7.8 MB version (the most a
version may hold is 8 MiB serialized) against itself and against an edited copy,
each in a fresh process, with its wall time and peak resident memory (the
interpreter, the imports, reading both versions and printing included). The floor is a
linear pass a diff cannot beat (``splitlines`` and ``split`` of both texts),
measured in the same run; the ratio to it is what to compare between machines.
Peak memory is traced (``tracemalloc``) in a second, separate run of each case,
because tracing slows the code it watches.

Usage::

    python benchmarks/bench_diff.py           # all cases, about a minute on 2 cores
    python benchmarks/bench_diff.py --old     # also the character matcher it replaced
                                              # (quadratic: 30 KB only, ~25 s)

Prints a table, then one JSON line with every figure. Nothing passes or fails here.
"""

from __future__ import annotations

import argparse
import difflib
import json
import random
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from promptshelf import FileSystemStorage, Prompt, PromptAnalysis, VersionManager
from promptshelf.diff import text_summary

KB, MB = 1024, 1024 * 1024


def make_text(size: int, seed: int) -> str:
    rnd = random.Random(seed)
    vocabulary = [
        "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rnd.randint(2, 9)))
        for _ in range(5000)
    ]
    lines: list[str] = []
    total = 0
    while total < size:
        line = " ".join(rnd.choice(vocabulary) for _ in range(rnd.randint(3, 20)))
        lines.append(line)
        total += len(line) + 1
    return "\n".join(lines)[:size]


def edited(text: str, edits: int, seed: int) -> str:
    rnd = random.Random(seed)
    lines = text.split("\n")
    for _ in range(edits):
        i = rnd.randrange(len(lines))
        words = lines[i].split(" ")
        words[rnd.randrange(len(words))] = "CHANGED"
        lines[i] = " ".join(words)
    return "\n".join(lines)


def floor(old: str, new: str) -> None:
    old.splitlines(), new.splitlines(), old.split(), new.split()


def old_character_ratio(old: str, new: str) -> None:
    """What ``compare_versions`` computed before: a character-level SequenceMatcher ratio."""
    difflib.SequenceMatcher(None, old, new, autojunk=False).ratio()


def timed(func: Callable[[str, str], Any], old: str, new: str) -> float:
    start = time.perf_counter()
    func(old, new)
    return time.perf_counter() - start


def peak_mib(func: Callable[[str, str], Any], old: str, new: str) -> float:
    tracemalloc.start()
    try:
        func(old, new)
        return tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


#: Runs the command in this interpreter and reports its own peak resident set on stderr
#: (VmHWM: ru_maxrss would carry the parent's peak across the exec on Linux).
CHILD = """
import sys
from promptshelf.cli import cli
try:
    cli(sys.argv[1:], prog_name="promptshelf", standalone_mode=False)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    print("MAXRSS", peak, file=sys.stderr)
"""


def command_figures(figures: dict[str, Any]) -> None:
    """``promptshelf diff`` end to end on a 7.8 MB version, each run in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        store = FileSystemStorage(f"{tmp}/store")
        manager = VersionManager(store)
        text = make_text(7_800_000, seed=1)
        analysis = PromptAnalysis(
            prompt_id="big", overall_score=1, clarity_score=1, efficiency_score=1
        )
        for body in (text, edited(text, 950, seed=2)):
            prompt = Prompt(id="big", workflow_id="w", node_id="n", node_type="llm", text=body)
            manager.create_version(prompt, analysis)
        store.close()
        for name, args in (
            ("self", ["1.0.0", "1.0.0"]),
            ("edited", ["1.0.0", "1.0.1"]),
            ("edited-json", ["1.0.0", "1.0.1", "--json"]),
        ):
            argv = [sys.executable, "-c", CHILD, "diff", "--store", f"{tmp}/store", "big", *args]
            start = time.perf_counter()
            done = subprocess.run(argv, capture_output=True, text=True, check=True)
            seconds = time.perf_counter() - start
            rss = int(done.stderr.split("MAXRSS")[-1]) / 1024
            key = f"cli-8MB-{name}"
            figures[key] = {"seconds": round(seconds, 2), "peak_rss_mib": round(rss)}
            print(f"{key:<22}{seconds:>9.2f}{'':>17}{rss:>10.0f} (resident)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--old", action="store_true", help="also time the replaced matcher")
    args = parser.parse_args()
    figures: dict[str, Any] = {}
    print(f"{'case':<22}{'seconds':>9}{'floor s':>9}{'ratio':>8}{'peak MiB':>10}{'similar':>9}")
    for size, label in ((30 * KB, "30KB"), (8 * MB, "8MB")):
        base = make_text(size, seed=1)
        cases = {
            "self": base,
            "edited": edited(base, max(3, size // (8 * KB)), seed=2),
            "unrelated": make_text(size, seed=3),
        }
        for name, other in cases.items():
            seconds = timed(text_summary, base, other)
            low = timed(floor, base, other)
            peak = peak_mib(text_summary, base, other)
            similarity = text_summary(base, other)["similarity"] if size < MB else float("nan")
            key = f"{label}-{name}"
            figures[key] = {
                "seconds": round(seconds, 3),
                "floor_seconds": round(low, 4),
                "ratio": round(seconds / low, 1),
                "peak_mib": round(peak, 1),
                "input_mib": round((len(base) + len(other)) / MB, 2),
            }
            print(
                f"{key:<22}{seconds:>9.2f}{low:>9.3f}{seconds / low:>8.0f}{peak:>10.1f}"
                f"{similarity:>9.3f}"
            )
        if args.old and size < MB:
            seconds = timed(old_character_ratio, base, cases["edited"])
            figures[f"{label}-edited-old-matcher"] = {"seconds": round(seconds, 2)}
            print(f"{label + '-edited-old':<22}{seconds:>9.2f}")
    command_figures(figures)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
