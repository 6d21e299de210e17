"""Aligning two sequences in time linear in their size (lines, then words).

Strip the common prefix and suffix, anchor on items that occur exactly once on
each side (patience diff: the longest run of such pairs in the same order on
both sides), and recurse into the gaps; only small gaps go to :mod:`difflib`'s
exact matcher, whose cost grows with the product of the sizes. A work budget
proportional to the input caps the recursion, so an adversarial input costs at
most a constant times its size; past the budget a gap is reported as replaced
(correct, just less fine-grained).
"""

from __future__ import annotations

import bisect
import difflib
from collections import Counter
from collections.abc import Hashable, Sequence

#: (tag, old_start, old_end, new_start, new_end), the shape of difflib's opcodes.
Opcode = tuple[str, int, int, int, int]

#: Gaps whose size product is at most this go to difflib's exact matcher.
EXACT_LIMIT = 40_000


def increasing_run(values: list[int]) -> list[int]:
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
    return [pairs[k] for k in increasing_run([j for _, j in pairs])]


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
