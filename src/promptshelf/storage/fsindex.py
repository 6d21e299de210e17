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
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import semver
from ..errors import ValidationError
from ..ids import validate_prompt_id
from . import fsio
from .fsio import TEMP_PREFIX

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
    """Split a directory's names into sorted version numbers and leftover temp files."""
    keyed: list[tuple[semver.VersionKey, str]] = []
    temps: list[str] = []
    for name in names:
        if name.startswith(TEMP_PREFIX):
            temps.append(name)
        elif name.endswith(".json"):
            number = name[:-5]
            key = semver.try_parse(number)
            if key is not None:
                keyed.append((key, number))
    keyed.sort()
    return [number for _, number in keyed], temps


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

    def listing(self, prompt_id: str, path: str) -> tuple[Listing, list[str]]:
        """The directory's current listing, plus temp files seen if it had to be re-read."""
        observed_at = time.time_ns()
        try:
            st = os.stat(path)
        except FileNotFoundError:
            self.forget(prompt_id)
            return NO_LISTING, []
        stamp = stamp_of(st)
        if self.enabled:
            with self._lock:
                cached = self._listings.get(prompt_id)
            if cached is not None and cached.trusted and cached.stamp == stamp:
                return cached, []
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            self.forget(prompt_id)
            return NO_LISTING, []
        numbers, temps = parse_listing(names)
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


@dataclass
class IndexEntry:
    versions: list[str]
    size_bytes: int
    stamp: Stamp | None
    created_at: str
    updated_at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "latest_version": self.versions[-1] if self.versions else None,
            "version_count": len(self.versions),
            "versions": self.versions,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "size_bytes": self.size_bytes,
            "dir_stamp": list(self.stamp) if self.stamp else None,
        }

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> IndexEntry:
        stamp = raw.get("dir_stamp")
        versions = raw["versions"]
        if not isinstance(versions, list) or not all(isinstance(v, str) for v in versions):
            raise ValueError("versions must be a list of strings")
        return cls(
            versions=versions,
            size_bytes=int(raw.get("size_bytes", 0)),
            stamp=(int(stamp[0]), int(stamp[1]), int(stamp[2])) if stamp else None,
            created_at=str(raw.get("created_at", "")),
            updated_at=str(raw.get("updated_at", "")),
        )


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9).isoformat()


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
                if entry.name.endswith(".json"):
                    try:
                        total += entry.stat(follow_symlinks=False).st_size
                    except FileNotFoundError:
                        pass
    except FileNotFoundError:
        return None, []
    versions, temps = parse_listing(names)
    if not versions:
        return None, temps
    return (
        IndexEntry(
            versions=versions,
            size_bytes=total,
            stamp=stamp if settled(st, observed_at) else None,
            created_at=previous.created_at if previous else _iso(st.st_ctime_ns),
            updated_at=_iso(st.st_mtime_ns),
        ),
        temps,
    )


class IndexSnapshot:
    """``.index.json``: a cache of the directory scan, never trusted over the files."""

    def __init__(self, root: str) -> None:
        self.path = os.path.join(root, INDEX_FILE)

    def load(self) -> dict[str, IndexEntry]:
        """Entries of a readable snapshot; empty when missing or corrupt (then rebuilt)."""
        try:
            with open(self.path, "rb") as handle:
                raw = json.loads(handle.read())
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
            return {}

    def write(self, entries: dict[str, IndexEntry], layout: dict[str, Any]) -> None:
        """Replace the snapshot atomically; concurrent writers each leave a whole file."""
        document = {
            "version": INDEX_FORMAT_VERSION,
            "last_updated": datetime.now().isoformat(),
            "total_prompts": len(entries),
            "total_versions": sum(len(e.versions) for e in entries.values()),
            "layout": layout,
            "index": {pid: entries[pid].to_json() for pid in sorted(entries)},
        }
        data = json.dumps(document, indent=2, ensure_ascii=False).encode("utf-8")
        root = os.path.dirname(self.path)
        tmp = os.path.join(root, f"{TEMP_PREFIX}index-{os.getpid()}-{time.time_ns()}.json")
        dir_fd = fsio.open_dir(root)
        try:
            fsio.write_new(dir_fd, os.path.basename(tmp), data, durable=True)
            fsio.replace(dir_fd, os.path.basename(tmp), INDEX_FILE)
            fsio.fsync(dir_fd)
        except BaseException:
            fsio.unlink(dir_fd, os.path.basename(tmp))
            raise
        finally:
            fsio.close(dir_fd)

    def remove(self) -> None:
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def iter_prompt_dirs(root: str, sharding: bool, shard_depth: int) -> Iterator[tuple[str, str]]:
    """``(prompt_id, path)`` for every candidate prompt directory under ``root``."""

    def children(path: str) -> Iterator[tuple[str, str]]:
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    if entry.name.startswith(".") or not entry.is_dir(follow_symlinks=False):
                        continue
                    yield entry.name, entry.path
        except FileNotFoundError:
            return

    shards = children(root) if sharding else iter([("", root)])
    for shard_name, shard_path in shards:
        if sharding and len(shard_name) != shard_depth:
            continue
        for name, path in children(shard_path):
            try:
                validate_prompt_id(name)
            except ValidationError:
                continue
            yield name, path
