"""What the pages show, computed from the library: summaries, the score chart, side-by-side diffs.

Nothing here knows HTTP or HTML; the templates escape every string they are given.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from datetime import datetime

from ...models import LabelEvent, PromptVersion, labels_after, placeholders
from ...storage.base import VersionStorage

#: Words, runs of whitespace, and single punctuation marks: the units a change is shown in.
_TOKEN = re.compile(r"\s+|\w+|[^\w\s]")


@dataclass(frozen=True)
class Segment:
    """A run of text in one column of a comparison; ``kind`` is equal, delete or insert."""

    kind: str
    text: str


@dataclass
class SideBySide:
    left: list[Segment] = field(default_factory=list)
    right: list[Segment] = field(default_factory=list)
    words_removed: int = 0
    words_added: int = 0


def word_diff(old: str, new: str) -> SideBySide:
    """Two columns of segments: ``old`` with removed words marked, ``new`` with added ones."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    result = SideBySide()
    matcher = difflib.SequenceMatcher(None, a, b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            text = "".join(a[i1:i2])
            result.left.append(Segment("equal", text))
            result.right.append(Segment("equal", text))
            continue
        if i2 > i1:
            result.left.append(Segment("delete", "".join(a[i1:i2])))
            result.words_removed += sum(1 for t in a[i1:i2] if not t.isspace())
        if j2 > j1:
            result.right.append(Segment("insert", "".join(b[j1:j2])))
            result.words_added += sum(1 for t in b[j1:j2] if not t.isspace())
    return result


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
        last_change=max(moments, key=_naive) if moments else None,
    )


def _naive(moment: datetime) -> datetime:
    # Stored times may be naive (the original format) or aware; compare them as wall times.
    return moment.replace(tzinfo=None)


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
