"""Retention: which versions to keep, and removing the rest (into the trash).

Per prompt, a policy keeps:

* the newest ``keep_last`` versions (newest as ``latest`` means it: the
  highest version numbers), and every version younger than
  ``keep_younger_than`` (either rule keeps a version);
* always: the latest version, the best-scoring one, and every version a
  label points at;
* the lineage (``parent_version``, followed to the root) of the versions the
  labels in ``keep_lineage_of`` point at, and of no other version: a label
  names a version people rely on, and its ancestors are where it came from.
  ``"*"`` means every label.

Everything else is removed into the trash (``restore_version`` brings a
version back until the trash is emptied). A policy with no rule keeps
everything. Ancestors of the newest versions are not kept for their own
sake: in a linear history every version is an ancestor of the latest, so
such a rule would never remove anything.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from . import semver
from .errors import ConfigurationError, LabelInUseError
from .ids import validate_name
from .models import PromptVersion
from .progress import Progress, Tally
from .storage.base import VersionStorage
from .timestamps import as_utc, utc_now

#: ``keep_lineage_of`` entry that means every label.
ALL_LABELS = "*"


@dataclass(frozen=True)
class RetentionPolicy:
    keep_last: int | None = None
    keep_younger_than: timedelta | None = None
    keep_lineage_of: Collection[str] = frozenset()  # label names, or "*"; kept as a frozenset

    def __post_init__(self) -> None:
        if self.keep_last is not None and self.keep_last < 0:
            raise ConfigurationError(f"keep_last must be >= 0, got {self.keep_last}")
        if self.keep_younger_than is not None and self.keep_younger_than < timedelta(0):
            raise ConfigurationError("keep_younger_than must not be negative")
        if isinstance(self.keep_lineage_of, str):  # one label given bare: not its letters
            object.__setattr__(self, "keep_lineage_of", frozenset([self.keep_lineage_of]))
        object.__setattr__(self, "keep_lineage_of", frozenset(self.keep_lineage_of))
        for label in self.keep_lineage_of:
            if label != ALL_LABELS:
                validate_name(label, "label")

    def lineage_kept(self, label: str) -> bool:
        return ALL_LABELS in self.keep_lineage_of or label in self.keep_lineage_of


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


def versions_to_keep(
    versions: list[PromptVersion], labels: dict[str, str], policy: RetentionPolicy, now: datetime
) -> set[str]:
    """The version numbers ``policy`` keeps among ``versions`` (oldest first), given the
    prompt's ``labels`` (label -> version)."""
    if not versions:
        return set()
    if policy.keep_last is None and policy.keep_younger_than is None:
        return {v.version for v in versions}
    keep: set[str] = set()
    if policy.keep_last:
        keep |= {v.version for v in versions[-policy.keep_last :]}
    if policy.keep_younger_than is not None:
        cutoff = as_utc(now) - policy.keep_younger_than  # naive times are UTC
        keep |= {v.version for v in versions if as_utc(v.created_at) > cutoff}
    best = max(versions, key=lambda v: v.analysis.overall_score)
    keep |= {versions[-1].version, best.version} | set(labels.values())
    parents = {v.version: v.parent_version for v in versions}
    pending = [v for label, v in labels.items() if policy.lineage_kept(label)]
    seen = set(pending)
    while pending:  # the lineage of the versions of the labels asked for
        parent = parents.get(pending.pop())
        if parent is not None and parent in parents and parent not in seen:
            seen.add(parent)
            pending.append(parent)
    return keep | seen


def apply_retention(
    storage: VersionStorage,
    policy: RetentionPolicy,
    *,
    dry_run: bool = True,
    progress: Progress | None = None,
) -> RetentionReport:
    """Remove (into the trash) what ``policy`` does not keep; ``dry_run`` only reports it.
    ``progress(done, total)`` counts the versions decided on."""
    report = RetentionReport(dry_run=dry_run)
    now = utc_now()
    total = storage.get_storage_stats()["total_versions"] if progress else 0
    tally = Tally(progress, total)
    for prompt_id in storage.list_prompts():
        versions = storage.list_versions(prompt_id)
        keep = versions_to_keep(versions, storage.list_labels(prompt_id), policy, now)
        report.kept += len(keep)
        for version in sorted(
            (v.version for v in versions if v.version not in keep), key=semver.parse
        ):
            if not dry_run:
                try:
                    storage.delete_version(prompt_id, version)
                except LabelInUseError:  # labelled since we looked: a labelled version stays
                    report.kept += 1
                    continue
            report.removed.append((prompt_id, version))
        tally.add(len(versions))
    tally.finish()
    return report
