"""Checksums: every version carries the SHA-256 of its canonical JSON, checked on every read.

On disk (filesystem backend) the checksum is a last top-level key appended to
the canonical bytes::

    {
      "prompt_id": ...,
      ...
      "metadata": {...},
      "sha256": "9f86d0..."
    }

so the canonical bytes are recovered by cutting that line off, with no
re-serialization. A file without the trailer (written by the original
implementation) reads unverified; a damaged trailer is an unknown key, which
validation refuses, so damage can never switch verification off.
"""

from __future__ import annotations

import hashlib
import re

from ..errors import ChecksumMismatchError

_TRAILER = re.compile(rb',\n  "sha256": "([0-9a-f]{64})"\n}\Z')


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def seal(canonical: bytes) -> bytes:
    """``canonical`` (which ends with ``\\n}``) with its checksum as a last key."""
    return canonical[:-2] + b',\n  "sha256": "' + digest(canonical).encode() + b'"\n}'


def unseal(data: bytes, where: str) -> tuple[bytes, bool]:
    """The canonical bytes of a stored file and whether a checksum vouched for them."""
    match = _TRAILER.search(data, max(0, len(data) - 90))
    if match is None:
        return data, False
    canonical = data[: match.start()] + b"\n}"
    expected = match.group(1).decode()
    check(canonical, expected, where)
    return canonical, True


def check(canonical: bytes, expected: str, where: str) -> None:
    actual = digest(canonical)
    if actual != expected:
        raise ChecksumMismatchError(
            f"checksum mismatch in {where}: the stored version is damaged",
            context={
                "path": where,
                "expected": expected,
                "actual": actual,
                "reason": "checksum mismatch",
            },
        )
