"""The codec: a version's canonical stored bytes, and reading them back.

Every backend stores :func:`encode_version`'s bytes (the original
implementation's pretty JSON) and reads through :func:`decode_version`, so a
version is the same bytes on every backend; checksums of those bytes are in
:mod:`promptshelf.storage.integrity`.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticSerializationError

from ..errors import CorruptVersionError, PayloadTooLargeError, ValidationError
from ..models import STORED, PromptVersion
from .integrity import digest

#: Largest serialized version a backend accepts (bytes of UTF-8 JSON).
MAX_VERSION_BYTES = 8 * 1024 * 1024


def encode_version(version: PromptVersion) -> bytes:
    """The canonical stored bytes of a version (the original's pretty JSON).

    Refuses (``ValidationError``) anything that would not read back as an
    equal version: values JSON cannot hold (NaN, sets, tuples, objects),
    nesting deeper than the JSON reader accepts, or over 8 MiB. A save never
    writes what a read would then reject.
    """
    context = {"prompt_id": version.prompt_id, "version": version.version}
    try:
        data = version.model_dump_json(indent=2).encode("utf-8")
    except (PydanticSerializationError, UnicodeEncodeError, ValueError) as exc:
        raise ValidationError(f"version cannot be stored as JSON: {exc}", context=context) from exc
    if len(data) > MAX_VERSION_BYTES:
        raise PayloadTooLargeError(
            f"version is {len(data)} bytes serialized; the limit is {MAX_VERSION_BYTES}",
            context={**context, "bytes": len(data)},
        )
    try:
        back = PromptVersion.model_validate_json(data, context=STORED)
    except PydanticValidationError as exc:
        raise ValidationError(
            f"version would not read back: {exc.errors()[0]['msg']}", context=context
        ) from None
    if back != version:
        raise ValidationError(
            "version does not survive JSON unchanged (NaN or infinity, a set, a tuple, or "
            "another value JSON cannot hold)",
            context=context,
        )
    return data


def version_sha256(version: PromptVersion) -> str:
    """SHA-256 of the canonical stored bytes: the version's checksum and its ETag, on every
    backend. Backups, sync records and retired numbers compare versions by it."""
    return digest(encode_version(version))


def decode_version(
    data: bytes | str | dict[str, Any], prompt_id: str, version: str, where: str
) -> PromptVersion:
    """Parse a stored payload, naming where it came from in any error; never returns wrong data."""
    try:
        if isinstance(data, dict):
            loaded = PromptVersion.model_validate(data, context=STORED)
        else:
            loaded = PromptVersion.model_validate_json(data, context=STORED)
    except PydanticValidationError as exc:
        kinds = {err["type"] for err in exc.errors()}
        reason = "corrupted JSON" if "json_invalid" in kinds else "invalid version data"
        raise CorruptVersionError(
            f"{reason} in {where}: {exc.errors()[0]['msg']}",
            context={"prompt_id": prompt_id, "version": version, "path": where, "reason": reason},
        ) from None
    if loaded.model_extra and any(map(_trailer_like, loaded.model_extra.items())):
        raise CorruptVersionError(
            f"{where} has a damaged checksum trailer",
            context={
                "prompt_id": prompt_id,
                "version": version,
                "path": where,
                "reason": "bad checksum trailer",
            },
        )
    if loaded.prompt_id != prompt_id or loaded.version != version:
        raise CorruptVersionError(
            f"{where} holds {loaded.prompt_id!r} {loaded.version!r}, not what its name says",
            context={
                "prompt_id": prompt_id,
                "version": version,
                "path": where,
                "reason": "misnamed",
            },
        )
    return loaded


_DIGEST = re.compile(r"[0-9a-fA-F]{64}")


def _trailer_like(item: tuple[str, Any]) -> bool:
    """An unknown key that is (or was, before damage) the checksum trailer: damage must
    never turn the checksum into an unknown key that is kept instead of checked."""
    key, value = item
    return key == "sha256" or (isinstance(value, str) and _DIGEST.fullmatch(value) is not None)
