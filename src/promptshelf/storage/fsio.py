"""The filesystem backend's only door to the operating system.

Every call that changes the disk goes through this small module, and every
one of them looks ``os.<name>`` up at call time. Tests can therefore wrap
these functions (or ``os`` itself) to count, fail or crash at any system call,
the way LevelDB's ``Env`` and SQLite's VFS make fault injection possible.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import time
from collections.abc import Callable
from typing import cast

#: Flags for every file we open: never follow a planted symlink, never leak fds.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

FILE_MODE = 0o644
DIR_MODE = 0o755


def open_dir(path: str) -> int:
    """Open a directory (never through a symlink) for ``*at`` calls, fsync and flock."""
    return os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)


def make_dir(path: str, parent_fd: int | None, durable: bool) -> bool:
    """Create ``path``; True if it was created. The parent is fsynced so the entry survives."""
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:
        return False
    if durable and parent_fd is not None:
        os.fsync(parent_fd)
    return True


def write_new(dir_fd: int, name: str, data: bytes, durable: bool) -> None:
    """Create ``name`` exclusively in ``dir_fd`` and write ``data`` (fsynced when durable)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE, dir_fd=dir_fd)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    finally:
        os.close(fd)


def link(dir_fd: int, src: str, dst: str) -> None:
    """Publish ``src`` as ``dst``; raises ``FileExistsError`` instead of overwriting."""
    os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


def replace(dir_fd: int, src: str, dst: str) -> None:
    os.replace(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def unlink(dir_fd: int, name: str) -> bool:
    try:
        os.unlink(name, dir_fd=dir_fd)
    except FileNotFoundError:
        return False
    return True


def fsync(fd: int) -> None:
    os.fsync(fd)


def close(fd: int) -> None:
    os.close(fd)


def read_file(path: str, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """Read a whole file no larger than ``max_bytes`` (checked before reading)."""
    fd = os.open(path, os.O_RDONLY | _NOFOLLOW)
    try:
        st = os.fstat(fd)
        if st.st_size > max_bytes:
            raise OverflowError(st.st_size)
        chunks = []
        remaining = st.st_size + 1  # one byte more: notice a file still growing
        while remaining > 0:
            chunk = os.read(fd, remaining)
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
        data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        if len(data) > max_bytes:
            raise OverflowError(len(data))
        return data, st
    finally:
        os.close(fd)


def lock(fd: int, timeout: float, *, shared: bool = False) -> bool:
    """``flock`` ``fd``, polling until ``timeout`` seconds pass; False on timeout.

    ``flock`` (not ``lockf``) because a POSIX record lock is silently dropped
    when *any* descriptor of the file is closed in the process.
    """
    mode = (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    delay = 0.0001
    while True:
        try:
            fcntl.flock(fd, mode)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            return False
        time.sleep(delay)
        delay = min(delay * 2, 0.01)


def try_lock(fd: int) -> bool:
    return lock(fd, 0.0)


def unlock(fd: int) -> None:
    fcntl.flock(fd, fcntl.LOCK_UN)


def _load_syncfs() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        func = libc.syncfs
    except (OSError, AttributeError):
        return None
    func.argtypes = [ctypes.c_int]
    func.restype = ctypes.c_int
    return cast("Callable[[int], int]", func)


_SYNCFS = _load_syncfs()


def sync_filesystem(fd: int) -> None:
    """Flush every dirty page and inode of the filesystem holding ``fd`` (one call for a batch).

    Linux ``syncfs(2)``, which reports write-back errors since 5.8; elsewhere ``sync()``.
    """
    if _SYNCFS is None:
        os.sync()
        return
    if _SYNCFS(fd) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
