"""What the pages show, computed from the library: summaries, the score chart, side-by-side diffs.

Nothing here knows HTTP or HTML; the templates escape every string they are given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ...diff import ConfigChange, TextDiff, diff_config, diff_messages, diff_text
from ...models import LabelEvent, PromptVersion, labels_after, placeholders
from ...storage.base import VersionStorage
from ...timestamps import as_utc


@dataclass(frozen=True)
class Segment:
    """A run of text in one column of a comparison; ``kind`` is equal, delete or insert."""

    kind: str
    text: str


@dataclass
class SideBySide:
    """Two columns: the old text with removed words marked, the new one with added words."""

    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)

    def add(self, left: tuple[str, str] | None, right: tuple[str, str] | None) -> None:
        for column, part in ((self.left, left), (self.right, right)):
            if part is None or not part[1]:
                continue
            if column and column[-1].kind == part[0]:
                column[-1] = Segment(part[0], column[-1].text + part[1])
            else:
                column.append(Segment(*part))

    @property
    def words_removed(self) -> int:
        return sum(len(s.text.split()) for s in self.left if s.kind == "delete")

    @property
    def words_added(self) -> int:
        return sum(len(s.text.split()) for s in self.right if s.kind == "insert")


def side_by_side(diff: TextDiff) -> SideBySide:
    """Lay out :func:`promptshelf.diff.diff_text`'s lines and words as two columns."""
    out = SideBySide()
    old, new = diff.old_lines, diff.new_lines
    for k, (tag, i1, i2, j1, j2) in enumerate(diff.codes):
        before, after = _lines(old[i1:i2]), _lines(new[j1:j2])
        words = diff.words.get(k)
        if tag == "equal":
            out.add(("equal", before), ("equal", after))
        elif words is None:
            out.add(("delete", before), ("insert", after))
        else:
            for word in words:
                if word.op == "equal":
                    out.add(("equal", word.old), ("equal", word.new))
                else:
                    out.add(("delete", word.old), ("insert", word.new))
            out.add(("equal", "\n"), ("equal", "\n"))
    for column in (out.left, out.right):  # the last line's newline is not a blank line
        if column and column[-1].text.endswith("\n"):
            column[-1] = Segment(column[-1].kind, column[-1].text[:-1])
        if column and not column[-1].text:
            column.pop()
    return out


def _lines(lines: list[str]) -> str:
    return "".join(line + "\n" for line in lines)


def word_diff(old: str, new: str) -> SideBySide:
    """Two texts side by side, changed words marked (the library's one diff underneath)."""
    return side_by_side(diff_text(old, new))


@dataclass(frozen=True)
class MessageRow:
    """One message of a chat prompt compared across two versions."""

    op: str  # equal, changed, moved, added, removed
    old_role: str | None
    new_role: str | None
    old_index: int | None
    new_index: int | None
    text: SideBySide


def message_rows(old: PromptVersion, new: PromptVersion) -> list[MessageRow] | None:
    """Chat prompts compared message by message; None unless both versions are chat prompts."""
    if old.prompt.messages is None or new.prompt.messages is None:
        return None
    return [
        MessageRow(
            op.op, op.old_role, op.new_role, op.old_index, op.new_index, side_by_side(op.text)
        )
        for op in diff_messages(old.prompt.messages, new.prompt.messages)
    ]


def config_changes(old: PromptVersion, new: PromptVersion) -> list[ConfigChange]:
    return diff_config(old.config, new.config)


@dataclass(frozen=True)
class PromptSummary:
    prompt_id: str
    latest: str | None
    versions: int
    labels: dict[str, str]
    last_change: datetime | None


def summarize(storage: VersionStorage, prompt_id: str) -> PromptSummary:
    """The list page's row: latest version, labels, and the newest version or label move."""
    numbers = storage.list_version_numbers(prompt_id)
    latest = storage.get_latest_version(prompt_id)
    events = storage.label_history(prompt_id)
    moments = [latest.created_at] if latest is not None else []
    if events:
        moments.append(events[-1].at)
    return PromptSummary(
        prompt_id=prompt_id,
        latest=latest.version if latest is not None else None,
        versions=len(numbers),
        labels=labels_after(events),
        last_change=max(moments, key=as_utc) if moments else None,
    )


@dataclass(frozen=True)
class ChartPoint:
    x: float
    y: float
    version: str
    score: float
    tick: bool  # whether the version is written under the axis (not all fit)


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    points: list[ChartPoint]

    @property
    def polyline(self) -> str:
        return " ".join(f"{p.x:.1f},{p.y:.1f}" for p in self.points)


CHART_WIDTH, CHART_HEIGHT, CHART_PAD, CHART_AXIS = 480, 136, 12, 16
#: Versions written under the axis at most; past that the first, the last and a few between.
CHART_TICKS = 8


def score_chart(versions: list[PromptVersion]) -> Chart:
    """``overall_score`` (0-100) of each version, oldest left, as SVG coordinates."""
    inner_w = CHART_WIDTH - 4 * CHART_PAD
    inner_h = CHART_HEIGHT - 2 * CHART_PAD - CHART_AXIS
    count = len(versions)
    step = inner_w / (count - 1) if count > 1 else 0.0
    every = max(1, -(-(count - 1) // (CHART_TICKS - 1))) if count > 1 else 1
    points = [
        ChartPoint(
            x=2 * CHART_PAD + (i * step if count > 1 else inner_w / 2),
            y=CHART_PAD + inner_h * (1 - v.analysis.overall_score / 100.0),
            version=v.version,
            score=v.analysis.overall_score,
            tick=i % every == 0 or (i == count - 1 and (count - 1) % every > every / 2),
        )
        for i, v in enumerate(versions)
    ]
    return Chart(CHART_WIDTH, CHART_HEIGHT, points)


def previous_target(events: list[LabelEvent], label: str) -> str | None:
    """Where rolling ``label`` back would point it: where it was before its last move."""
    mine = [e for e in events if e.label == label]
    return mine[-1].from_version if mine else None


def placeholder_names(version: PromptVersion) -> list[str]:
    """The ``{{names}}`` a render of ``version`` asks values for, in order of first use."""
    return placeholders(version.prompt.text)
