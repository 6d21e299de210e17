"""How the filesystem backend knows what is stored without trusting a stale index.

The version files are the only truth. Two caches sit on top of them, and both
are checked against the directories' own ``stat`` before every use, so they
are exact across processes without any write-side bookkeeping (a save costs
the same at any store size):

* :class:`ListingCache` (per process): each prompt directory's sorted version
  list, reused while the directory's ``(inode, mtime, ctime)`` is unchanged.
* :class:`IndexSnapshot` (``.index.json``, shared): the original design's
  index format plus each directory's stamp, so ``get_storage_stats`` and
  ``list_prompts`` re-read only the directories that changed.

The racy-timestamp rule (as in git's index): a listing taken less than
``RACY_NS`` after the directory's last change is not trusted, because a second
change within the same timestamp tick would leave the stamp unchanged.
"""

from __future__ import annotations

import json
import os
import re
import stat
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from ... import semver, timestamps
from ...errors import ValidationError
from ...ids import validate_prompt_id
from . import io
from .io import TEMP_PREFIX

RACY_NS = 50_000_000
INDEX_FILE = ".index.json"
INDEX_FORMAT_VERSION = "1.0.0"

Stamp = tuple[int, int, int]


def stamp_of(st: os.stat_result) -> Stamp:
    return (st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def settled(st: os.stat_result, observed_at_ns: int) -> bool:
    """True when no later change could leave ``st``'s timestamps as they are."""
    return observed_at_ns - max(st.st_mtime_ns, st.st_ctime_ns) > RACY_NS


def parse_listing(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """Split a directory's names into sorted version numbers and leftover temp files.

    A version is ``X.Y.Z.json`` or, compressed, ``X.Y.Z.json.gz`` (listed once if both).
    """
    keyed: dict[semver.VersionKey, str] = {}
    temps: list[str] = []
    for name in names:
        if name.startswith(TEMP_PREFIX):
            temps.append(name)
            continue
        number = version_of(name)
        if number is not None:
            key = semver.try_parse(number)
            if key is not None:
                keyed[key] = number
    return [keyed[k] for k in sorted(keyed)], temps


def file_names(version: str) -> tuple[str, str]:
    """The plain and the compressed file name of a version."""
    return f"{version}.json", f"{version}.json.gz"


def version_of(name: str) -> str | None:
    """``"1.2.0"`` for ``1.2.0.json`` or ``1.2.0.json.gz``; None for any other name."""
    if name.endswith(".json"):
        return name[:-5]
    if name.endswith(".json.gz"):
        return name[:-8]
    return None


@dataclass(frozen=True)
class Listing:
    """A prompt directory's versions as of ``stamp``; ``trusted`` when not racy."""

    stamp: Stamp | None
    trusted: bool
    versions: tuple[str, ...]


NO_LISTING = Listing(None, False, ())


class ListingCache:
    """Per-process, bounded cache of prompt directory listings."""

    def __init__(self, enabled: bool, max_prompts: int = 4096) -> None:
        self.enabled = enabled
        self.max_prompts = max_prompts
        self._listings: OrderedDict[str, Listing] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, prompt_id: str, path: str) -> Listing | None:
        """The cached listing if the directory at ``path`` is unchanged (one ``lstat``: a
        directory with the stamp the listing was taken under holds the same names)."""
        if not self.enabled:
            return None
        with self._lock:
            cached = self._listings.get(prompt_id)
        if cached is None or not cached.trusted:
            return None
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return None
        return cached if stat.S_ISDIR(st.st_mode) and stamp_of(st) == cached.stamp else None

    def listing(self, prompt_id: str, dir_fd: int | None) -> tuple[Listing, list[str]]:
        """The listing of the prompt directory open as ``dir_fd`` (None: missing), plus temp
        files seen if it had to be re-read."""
        observed_at = time.time_ns()
        if dir_fd is None:
            self.forget(prompt_id)
            return NO_LISTING, []
        st = io.fstat(dir_fd)
        stamp = stamp_of(st)
        if self.enabled:
            with self._lock:
                cached = self._listings.get(prompt_id)
            if cached is not None and cached.trusted and cached.stamp == stamp:
                return cached, []
        numbers, temps = parse_listing(io.listdir(dir_fd))
        listing = Listing(stamp, settled(st, observed_at), tuple(numbers))
        if self.enabled:
            with self._lock:
                self._listings[prompt_id] = listing
                self._listings.move_to_end(prompt_id)
                if len(self._listings) > self.max_prompts:
                    self._listings.popitem(last=False)
        return listing, temps

    def forget(self, prompt_id: str) -> None:
        with self._lock:
            self._listings.pop(prompt_id, None)

    def clear(self) -> None:
        with self._lock:
            self._listings.clear()


@dataclass(slots=True)
class IndexEntry:
    """One prompt in the snapshot, kept compact: a 1,000,000-version store has 100,000 of these."""

    latest: str
    count: int
    versions_json: str  # the JSON array of version strings, kept as text
    size_bytes: int
    stamp: Stamp | None
    created_ns: int
    updated_ns: int

    @classmethod
    def of(
        cls,
        versions: list[str],
        size_bytes: int,
        stamp: Stamp | None,
        created_ns: int,
        updated_ns: int,
    ) -> IndexEntry:
        return cls(
            versions[-1],
            len(versions),
            json.dumps(versions),
            size_bytes,
            stamp,
            created_ns,
            updated_ns,
        )

    def to_line(self, prompt_id: str) -> str:
        """``"<prompt_id>": {...}`` on one line, in the original index's entry format."""
        stamp = json.dumps(list(self.stamp)) if self.stamp else "null"
        return (
            f'{json.dumps(prompt_id, ensure_ascii=False)}: {{"latest_version": '
            f'{json.dumps(self.latest)}, "version_count": {self.count}, "versions": '
            f'{self.versions_json}, "created_at": "{_iso(self.created_ns)}", '
            f'"updated_at": "{_iso(self.updated_ns)}", "size_bytes": {self.size_bytes}, '
            f'"dir_stamp": {stamp}}}'
        )

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IndexEntry:
        versions = raw["versions"]
        if not isinstance(versions, list) or not versions:
            raise ValueError("versions must be a non-empty list")
        if not all(isinstance(v, str) and semver.try_parse(v) for v in versions):
            raise ValueError("versions must be version strings")
        stamp = raw.get("dir_stamp")
        return cls.of(
            versions,
            int(raw.get("size_bytes", 0)),
            (int(stamp[0]), int(stamp[1]), int(stamp[2])) if stamp else None,
            _ns(raw.get("created_at")),
            _ns(raw.get("updated_at")),
        )


def _iso(ns: int) -> str:
    return timestamps.from_ns(ns).isoformat()


def _ns(value: object) -> int:
    try:
        return timestamps.to_ns(timestamps.parse(str(value)))  # naive (older indexes): UTC
    except ValueError:
        return 0


def scan_prompt_dir(path: str, previous: IndexEntry | None) -> tuple[IndexEntry | None, list[str]]:
    """Index entry for one prompt directory, reusing ``previous`` if the stamp matches."""
    observed_at = time.time_ns()
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None, []
    stamp = stamp_of(st)
    if previous is not None and previous.stamp == stamp:
        return previous, []
    total = 0
    names: list[str] = []
    try:
        with os.scandir(path) as entries:
            for entry in entries:
                names.append(entry.name)
                if version_of(entry.name) is not None:
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return None, []
    versions, temps = parse_listing(names)
    if not versions:
        return None, temps
    created = previous.created_ns if previous else st.st_ctime_ns
    trusted = stamp if settled(st, observed_at) else None
    return IndexEntry.of(versions, total, trusted, created, st.st_mtime_ns), temps


#: Largest ``.index.json`` in another layout (the original's pretty print) we parse whole.
MAX_FOREIGN_INDEX_BYTES = 64 * 1024 * 1024


class IndexSnapshot:
    """``.index.json``: a cache of the directory scan, never trusted over the files.

    Written in the original design's format, one prompt per line, so that it
    can be read back one line at a time: a 1,000,000-version index is never
    held in memory as one parsed document.
    """

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, INDEX_FILE)

    def load(self) -> dict[str, IndexEntry] | None:
        """Entries of a readable snapshot (``{}`` for an empty store); None when it is
        missing, unreadable or corrupt (the caller then rebuilds from the directories)."""
        try:
            with _open_index(os.path.dirname(self.path)) as handle:
                header = handle.readline()
                if header.startswith(b'{"version"') and header.rstrip().endswith(b'"index": {'):
                    return self._load_lines(handle)
                if os.fstat(handle.fileno()).st_size > MAX_FOREIGN_INDEX_BYTES:
                    return None
                raw = json.loads(header + handle.read())
            return {pid: IndexEntry.from_json(entry) for pid, entry in raw["index"].items()}
        except (
            OSError,
            ValueError,
            KeyError,
            TypeError,
            IndexError,
            AttributeError,
            RecursionError,
        ):
            return None

    @staticmethod
    def _load_lines(handle: Any) -> dict[str, IndexEntry]:
        entries: dict[str, IndexEntry] = {}
        for line in handle:
            line = line.rstrip(b"\n").rstrip(b",")
            if line == b"}}":
                return entries
            for prompt_id, raw in json.loads(b"{" + line + b"}").items():
                entries[prompt_id] = IndexEntry.from_json(raw)
        raise ValueError("index snapshot is truncated")

    def write(self, entries: dict[str, IndexEntry], layout: dict[str, Any]) -> None:
        """Replace the snapshot atomically; concurrent writers each leave a whole file."""
        header = (
            json.dumps(
                {
                    "version": INDEX_FORMAT_VERSION,
                    "last_updated": timestamps.utc_now().isoformat(),
                    "total_prompts": len(entries),
                    "total_versions": sum(e.count for e in entries.values()),
                    "layout": layout,
                }
            )[:-1]
            + ', "index": {\n'
        )

        def chunks() -> Iterator[bytes]:
            lines = [entries[pid].to_line(pid) for pid in sorted(entries)]
            for start in range(0, len(lines), 4096):
                part = ",\n".join(lines[start : start + 4096])
                more = ",\n" if start + 4096 < len(lines) else "\n"
                yield (part + more).encode("utf-8")

        root = os.path.dirname(self.path)
        tmp = f"{TEMP_PREFIX}index-{os.getpid()}-{time.time_ns()}.json"
        dir_fd = io.open_root(root)
        try:
            io.write_new(dir_fd, tmp, [header.encode(), *chunks(), b"}}\n"], durable=True)
            io.replace(dir_fd, tmp, INDEX_FILE)
            io.fsync(dir_fd)
        except BaseException:
            io.unlink(dir_fd, tmp)
            raise
        finally:
            io.close(dir_fd)

    def remove(self) -> None:
        dir_fd = io.open_root(os.path.dirname(self.path))
        try:
            io.unlink(dir_fd, INDEX_FILE)
        finally:
            io.close(dir_fd)


