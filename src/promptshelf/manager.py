"""``VersionManager``: numbering, history, comparison, rollback and "best".

It works on any :class:`VersionStorage` and knows nothing of files or SQL.
Numbering is optimistic: read the latest version, bump it, save; if another
writer took that number first (``VersionConflictError``), read again and
retry. Backends guarantee create-once, so concurrent writers in any number of
processes each get a distinct version and none is lost.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from typing import Any

from . import semver
from .errors import (
    LabelError,
    PromptKindError,
    VariableMismatchError,
    VersionConflictError,
    VersionError,
    VersionNotFoundError,
)
from .ids import validate_prompt_id
from .models import (
    LabelAction,
    LabelEvent,
    OptimizationResult,
    Prompt,
    PromptAnalysis,
    PromptVersion,
    variable_warnings,
)
from .storage.base import VersionStorage, missing_label
from .storage.memory import InMemoryStorage
from .timestamps import utc_now

log = logging.getLogger(__name__)

#: How many times ``create_version`` re-reads and retries after losing a race.
MAX_CREATE_ATTEMPTS = 200


class VersionManager:
    """Manage prompt version history with semantic versions.

    ``1.0.0`` is a prompt's first version; a version with an optimization
    result bumps the minor (``1.1.0``), one without bumps the patch (``1.1.1``).
    """

    def __init__(
        self, storage: VersionStorage | None = None, *, strict_variables: bool = False
    ) -> None:
        """``strict_variables``: refuse a version whose declared ``variables`` and text
        placeholders disagree (``VariableMismatchError``) instead of recording the
        disagreement as ``analysis.metadata["variable_warnings"]``."""
        self._storage = storage if storage is not None else InMemoryStorage()
        self.strict_variables = strict_variables

    @property
    def storage(self) -> VersionStorage:
        return self._storage

    # -- creating ------------------------------------------------------------

    def create_version(
        self,
        prompt: Prompt,
        analysis: PromptAnalysis,
        optimization_result: OptimizationResult | None = None,
        parent_version: str | None = None,
        *,
        metadata: dict[str, Any] | None = None,
        skip_if_unchanged: bool = False,
        config: dict[str, Any] | None = None,
        commit_message: str | None = None,
    ) -> PromptVersion:
        """Save the next version of ``prompt.id`` and return it.

        ``metadata`` is merged over the defaults (``author``, ``strategy``) and
        stored with the version, as are ``config`` (model settings, free JSON)
        and ``commit_message``. ``parent_version`` must name an existing version
        of the prompt (``VersionNotFoundError`` otherwise). With
        ``skip_if_unchanged``, when the latest version has the same text,
        messages, role, variables, context and config, that version is returned
        and nothing is saved. A prompt keeps its kind: a chat version after a
        text one (or back) raises ``PromptKindError``.
        """
        latest = self._storage.get_latest_version(prompt.id)
        if latest is not None:
            check_same_kind(latest.prompt, prompt)
            if (
                skip_if_unchanged
                and _same_prompt(latest.prompt, prompt)
                and latest.config == config
            ):
                return latest
        if parent_version is not None and (
            self._storage.get_version(prompt.id, parent_version) is None
        ):
            raise VersionNotFoundError(
                prompt.id, parent_version, {"reason": "a parent must be an existing version"}
            )
        analysis = self._checked_variables(prompt, analysis)
        base_metadata: dict[str, Any] = {
            "author": "baseline" if optimization_result is None else "optimizer",
            "strategy": optimization_result.strategy.value if optimization_result else None,
        }
        base_metadata.update(metadata or {})

        def build(number: str, _latest: str | None) -> PromptVersion:
            return PromptVersion(
                prompt_id=prompt.id,
                version=number,
                prompt=prompt,
                analysis=analysis,
                optimization_result=optimization_result,
                parent_version=parent_version,
                created_at=utc_now(),
                metadata=dict(base_metadata),
                config=config,
                commit_message=commit_message,
            )

        return self._save_next(prompt.id, build, minor=optimization_result is not None)

    def _checked_variables(self, prompt: Prompt, analysis: PromptAnalysis) -> PromptAnalysis:
        problems = variable_warnings(prompt.text, prompt.variables)
        if not problems:
            return analysis
        if self.strict_variables:
            raise VariableMismatchError(
                f"{prompt.id}: " + "; ".join(problems), context={"problems": problems}
            )
        return analysis.model_copy(
            update={"metadata": {**analysis.metadata, "variable_warnings": problems}}
        )

    def _save_next(
        self,
        prompt_id: str,
        build: Callable[[str, str | None], PromptVersion],
        *,
        minor: bool,
    ) -> PromptVersion:
        """Number, build and save a version, retrying when a concurrent writer wins."""
        validate_prompt_id(prompt_id)
        refused: str | None = None  # the last number refused: never try it or one below again
        for attempt in range(MAX_CREATE_ATTEMPTS):
            numbers = self._storage.list_version_numbers(prompt_id)
            latest = numbers[-1] if numbers else None
            number = semver.FIRST_VERSION if latest is None else semver.bump(latest, minor=minor)
            if refused is not None and semver.parse(number) <= semver.parse(refused):
                # a number removed for good (see VersionStorage.save_version) is refused for
                # ever, though the latest is below it: move on past it
                number = semver.bump(refused, minor=minor)
            version = build(number, latest)
            try:
                self._storage.save_version(version)
            except VersionConflictError:
                refused = number
                # Lost the race for this number: back off a little, then re-read.
                time.sleep(random.uniform(0, 0.0005 * min(attempt + 1, 20)))
                continue
            log.debug("created %s %s", prompt_id, number)
            return version
        raise VersionError(
            f"could not allocate a version for {prompt_id!r} after {MAX_CREATE_ATTEMPTS} attempts",
            error_code="VERSION-CONTENTION",
            context={"prompt_id": prompt_id},
        )

    # -- reading -------------------------------------------------------------

    def get_version(self, prompt_id: str, version: str) -> PromptVersion:
        """One version, named by a selector (see :meth:`resolve`)."""
        if version == "latest":
            return self.get_latest_version(prompt_id)
        if version == "best":
            return self.get_best_version(prompt_id)
        number = self.resolve(prompt_id, version)
        found = self._storage.get_version(prompt_id, number)
        if found is None:
            raise VersionNotFoundError(prompt_id, number)
        return found

    def resolve(self, prompt_id: str, selector: str) -> str:
        """The version number a selector names.

        Selectors: a version (``"1.2.0"``), ``"latest"`` (the highest version),
        ``"best"`` (the highest overall score, oldest among ties) and
        ``"label:NAME"`` (where label NAME points).
        """
        if selector in ("latest", "best"):
            return self.get_version(prompt_id, selector).version
        if selector.startswith(LABEL_SELECTOR):
            label = selector[len(LABEL_SELECTOR) :]
            number = self._storage.get_label(prompt_id, label)
            if number is None:
                raise missing_label(prompt_id, label)
            return number
        return semver.validate(selector)

    def get_latest_version(self, prompt_id: str) -> PromptVersion:
        found = self._storage.get_latest_version(prompt_id)
        if found is None:
            raise VersionNotFoundError(prompt_id, "latest", {"reason": "no versions exist"})
        return found

    def get_version_history(self, prompt_id: str) -> list[PromptVersion]:
        """Every version, oldest first."""
        return self._storage.list_versions(prompt_id)

    def get_best_version(self, prompt_id: str) -> PromptVersion:
        """The version with the highest overall score (the oldest one among ties)."""
        versions = self.get_version_history(prompt_id)
        if not versions:
            raise VersionNotFoundError(prompt_id, "best", {"reason": "no versions exist"})
        return max(versions, key=lambda v: v.analysis.overall_score)

    def compare_versions(self, prompt_id: str, version1: str, version2: str) -> dict[str, Any]:
        """Score deltas (``version2`` minus ``version1``) and a diff between two versions.

        ``text_diff`` compares the texts (for a chat prompt, its messages read as one
        text): a unified diff, a similarity in [0, 1], and ``ops``, line operations
        with word operations inside changed lines (see :mod:`promptshelf.diff`).
        ``messages_diff`` (chat prompts; None for text prompts) lists message
        operations (equal, changed, moved, added, removed), each with its text diff;
        ``config_diff`` the settings added, removed or changed.
        """
        from . import diff  # imported by the commands that compare, not by every one

        v1 = self.get_version(prompt_id, version1)
        v2 = self.get_version(prompt_id, version2)
        a1, a2 = v1.analysis, v2.analysis
        m1, m2 = v1.prompt.messages, v2.prompt.messages
        return {
            "prompt_id": prompt_id,
            "version1": v1.version,
            "version2": v2.version,
            "kind": v2.prompt.kind,
            "improvement": a2.overall_score - a1.overall_score,
            "clarity_improvement": a2.clarity_score - a1.clarity_score,
            "efficiency_improvement": a2.efficiency_score - a1.efficiency_score,
            "text_diff": text_diff(v1.prompt.text, v2.prompt.text, v1.version, v2.version),
            "messages_diff": None
            if m1 is None or m2 is None
            else [op.to_dict() for op in diff.diff_messages(m1, m2)],
            "config_diff": [c.to_dict() for c in diff.diff_config(v1.config, v2.config)],
            "commit_message1": v1.commit_message,
            "commit_message2": v2.commit_message,
            "version1_analysis": _analysis_summary(a1),
            "version2_analysis": _analysis_summary(a2),
            "changes": list(v2.optimization_result.changes) if v2.optimization_result else [],
        }

    # -- changing history ------------------------------------------------------

    def rollback(
        self, prompt_id: str, target_version: str, *, author: str = "rollback"
    ) -> PromptVersion:
        """A new version carrying ``target_version``'s content; the old ones stay.

        Its stored metadata records ``rollback_from`` (the latest version it
        replaced), ``rollback_to`` and ``author``; its parent is ``rollback_from``.
        """
        target = self.get_version(prompt_id, target_version)

        def build(number: str, latest: str | None) -> PromptVersion:
            return PromptVersion(
                prompt_id=prompt_id,
                version=number,
                prompt=target.prompt,
                analysis=target.analysis,
                optimization_result=None,
                parent_version=latest,
                created_at=utc_now(),
                metadata={
                    "author": author,
                    "strategy": None,
                    "rollback_from": latest,
                    "rollback_to": target.version,
                },
                config=target.config,
                commit_message=f"Roll back to {target.version}",
            )

        return self._save_next(prompt_id, build, minor=False)

    def delete_version(self, prompt_id: str, version: str, *, force: bool = False) -> bool:
        return self._storage.delete_version(prompt_id, version, force=force)

    # -- labels ---------------------------------------------------------------

    def promote(
        self,
        prompt_id: str,
        version: str,
        label: str = "production",
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> LabelEvent:
        """Point ``label`` at the version a selector names (``"latest"``, ``"label:staging"``);
        ``expected_seq`` as for :meth:`VersionStorage.set_label` (compare-and-swap)."""
        number = self.resolve(prompt_id, version)
        return self._storage.set_label(
            prompt_id, label, number, actor=actor, reason=reason, expected_seq=expected_seq
        )

    def rollback_label(
        self,
        prompt_id: str,
        label: str,
        *,
        actor: str | None = None,
        reason: str | None = None,
        expected_seq: int | None = None,
    ) -> LabelEvent:
        """Move ``label`` back to where it pointed before its last move, like an undo: calling
        it twice steps back twice. A move that returns the label to where it was before its
        previous move counts as undoing that move; a removal starts the history afresh.

        The move is a compare-and-swap on the history it was computed from (or on
        ``expected_seq`` when given): if another writer changed the label meanwhile,
        ``LabelMovedError`` and nothing changes (two racing rollbacks step back once)."""
        history = self._storage.label_history(prompt_id, label)
        current = history[-1].to_version if history else None
        if current is None:
            raise missing_label(prompt_id, label)
        positions: list[str] = []  # where the label was, oldest first, undone moves popped
        for event in history:
            if event.action is LabelAction.REMOVE or event.to_version is None:
                positions = []
            elif positions[-2:-1] == [event.to_version] and event.from_version == positions[-1]:
                positions.pop()
            else:
                positions.append(event.to_version)
        if len(positions) < 2:
            raise LabelError(
                f"label {label!r} of {prompt_id!r} pointed nowhere before {current}",
                context={"prompt_id": prompt_id, "label": label, "version": current},
            )
        return self._storage.set_label(
            prompt_id,
            label,
            positions[-2],
            actor=actor,
            reason=reason or f"rollback of {label} from {current}",
            expected_seq=history[-1].seq if expected_seq is None else expected_seq,
        )

    def clear_all_versions(self) -> None:
        self._storage.clear_all()


LABEL_SELECTOR = "label:"


def check_same_kind(old: Prompt, new: Prompt) -> None:
    """Raise ``PromptKindError`` when ``new`` would change the kind of ``old``'s prompt."""
    if old.kind != new.kind:
        raise PromptKindError(
            f"{new.id} is a {old.kind} prompt; a {new.kind} version cannot follow it "
            f"(save it under another id)",
            context={"prompt_id": new.id, "kind": old.kind, "new_kind": new.kind},
        )


def _same_prompt(old: Prompt, new: Prompt) -> bool:
    return (old.text, old.messages, old.role, old.variables, old.context) == (
        new.text,
        new.messages,
        new.role,
        new.variables,
        new.context,
    )


def _analysis_summary(analysis: PromptAnalysis) -> dict[str, Any]:
    return {
        "overall_score": analysis.overall_score,
        "clarity_score": analysis.clarity_score,
        "efficiency_score": analysis.efficiency_score,
        "issues_count": len(analysis.issues),
    }


def text_diff(old: str, new: str, old_label: str = "a", new_label: str = "b") -> dict[str, Any]:
    """A unified diff plus the original design's summary figures (and line/word ``ops``)."""
    from . import diff

    return diff.text_summary(old, new, old_label, new_label)
