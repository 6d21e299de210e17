"""The line-then-word diff and the message-aware diff of chat prompts."""

from __future__ import annotations

import difflib
import random

import pytest

from promptshelf import VersionManager
from promptshelf.diff import diff_config, diff_messages, diff_text, diff_words, opcodes
from promptshelf.models import ChatMessage

from helpers import make_chat_version


def _apply(a: list[str], b: list[str], codes: list[tuple[str, int, int, int, int]]) -> list[str]:
    out: list[str] = []
    for tag, i1, i2, j1, j2 in codes:
        if tag == "equal":
            assert a[i1:i2] == b[j1:j2]
            out += a[i1:i2]
        else:
            out += b[j1:j2]
    return out


@pytest.mark.parametrize("seed", range(40))
def test_opcodes_always_rebuild_the_new_side(seed: int) -> None:
    rnd = random.Random(seed)
    size = rnd.choice([5, 60, 400])
    a = [rnd.choice("abcdefgh") + str(rnd.randrange(size)) for _ in range(rnd.randrange(size))]
    b = list(a)
    for _ in range(rnd.randrange(1, 20)):
        if b and rnd.random() < 0.5:
            del b[rnd.randrange(len(b))]
        else:
            b.insert(rnd.randrange(len(b) + 1), rnd.choice("xyz"))
    assert _apply(a, b, opcodes(a, b)) == b


def test_unified_diff_is_what_difflib_prints() -> None:
    old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\nk\n"
    new = "a\nB\nc\nd\ne\nf\ng\nh\ni\nj2\nk\nl\n"
    expected = list(
        difflib.unified_diff(old.splitlines(), new.splitlines(), "1.0.0", "1.1.0", lineterm="")
    )
    assert diff_text(old, new).unified("1.0.0", "1.1.0") == expected
    assert diff_text(old, old).unified() == []


def test_words_are_diffed_inside_changed_lines() -> None:
    d = diff_text("keep\nthe quick brown fox\n", "keep\nthe quick red fox jumps\n")
    [replace] = [op for op in d.ops() if op["op"] == "replace"]
    assert replace["old"] == ["the quick brown fox"] and replace["new"] == [
        "the quick red fox jumps"
    ]
    assert [w for w in replace["words"] if w["op"] != "equal"] == [
        {"op": "replace", "old": "brown", "new": "red"},
        {"op": "insert", "old": "", "new": " jumps"},
    ]
    assert d.word_diff() == [
        "@@ -1,2 +1,2 @@",
        " keep",
        "~the quick [-brown-]{+red+} fox{+ jumps+}",
    ]
    assert "".join(w.new for w in diff_words("a b", "a c")) == "a c"


def test_similarity_is_bounded_and_sensible() -> None:
    assert diff_text("", "").similarity == 1.0
    assert diff_text("same\ntext", "same\ntext").similarity == 1.0
    assert diff_text("one two three", "four five six").similarity < 0.2
    assert 0.8 < diff_text("a long line of text here", "a long line of text there").similarity < 1


def test_large_texts_diff_in_linear_work() -> None:
    # 40,000 distinct lines with edits spread through: the old character matcher was quadratic
    lines = [f"line {i} of the prompt with some words" for i in range(40_000)]
    changed = list(lines)
    for i in range(0, 40_000, 997):
        changed[i] = changed[i].replace("some", "other")
    d = diff_text("\n".join(lines), "\n".join(changed))
    assert d.lines_added == d.lines_removed == len(range(0, 40_000, 997))
    assert d.similarity > 0.99


def _msgs(*pairs: tuple[str, str]) -> list[ChatMessage]:
    return [ChatMessage(role=r, text=t) for r, t in pairs]


def test_message_diff_finds_added_removed_changed_and_moved() -> None:
    old = _msgs(
        ("system", "You are terse."),
        ("user", "Example question one about billing"),
        ("assistant", "Example answer"),
        ("user", "{{#sys.query#}}"),
    )
    new = _msgs(
        ("system", "You are terse and polite."),
        ("assistant", "Example answer"),
        ("user", "Example question one about billing"),
        ("user", "{{#sys.query#}}"),
        ("user", "Reply in {{lang}}."),
    )
    ops = [(op.op, op.old_index, op.new_index) for op in diff_messages(old, new)]
    assert ("changed", 0, 0) in ops and ("added", None, 4) in ops
    assert ("equal", 3, 3) in ops
    moved = [o for o in ops if o[0] == "moved"]
    assert len(moved) == 1 and moved[0][1] in (1, 2)
    changed = diff_messages(old, new)[0]
    assert changed.fields == ("text",)
    assert [w.to_dict() for w in changed.text.words[0] if w.op != "equal"] == [
        {"op": "insert", "old": "", "new": " and polite"}
    ]