def _open_index(root: str) -> BinaryIO:
    """``.index.json`` opened for reading, never through a symlink (``ELOOP``)."""
    root_fd = io.open_root(root)
    try:
        return io.open_reader(root_fd, INDEX_FILE)
    finally:
        io.close(root_fd)


def iter_prompt_dirs(root: str, sharding: bool, shard_depth: int) -> Iterator[tuple[str, str]]:
    """``(prompt_id, path)`` for every candidate prompt directory under ``root``."""

    def children(path: str) -> list[tuple[str, str]]:
        # Read whole before yielding anything: a caller that stops early (or an exception
        # whose traceback keeps this frame alive) never holds a directory descriptor open.
        try:
            with os.scandir(path) as entries:
                return [
                    (entry.name, entry.path)
                    for entry in entries
                    if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
                ]
        except FileNotFoundError:
            return []

    shards = children(root) if sharding else [("", root)]
    for shard_name, shard_path in shards:
        if sharding and len(shard_name) != shard_depth:
            continue
        for name, path in children(shard_path):
            try:
                validate_prompt_id(name)
            except ValidationError:
                continue
            yield name, path


_SHARD_NAME = re.compile(r"[0-9a-f]{1,8}")


Layout = tuple[bool, int]  # (sharded, shard depth); the depth means nothing when flat


