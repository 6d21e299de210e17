"""Start-up: what a new process pays before its first answer (every command-line call is one).

Each figure is the median wall time of a fresh process over several runs, beside the
floor of the same interpreter doing nothing (``python -c pass``), and its peak resident
memory. Targets: ``import promptshelf`` <= 100 ms; ``promptshelf show ID latest --text``
on a 10,000-prompt store <= 150 ms end to end.

The children run with bytecode caches, as an installed package has them (pip
compiles them at install time): ``PYTHONDONTWRITEBYTECODE`` is dropped from their
environment, so the warm-up run writes them for an editable install too.

Usage::

    python benchmarks/startup.py            # builds a 10,000-prompt store in a temp dir
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from newprompts import build_raw

RUNS = 9
READ_ONE = (
    "import sys\n"
    "from promptshelf import FileSystemStorage\n"
    "print(FileSystemStorage(sys.argv[1]).get_version('p0000042', '1.0.0').prompt.text[:10])\n"
)


def _cli() -> str:
    """The installed ``promptshelf`` script beside this interpreter."""
    return str(Path(sys.executable).with_name("promptshelf"))


#: GNU time reports the command's own peak RSS (a child forked from this process would
#: inherit this process's figure: Linux keeps ru_maxrss across execve).
GNU_TIME = shutil.which("time") or "/usr/bin/time"


#: The children's environment: this one, with bytecode caches allowed (see above).
CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _once(command: list[str]) -> tuple[float, float]:
    """Wall milliseconds and peak RSS (MiB; NaN without GNU time) of one run of ``command``."""
    with tempfile.NamedTemporaryFile("r") as out:
        wrapped = [GNU_TIME, "-f", "%M", "-o", out.name, *command]
        measured = os.path.exists(GNU_TIME)
        begin = time.perf_counter()
        subprocess.run(
            wrapped if measured else command,
            check=True,
            stdout=subprocess.DEVNULL,
            env=CHILD_ENV,
        )
        wall = (time.perf_counter() - begin) * 1000
        rss = int(out.read().split()[-1]) / 1024 if measured else float("nan")
    return wall, rss


def timed(command: list[str]) -> tuple[float, float]:
    """Median wall milliseconds and median peak RSS (MiB) of ``command`` over RUNS runs."""
    _once(command)  # warm the page cache
    runs = [_once(command) for _ in range(RUNS)]
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


def run(base: Path, prompts: int) -> dict[str, float]:
    root = base / "startup-store"
    build_raw(root, prompts, sharded=False)
    python = sys.executable
    cases = {
        "interpreter": [python, "-c", "pass"],
        "import": [python, "-c", "import promptshelf"],
        "read_one": [python, "-c", READ_ONE, str(root)],
        "cli_show_text": [_cli(), "show", "p0000042", "latest", "--text", "--store", str(root)],
        "cli_help": [_cli(), "--help"],
    }
    figures: dict[str, float] = {"startup_store_prompts": prompts}
    for name, command in cases.items():
        ms, rss = timed(command)
        figures[f"startup_{name}_ms"] = ms
        figures[f"startup_{name}_rss_mib"] = rss
    return figures


def report(fig: dict[str, float]) -> None:
    floor = fig["startup_interpreter_ms"]
    rows = [
        ("python -c pass (floor)", "interpreter", ""),
        ("import promptshelf", "import", "target <= 100 ms"),
        (f"open {int(fig['startup_store_prompts']):,} prompts + read one", "read_one", ""),
        ("promptshelf show ID latest --text", "cli_show_text", "target <= 150 ms"),
        ("promptshelf --help", "cli_help", ""),
    ]
    print("start-up (a new process each time; median wall time, peak RSS):")
    for label, key, target in rows:
        ms = fig[f"startup_{key}_ms"]
        print(
            f"  {label:<38} {ms:7.1f} ms  +{ms - floor:6.1f} ms over the floor"
            f"  {fig[f'startup_{key}_rss_mib']:5.1f} MiB  {target}"
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prompts", type=int, default=10_000)
    parser.add_argument("--dir", help="where to build the store (default: a temp dir)")
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="promptshelf-startup-", dir=args.dir))
    try:
        figures = run(base, args.prompts)
        report(figures)
        print(json.dumps({k: round(v, 3) for k, v in figures.items()}))
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
