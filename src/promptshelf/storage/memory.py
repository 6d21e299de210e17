"""``InMemoryStorage``: every version in a dict, for tests and short-lived runs.

Versions are kept as their serialized JSON bytes, not as objects: each read
builds a fresh object, so no caller can change what another one sees, and
anything that cannot be stored on disk is refused here too.
"""

from __future__ import annotations

import threading

from .. import semver
from ..errors import VersionConflictError
from ..models import PromptVersion
from .base import VersionStorage, encode_version


class InMemoryStorage(VersionStorage):
    backend_name = "memory"

    def __init__(self, create: bool = True) -> None:  # ``create`` is accepted for symmetry
        self._versions: dict[str, dict[str, bytes]] = {}
        self._lock = threading.Lock()

    def _save(self, version: PromptVersion) -> None:
        data = encode_version(version)
        with self._lock:
            versions = self._versions.setdefault(version.prompt_id, {})
            if version.version in versions:
                raise VersionConflictError(version.prompt_id, version.version)
            versions[version.version] = data

    def _get(self, prompt_id: str, version: str) -> PromptVersion | None:
        with self._lock:
            data = self._versions.get(prompt_id, {}).get(version)
        return None if data is None else PromptVersion.model_validate_json(data)

    def _version_numbers(self, prompt_id: str) -> list[str]:
        with self._lock:
            numbers = list(self._versions.get(prompt_id, ()))
        return semver.sort_versions(numbers)

    def _delete(self, prompt_id: str, version: str) -> bool:
        with self._lock:
            versions = self._versions.get(prompt_id)
            if versions is None or version not in versions:
                return False
            del versions[version]
            if not versions:
                del self._versions[prompt_id]
            return True

    def _clear(self) -> None:
        with self._lock:
            self._versions.clear()

    def _prompts(self) -> list[str]:
        with self._lock:
            return sorted(self._versions)
