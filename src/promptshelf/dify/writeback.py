"""Writing chosen versions back into a Dify DSL file, changing nothing else.

Only active text fields change (for a Jinja2 message its ``jinja2_text``; the
stale ``text`` beside it stays). A file is one of two cases, told apart by
trying: Dify writes exports with PyYAML (``yaml.dump(..., allow_unicode=True)``,
keys sorted; older exports without ``allow_unicode``, so non-ASCII text is
``\\uXXXX`` escapes). When dumping the parsed file with either setting gives
back the exact bytes, the patched document is dumped the same way: every
unchanged line comes out as it was, and the changed text is laid out as Dify
itself would lay it out. Any other file (comments, other key order or quoting,
hand edits) is patched in place: each changed scalar's span (from PyYAML's
node marks) is replaced, by a literal block at the same indentation where the
old one was a literal block and the text allows it, else by a double-quoted
scalar, and nothing else is touched.

Either way the result is parsed again and compared with the input everywhere,
the patched fields set to their new texts: any other difference refuses the
write (``DIFY-APPLY-002``). The file is then replaced atomically (a temporary
file in the same directory, fsynced, renamed over it, the directory fsynced).
"""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path as FsPath
from typing import Any

import yaml

from ..diff import opcodes
from ..errors import DifyError
from ..models import PromptVersion
from .dsl import DifyPrompt, Path, load_app, parse_yaml
from .importer import prompt_id

#: Finds the version to write for a prompt id, or None to leave the node as it is.
Chooser = Callable[[str], PromptVersion | None]


@dataclass
class ApplyReport:
    """What an apply did (or would do): per prompt id."""

    changed: dict[str, str] = field(default_factory=dict)  # prompt id -> version written
    unchanged: dict[str, str] = field(default_factory=dict)  # version equals the file
    left: list[str] = field(default_factory=list)  # no version chosen: node left as it is
    style: str = ""  # "pyyaml" (re-dumped) or "in-place" (scalars patched); "" if no change
    output: bytes = b""

    def to_dict(self) -> dict[str, Any]:
        return {
            "changed": self.changed,
            "unchanged": self.unchanged,
            "left": self.left,
            "style": self.style,
        }


def apply_versions(
    raw: bytes,
    key: str,
    choose: Chooser,
    *,
    allow_placeholder_changes: bool = False,
    where: str = "the file",
) -> ApplyReport:
    """The bytes of the file with the chosen versions written in (``report.output``)."""
    text = _decode(raw, where)
    app = load_app(text, where)
    patches: dict[Path, str] = {}
    report = ApplyReport()
    problems: list[str] = []
    for found in app.prompts:
        pid = prompt_id(key, found)
        version = choose(pid)
        if version is None:
            report.left.append(pid)
            continue
        new_texts = _texts_for(found, version)
        missing = [
            name
            for name in found.required_placeholders()
            if name not in found.required_placeholders(new_texts)
        ]
        if missing and not allow_placeholder_changes:
            shown = ", ".join(_shown(found, name) for name in missing)
            problems.append(f"{pid} {version.version} drops {shown}")
        changes = {
            f.path: new for f, new in zip(found.fields, new_texts, strict=True) if new != f.text
        }
        if changes:
            patches.update(changes)
            report.changed[pid] = version.version
        else:
            report.unchanged[pid] = version.version
    if problems:
        raise DifyError(
            "placeholders would be lost (--allow-placeholder-changes to write anyway): "
            + "; ".join(problems),
            error_code="DIFY-PLACEHOLDER-001",
            context={"problems": problems},
        )
    if not patches:
        report.output = raw  # nothing to write: the bytes as they came (no re-dump needed)
        return report
    report.style, dump = _style(app.document, text)
    expected = copy.deepcopy(app.document)
    for path, value in patches.items():
        _set(expected, path, value)
    if dump is not None:
        out = dump(expected)
    else:
        out = _patch_in_place(text, patches, literal=True)
        if parse_yaml(out, "the patched file") != expected:
            out = _patch_in_place(text, patches, literal=False)  # every text double-quoted
    if parse_yaml(out, "the patched file") != expected:
        raise DifyError(
            f"writing into {where} would change more than the prompt texts; nothing was written",
            error_code="DIFY-APPLY-002",
            context={"path": where},
        )
    report.output = (_BOM if raw.startswith(_BOM) else b"") + out.encode("utf-8")
    return report


