"""A new output directory built under a hidden temporary name beside it and renamed only
when complete, so a killed or failed ``export DIR`` / ``pull -o DIR`` leaves no directory
that reads as a whole store or bundle; an existing one is updated in place (re-running
finishes what a cut-short run left)."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

PARTIAL = ".partial-"


@contextlib.contextmanager
def staged_directory(final: Path) -> Iterator[Path]:
    """The directory to write: ``final`` itself when it exists, else a temporary sibling
    that becomes ``final`` when the block ends without an error (and is removed if not)."""
    if final.exists() or final.is_symlink():
        yield final
        return
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    _remove_stale(parent, final.name)
    work = parent / f".{final.name}{PARTIAL}{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        yield work
        if final.exists() or final.is_symlink():
            raise FileExistsError(17, "appeared while writing; not replacing it", str(final))
        os.rename(work, final)
        with contextlib.suppress(OSError):
            fd = os.open(parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise


def _remove_stale(parent: Path, name: str) -> None:
    """Remove what a killed run (its process gone) left under a temporary name."""
    with contextlib.suppress(OSError):
        for leftover in parent.glob(f".{name}{PARTIAL}*"):
            pid = leftover.name.rpartition(PARTIAL)[2]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(leftover, ignore_errors=True)
            except OSError:
                pass
