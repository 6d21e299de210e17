"""The one place where prompt ids (and label-like names) are validated.

A prompt id becomes a directory name in the filesystem backend and a key in
every other backend, so the rule is the strictest any of them needs:

* a non-empty ``str`` of at most 255 bytes in UTF-8 (``NAME_MAX`` counts bytes);
* no path separators (``/`` ``\\``), no ``:`` and none of ``* ? " < > |``
  (Windows refuses them), no control or format characters (Unicode category
  ``C*``: NUL, newlines, bidi overrides, lone surrogates);
* not ``.`` or ``..``, not starting with ``.`` (reserved for the store's own
  files such as ``.index.json``), no leading or trailing whitespace, not
  ending with ``.`` (Windows strips it);
* not a name Windows reserves (``CON``, ``NUL``, ``COM1``, ... with any extension);
* already in Unicode NFC: ``"café"`` typed as NFD would otherwise become a
  second, different-looking-identical prompt on ext4.

Ids are case-sensitive: ``Prompt`` and ``prompt`` are two prompts.
"""

from __future__ import annotations

import unicodedata

from .errors import InvalidPromptIdError

MAX_ID_BYTES = 255

_FORBIDDEN_CHARS = frozenset('/\\:*?"<>|')
_WINDOWS_RESERVED = frozenset(
    ["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
    + [f"COM{i}" for i in range(10)]
    + [f"LPT{i}" for i in range(10)]
    + ["COM¹", "COM²", "COM³", "LPT¹", "LPT²", "LPT³"]
)


def _reject(kind: str, value: object, reason: str) -> InvalidPromptIdError:
    shown = value[:60] if isinstance(value, str) else value
    return InvalidPromptIdError(
        f"invalid {kind} {shown!r}: {reason}", context={kind.replace(" ", "_"): repr(value)[:120]}
    )


def validate_name(value: object, kind: str = "prompt id") -> str:
    """Return ``value`` unchanged if it is a safe name, else raise ``InvalidPromptIdError``."""
    if not isinstance(value, str):
        raise _reject(kind, value, f"must be a string, not {type(value).__name__}")
    if not value:
        raise _reject(kind, value, "must not be empty")
    try:
        encoded = value.encode("utf-8")
    except UnicodeEncodeError:
        raise _reject(kind, value, "contains a lone surrogate") from None
    if len(encoded) > MAX_ID_BYTES:
        raise _reject(kind, value, f"is {len(encoded)} bytes in UTF-8; the limit is {MAX_ID_BYTES}")
    if value in (".", "..") or value.startswith("."):
        raise _reject(kind, value, "must not start with '.'")
    if value != value.strip() or value.endswith("."):
        raise _reject(kind, value, "must not start or end with whitespace or end with '.'")
    for char in value:
        if char in _FORBIDDEN_CHARS:
            raise _reject(kind, value, f"must not contain {char!r}")
        if unicodedata.category(char)[0] == "C":
            raise _reject(kind, value, f"must not contain control character U+{ord(char):04X}")
    if value.split(".")[0].upper() in _WINDOWS_RESERVED:
        raise _reject(kind, value, "is a name Windows reserves")
    if not unicodedata.is_normalized("NFC", value):
        raise _reject(kind, value, "must be in Unicode NFC form (normalize it first)")
    return value


#: Ids already found valid; checked first because validation sits on every read path.
_known_valid: set[str] = set()
_KNOWN_VALID_MAX = 65536


def validate_prompt_id(prompt_id: object) -> str:
    if type(prompt_id) is str and prompt_id in _known_valid:
        return prompt_id
    valid = validate_name(prompt_id, "prompt id")
    if len(_known_valid) >= _KNOWN_VALID_MAX:
        _known_valid.clear()
    _known_valid.add(valid)
    return valid