def test_message_diff_reports_role_changes_and_removals() -> None:
    old = _msgs(("system", "Be brief."), ("user", "Hi"), ("user", "Bye now"))
    new = _msgs(("developer", "Be brief."), ("user", "Hi"))
    ops = diff_messages(old, new)
    assert [(o.op, o.old_role, o.new_role, o.role_changed) for o in ops] == [
        ("changed", "system", "developer", True),
        ("equal", "user", "user", False),
        ("removed", "user", None, False),
    ]
    assert ops[2].text.lines_removed == 1


def test_messages_pair_by_id_even_when_rewritten() -> None:
    old = [
        ChatMessage(role="system", text="alpha beta", id="m1"),
        ChatMessage(role="user", text="x", id="m2"),
    ]
    new = [
        ChatMessage(role="user", text="x", id="m2"),
        ChatMessage(role="system", text="gamma", id="m1"),
    ]
    ops = diff_messages(old, new)
    assert sorted((o.op, o.old_index, o.new_index) for o in ops) == [
        ("equal", 1, 0),
        ("moved", 0, 1),
    ]
    assert ops[1].fields == ("text",)


def test_config_diff_walks_nested_settings() -> None:
    changes = diff_config(
        {"model": {"name": "gpt-4o", "mode": "chat"}, "temperature": 0.7, "stop": ["a"]},
        {"model": {"name": "gpt-4o-mini", "mode": "chat"}, "stop": ["a"], "top_p": 1},
    )
    assert [c.to_dict() for c in changes] == [
        {"path": "model.name", "op": "changed", "old": "gpt-4o", "new": "gpt-4o-mini"},
        {"path": "temperature", "op": "removed", "old": 0.7, "new": None},
        {"path": "top_p", "op": "added", "old": None, "new": 1},
    ]
    assert diff_config(None, None) == []


def test_compare_versions_of_a_chat_prompt() -> None:
    manager = VersionManager()
    first = make_chat_version()
    manager.create_version(
        first.prompt, first.analysis, config={"temperature": 0.2}, commit_message="one"
    )
    assert first.prompt.messages is not None
    messages = [m.model_dump() for m in first.prompt.messages]
    messages[0]["text"] = "You are a friendly support agent for {{product}}."
    messages[2]["role"] = "user"
    second = first.prompt.model_copy(update={"messages": [ChatMessage(**m) for m in messages]})
    second = type(first.prompt).model_validate(second.model_dump())
    manager.create_version(
        second, first.analysis, config={"temperature": 0.5}, commit_message="two"
    )
    result = manager.compare_versions(first.prompt_id, "1.0.0", "1.0.1")
    assert result["kind"] == "chat"
    assert (result["commit_message1"], result["commit_message2"]) == ("one", "two")
    assert result["config_diff"] == [
        {"path": "temperature", "op": "changed", "old": 0.2, "new": 0.5}
    ]
    ops = result["messages_diff"]
    assert [o["op"] for o in ops] == ["changed", "equal", "changed", "equal"]
    assert ops[2]["role_changed"] and ops[2]["fields"] == ["role"]
    words = [w for w in ops[0]["text"]["ops"][0]["words"] if w["op"] != "equal"]
    assert words == [{"op": "insert", "old": "", "new": "friendly "}]


@pytest.mark.parametrize(
    "case",
    ["reversed", "two-letter", "periodic"],
)
def test_adversarial_inputs_stay_correct_with_bounded_work(case: str) -> None:
    n = 20_000
    rnd = random.Random(5)
    if case == "reversed":  # one unique anchor per level: the budget stops the recursion
        a = [f"line {i}" for i in range(n)]
        b = a[::-1]
    elif case == "two-letter":  # no unique line at all
        a = [rnd.choice("ab") for _ in range(n)]
        b = [rnd.choice("ab") for _ in range(n)]
    else:
        a = [str(i % 500) for i in range(n)]
        b = [str((i * 7) % 500) for i in range(n)]
    assert _apply(a, b, opcodes(a, b)) == b
    d = diff_text("\n".join(a), "\n".join(b))
    assert 0.0 <= d.similarity <= 1.0
