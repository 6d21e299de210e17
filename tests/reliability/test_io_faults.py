"""T8/T9: ENOSPC, EIO and EROFS at every file-system call of an operation, once and
persistently: saves, deletes and labels, and the maintenance paths (compress, rebuild,
repair, restore, empty-trash).

After each injected fault: the operation raised a coded promptshelf error or
succeeded (never a raw ``OSError``); a failed fsync was never followed by success;
no file descriptor leaked; the version is absent or whole; once the fault clears
the store works.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from promptshelf import (
    FileSystemStorage,
    OptimizerError,
    VersionConflictError,
    VersionNotFoundError,
)

from .harness import (
    OS_CALLS,
    check_consistent,
    check_trashed,
    count_fds,
    fresh_copy,
    make_prestate,
)
from helpers import make_version

NEW = make_version("p", "1.1.0", text="written under faults")
NEW_Q = make_version("q", "1.0.0", text="new prompt under faults")

OPERATIONS: dict[str, Callable[[FileSystemStorage], object]] = {
    "save": lambda s: s.save_version(NEW),
    "save-new-prompt": lambda s: s.save_version(NEW_Q),
    "bulk": lambda s: s.save_versions([NEW, NEW_Q]),
    "delete": lambda s: s.delete_version("s", "1.0.0"),
    "label": lambda s: s.set_label("p", "production", "1.0.0"),
    "compress": lambda s: s.compress(keep_recent=0),
    "rebuild": lambda s: s.rebuild_index(),
    "repair": lambda s: s.repair(),
    "restore": lambda s: s.restore_version("t", "1.0.0"),
    "empty-trash": lambda s: s.empty_trash(),
}


class Faults:
    def __init__(self, fail_at: int, persistent: bool, code: int) -> None:
        self.fail_at, self.persistent, self.code = fail_at, persistent, code
        self.calls = 0
        self.failed_fsync = False
        self.injected = False

    @contextmanager
    def installed(self) -> Iterator[None]:
        saved = {name: getattr(os, name) for name in OS_CALLS}

        def wrap(name: str, real: Callable[..., object]) -> Callable[..., object]:
            def faulty(*args: object, **kwargs: object) -> object:
                self.calls += 1
                hit = self.calls == self.fail_at or (self.persistent and self.calls > self.fail_at)
                if not hit:
                    return real(*args, **kwargs)
                self.injected = True
                if name == "fsync":
                    self.failed_fsync = True
                if name == "close":  # close frees the descriptor even when it reports an error
                    real(*args, **kwargs)
                raise OSError(self.code, os.strerror(self.code))

            return faulty

        for name, real in saved.items():
            setattr(os, name, wrap(name, real))
        try:
            yield
        finally:
            for name, real in saved.items():
                setattr(os, name, real)


#: Saves, deletes and labels under a full disk and a failing disk; maintenance under a full
#: disk and a read-only one (what a user meets when running compress or repair).
WRITES = ("save", "save-new-prompt", "bulk", "delete", "label")
CASES = [
    pytest.param(operation, code, id=f"{operation}-{errno.errorcode[code]}")
    for operation in sorted(OPERATIONS)
    for code in ((errno.ENOSPC, errno.EIO) if operation in WRITES else (errno.ENOSPC, errno.EROFS))
]


@pytest.mark.parametrize("persistent", [False, True], ids=["once", "persistent"])
@pytest.mark.parametrize(("operation", "code"), CASES)
def test_faults_at_every_call(tmp_path: Path, operation: str, code: int, persistent: bool) -> None:
    template = make_prestate(tmp_path / "template", trash=True)
    injected = 0
    for fail_at in range(1, 400):
        root = fresh_copy(template, tmp_path / "run")
        store = FileSystemStorage(root)
        fds = count_fds()
        faults = Faults(fail_at, persistent, code)
        outcome = "ok"
        with faults.installed():
            try:
                OPERATIONS[operation](store)
            except OptimizerError as exc:
                assert exc.error_code, exc
                outcome = "raised"
        store.close()
        assert count_fds() == fds, f"descriptor leaked at call {fail_at}"
        if not faults.injected:
            assert outcome == "ok"
            break
        injected += 1
        if faults.failed_fsync:
            assert outcome == "raised", f"a failed fsync at call {fail_at} was acknowledged"
        checked = check_consistent(root, may_be_gone={("s", "1.0.0")})
        check_trashed(checked)
        checked.close()  # every store the test opens is closed: no descriptor left to the GC
        retry = FileSystemStorage(root)  # the fault has cleared: the store works again
        try:
            OPERATIONS[operation](retry)
        except (VersionConflictError, VersionNotFoundError):
            pass  # the faulty attempt had done it (durability unknown): now it is there
        for version in (NEW, NEW_Q):
            found = retry.get_version(version.prompt_id, version.version)
            assert found is None or found == version
        check_trashed(retry)
        retry.close()
    else:
        pytest.fail("the operation never completed")
    print(
        f"T8 {operation} {errno.errorcode[code]} persistent={persistent}: "
        f"faults injected {injected}, acknowledged after failed fsync 0, leaked fds 0"
    )
