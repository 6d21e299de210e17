"""Diffs that stay fast on large texts, and message-aware diffs of chat prompts.

* :mod:`.align`: two sequences aligned in time linear in their size;
* :mod:`.text`: texts by lines, then words inside changed lines, with a similarity;
* :mod:`.chat`: chat prompts message by message, configs setting by setting.

Every result is a plain dataclass whose ``to_dict()`` gives JSON-ready data for
the command line and the server (``VersionManager.compare_versions`` uses them).
"""

from __future__ import annotations

from .align import EXACT_LIMIT, Opcode, match_blocks, opcodes
from .chat import ConfigChange, MessageOp, diff_config, diff_messages
from .text import WORD_LIMIT, TextDiff, WordOp, diff_text, diff_words, text_summary

__all__ = [
    "EXACT_LIMIT",
    "WORD_LIMIT",
    "ConfigChange",
    "MessageOp",
    "Opcode",
    "TextDiff",
    "WordOp",
    "diff_config",
    "diff_messages",
    "diff_text",
    "diff_words",
    "match_blocks",
    "opcodes",
    "text_summary",
]
