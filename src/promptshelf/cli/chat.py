"""Chat prompts, config and commit messages on the command line: options and parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, Any, TypeVar

import click

from ..errors import ValidationError
from ..models import ChatMessage, PromptVersion

F = TypeVar("F", bound=Callable[..., Any])


def chat_options(func: F) -> F:
    """``--messages FILE``, ``--config JSON`` and ``-m/--message TEXT`` for ``save``."""
    func = click.option(
        "--message",
        "-m",
        "commit_message",
        help="Commit message: why this version exists (shown by log, show and diff).",
    )(func)
    func = click.option(
        "--config",
        metavar="JSON|@FILE",
        help="Model settings as a JSON object (model, provider, temperature ...); "
        "default: the latest version's.",
    )(func)
    return click.option(
        "--messages",
        "messages_file",
        type=click.File("r", encoding="utf-8"),
        help='A chat prompt: a JSON list of {"role", "text"} messages ("content" works too).',
    )(func)


def _json(text: str, what: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValidationError(
            f"{what} is nested too deeply to read", error_code="PS-CHAT-001"
        ) from None
    except ValueError as exc:
        raise ValidationError(
            f"{what} is not valid JSON: {exc}", error_code="PS-CHAT-001"
        ) from None


def read_messages(stream: IO[str]) -> list[ChatMessage]:
    """Messages from a JSON list; OpenAI's ``content`` is accepted for ``text``."""
    try:
        data = _json(stream.read(), "--messages")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"--messages is not UTF-8: {exc}", error_code="PS-CHAT-001") from None
    if not isinstance(data, list) or not data:
        raise ValidationError(
            "--messages must be a non-empty JSON list of messages", error_code="PS-CHAT-001"
        )
    messages = []
    for k, item in enumerate(data):
        if not isinstance(item, dict):
            raise ValidationError(f"message {k} is not a JSON object", error_code="PS-CHAT-001")
        item = dict(item)
        if "content" in item and "text" not in item:
            item["text"] = item.pop("content")
        try:
            messages.append(ChatMessage.model_validate(item))
        except Exception as exc:  # pydantic's error: name the message and the first problem
            errors = getattr(exc, "errors", None)
            first = errors()[0] if callable(errors) else {"loc": (), "msg": str(exc)}
            where = ".".join(str(part) for part in first["loc"])
            raise ValidationError(
                f"message {k}: {where}: {first['msg']}", error_code="PS-CHAT-001"
            ) from None
    return messages


def parse_config(value: str) -> dict[str, Any]:
    """A JSON object given inline or as ``@path``."""
    if value.startswith("@"):
        try:
            with open(value[1:], encoding="utf-8") as handle:
                value = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(
                f"cannot read --config file {value[1:]!r}: {exc}", error_code="PS-CHAT-001"
            ) from None
    config = _json(value, "--config")
    if not isinstance(config, dict):
        raise ValidationError("--config must be a JSON object", error_code="PS-CHAT-001")
    return config


def inherited_config(latest: PromptVersion | None) -> dict[str, Any] | None:
    """A new version runs with the latest version's settings unless told otherwise."""
    return None if latest is None else latest.config
