"""Text diffs: lines first, then words inside each changed run of lines (git's
``--word-diff`` idea), with a similarity measured on that alignment: the share of
characters in matched lines and words, never a character-by-character
``SequenceMatcher`` (which was quadratic: 9 to 24 s for 30 KB, 11 minutes for 8 MB).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from .align import Opcode, opcodes

#: A changed run of lines is diffed word by word only up to this many characters.
WORD_LIMIT = 100_000

_TOKEN = re.compile(r"\w+|\s+|[^\w\s]")


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
