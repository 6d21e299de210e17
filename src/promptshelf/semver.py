"""Semantic versions ``X.Y.Z``: parse, order, bump.

Parsing is ASCII-only on purpose: Python's ``int()`` accepts ``" 1"``, ``"+1"``,
``"1_0"`` and non-ASCII digits such as ``"٣"``; each would let two different
strings name the same version (and the same file). Leading zeros are refused
for the same reason (``"01.0.0"`` would shadow ``"1.0.0"``).
"""

from __future__ import annotations

import functools
import re
from typing import cast

from .errors import InvalidVersionError

#: Upper bound of each component: fits a 32-bit signed integer column.
MAX_COMPONENT = 2**31 - 1

_VERSION_RE = re.compile(r"(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})\.(0|[1-9][0-9]{0,9})")

VersionKey = tuple[int, int, int]

FIRST_VERSION = "1.0.0"


def parse(version: object) -> VersionKey:
    """Return ``(major, minor, patch)`` or raise :class:`InvalidVersionError`."""
    if not isinstance(version, str):
        raise InvalidVersionError(
            f"version must be a string, got {type(version).__name__}",
            context={"version": repr(version)[:80]},
        )
    key = _parse_cached(version)
    if key is None:
        raise InvalidVersionError(
            f"invalid version {version[:40]!r}: expected X.Y.Z with non-negative "
            f"ASCII integers (each at most {MAX_COMPONENT}) and no leading zeros",
            context={"version": version[:80]},
        )
    return key


@functools.lru_cache(maxsize=65536)
def _parse_cached(version: str) -> VersionKey | None:
    # Parsing sits on every read path (and in the model's validator): memoize it.
    match = _VERSION_RE.fullmatch(version)
    if match is None:
        return None
    key = (int(match[1]), int(match[2]), int(match[3]))
    return key if max(key) <= MAX_COMPONENT else None


def try_parse(version: str) -> VersionKey | None:
    """Like :func:`parse` but returns None instead of raising (for directory scans)."""
    return _parse_cached(version)


def validate(version: object) -> str:
    parse(version)
    return cast(str, version)


def format_key(key: VersionKey) -> str:
    return f"{key[0]}.{key[1]}.{key[2]}"


def sort_versions(versions: list[str]) -> list[str]:
    """Oldest first by semantic order: ``1.10.0`` after ``1.9.0``."""
    return sorted(versions, key=parse)


def bump(version: str, *, minor: bool) -> str:
    """Next version: minor bump (``1.2.3`` -> ``1.3.0``) or patch bump (-> ``1.2.4``)."""
    major, mnr, patch = parse(version)
    key = (major, mnr + 1, 0) if minor else (major, mnr, patch + 1)
    if max(key) > MAX_COMPONENT:
        raise InvalidVersionError(
            f"cannot bump {version!r}: component would exceed {MAX_COMPONENT}",
            context={"version": version},
        )
    return format_key(key)
