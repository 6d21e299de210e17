"""The filesystem backend's only door to the operating system.

Every call that touches the disk goes through this small module, and every
one of them looks ``os.<name>`` up at call time. Tests can therefore wrap
these functions (or ``os`` itself) to count, fail or crash at any system call,
the way LevelDB's ``Env`` and SQLite's VFS make fault injection possible.

Below the store's root, every name is opened relative to its directory's
descriptor with ``O_NOFOLLOW``: a symlink anywhere inside the store (a prompt
directory, a version file, ``.labels.jsonl``, ``.trash``) fails with
``ELOOP`` here, in one place, and is never followed, for reading or writing.
The root itself may be a symlink: the user chose it.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import secrets
import stat
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import BinaryIO, cast

#: Flags for every file we open: never follow a planted symlink, never leak fds.
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

FILE_MODE = 0o644
DIR_MODE = 0o755


def open_dir(path: str) -> int:
    """Open a directory (its last component never a symlink) for ``*at`` calls and flock."""
    return os.open(path, os.O_RDONLY | _DIRECTORY | _NOFOLLOW)


def open_root(path: str) -> int:
    """Open the store's root, which may be a symlink (the user chose it)."""
    return os.open(path, os.O_RDONLY | _DIRECTORY | getattr(os, "O_CLOEXEC", 0))


def refused(name: str) -> OSError:
    """The one error for a symlink inside the store (callers translate ``ELOOP``)."""
    return OSError(errno.ELOOP, "is a symlink; the store never follows one", name)


def open_dir_at(parent_fd: int, name: str) -> int:
    """Open the directory ``name`` in ``parent_fd``; ``ELOOP`` if it is a symlink."""
    try:
        return os.open(name, os.O_RDONLY | _DIRECTORY | _NOFOLLOW, dir_fd=parent_fd)
    except NotADirectoryError:  # O_DIRECTORY reports a symlink as "not a directory"
        if is_symlink(parent_fd, name):
            raise refused(name) from None
        raise


def is_symlink(dir_fd: int, name: str) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def make_dir(parent_fd: int, name: str, durable: bool) -> bool:
    """Create ``name`` in ``parent_fd``; True if it was created. The parent is fsynced so
    the entry survives."""
    try:
        os.mkdir(name, DIR_MODE, dir_fd=parent_fd)
    except FileExistsError:
        return False
    if durable:
        os.fsync(parent_fd)
    return True


def is_dir_at(dir_fd: int, name: str) -> bool:
    """Whether ``name`` is a real directory (a symlink to one is not)."""
    try:
        return stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except FileNotFoundError:
        return False


def listdir(dir_fd: int) -> list[str]:
    return os.listdir(dir_fd)


def fstat(fd: int) -> os.stat_result:
    return os.fstat(fd)


def lstat_at(dir_fd: int, name: str) -> os.stat_result:
    return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)


def rmdir(parent_fd: int, name: str) -> bool:
    """Remove the empty directory ``name``; False if it is gone or not empty."""
    try:
        os.rmdir(name, dir_fd=parent_fd)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTEMPTY, errno.EEXIST):
            return False
        raise
    return True


def remove_tree(parent_fd: int, name: str) -> int:
    """Remove the directory ``name`` and everything in it without following any symlink
    (a symlink inside is removed itself; its target is never touched); returns how many
    files were removed. ``ELOOP`` if ``name`` itself is a symlink."""
    try:
        fd = open_dir_at(parent_fd, name)
    except FileNotFoundError:
        return 0
    removed = 0
    try:
        for child in listdir(fd):
            if stat.S_ISDIR(lstat_at(fd, child).st_mode):
                removed += remove_tree(fd, child)
            elif unlink(fd, child):
                removed += 1
    finally:
        close(fd)
    rmdir(parent_fd, name)
    return removed


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
    """Move an entry (a symlink moves as itself: rename never follows one)."""
    os.rename(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd)


def link_between(src_dir_fd: int, src: str, dst_dir_fd: int, dst: str) -> None:
    """Give the file ``src`` a second name ``dst`` in another directory; ``FileExistsError``
    rather than overwrite."""
    os.link(src, dst, src_dir_fd=src_dir_fd, dst_dir_fd=dst_dir_fd, follow_symlinks=False)


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


def read_file(dir_fd: int, name: str, max_bytes: int) -> tuple[bytes, os.stat_result]:
    """Read the whole file ``name`` in ``dir_fd``, no larger than ``max_bytes`` (checked
    before reading); ``ELOOP`` if it is a symlink."""
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
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


def open_reader(dir_fd: int, name: str) -> BinaryIO:
    """A buffered reader of the file ``name`` in ``dir_fd``; ``ELOOP`` if it is a symlink."""
    fd = os.open(name, os.O_RDONLY | _NOFOLLOW, dir_fd=dir_fd)
    try:
        return os.fdopen(fd, "rb")
    except BaseException:
        close(fd)
        raise


def append(
    dir_fd: int, name: str, data: bytes, durable: bool, prepare: Callable[[int], None]
) -> None:
    """Append ``data`` to ``name`` in ``dir_fd`` with one ``write`` (created if missing;
    the directory is then fsynced too). ``prepare(fd)`` runs first, on the open file (the
    label log cuts a torn last line there). A short write is cut off again and raised."""
    flags = os.O_RDWR | os.O_APPEND | _NOFOLLOW
    created = False
    try:
        fd = os.open(name, flags | os.O_CREAT | os.O_EXCL, FILE_MODE, dir_fd=dir_fd)
        created = True
    except FileExistsError:
        fd = os.open(name, flags, dir_fd=dir_fd)
    try:
        prepare(fd)
        size = os.fstat(fd).st_size
        written = os.write(fd, data)
        if written != len(data):
            os.ftruncate(fd, size)
            raise OSError(errno.ENOSPC, "short write", name)
        if durable:
            os.fsync(fd)
    finally:
        close(fd)
    if created and durable:
        fsync(dir_fd)


def pread(fd: int, size: int, offset: int) -> bytes:
    return os.pread(fd, size, offset)


def ftruncate(fd: int, size: int) -> None:
    os.ftruncate(fd, size)