_BOM = b"\xef\xbb\xbf"


def _decode(raw: bytes, where: str) -> str:
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DifyError(
            f"{where} is not UTF-8 text: {exc}", error_code="DIFY-FILE-001", context={"path": where}
        ) from None


def _shown(found: DifyPrompt, name: str) -> str:
    return f"{{{{#{name}#}}}}" if any(f"{{{{#{name}#}}}}" in f.text for f in found.fields) else name


def _texts_for(found: DifyPrompt, version: PromptVersion) -> list[str]:
    """The version's text for each field of the node, matched as the file is laid out."""
    pid = version.prompt_id
    messages = version.prompt.messages
    if found.kind == "text":
        if messages is not None:
            raise _mismatch(pid, version, "it is a chat prompt; the node holds one text")
        return [version.prompt.text]
    if messages is None:
        raise _mismatch(pid, version, "it is a text prompt; the node holds chat messages")
    if len(messages) != len(found.fields):
        raise _mismatch(
            pid,
            version,
            f"it has {len(messages)} messages, the node {len(found.fields)} "
            "(apply changes texts, not the list of messages)",
        )
    by_id = {m.id: m for m in messages if m.id is not None}
    texts = []
    for position, f in enumerate(found.fields):
        if f.slot is not None:
            message = next((m for m in messages if m.slot == f.slot), None)
        elif f.message_id is not None and f.message_id in by_id:
            message = by_id[f.message_id]
        else:
            message = messages[position]
        if message is None or message.slot != f.slot:
            raise _mismatch(pid, version, f"message {position + 1} is not where the node has it")
        if message.role != f.role:
            raise _mismatch(
                pid,
                version,
                f"message {position + 1} is {message.role!r} in the version, {f.role!r} in the "
                "file (apply changes texts, not roles)",
            )
        texts.append(message.text)
    return texts


def _mismatch(pid: str, version: PromptVersion, why: str) -> DifyError:
    return DifyError(
        f"{pid} {version.version} does not fit its node: {why}",
        error_code="DIFY-APPLY-001",
        context={"prompt_id": pid, "version": version.version},
    )


def _set(document: Any, path: Path, value: str) -> None:
    target = document
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value


# -- the two ways of writing -------------------------------------------------------------


def _style(document: Any, text: str) -> tuple[str, Callable[[Any], str] | None]:
    """("pyyaml", dump) when PyYAML re-dumps the file byte for byte, else ("in-place", None)."""
    # A file with any non-ASCII character can only be a dump with allow_unicode=True;
    # an all-ASCII one only a dump without it (or of data that is all ASCII: the same).
    for allow_unicode in (not text.isascii(),):
        try:
            again = yaml.dump(document, allow_unicode=allow_unicode, sort_keys=True)
        except yaml.YAMLError:
            continue
        if again == text:

            def dump(doc: Any, unicode: bool = allow_unicode) -> str:
                return yaml.dump(doc, allow_unicode=unicode, sort_keys=True)

            return "pyyaml", dump
    return "in-place", None


