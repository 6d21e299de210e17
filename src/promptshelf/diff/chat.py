"""Chat prompts compared message by message, and configs compared setting by setting.

Messages are paired by their id, then by identical content, then by
resemblance, then by position and role within the gaps left; each pair is
``equal``, ``changed`` (role, text or other fields) or ``moved`` (its order
among the paired messages changed), the rest ``added`` or ``removed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import ChatMessage
from .align import increasing_run
from .text import TextDiff, diff_text

#: Pairs of leftover messages compared by resemblance at most (else by position).
RESEMBLANCE_PAIRS = 400

_MESSAGE_FIELDS = ("role", "text", "id", "name", "edition_type", "slot")


@dataclass(frozen=True)
class MessageOp:
    """What happened to one message between two versions of a chat prompt.

    ``op``: ``equal``, ``changed``, ``moved`` (possibly changed too: see ``fields``),
    ``added`` or ``removed``. ``text`` diffs the old text against the new one (all
    inserted for an added message, all deleted for a removed one).
    """

    op: str
    old_index: int | None
    new_index: int | None
    old_role: str | None
    new_role: str | None
    fields: tuple[str, ...]  # the message fields that differ (role, text, edition_type ...)
    text: TextDiff

    @property
    def role_changed(self) -> bool:
        return "role" in self.fields

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.op,
            "old_index": self.old_index,
            "new_index": self.new_index,
            "old_role": self.old_role,
            "new_role": self.new_role,
            "role_changed": self.role_changed,
            "fields": list(self.fields),
            "text": self.text.to_dict(),
        }


def _content(m: ChatMessage) -> tuple[str, str]:
    return (m.role, m.text)


def _resemblance(a: ChatMessage, b: ChatMessage) -> float:
    wa, wb = set(a.text.lower().split()), set(b.text.lower().split())
    score = len(wa & wb) / len(wa | wb) if wa | wb else 1.0
    return score + (0.1 if a.role == b.role else 0.0)


def _pair_messages(old: list[ChatMessage], new: list[ChatMessage]) -> dict[int, int]:
    """new index -> old index for the messages that are one message in two versions."""
    pairs: dict[int, int] = {}
    taken: set[int] = set()

    def pair(n: int, o: int) -> None:
        pairs[n] = o
        taken.add(o)

    by_id = {m.id: i for i, m in reversed(list(enumerate(old))) if m.id is not None}
    for n, m in enumerate(new):
        if m.id is not None and by_id.get(m.id) is not None and by_id[m.id] not in taken:
            pair(n, by_id[m.id])
    for n, m in enumerate(new):
        if n not in pairs:
            for o, candidate in enumerate(old):
                if o not in taken and _content(candidate) == _content(m):
                    pair(n, o)
                    break
    left_new = [n for n in range(len(new)) if n not in pairs]
    left_old = [o for o in range(len(old)) if o not in taken]
    if left_new and left_old and len(left_new) * len(left_old) <= RESEMBLANCE_PAIRS:
        scored = sorted(
            ((_resemblance(old[o], new[n]), n, o) for n in left_new for o in left_old),
            key=lambda t: (-t[0], t[1], t[2]),
        )
        for score, n, o in scored:
            if score >= 0.4 and n not in pairs and o not in taken:
                pair(n, o)
    # What is left pairs up by position and role within each gap between paired messages.
    ordered = _in_order(pairs)
    bounds = [
        (-1, -1),
        *sorted((o, n) for n, o in pairs.items() if n in ordered),
        (len(old), len(new)),
    ]
    for (o0, n0), (o1, n1) in zip(bounds, bounds[1:], strict=False):
        gap_old = [o for o in range(o0 + 1, o1) if o not in taken]
        for n in (n for n in range(n0 + 1, n1) if n not in pairs):
            match = next(
                (o for o in gap_old if o not in taken and old[o].role == new[n].role), None
            )
            if match is not None:
                pair(n, match)
    return pairs


def _in_order(pairs: Mapping[int, int], weights: Mapping[int, int] | None = None) -> set[int]:
    """The new indexes of the heaviest run of pairs whose old order is their new order.

    ``weights`` (by new index; default 1) let unchanged messages outweigh changed ones,
    so that when two messages swap, the changed one is the one reported as moved.
    Above 2,000 pairs the plain longest run is taken (the weighted one is quadratic).
    """
    items = sorted(pairs.items())
    if weights is None or len(items) > 2000:
        return {items[k][0] for k in increasing_run([o for _, o in items])}
    best: list[int] = []
    back: list[int] = []
    for k, (n, o) in enumerate(items):
        score, prev = 0, -1
        for q in range(k):
            if items[q][1] < o and best[q] > score:
                score, prev = best[q], q
        best.append(score + weights.get(n, 1))
        back.append(prev)
    run: set[int] = set()
    k = max(range(len(items)), key=best.__getitem__, default=-1)
    while k != -1:
        run.add(items[k][0])
        k = back[k]
    return run


def diff_messages(old: list[ChatMessage], new: list[ChatMessage]) -> list[MessageOp]:
    """Message-level operations from ``old`` to ``new``, in the new order (removed messages
    where they stood, after the message that preceded them)."""
    pairs = _pair_messages(old, new)
    in_order = _in_order(pairs, {n: 2 if old[o] == new[n] else 1 for n, o in pairs.items()})
    ops: list[MessageOp] = []
    emitted_old: set[int] = set(pairs.values())
    next_old = 0

    def removed_before(limit: int) -> None:
        nonlocal next_old
        for o in range(next_old, limit):
            if o not in emitted_old:
                ops.append(
                    MessageOp("removed", o, None, old[o].role, None, (), diff_text(old[o].text, ""))
                )
                emitted_old.add(o)
        next_old = max(next_old, limit)

    for n, m in enumerate(new):
        if n not in pairs:
            ops.append(MessageOp("added", None, n, None, m.role, (), diff_text("", m.text)))
            continue
        o = pairs[n]
        if n in in_order:
            removed_before(o)
        before, after = old[o], m
        fields = tuple(f for f in _MESSAGE_FIELDS if getattr(before, f) != getattr(after, f))
        op = "moved" if n not in in_order else ("changed" if fields else "equal")
        ops.append(
            MessageOp(op, o, n, before.role, after.role, fields, diff_text(before.text, after.text))
        )
    removed_before(len(old))
    return ops


# -- config -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigChange:
    """One changed setting: ``path`` is dotted (``completion_params.temperature``)."""

    path: str
    op: str  # added, removed, changed
    old: Any = None
    new: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "op": self.op, "old": self.old, "new": self.new}


_ABSENT = object()


def diff_config(old: Any, new: Any) -> list[ConfigChange]:
    """Settings added, removed or changed between two configs (nested objects by path)."""
    changes: list[ConfigChange] = []
    _walk_config(old if old is not None else {}, new if new is not None else {}, "", changes)
    return changes


def _walk_config(old: Any, new: Any, path: str, out: list[ConfigChange]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*old, *(k for k in new if k not in old)]:
            sub = f"{path}.{key}" if path else str(key)
            _walk_config(old.get(key, _ABSENT), new.get(key, _ABSENT), sub, out)
    elif old is _ABSENT:
        out.append(ConfigChange(path, "added", None, new))
    elif new is _ABSENT:
        out.append(ConfigChange(path, "removed", old, None))
    elif old != new or type(old) is not type(new):
        out.append(ConfigChange(path, "changed", old, new))
