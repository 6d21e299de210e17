"""The client's durable cache: an embedded promptshelf store (``FileSystemStorage``).

Each fetched version is saved there with its SHA-256 sealed in the file, and
each fetched label is set there to the version the server named, so a process
that starts while the server is down can answer from disk. A read that fails
its checksum (or does not parse) is counted, the damage is moved out of the
way with the store's own ``repair()``, and the caller refetches: a damaged
cache entry is never served.

A bundle written by ``promptshelf pull`` is the same kind of store, opened
read-only and loaded whole at start.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from ..errors import CorruptVersionError, LoadError, OptimizerError, VersionConflictError
from ..models import PromptVersion
from ..storage.filesystem import FileSystemStorage

log = logging.getLogger("promptshelf.client")

#: ``(prompt_id, "label" | "version", name)``: what a client caches one answer under.
Key = tuple[str, str, str]

LABEL = "label"
VERSION = "version"
ACTOR = "promptshelf-client"


class DiskCache:
    """Versions and labels as the server last confirmed them, on disk, checksummed."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.store = FileSystemStorage(self.path, use_cache=False, durable=False)
        self.corrupt_found = 0
        self._lock = threading.Lock()

    def load(self, key: Key) -> PromptVersion | None:
        """The cached answer for ``key``, or None (missing, or damaged and now set aside)."""
        prompt_id, kind, name = key
        try:
            number = self.store.get_label(prompt_id, name) if kind == LABEL else name
            if number is None:
                return None
            return self.store.get_version(prompt_id, number)
        except (CorruptVersionError, LoadError) as exc:
            self._set_aside(key, exc)
            return None
        except OptimizerError as exc:
            log.warning("disk cache %s: cannot read %s: %s", self.path, key, exc)
            return None

    def put(self, key: Key, version: PromptVersion) -> None:
        """Record that the server answered ``version`` for ``key``; never raises."""
        prompt_id, kind, name = key
        try:
            with self._lock:
                self._put_version(version)
                if kind == LABEL and self.store.get_label(prompt_id, name) != version.version:
                    self.store.set_label(prompt_id, name, version.version, actor=ACTOR)
        except OptimizerError as exc:
            log.warning("disk cache %s: cannot keep %s: %s", self.path, key, exc)

    def forget(self, key: Key) -> None:
        """The server says ``key`` is gone: drop the label (or the version) here too."""
        prompt_id, kind, name = key
        try:
            with self._lock:
                if kind == LABEL:
                    self.store.remove_label(prompt_id, name, actor=ACTOR, reason="gone")
                elif self.store.delete_version(prompt_id, name, force=True):
                    self.store.empty_trash()
        except OptimizerError as exc:
            log.warning("disk cache %s: cannot forget %s: %s", self.path, key, exc)

    def entries(self) -> Iterator[tuple[Key, PromptVersion]]:
        """Every label and version held, as cache keys (damaged ones skipped)."""
        for prompt_id in self.store.list_prompts():
            for label in sorted(self.store.list_labels(prompt_id)):
                found = self.load((prompt_id, LABEL, label))
                if found is not None:
                    yield (prompt_id, LABEL, label), found
            for number in self.store.list_version_numbers(prompt_id):
                found = self.load((prompt_id, VERSION, number))
                if found is not None:
                    yield (prompt_id, VERSION, number), found

    def close(self) -> None:
        self.store.close()

    def _put_version(self, version: PromptVersion) -> None:
        try:
            held = self.store.get_version(version.prompt_id, version.version)
        except (CorruptVersionError, LoadError) as exc:
            self._set_aside((version.prompt_id, VERSION, version.version), exc)
            held = None
        if held == version:
            return
        if held is not None:  # the server deleted and re-created this number
            self.store.delete_version(version.prompt_id, version.version, force=True)
            self.store.empty_trash()
        try:
            self.store.save_version(version)
        except VersionConflictError:  # another process sharing the cache got there first
            pass

    def _set_aside(self, key: Key, exc: OptimizerError) -> None:
        self.corrupt_found += 1
        log.warning("disk cache %s: damaged entry for %s (%s); refetching", self.path, key, exc)
        try:
            with self._lock:
                self.store.repair()  # quarantines the damaged file, drops labels left dangling
        except OptimizerError as again:
            log.warning("disk cache %s: repair failed: %s", self.path, again)
