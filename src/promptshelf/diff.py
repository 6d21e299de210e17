"""Diffs that stay fast on large texts, and message-aware diffs of chat prompts.

A text is compared line by line first, then word by word inside each changed
run of lines (git's ``--word-diff`` idea). The line alignment strips the
common prefix and suffix, anchors on lines that occur exactly once on each
side (patience diff: the longest increasing run of such pairs), and recurses
into the gaps; only small gaps go to :mod:`difflib`'s exact matcher, whose
cost grows with the product of the sizes. A work budget proportional to the
input caps the recursion, so an adversarial input costs at most a constant
times its size; past the budget a gap is reported as replaced (correct, just
less fine-grained). The similarity figure comes from the same alignment (the
share of characters in matched lines and words), never from a
character-by-character ``SequenceMatcher`` (which was quadratic: 24 s for 30 KB).

Chat prompts are compared message by message: messages are paired by their
id, then by identical content, then by resemblance, then by position and
role; each pair is ``equal``, ``changed`` (role, text or other fields) or
``moved`` (its order among the paired messages changed), the rest ``added``
or ``removed``. Every result is a plain dataclass with ``to_dict()`` giving
JSON-ready data for the command line and the server.
"""

from __future__ import annotations

import bisect
import difflib
import re
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .models import ChatMessage

#: (tag, old_start, old_end, new_start, new_end), the shape of difflib's opcodes.
Opcode = tuple[str, int, int, int, int]

#: Gaps whose size product is at most this go to difflib's exact matcher.
EXACT_LIMIT = 40_000
#: A changed run of lines is diffed word by word only up to this many characters.
WORD_LIMIT = 100_000
#: Pairs of leftover messages compared by resemblance at most (else by position).
RESEMBLANCE_PAIRS = 400

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


# -- aligning sequences ---------------------------------------------------------------


def _common_prefix(a: Sequence[Hashable], b: Sequence[Hashable], alo: int, blo: int, n: int) -> int:
    k = 0
    while k < n and a[alo + k] == b[blo + k]:
        k += 1
    return k


def _common_suffix(a: Sequence[Hashable], b: Sequence[Hashable], ahi: int, bhi: int, n: int) -> int:
    k = 0
    while k < n and a[ahi - 1 - k] == b[bhi - 1 - k]:
        k += 1
    return k


def _unique_anchors(
    a: Sequence[Hashable], alo: int, ahi: int, b: Sequence[Hashable], blo: int, bhi: int
) -> list[tuple[int, int]]:
    """Pairs of equal items that occur once on each side, longest run in order on both."""
    count_a = Counter(a[alo:ahi])
    count_b = Counter(b[blo:bhi])
    where_b = {b[j]: j for j in range(blo, bhi) if count_b[b[j]] == 1}
    pairs = [(i, where_b[a[i]]) for i in range(alo, ahi) if count_a[a[i]] == 1 and a[i] in where_b]
    if not pairs:
        return []
    # Longest increasing subsequence on the new-side positions (patience sorting).
    tails: list[int] = []  # new-side position ending the best run of each length
    tail_at: list[int] = []  # index into pairs of that run's last pair
    back: list[int] = [-1] * len(pairs)
    for k, (_, j) in enumerate(pairs):
        slot = bisect.bisect_left(tails, j)
        if slot == len(tails):
            tails.append(j)
            tail_at.append(k)
        else:
            tails[slot] = j
            tail_at[slot] = k
        back[k] = tail_at[slot - 1] if slot else -1
    run: list[tuple[int, int]] = []
    k = tail_at[-1]
    while k != -1:
        run.append(pairs[k])
        k = back[k]
    run.reverse()
    return run


