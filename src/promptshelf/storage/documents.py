"""Documents: small JSON objects kept in the store beside the versions, with compare-and-swap.

The server owns no state a backend does not: its API keys and settings (which
labels are protected) are documents in the store, so N server processes on one
PostgreSQL (or one shared directory) agree on them. A document is a JSON object
under ``(namespace, key)`` with a ``revision``: 1 when created, one more on each
replace. Every write names the revision it expects, so two writers that read the
same revision cannot both win (the loser gets ``DocumentConflictError`` and
reads again), on every backend.

Documents are not versions: ``clear_all`` leaves them, ``verify`` does not read
them, and they have no history. ``clear_all`` notes itself in one, under
``(STORE_NAMESPACE, CLEARED_KEY)``: a fresh random token with ``"done": false``
before anything is removed, ``"done": true`` after. So ``sync`` can tell a source
that was emptied (its label histories start again from 1) from a standby that
someone else wrote to, and waits for a clear under way (or one that crashed:
then clear again) instead of copying a store half cleared.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import CorruptStoreError, PayloadTooLargeError, ValidationError
from ..ids import validate_name

#: Where ``clear_all`` notes each clear (see the module docstring).
STORE_NAMESPACE = "promptshelf-store"
CLEARED_KEY = "cleared"
#: Where ``sync`` notes, in the store it writes (a standby, a backup), which of each
#: prompt's versions it copied there and their SHA-256 (key: the prompt id). A store's own
#: bookkeeping: never copied by sync, migrate or backup, nor compared.
SYNC_NAMESPACE = "promptshelf-sync"

#: Version numbers removed for good by ``empty_trash`` (recorded before they go; the
#: replication primitives ``purge_version``/``purge_trashed`` record nothing, a replica gets
#: its source's record as a document):
#: one document per prompt (key: the prompt id), ``{"versions": {number: [sha256, ...]}}``,
#: the SHA-256 of each removed copy's JSON. ``save_version`` refuses a retired number
#: (unless it is those very bytes again), so a number never names other content.
#: ``clear_all`` removes these too: a cleared store starts over.
RETIRED_NAMESPACE = "retired-versions"

#: Largest document a backend accepts (bytes of UTF-8 JSON).
MAX_DOCUMENT_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Document:
    """One stored document: its key, its JSON object and its revision (1, 2, ...)."""

    key: str
    data: dict[str, Any]
    revision: int


def check_names(namespace: object, key: object | None = None) -> None:
    """Namespaces and keys follow the prompt id rules (they become file names)."""
    validate_name(namespace, "document namespace")
    if key is not None:
        validate_name(key, "document key")


def check_revision(expected: object) -> int | None:
    if expected is None:
        return None
    if type(expected) is not int or expected < 1:
        raise ValidationError(f"expected_revision must be an int >= 1 or None, got {expected!r}")
    return expected


def encode_document(data: Mapping[str, Any]) -> bytes:
    """Canonical bytes of a document (sorted keys); refuses what JSON cannot hold."""
    if not isinstance(data, Mapping):
        raise ValidationError(f"a document is a JSON object, not {type(data).__name__}")
    try:
        raw = json.dumps(dict(data), sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"document cannot be stored as JSON: {exc}") from None
    encoded = _utf8(raw)
    if len(encoded) > MAX_DOCUMENT_BYTES:
        raise PayloadTooLargeError(
            f"document is {len(encoded)} bytes; the limit is {MAX_DOCUMENT_BYTES}",
            context={"bytes": len(encoded)},
        )
    return encoded


def _utf8(text: str) -> bytes:
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("document contains a lone surrogate") from None


def decode_document(raw: bytes | str, where: str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise CorruptStoreError(f"document {where} is not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise CorruptStoreError(f"document {where} is not a JSON object")
    return data
