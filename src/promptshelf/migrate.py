"""Copy every version of every prompt from one store to another, any backend to any backend.

Re-running a migration is safe: a version already in the destination is
compared with the source and skipped when identical; one that differs is
reported as a conflict and never overwritten. At the end every source
version is checked to be present in the destination.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from .errors import VersionConflictError
from .storage.base import VersionStorage

#: ``progress(done, total)`` is called after each prompt; total counts prompts.
Progress = Callable[[int, int], None]

BATCH = 500


@dataclass
class MigrationReport:
    prompts: int = 0
    copied: int = 0
    skipped_identical: int = 0
    conflicts: list[tuple[str, str]] = field(default_factory=list)
    missing_after: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when every source version is in the destination with identical content."""
        return not self.conflicts and not self.missing_after

    def to_dict(self) -> dict[str, object]:
        return {
            "prompts": self.prompts,
            "copied": self.copied,
            "skipped_identical": self.skipped_identical,
            "conflicts": [list(c) for c in self.conflicts],
            "missing_after": [list(m) for m in self.missing_after],
            "ok": self.ok,
        }


def migrate(
    source: VersionStorage, destination: VersionStorage, progress: Progress | None = None
) -> MigrationReport:
    """Copy ``source`` into ``destination``; see the module docstring for what is skipped."""
    report = MigrationReport()
    prompts = source.list_prompts()
    for done, prompt_id in enumerate(prompts, start=1):
        present = set(destination.list_version_numbers(prompt_id))
        pending = []
        for version in source.list_versions(prompt_id):
            if version.version not in present:
                pending.append(version)
            elif destination.get_version(prompt_id, version.version) == version:
                report.skipped_identical += 1
            else:
                report.conflicts.append((prompt_id, version.version))
        for start in range(0, len(pending), BATCH):
            chunk = pending[start : start + BATCH]
            try:
                report.copied += destination.save_versions(chunk)
            except VersionConflictError:
                # Someone wrote one of these meanwhile: fall back to one at a time.
                for version in chunk:
                    if destination.get_version(prompt_id, version.version) is None:
                        destination.save_version(version)
                        report.copied += 1
                    elif destination.get_version(prompt_id, version.version) == version:
                        report.skipped_identical += 1
                    else:
                        report.conflicts.append((prompt_id, version.version))
        report.prompts += 1
        if progress is not None:
            progress(done, len(prompts))
    for prompt_id in prompts:
        have = set(destination.list_version_numbers(prompt_id))
        for number in source.list_version_numbers(prompt_id):
            if number not in have:
                report.missing_after.append((prompt_id, number))
    return report