def match_blocks(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[tuple[int, int, int]]:
    """Matching blocks ``(i, j, size)`` of two sequences, sorted, adjacent blocks merged."""
    found: list[tuple[int, int, int]] = []
    budget = 40 * (len(a) + len(b)) + 100_000
    work = [(0, len(a), 0, len(b))]
    while work:
        alo, ahi, blo, bhi = work.pop()
        k = _common_prefix(a, b, alo, blo, min(ahi - alo, bhi - blo))
        if k:
            found.append((alo, blo, k))
            alo, blo = alo + k, blo + k
        k = _common_suffix(a, b, ahi, bhi, min(ahi - alo, bhi - blo))
        if k:
            found.append((ahi - k, bhi - k, k))
            ahi, bhi = ahi - k, bhi - k
        n, m = ahi - alo, bhi - blo
        if not n or not m or budget <= 0:
            continue  # a pure insert or delete, or the budget is spent: one replaced gap
        if n * m <= EXACT_LIMIT:
            budget -= n * m // 8 + 1
            matcher = difflib.SequenceMatcher(None, a[alo:ahi], b[blo:bhi], autojunk=False)
            found.extend((alo + i, blo + j, s) for i, j, s in matcher.get_matching_blocks() if s)
            continue
        budget -= n + m
        anchors = _unique_anchors(a, alo, ahi, b, blo, bhi)
        i0, j0 = alo, blo
        for i, j in anchors:
            found.append((i, j, 1))
            if i > i0 or j > j0:
                work.append((i0, i, j0, j))
            i0, j0 = i + 1, j + 1
        if anchors and (ahi > i0 or bhi > j0):
            work.append((i0, ahi, j0, bhi))
    found.sort()
    merged: list[tuple[int, int, int]] = []
    for i, j, s in found:
        if merged and merged[-1][0] + merged[-1][2] == i and merged[-1][1] + merged[-1][2] == j:
            pi, pj, ps = merged[-1]
            merged[-1] = (pi, pj, ps + s)
        else:
            merged.append((i, j, s))
    return merged


def opcodes(a: Sequence[Hashable], b: Sequence[Hashable]) -> list[Opcode]:
    """How to turn ``a`` into ``b``, as difflib's opcodes (equal, replace, delete, insert)."""
    codes: list[Opcode] = []
    i = j = 0
    for ai, bj, size in [*match_blocks(a, b), (len(a), len(b), 0)]:
        if i < ai and j < bj:
            codes.append(("replace", i, ai, j, bj))
        elif i < ai:
            codes.append(("delete", i, ai, j, bj))
        elif j < bj:
            codes.append(("insert", i, ai, j, bj))
        i, j = ai + size, bj + size
        if size:
            codes.append(("equal", ai, i, bj, j))
    return codes


# -- text diffs -------------------------------------------------------------------------


@dataclass(frozen=True)
class WordOp:
    """A run of tokens (words, spaces, punctuation) inside a changed run of lines."""

    op: str  # equal, insert, delete, replace
    old: str
    new: str

    def to_dict(self) -> dict[str, str]:
        return {"op": self.op, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class TextDiff:
    """Two texts aligned by lines, with word-level detail for each changed run of lines."""

    old_lines: list[str]
    new_lines: list[str]
    codes: list[Opcode]
    #: For each ``replace`` opcode (by its index in ``codes``): its word ops, when small enough.
    words: dict[int, list[WordOp]]
    similarity: float

    @property
    def changed(self) -> bool:
        return any(code[0] != "equal" for code in self.codes)

    @property
    def lines_added(self) -> int:
        return sum(j2 - j1 for tag, _, _, j1, j2 in self.codes if tag in ("insert", "replace"))

    @property
    def lines_removed(self) -> int:
        return sum(i2 - i1 for tag, i1, i2, _, _ in self.codes if tag in ("delete", "replace"))

    def ops(self) -> Iterator[dict[str, Any]]:
        """Line-level operations, JSON-ready; a ``replace`` carries its ``words`` (or None)."""
        for k, (tag, i1, i2, j1, j2) in enumerate(self.codes):
            words = self.words.get(k)
            yield {
                "op": tag,
                "old_start": i1,
                "old_end": i2,
                "new_start": j1,
                "new_end": j2,
                "old": self.old_lines[i1:i2],
                "new": self.new_lines[j1:j2],
                "words": None if words is None else [w.to_dict() for w in words],
            }

    def unified(self, fromfile: str = "a", tofile: str = "b", context: int = 3) -> list[str]:
        """The unified diff lines difflib.unified_diff would print (``lineterm=""``)."""
        out: list[str] = []
        for group in _grouped(self.codes, context):
            if not out:
                out += [f"--- {fromfile}", f"+++ {tofile}"]
            first, last = group[0], group[-1]
            out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@")
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    out += [" " + line for line in self.old_lines[i1:i2]]
                    continue
                if tag in ("replace", "delete"):
                    out += ["-" + line for line in self.old_lines[i1:i2]]
                if tag in ("replace", "insert"):
                    out += ["+" + line for line in self.new_lines[j1:j2]]
        return out

    def word_diff(self, context: int = 3) -> list[str]:
        """Changed lines in git's ``--word-diff=plain`` style: ``[-old-]{+new+}`` inline.

        Unchanged lines within ``context`` of a change are shown with a space in front,
        a run of changed lines too large for a word diff as ``-``/``+`` lines.
        """
        out: list[str] = []
        index = {code: k for k, code in enumerate(self.codes) if code[0] == "replace"}
        for group in _grouped(self.codes, context):
            first, last = group[0], group[-1]
            out.append(f"@@ -{_range(first[1], last[2])} +{_range(first[3], last[4])} @@")
            for tag, i1, i2, j1, j2 in group:
                if tag == "equal":
                    out += [" " + line for line in self.old_lines[i1:i2]]
                    continue
                code = (tag, i1, i2, j1, j2)
                words = self.words.get(index[code]) if code in index else None
                if words is not None:
                    marked = "".join(_marked(w) for w in words)
                    out += ["~" + line for line in marked.split("\n")]
                    continue
                out += ["-" + line for line in self.old_lines[i1:i2]]
                out += ["+" + line for line in self.new_lines[j1:j2]]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "similarity": self.similarity,
            "lines_added": self.lines_added,
            "lines_removed": self.lines_removed,
            "ops": list(self.ops()),
        }


def _marked(word: WordOp) -> str:
    if word.op == "equal":
        return word.old
    removed = f"[-{word.old}-]" if word.old else ""
    added = f"{{+{word.new}+}}" if word.new else ""
    return removed + added


def _range(start: int, stop: int) -> str:
    """A unified diff's ``start,length`` (difflib's format)."""
    beginning, length = start + 1, stop - start
    if length == 1:
        return str(beginning)
    if not length:
        beginning -= 1
    return f"{beginning},{length}"


def _grouped(codes: list[Opcode], n: int) -> Iterator[list[Opcode]]:
    """Hunks with ``n`` lines of context (difflib's get_grouped_opcodes, on our opcodes)."""
    if not any(tag != "equal" for tag, *_ in codes):
        return
    codes = list(codes)
    if codes[0][0] == "equal":
        tag, i1, i2, j1, j2 = codes[0]
        codes[0] = tag, max(i1, i2 - n), i2, max(j1, j2 - n), j2
    if codes[-1][0] == "equal":
        tag, i1, i2, j1, j2 = codes[-1]
        codes[-1] = tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)
    group: list[Opcode] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal" and i2 - i1 > 2 * n:
            group.append((tag, i1, min(i2, i1 + n), j1, min(j2, j1 + n)))
            yield group
            group = []
            i1, j1 = max(i1, i2 - n), max(j1, j2 - n)
        group.append((tag, i1, i2, j1, j2))
    if group and not (len(group) == 1 and group[0][0] == "equal"):
        yield group