def _patch_in_place(text: str, patches: dict[Path, str], *, literal: bool) -> str:
    """Replace the span of each patched scalar; keep the rest.

    A literal block (``|``) stays a literal block at its indentation where the new
    text can be one (``literal``); anything else becomes a double-quoted scalar.
    """
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    escape_unicode = not any(ord(c) > 127 for c in text)  # an all-ASCII file stays ASCII
    spans = []
    for path, value in patches.items():
        node = _node_at(root, path)
        if not isinstance(node, yaml.ScalarNode):
            raise DifyError(
                f"the field {'.'.join(map(str, path))} is not a text in the file",
                error_code="DIFY-APPLY-002",
            )
        start, end = node.start_mark.index, node.end_mark.index
        if node.style in ("|", ">"):
            # A block scalar's span runs to the start of the next line; keep that line break.
            while end > start and text[end - 1] == "\n":
                end -= 1
        block = _literal_block(text, node, value, escape_unicode) if literal else None
        scalar = block if block is not None else _double_quoted(value, escape_unicode)
        if start == end and start > 0 and text[start - 1] == ":":
            scalar = " " + scalar  # a null value: "key:" needs a space before its new text
        spans.append((start, end, scalar))
    out = text
    for start, end, scalar in sorted(spans, reverse=True):
        out = out[:start] + scalar + out[end:]
    return out


def _literal_block(
    text: str, node: yaml.ScalarNode, value: str, escape_unicode: bool
) -> str | None:
    """``value`` as a literal block at the indentation of the block it replaces, or None
    when it cannot be one simply (not a literal block before, a leading space or line
    break, trailing blank lines, characters a literal block cannot hold)."""
    if node.style != "|" or not value or value[0] in " \n" or value.endswith("\n\n"):
        return None
    if escape_unicode and not value.isascii():
        return None
    if not all(c.isprintable() or c in "\t\n" for c in value):
        return None
    start = node.start_mark.index
    header_end = text.find("\n", start, node.end_mark.index)
    if header_end < 0:
        return None
    content = text[header_end + 1 : node.end_mark.index].split("\n")
    first = next((line for line in content if line.strip()), None)
    if first is None:
        return None
    indent = len(first) - len(first.lstrip(" "))
    chomp = "" if value.endswith("\n") else "-"
    lines = value.removesuffix("\n").split("\n")
    return f"|{chomp}\n" + "\n".join(" " * indent + line if line else "" for line in lines)


def _double_quoted(value: str, escape_unicode: bool) -> str:
    """``value`` as one double-quoted YAML scalar on one line."""
    dumped = yaml.dump(
        value, default_style='"', allow_unicode=not escape_unicode, width=float("inf")
    )
    return dumped.rstrip("\n").removesuffix("\n...").rstrip("\n")


def _node_at(root: yaml.Node | None, path: Path) -> yaml.Node | None:
    node = root
    for part in path:
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            node = next((v for k, v in node.value if getattr(k, "value", None) == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            node = node.value[part] if part < len(node.value) else None
        else:
            return None
    return node


# -- writing the file ----------------------------------------------------------------------


def write_atomically(path: FsPath, data: bytes) -> None:
    """Replace ``path`` with ``data``: a temp file beside it, fsynced, renamed, dir fsynced.

    A symlink is followed (the file it names is replaced, the link stays); a failure
    leaves the old file as it was and raises ``DifyError`` (``DIFY-WRITE-001``).
    """
    try:
        _write(path.resolve(), data)
    except OSError as exc:
        raise DifyError(
            f"cannot write {path}: {exc.strerror or exc}; the file is as it was",
            error_code="DIFY-WRITE-001",
            context={"path": str(path)},
        ) from None


def _write(path: FsPath, data: bytes) -> None:
    directory = path.parent
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def changed_lines(before: bytes, after: bytes) -> int:
    """Lines removed plus lines added between two versions of a file."""
    a = before.decode("utf-8-sig").splitlines()
    b = after.decode("utf-8-sig").splitlines()
    return sum((i2 - i1) + (j2 - j1) for tag, i1, i2, j1, j2 in opcodes(a, b) if tag != "equal")


__all__ = ["ApplyReport", "Chooser", "apply_versions", "changed_lines", "write_atomically"]
