"""Chat prompts, config and commit messages through the real ``promptshelf`` entry point."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from promptshelf.cli import cli


def run(store: str, *args: str, input: str | None = None) -> Result:
    argv = [args[0], "--store", store, *args[1:]]
    return CliRunner().invoke(cli, argv, input=input, catch_exceptions=False)


MESSAGES = [
    {"role": "system", "content": "You answer questions about {{product}}."},
    {"role": "user", "text": "{{#sys.query#}}"},
]


@pytest.fixture
def chat_store(tmp_path: Path) -> str:
    store = str(tmp_path / "store")
    first = run(
        store,
        "save",
        "support",
        "--messages",
        "-",
        "--config",
        '{"model": "gpt-4o", "temperature": 0.2}',
        "-m",
        "first cut",
        input=json.dumps(MESSAGES),
    )
    assert first.exit_code == 0, first.output
    assert first.stdout == "Saved support 1.0.0\n"
    changed = [
        {"role": "system", "text": "You answer questions about {{product}}, politely."},
        {"role": "user", "text": "{{#sys.query#}}"},
        {"role": "assistant", "text": "Sure."},
    ]
    second = run(
        store,
        "save",
        "support",
        "--messages",
        "-",
        "--config",
        '{"model": "gpt-4o", "temperature": 0.5}',
        "--message",
        "politer, warmer",
        input=json.dumps(changed),
    )
    assert second.stdout == "Saved support 1.0.1\n"
    return store


def test_save_show_and_round_trip_messages(chat_store: str) -> None:
    shown = run(chat_store, "show", "support", "1.0.0").stdout
    assert "kind       chat\n" in shown
    assert 'config     {"model": "gpt-4o", "temperature": 0.2}\n' in shown
    assert "message    first cut\n" in shown
    assert "variables  product, sys.query\n" in shown
    assert shown.endswith(
        "\n[system]\nYou answer questions about {{product}}.\n\n[user]\n{{#sys.query#}}\n"
    )
    messages = run(chat_store, "show", "support", "1.0.0", "--messages").stdout
    assert json.loads(messages) == [
        {"role": "system", "text": "You answer questions about {{product}}."},
        {"role": "user", "text": "{{#sys.query#}}"},
    ]
    # what --messages prints, save --messages reads back: nothing changed, nothing saved
    again = run(chat_store, "save", "support", "--messages", "-", input=messages)
    assert again.stdout.startswith("Saved support 1.0.2")  # it differs from 1.0.1, the latest
    same = run(chat_store, "save", "support", "--messages", "-", input=messages)
    assert same.stdout.startswith("Unchanged: support is already at 1.0.2")
    # the config was inherited from the latest version
    data = json.loads(run(chat_store, "show", "support", "1.0.2", "--json").stdout)
    assert data["config"] == {"model": "gpt-4o", "temperature": 0.5}
    assert "commit_message" not in data


def test_log_shows_messages_and_config(chat_store: str) -> None:
    out = run(chat_store, "log", "support").stdout.splitlines()
    assert out[0].split() == [
        "VERSION",
        "SCORE",
        "STRATEGY",
        "PARENT",
        "AUTHOR",
        "CREATED",
        "MESSAGE",
        "CONFIG",
    ]
    assert "first cut" in out[1] and '{"model":"gpt-4o","temperature":0.2}' in out[1]
    assert "politer, warmer" in out[2]
    rows = json.loads(run(chat_store, "log", "support", "--json").stdout)
    assert rows[1]["message"] == "politer, warmer" and rows[1]["config"]["temperature"] == 0.5


def test_diff_is_message_aware(chat_store: str) -> None:
    out = run(chat_store, "diff", "support", "1.0.0", "1.0.1").stdout
    assert out.splitlines()[1:] == [
        "message: first cut -> politer, warmer",
        "config:",
        "  temperature: 0.2 -> 0.5",
        "~ #1 system: changed (text)",
        "~ You answer questions about {{product}}{+, politely+}.",
        "= #2 user: equal",
        "+ #3 assistant: added",
        "+Sure.",
    ]
    data = json.loads(run(chat_store, "diff", "support", "1.0.0", "1.0.1", "--json").stdout)
    assert [m["op"] for m in data["messages_diff"]] == ["changed", "equal", "added"]
    assert data["config_diff"] == [{"path": "temperature", "op": "changed", "old": 0.2, "new": 0.5}]


def test_render_chat_prints_api_messages(chat_store: str) -> None:
    out = run(
        chat_store, "render", "support", "1.0.0", "-V", "product=promptshelf", "-V", "sys.query=hi"
    )
    assert json.loads(out.stdout) == [
        {"role": "system", "content": "You answer questions about promptshelf."},
        {"role": "user", "content": "hi"},
    ]
    missing = run(chat_store, "render", "support", "1.0.0")
    assert missing.exit_code == 1
    assert (
        "no value for product, sys.query" in missing.stderr and "[RENDER-MISSING]" in missing.stderr
    )
    lenient = run(chat_store, "render", "support", "1.0.0", "--lenient")
    assert json.loads(lenient.stdout)[1] == {"role": "user", "content": "{{#sys.query#}}"}


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--messages", "-"], "not json", "--messages is not valid JSON"),
        (["--messages", "-"], "[]", "non-empty JSON list"),
        (["--messages", "-"], '[{"role": "robot", "text": "x"}]', "unknown message role 'robot'"),
        (["--text", "x", "--config", "[1]"], None, "--config must be a JSON object"),
        (["--text", "x", "--config", "@/nonexistent/c.json"], None, "cannot read --config file"),
    ],
)
def test_bad_chat_input_is_one_coded_line(
    tmp_path: Path, args: list[str], stdin: str | None, message: str
) -> None:
    store = str(tmp_path / "store")
    result = run(store, "save", "p", *args, input=stdin)
    assert result.exit_code == 2
    assert message in result.stderr and result.stderr.rstrip().endswith("[PS-CHAT-001]")
    assert len(result.stderr.strip().splitlines()) == 1


def test_kind_change_is_refused(chat_store: str) -> None:
    result = run(chat_store, "save", "support", "--text", "plain now")
    assert result.exit_code == 2
    assert "support is a chat prompt; a text version cannot follow it" in result.stderr
    assert "[PS-KIND-001]" in result.stderr


def test_diff_words_on_a_text_prompt(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    run(store, "save", "p", "--text", "one\ntwo\nthe quick brown fox\nfour\nfive\nsix\nseven")
    run(store, "save", "p", "--text", "one\ntwo\nthe quick red fox\nfour\nfive\nsix\nseven")
    out = run(store, "diff", "p", "1.0.0", "1.0.1", "--words").stdout.splitlines()
    assert out[1:] == [
        "  one",
        "  two",
        "~ the quick [-brown-]{+red+} fox",
        "  four",
        "  five",
        "  …",
    ]
