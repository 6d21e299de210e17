"""Retention: which versions to keep, and removing the rest (into the trash).

A version is kept when it is among a prompt's newest ``keep_last`` versions
or younger than ``keep_younger_than`` (either rule keeps it). Whatever the
rules say, these are always kept: the latest version, the best-scoring one,
every version a label points at, and every ancestor (``parent_version``,
followed to the root) of a kept version, so no kept version loses its
lineage. A policy with no rule keeps everything.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import semver
from .errors import ConfigurationError
from .models import PromptVersion
from .storage.base import VersionStorage


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int | None = None
    keep_younger_than: timedelta | None = None

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 0:
            raise ConfigurationError(f"keep_last must be >= 0, got {self.keep_last}")
        if self.keep_younger_than is not None and self.keep_younger_than < timedelta(0):
            raise ConfigurationError("keep_younger_than must not be negative")


@dataclass
class RetentionReport:
    dry_run: bool
    removed: list[tuple[str, str]] = field(default_factory=list)
    kept: int = 0

    def to_dict(self) -> dict[str, object]:
        return {
            "dry_run": self.dry_run,
            "removed": [list(r) for r in self.removed],
            "kept": self.kept,
        }


def _naive(moment: datetime) -> datetime:
    return moment.astimezone().replace(tzinfo=None) if moment.tzinfo else moment


def versions_to_keep(
    versions: list[PromptVersion], labelled: set[str], policy: RetentionPolicy, now: datetime
) -> set[str]:
    """The version numbers ``policy`` keeps among ``versions`` (oldest first)."""
    if not versions:
        return set()
    if policy.keep_last is None and policy.keep_younger_than is None:
        return {v.version for v in versions}
    keep: set[str] = set()
    if policy.keep_last:
        keep |= {v.version for v in versions[-policy.keep_last :]}
    if policy.keep_younger_than is not None:
        cutoff = now - policy.keep_younger_than
        keep |= {v.version for v in versions if _naive(v.created_at) > cutoff}
    best = max(versions, key=lambda v: v.analysis.overall_score)
    keep |= {versions[-1].version, best.version} | labelled
    parents = {v.version: v.parent_version for v in versions}
    pending = list(keep)
    while pending:  # ancestors of kept versions are kept
        parent = parents.get(pending.pop())
        if parent is not None and parent in parents and parent not in keep:
            keep.add(parent)
            pending.append(parent)
    return keep


def apply_retention(
    storage: VersionStorage, policy: RetentionPolicy, *, dry_run: bool = True
) -> RetentionReport:
    """Remove (into the trash) what ``policy`` does not keep; ``dry_run`` only reports it."""
    report = RetentionReport(dry_run=dry_run)
    now = datetime.now()
    for prompt_id in storage.list_prompts():
        versions = storage.list_versions(prompt_id)
        keep = versions_to_keep(versions, set(storage.list_labels(prompt_id).values()), policy, now)
        report.kept += len(keep)
        for version in sorted(
            (v.version for v in versions if v.version not in keep), key=semver.parse
        ):
            report.removed.append((prompt_id, version))
            if not dry_run:
                storage.delete_version(prompt_id, version)
    return report
