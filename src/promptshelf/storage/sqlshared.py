"""What the two SQL backends share: how a label event maps to a row and back."""

from __future__ import annotations

from typing import Any

from ..models import LabelEvent

#: The columns a label event is read from, after ``prompt_id``.
EVENT_COLUMNS = "seq, label, action, from_version, to_version, actor, reason, at"


def event_from_row(prompt_id: str, row: tuple[Any, ...]) -> LabelEvent:
    seq, label, action, from_version, to_version, actor, reason, at = row
    return LabelEvent(
        seq=seq,
        prompt_id=prompt_id,
        label=label,
        action=action,
        from_version=from_version,
        to_version=to_version,
        actor=actor,
        reason=reason,
        at=at,
    )


def event_row(event: LabelEvent, at: Any) -> tuple[Any, ...]:
    """``(prompt_id, <EVENT_COLUMNS>)`` for an INSERT; ``at`` as the driver wants it."""
    return (
        event.prompt_id,
        event.seq,
        event.label,
        event.action.value,
        event.from_version,
        event.to_version,
        event.actor,
        event.reason,
        at,
    )
