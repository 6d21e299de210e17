"""Chat prompts, per-version config and commit messages in the model; text prompts unchanged."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from promptshelf import PromptVersion, VersionManager
from promptshelf.errors import PromptKindError, RenderError
from promptshelf.models import ChatMessage, Prompt, RenderWarning, chat_text, placeholders

from helpers import CHAT_MESSAGES, make_analysis, make_chat_version, make_version


def test_text_prompt_json_has_no_new_keys() -> None:
    data = json.loads(make_version().model_dump_json(indent=2))
    assert "config" not in data and "commit_message" not in data
    assert "messages" not in data["prompt"]


def test_chat_prompt_text_is_derived_from_its_messages() -> None:
    v = make_chat_version()
    assert v.prompt.kind == "chat" and make_version().prompt.kind == "text"
    assert v.prompt.messages is not None
    assert v.prompt.text == chat_text(v.prompt.messages)
    assert v.prompt.text.startswith("[system]\nYou are a support agent for {{product}}.\n\n[user]")
    # a stale or hand-written text is replaced by the derived one
    again = Prompt.model_validate({**v.prompt.model_dump(), "text": "stale"})
    assert again.text == v.prompt.text
    changed = v.prompt.model_copy(deep=True)
    changed.messages = [ChatMessage(role="user", text="only")]
    assert changed.text == "[user]\nonly"


def test_chat_version_json_round_trip_keeps_optional_fields_only_when_set() -> None:
    v = make_chat_version()
    data = json.loads(v.model_dump_json())
    assert data["prompt"]["messages"][0] == {
        "role": "system",
        "text": "You are a support agent for {{product}}.",
        "id": "m-sys",
    }
    assert data["prompt"]["messages"][3]["slot"] == "memory.query_prompt_template"
    assert data["config"]["temperature"] == 0.2 and data["commit_message"] == "first chat version"
    assert PromptVersion.model_validate_json(v.model_dump_json()) == v


@pytest.mark.parametrize(
    "messages",
    [
        [],
        [{"role": "sytem", "text": "x"}],
        [{"role": "user"}],
        [{"role": "user", "text": "x", "edition_type": "html"}],
    ],
)
def test_bad_messages_are_refused(messages: list[dict[str, str]]) -> None:
    with pytest.raises(ValidationError):
        make_chat_version(messages=messages)


def test_placeholders_are_found_in_every_message_in_both_syntaxes() -> None:
    v = make_chat_version()
    assert placeholders(v.prompt.text) == ["product", "sys.query", "context", "lang"]
    assert placeholders("{{#1718246807593.text#}} and {{ name }}") == ["1718246807593.text", "name"]


def test_render_chat_returns_messages_ready_for_a_chat_api() -> None:
    v = make_chat_version(
        messages=[
            {"role": "system", "text": "Help with {{product}}."},
            {"role": "user", "text": "{{#sys.query#}}", "name": "alice"},
        ]
    )
    assert v.render_messages({"product": "promptshelf", "sys.query": "hi"}) == [
        {"role": "system", "content": "Help with promptshelf."},
        {"role": "user", "content": "hi", "name": "alice"},
    ]


def test_render_chat_is_strict_naming_every_missing_variable() -> None:
    v = make_chat_version()
    with pytest.raises(RenderError) as caught:
        v.render_messages({"product": "x"})
    assert caught.value.context["missing"] == ["sys.query", "context", "lang"]
    lenient = v.render_messages({"product": "x"}, strict=False)
    assert lenient[1]["content"].startswith("{{#sys.query#}}")
    with pytest.warns(RenderWarning):
        v.render_messages(
            {"product": "x", "sys.query": "q", "context": "c", "lang": "de", "extra": 1}
        )


def test_text_prompt_renders_as_one_message() -> None:
    v = make_version(text="Summarize {{document}}.")
    assert v.render_messages({"document": "d"}) == [{"role": "system", "content": "Summarize d."}]


def test_kind_cannot_change_between_versions() -> None:
    manager = VersionManager()
    chat = make_chat_version()
    created = manager.create_version(chat.prompt, chat.analysis, config={"model": "m"})
    assert created.config == {"model": "m"}
    text_prompt = make_version().prompt.model_copy(update={"id": chat.prompt_id})
    with pytest.raises(PromptKindError) as caught:
        manager.create_version(text_prompt, make_analysis(chat.prompt_id))
    assert caught.value.error_code == "PS-KIND-001"
    assert "chat prompt" in caught.value.message


def test_unchanged_chat_prompt_is_not_saved_again_but_a_config_change_is() -> None:
    manager = VersionManager()
    chat = make_chat_version()
    first = manager.create_version(chat.prompt, chat.analysis, config={"t": 1})
    same = manager.create_version(
        chat.prompt, chat.analysis, config={"t": 1}, skip_if_unchanged=True
    )
    assert same.version == first.version
    other = manager.create_version(
        chat.prompt, chat.analysis, config={"t": 2}, skip_if_unchanged=True, commit_message="warmer"
    )
    assert other.version == "1.0.1" and other.commit_message == "warmer"


def test_rollback_carries_config_and_says_so() -> None:
    manager = VersionManager()
    chat = make_chat_version()
    manager.create_version(chat.prompt, chat.analysis, config={"t": 1})
    manager.create_version(chat.prompt, chat.analysis, config={"t": 2})
    back = manager.rollback(chat.prompt_id, "1.0.0")
    assert back.config == {"t": 1} and back.commit_message == "Roll back to 1.0.0"
    assert back.prompt.messages == chat.prompt.messages


def test_helpers_chat_messages_are_valid() -> None:
    assert [ChatMessage.model_validate(m).role for m in CHAT_MESSAGES] == [
        "system",
        "user",
        "assistant",
        "user",
    ]


def test_declared_variables_are_checked_across_every_message() -> None:
    from promptshelf.errors import VariableMismatchError

    chat = make_chat_version()
    prompt = chat.prompt.model_copy(update={"variables": ["product", "unused"]})
    saved = VersionManager().create_version(prompt, chat.analysis)
    assert saved.analysis.metadata["variable_warnings"] == [
        "declared variable 'unused' is not used in the text",
        "placeholder {{sys.query}} is not a declared variable",
        "placeholder {{context}} is not a declared variable",
        "placeholder {{lang}} is not a declared variable",
    ]
    with pytest.raises(VariableMismatchError):
        VersionManager(strict_variables=True).create_version(prompt, chat.analysis)
    assert (
        "variable_warnings"
        not in VersionManager().create_version(chat.prompt, chat.analysis).analysis.metadata
    )
