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
import secrets
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
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


def write_new(dir_fd: int, name: str, data: bytes | Iterable[bytes], durable: bool) -> None:
    """Create ``name`` exclusively in ``dir_fd`` and write ``data`` (fsynced when durable)."""
    fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, FILE_MODE, dir_fd=dir_fd)
    try:
        for chunk in [data] if isinstance(data, bytes) else data:
            _write_all(fd, chunk, durable=False)
        if durable:
            os.fsync(fd)
    finally:
        close(fd)


@dataclass
class Staged:
    """File content written but not yet visible under its final name.

    Linux gives it no name at all (``O_TMPFILE``): a crash before
    :func:`publish` leaves nothing behind. Elsewhere it is a temp file whose
    name starts with ``TEMP_PREFIX``, never read as a version.
    """

    dir_fd: int
    fd: int | None = None
    temp: str | None = None


TEMP_PREFIX = ".tmp-"
_unnamed_files = hasattr(os, "O_TMPFILE") and os.path.isdir("/proc/self/fd")


def uses_named_temps() -> bool:
    """True when staging falls back to named temp files (which a crash can leave behind)."""
    return not _unnamed_files


def stage(dir_fd: int, data: bytes, durable: bool) -> Staged:
    """Write ``data`` to a new file in ``dir_fd`` that no reader can see yet."""
    global _unnamed_files
    if _unnamed_files:
        try:
            fd = os.open(".", os.O_TMPFILE | os.O_WRONLY | _NOFOLLOW, FILE_MODE, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
            _unnamed_files = False  # this filesystem cannot: use named temp files
        else:
            staged = Staged(dir_fd, fd=fd)
            try:
                _write_all(fd, data, durable)
            except BaseException:
                discard(staged)
                raise
            return staged
    temp = f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
    write_new(dir_fd, temp, data, durable)
    return Staged(dir_fd, temp=temp)


def publish(staged: Staged, name: str) -> None:
    """Give staged content its final name; ``FileExistsError`` rather than overwrite."""
    if staged.fd is not None:
        os.link(f"/proc/self/fd/{staged.fd}", name, dst_dir_fd=staged.dir_fd, follow_symlinks=True)
    else:
        assert staged.temp is not None  # a Staged has either an fd or a temp name
        link(staged.dir_fd, staged.temp, name)


def discard(staged: Staged) -> None:
    """Release staged content: close the unnamed file, or remove the temp name.

    Never raises: it runs on cleanup paths, and a temp name that could not be
    removed is only a leftover that the next writer holding the lock removes.
    """
    if staged.fd is not None:
        close(staged.fd)
        staged.fd = None
    elif staged.temp is not None:
        try:
            unlink(staged.dir_fd, staged.temp)
        except OSError:
            pass
        staged.temp = None


def _write_all(fd: int, data: bytes, durable: bool) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]
    if durable:
        os.fsync(fd)


def link(dir_fd: int, src: str, dst: str) -> None:
    """Publish ``src`` as ``dst``; raises ``FileExistsError`` instead of overwriting."""
    os.link(src, dst, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)


def rename(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


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
    """Close ``fd``; an error is ignored: Linux frees the descriptor anyway, and whatever
    mattered was fsynced (and checked) before."""
    try:
        os.close(fd)
    except OSError:
        pass


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
        close(fd)


def gunzip(data: bytes, max_bytes: int) -> bytes:
    """Decompress ``data``, refusing (``OverflowError``) to inflate past ``max_bytes``."""
    inflater = zlib.decompressobj(wbits=31)  # 31: gzip framing
    out = inflater.decompress(data, max_bytes + 1)
    if len(out) > max_bytes:
        raise OverflowError(max_bytes)
    if not inflater.eof:
        raise EOFError("truncated gzip stream")
    return out


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


def exists(dir_fd: int, name: str) -> bool:
    """Whether ``name`` exists in ``dir_fd`` (a symlink counts; it is never followed)."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return False
    return True


def read_at(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        close(fd)