def diff_words(old: str, new: str) -> list[WordOp]:
    """Word-level operations turning ``old`` into ``new`` (tokens: words, spaces, punctuation)."""
    a, b = _TOKEN.findall(old), _TOKEN.findall(new)
    return [
        WordOp(tag, "".join(a[i1:i2]), "".join(b[j1:j2])) for tag, i1, i2, j1, j2 in opcodes(a, b)
    ]


def diff_text(old: str, new: str) -> TextDiff:
    """Align two texts by lines, then by words inside each changed run of lines."""
    a = old.splitlines()
    b = a if new is old or new == old else new.splitlines()
    codes = [("equal", 0, len(a), 0, len(a))] if a is b and a else opcodes(a, b)
    words: dict[int, list[WordOp]] = {}
    matched = 0
    for k, (tag, i1, i2, j1, j2) in enumerate(codes):
        if tag == "equal":
            matched += sum(len(line) + 1 for line in a[i1:i2])
        elif tag == "replace":
            old_run, new_run = "\n".join(a[i1:i2]), "\n".join(b[j1:j2])
            if len(old_run) + len(new_run) <= WORD_LIMIT:
                words[k] = diff_words(old_run, new_run)
                matched += sum(len(w.old) for w in words[k] if w.op == "equal")
    total = len(old) + len(new)
    similarity = min(1.0, 2 * matched / total) if total else 1.0
    return TextDiff(a, b, codes, words, similarity)


def text_summary(old: str, new: str, old_label: str = "a", new_label: str = "b") -> dict[str, Any]:
    """The figures ``compare_versions`` has always given, plus the structured ``ops``."""
    diff = diff_text(old, new)
    old_words, old_count = _words(old)
    new_words, new_count = _words(new) if new is not old else (old_words, old_count)
    union = old_words | new_words
    return {
        "unified_diff": diff.unified(old_label, new_label),
        "similarity": diff.similarity,
        "word_jaccard": len(old_words & new_words) / len(union) if union else 1.0,
        "lines_added": diff.lines_added,
        "lines_removed": diff.lines_removed,
        "character_diff": len(new) - len(old),
        "word_diff": new_count - old_count,
        "length_ratio": len(new) / len(old) if old else 0.0,
        "ops": list(diff.ops()),
    }


def _words(text: str, chunk: int = 1 << 20) -> tuple[set[str], int]:
    """The distinct lower-cased words of a text and its word count, a chunk at a time
    (``str.split`` is fast, but on the whole of an 8 MB text it builds a list of a
    million strings; chunks cut at whitespace keep that bounded)."""
    distinct: set[str] = set()
    count = 0
    start = 0
    while start < len(text):
        end = min(len(text), start + chunk)
        while end < len(text) and not text[end].isspace():
            end += 1
        words = text[start:end].lower().split()
        count += len(words)
        distinct.update(words)
        start = end
    return distinct, count


# -- chat prompts -----------------------------------------------------------------------

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
        return {items[k][0] for k in _increasing_run([o for _, o in items])}
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


def _increasing_run(values: list[int]) -> list[int]:
    """Indexes of a longest strictly increasing subsequence of ``values``."""
    tails: list[int] = []
    tail_at: list[int] = []
    back = [-1] * len(values)
    for k, v in enumerate(values):
        slot = bisect.bisect_left(tails, v)
        if slot == len(tails):
            tails.append(v)
            tail_at.append(k)
        else:
            tails[slot] = v
            tail_at[slot] = k
        back[k] = tail_at[slot - 1] if slot else -1
    run: list[int] = []
    k = tail_at[-1] if tail_at else -1
    while k != -1:
        run.append(k)
        k = back[k]
    return run[::-1]


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