def detect_layout(root: str) -> dict[str, Any]:
    """``{"enable_sharding": True, "shard_depth": n}`` for a sharded store, else ``{}``."""
    layout = layout_on_disk(root) or recorded_layout(root)
    return {"enable_sharding": True, "shard_depth": layout[1]} if layout and layout[0] else {}


def layout_on_disk(root: str) -> Layout | None:
    """The layout the version files at ``root`` are in; None when there are none.

    The first top-level directory that holds versions (a prompt) or prompt
    directories of versions (a shard) settles it, so an open never lists the
    whole store. A store without versions has no layout on disk; the one its
    ``.index.json`` records (:func:`recorded_layout`) is then only a default.
    """
    try:
        with os.scandir(root) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                    continue
                found = classify_top(entry.path, entry.name)
                if found is not None:
                    return found
    except (FileNotFoundError, NotADirectoryError):
        return None
    return None


def classify_top(path: str, name: str) -> Layout | None:
    """What a top-level directory is: a prompt (flat), a shard, or (None) undecided."""
    try:
        names = os.listdir(path)
    except OSError:
        return None
    if parse_listing(names)[0]:
        return (False, 0)
    if not _SHARD_NAME.fullmatch(name):
        return None
    for _prompt_id, prompt_path in iter_prompt_dirs(path, sharding=False, shard_depth=0):
        try:
            if parse_listing(os.listdir(prompt_path))[0]:
                return (True, len(name))
        except OSError:
            continue
    return None


def recorded_layout(root: str) -> Layout | None:
    """The layout ``.index.json`` records, if it records one."""
    try:
        with _open_index(root) as handle:
            header = handle.readline().rstrip()
        if header.endswith(b', "index": {'):
            layout = json.loads(header[: -len(b', "index": {')] + b"}")["layout"]
            if layout.get("enable_sharding"):
                return (True, int(layout["shard_depth"]))
            return (False, 0)
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None
