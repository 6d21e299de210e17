"""The label-event logic every backend shares: a prompt's labels are an append-only
event log, and where each label points is the log replayed (``labels_after``).

Backends call these while holding their per-prompt lock, so the event they
append is computed from the history as it is at that moment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .. import semver
from ..errors import (
    LabelHistoryDivergedError,
    LabelInUseError,
    LabelMovedError,
    ValidationError,
    VersionNotFoundError,
)
from ..ids import validate_name
from ..models import LabelAction, LabelEvent, labels_after


def next_label_event(
    events: list[LabelEvent],
    prompt_id: str,
    label: str,
    to_version: str | None,
    actor: str | None,
    reason: str | None,
) -> LabelEvent | None:
    """The event that moves ``label`` to ``to_version`` (None: removes it), or None if there
    is nothing to change (a removal finds no label, a set finds it already there). Backends
    call this while holding their lock."""
    current = labels_after(events).get(label)
    if to_version is None:
        if current is None:
            return None
        action = LabelAction.REMOVE
    elif to_version == current:
        return None  # a no-op is not a move: the history records only changes
    else:
        action = LabelAction.SET if current is None else LabelAction.MOVE
    return LabelEvent(
        seq=len(events) + 1,
        prompt_id=prompt_id,
        label=label,
        action=action,
        from_version=current,
        to_version=to_version,
        actor=actor,
        reason=reason,
    )


def label_seq(events: Sequence[LabelEvent], label: str) -> int:
    """The ``seq`` of the last event that touched ``label`` while it is set, 0 when it is
    unset (never set, or removed): the state a conditional change names (``expected_seq``)."""
    for event in reversed(events):
        if event.label == label:
            return 0 if event.to_version is None else event.seq
    return 0


def check_expected(
    events: Sequence[LabelEvent], prompt_id: str, label: str, expected_seq: int | None
) -> None:
    """Compare-and-swap for labels: ``LabelMovedError`` unless ``label`` is in the state
    ``expected_seq`` names (None: no condition; 0: unset; n: set by event n and untouched
    since). Backends call this under the same lock as ``next_label_event``."""
    if expected_seq is None:
        return
    current = label_seq(events, label)
    if current != expected_seq:
        raise label_moved(prompt_id, label, expected_seq, current)


def label_moved(prompt_id: str, label: str, expected_seq: int, current: int) -> LabelMovedError:
    def say(seq: int) -> str:
        return "unset" if seq == 0 else f"event {seq}"

    return LabelMovedError(
        f"label {label!r} of {prompt_id!r} is at {say(current)}, not {say(expected_seq)}: "
        "it changed meanwhile; nothing was changed",
        context={
            "prompt_id": prompt_id,
            "label": label,
            "expected_seq": expected_seq,
            "current_seq": current,
        },
    )


def labels_blocking(
    events: list[LabelEvent], prompt_id: str, version: str, force: bool
) -> list[LabelEvent]:
    """Removal events for the labels on ``version``; refuses unless ``force``."""
    on_it = sorted(name for name, v in labels_after(events).items() if v == version)
    if on_it and not force:
        raise LabelInUseError(
            f"{prompt_id} {version} is labelled {', '.join(on_it)}; move the label(s) first "
            "or delete with force=True",
            context={"prompt_id": prompt_id, "version": version, "labels": on_it},
        )
    removals: list[LabelEvent] = []
    for name in on_it:
        event = next_label_event(
            events + removals, prompt_id, name, None, "promptshelf", f"version {version} deleted"
        )
        if event is not None:
            removals.append(event)
    return removals


def checked_history(prompt_id: str, events: Sequence[LabelEvent]) -> list[LabelEvent]:
    """``events`` as a list if they are a consistent label history of ``prompt_id``: numbered
    1, 2, ... in order, with valid names and versions, each set, move or removal starting
    where its label stood. ``ValidationError`` otherwise."""
    checked: list[LabelEvent] = []
    current: dict[str, str] = {}
    for position, event in enumerate(events, start=1):
        if not isinstance(event, LabelEvent):
            raise ValidationError(f"expected a LabelEvent, got {type(event).__name__}")
        if event.prompt_id != prompt_id or event.seq != position:
            raise ValidationError(
                f"label event {event.seq} of {event.prompt_id!r} is not event {position} "
                f"of {prompt_id!r}",
                context={"prompt_id": prompt_id, "seq": event.seq},
            )
        validate_name(event.label, "label")
        for number in (event.from_version, event.to_version):
            if number is not None:
                semver.parse(number)
        before = current.get(event.label)
        fits = {
            LabelAction.SET: before is None and event.to_version is not None,
            LabelAction.MOVE: before is not None and event.to_version is not None,
            LabelAction.REMOVE: before is not None and event.to_version is None,
        }[event.action]
        if not fits or event.from_version != before:
            raise ValidationError(
                f"label history of {prompt_id!r} is inconsistent at event {event.seq}: "
                f"{event.action.value} of {event.label!r} from {event.from_version}, "
                f"which stood at {before}",
                context={"prompt_id": prompt_id, "seq": event.seq},
            )
        if event.to_version is None:
            current.pop(event.label, None)
        else:
            current[event.label] = event.to_version
        checked.append(event)
    return checked


def events_to_import(
    existing: list[LabelEvent], incoming: list[LabelEvent], present: Callable[[str], bool]
) -> list[LabelEvent]:
    """The events of ``incoming`` (a checked history) that ``existing`` lacks, to append.

    ``existing`` must be a prefix of ``incoming``: anything else is a history that
    diverged (``LabelHistoryDivergedError``). Every label left set must point at a version
    for which ``present`` is true (``VersionNotFoundError``). Backends call this while
    holding the prompt's lock.
    """
    prompt_id = incoming[0].prompt_id
    shared = existing[: len(incoming)]
    if len(existing) > len(incoming) or shared != incoming[: len(shared)]:
        at = next(
            (i + 1 for i, (a, b) in enumerate(zip(existing, incoming, strict=False)) if a != b),
            min(len(existing), len(incoming)) + 1,
        )
        raise LabelHistoryDivergedError(
            f"the label history of {prompt_id!r} here differs from the one being imported "
            f"at event {at} ({len(existing)} event(s) here, {len(incoming)} imported); "
            "nothing was changed",
            context={"prompt_id": prompt_id, "seq": at},
        )
    for label, version in sorted(labels_after(incoming).items()):
        if not present(version):
            raise VersionNotFoundError(
                prompt_id, version, {"reason": f"label {label!r} must point at a version"}
            )
    return incoming[len(existing) :]
