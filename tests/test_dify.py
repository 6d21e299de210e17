"""Dify DSL round trips: import every prompt, write versions back changing nothing else."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from promptshelf import InMemoryStorage, VersionManager
from promptshelf.dify import dsl
from promptshelf.dify.importer import import_app, prompt_id
from promptshelf.dify.writeback import apply_versions, changed_lines
from promptshelf.errors import DifyError, PromptKindError
from promptshelf.models import ChatMessage, PromptVersion

from conftest import SEED_STORE

SHARED = SEED_STORE.parent / "dify"
OURS = Path(__file__).resolve().parent / "fixtures" / "dify"
#: verbatim copies of the six shared exports (MIT, licence beside them), so the suite runs
#: without shared/ as the seed store's copy in examples/ does
BUNDLED = OURS / "exports"

#: prompts found per fixture, by kind (see the issue's closing note)
EXPECTED: dict[str, dict[str, int]] = {
    "Agent工具调用.yml": {"agent": 1},
    "Deep_Researcher_On_Dify_.yml": {"llm (chat)": 13, "parameter-extractor": 5},
    "Document_chat_template.yml": {"llm (chat)": 5},
    "Jina_Reader_Jinja.yml": {"llm (chat)": 1},
    "llm2o1.cn.yml": {"llm (chat)": 3, "parameter-extractor": 1},
    "translation_workflow.yml": {"llm (chat)": 4},
    "completion_mode.yml": {"llm (completion)": 2, "question-classifier": 1},
    "jinja2_chat.yml": {"llm (chat)": 1},
}

#: how each file is written: re-dumped by PyYAML (with or without allow_unicode), or not
STYLES = {
    "Agent工具调用.yml": "pyyaml",
    "Deep_Researcher_On_Dify_.yml": "pyyaml",
    "Document_chat_template.yml": "pyyaml",
    "Jina_Reader_Jinja.yml": "pyyaml",
    "llm2o1.cn.yml": "pyyaml",
    "translation_workflow.yml": "pyyaml",
    "completion_mode.yml": "pyyaml",
    "jinja2_chat.yml": "in-place",
}


def load_yaml(data: str | bytes) -> Any:
    return dsl.parse_yaml(data.decode("utf-8") if isinstance(data, bytes) else data, "test")


def fixture_path(name: str) -> Path:
    return OURS / name if (OURS / name).exists() else BUNDLED / name


def load(name: str) -> tuple[bytes, dsl.DifyApp, str]:
    raw = fixture_path(name).read_bytes()
    app = dsl.load_app(raw.decode("utf-8"), name)
    return raw, app, dsl.workflow_key(app.name)


def imported(name: str) -> tuple[bytes, dsl.DifyApp, str, VersionManager]:
    raw, app, key = load(name)
    manager = VersionManager(InMemoryStorage())
    import_app(manager, app, key, name)
    return raw, app, key, manager


def latest(manager: VersionManager) -> Any:
    return lambda pid: manager.storage.get_latest_version(pid)


def edited(manager: VersionManager, pid: str, edit: Any) -> PromptVersion:
    """A new latest version of ``pid`` whose texts (or messages) went through ``edit``."""
    current = manager.get_latest_version(pid)
    if current.prompt.messages is not None:
        messages = [ChatMessage.model_validate(m) for m in edit(current.prompt.messages)]
        prompt = current.prompt.model_validate(
            {**current.prompt.model_dump(), "messages": messages}
        )
    else:
        prompt = current.prompt.model_copy(update={"text": edit(current.prompt.text)})
    return manager.create_version(prompt, current.analysis, config=current.config)


def get(document: Any, path: tuple[str | int, ...]) -> Any:
    for part in path:
        document = document[part]
    return document


def with_value(document: Any, path: tuple[str | int, ...], value: Any) -> Any:
    import copy

    result = copy.deepcopy(document)
    get(result, path[:-1])[path[-1]] = value
    return result


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_fixture_imports_with_its_prompts_by_kind(name: str) -> None:
    raw, app, key = load(name)
    manager = VersionManager(InMemoryStorage())
    report = import_app(manager, app, key, name)
    assert dict(report.kinds) == EXPECTED[name]
    assert len(report.saved) == sum(EXPECTED[name].values()) and not report.unchanged
    for found in app.prompts:
        version = manager.get_latest_version(prompt_id(key, found))
        assert version.version == "1.0.0" and version.prompt.kind == found.kind
        assert version.prompt.node_id == found.node_id and version.prompt.workflow_id == key
        assert version.prompt.node_type == found.node_type
        # the recorded variables are the placeholders: no variable warnings, except for a
        # Jinja2 variable used only inside expressions ({{ notes|length }}, {% if notes %})
        warnings = version.analysis.metadata.get("variable_warnings", [])
        assert warnings == (
            ["declared variable 'notes' is not used in the text"]
            if version.prompt.node_id == "1720000000003"
            else []
        )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_reimport_saves_nothing(name: str) -> None:
    raw, app, key, manager = imported(name)
    again = import_app(manager, dsl.load_app(raw.decode("utf-8"), name), key, name)
    assert again.saved == {} and len(again.unchanged) == sum(EXPECTED[name].values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_noop_apply_is_byte_identical(name: str) -> None:
    raw, app, key, manager = imported(name)
    report = apply_versions(raw, key, latest(manager))
    assert report.output == raw
    assert report.changed == {} and len(report.unchanged) == sum(EXPECTED[name].values())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_one_changed_prompt_changes_only_its_field(name: str) -> None:
    raw, app, key, manager = imported(name)
    target = app.prompts[0]
    pid = prompt_id(key, target)
    if target.kind == "chat":
        version = edited(
            manager,
            pid,
            lambda ms: [
                {**m.model_dump(), "text": m.text + "\nCite your sources — 出典を示す."}
                if k == 0
                else m.model_dump()
                for k, m in enumerate(ms)
            ],
        )
    else:
        version = edited(manager, pid, lambda t: t + "\nCite your sources — 出典を示す.")
    report = apply_versions(raw, key, latest(manager))
    assert report.changed == {pid: version.version} and report.style == STYLES[name]
    field = target.fields[0]
    before = load_yaml(raw)
    after = load_yaml(report.output)
    assert get(after, field.path) == field.text + "\nCite your sources — 出典を示す."
    assert after == with_value(before, field.path, get(after, field.path))
    # the text diff touches only the lines of that one scalar
    lines = changed_lines(raw, report.output)
    assert 1 <= lines <= 2 * (field.text.count("\n") + 4), lines
    if name == "Document_chat_template.yml":  # an older export: non-ASCII stays escaped
        assert report.output.isascii()


def test_jinja2_message_writes_jinja2_text_and_keeps_the_stale_text() -> None:
    raw, app, key, manager = imported("jinja2_chat.yml")
    [found] = app.prompts
    pid = prompt_id(key, found)
    assert [f.path[-1] for f in found.fields] == ["jinja2_text", "text", "query_prompt_template"]
    assert found.variables() == ["product", "tone", "context", "sys.query"]
    edited(
        manager,
        pid,
        lambda ms: [
            {**m.model_dump(), "text": m.text.replace("support assistant", "friendly helper")}
            for m in ms
        ],
    )
    report = apply_versions(raw, key, latest(manager))
    assert report.style == "in-place"
    out = report.output.decode("utf-8")
    assert out.count("\n") == raw.decode("utf-8").count("\n")  # still a 3-line literal block
    assert "  You are the friendly helper for {{ product }}.\n" in out
    assert "# the stale basic text stays as it is" in out  # comments survive
    assert "text: 'You help with our product.'" in out  # the stale text is untouched
    message = load_yaml(out)["workflow"]["graph"]["nodes"][2]["data"]["prompt_template"][0]
    assert message["jinja2_text"].startswith("You are the friendly helper for {{ product }}.")
    assert changed_lines(raw, report.output) == 2  # one line of the block changed
    reparsed = dsl.load_app(out, "out")
    assert (
        reparsed.prompts[0].fields[0].text
        == manager.get_latest_version(pid).prompt.messages[0].text
    )  # type: ignore[index]


def test_memory_query_template_round_trips() -> None:
    raw, app, key, manager = imported("jinja2_chat.yml")
    pid = prompt_id(key, app.prompts[0])
    version = manager.get_latest_version(pid)
    assert version.prompt.messages is not None
    assert version.prompt.messages[-1].slot == "memory.query_prompt_template"
    edited(
        manager,
        pid,
        lambda ms: [{**m.model_dump(), "text": m.text.replace("be kind", "be brief")} for m in ms],
    )
    report = apply_versions(raw, key, latest(manager))
    node = load_yaml(report.output)["workflow"]["graph"]["nodes"][2]["data"]
    assert node["memory"]["query_prompt_template"] == "{{#sys.query#}}\n\nRemember: be brief."
    assert changed_lines(raw, report.output) == 2


def test_completion_jinja2_round_trip_writes_only_jinja2_text() -> None:
    raw, app, key, manager = imported("completion_mode.yml")
    bullets = next(p for p in app.prompts if p.title == "Bullets")
    pid = prompt_id(key, bullets)
    assert bullets.kind == "text" and bullets.fields[0].path[-1] == "jinja2_text"
    assert bullets.variables() == ["summary", "notes"]
    edited(manager, pid, lambda t: t.replace("three", "five"))
    report = apply_versions(raw, key, latest(manager))
    assert report.style == "pyyaml" and report.changed == {pid: "1.0.1"}
    template = load_yaml(report.output)["workflow"]["graph"]["nodes"][2]["data"]["prompt_template"]
    assert template["jinja2_text"].startswith("Turn this summary into five bullet points")
    assert template["text"] == "stale basic text {{#1720000000002.text#}}"
    assert changed_lines(raw, report.output) == 2


def test_a_dropped_placeholder_is_refused_and_nothing_changes() -> None:
    raw, app, key, manager = imported("translation_workflow.yml")
    target = next(p for p in app.prompts if p.required_placeholders())
    pid = prompt_id(key, target)
    required = target.required_placeholders()
    edited(
        manager,
        pid,
        lambda ms: [
            {**m.model_dump(), "text": m.text.replace(f"{{{{#{required[0]}#}}}}", "")} for m in ms
        ],
    )
    with pytest.raises(DifyError) as caught:
        apply_versions(raw, key, latest(manager))
    assert caught.value.error_code == "DIFY-PLACEHOLDER-001"
    assert f"{{{{#{required[0]}#}}}}" in caught.value.message and pid in caught.value.message
    allowed = apply_versions(raw, key, latest(manager), allow_placeholder_changes=True)
    assert pid in allowed.changed


def test_a_dropped_jinja2_variable_and_context_are_refused() -> None:
    raw, app, key, manager = imported("jinja2_chat.yml")
    pid = prompt_id(key, app.prompts[0])
    assert app.prompts[0].required_placeholders() == ["product", "tone", "context", "sys.query"]
    assert app.prompts[0].variables() == ["product", "tone", "context", "sys.query"]
    edited(
        manager,
        pid,
        lambda ms: [{**m.model_dump(), "text": m.text.replace("{{ product }}", "it")} for m in ms],
    )
    with pytest.raises(DifyError, match="drops product"):
        apply_versions(raw, key, latest(manager))


def test_context_may_go_when_context_is_disabled() -> None:
    raw, app, key = load("Document_chat_template.yml")
    disabled = [p for p in app.prompts if not p.context_enabled]
    for found in disabled:
        assert "context" not in found.required_placeholders()


def test_a_version_that_does_not_fit_its_node_is_refused() -> None:
    raw, app, key, manager = imported("translation_workflow.yml")
    pid = prompt_id(key, app.prompts[0])
    edited(manager, pid, lambda ms: [*[m.model_dump() for m in ms], {"role": "user", "text": "x"}])
    with pytest.raises(DifyError) as caught:
        apply_versions(raw, key, latest(manager))
    assert caught.value.error_code == "DIFY-APPLY-001" and "messages" in caught.value.message


def test_role_change_is_refused() -> None:
    raw, app, key, manager = imported("translation_workflow.yml")
    pid = prompt_id(key, app.prompts[0])
    edited(
        manager,
        pid,
        lambda ms: [
            {**m.model_dump(), "role": "assistant"} if k == 0 else m.model_dump()
            for k, m in enumerate(ms)
        ],
    )
    with pytest.raises(DifyError, match="not roles"):
        apply_versions(raw, key, latest(manager))


def test_a_changed_node_gets_a_new_version_whose_parent_is_the_latest(tmp_path: Path) -> None:
    raw, app, key, manager = imported("llm2o1.cn.yml")
    target = app.prompts[1]
    pid = prompt_id(key, target)
    document = load_yaml(raw)
    path = target.fields[0].path
    get(document, path[:-1])[path[-1]] = target.fields[0].text + " 更多。"
    get(document, ("workflow", "graph", "nodes", path[3], "data"))["title"] = "renamed"
    changed = dsl.load_app(yaml.dump(document, allow_unicode=True), "changed")
    report = import_app(manager, changed, key, "llm2o1.cn.yml")
    assert report.saved == {pid: "1.0.1"}
    assert manager.get_latest_version(pid).parent_version == "1.0.0"
    # a retitled node alone is not a new version
    get(document, ("workflow", "graph", "nodes", path[3], "data"))["title"] = "again"
    assert import_app(manager, dsl.load_app(yaml.dump(document), "x"), key, "x").saved == {}


def test_a_kind_change_in_the_file_is_refused_before_saving_anything() -> None:
    raw, app, key, manager = imported("completion_mode.yml")
    document = load_yaml(raw)
    node = document["workflow"]["graph"]["nodes"][1]["data"]
    node["prompt_template"] = [{"role": "system", "text": node["prompt_template"]["text"]}]
    node = document["workflow"]["graph"]["nodes"][3]["data"]
    node["instruction"] += " (changed)"
    with pytest.raises(PromptKindError):
        import_app(manager, dsl.load_app(yaml.dump(document), "x"), key, "x")
    pid = f"{key}_1720000000004"
    assert manager.storage.list_version_numbers(pid) == ["1.0.0"]


def test_hand_edited_file_is_patched_in_place(tmp_path: Path) -> None:
    raw, app, key, manager = imported("translation_workflow.yml")
    hand = b"# exported, then edited by hand\n" + raw.replace(
        b"mode: workflow", b"mode: workflow  # !"
    )
    report = apply_versions(hand, key, latest(manager))
    assert report.output == hand
    pid = prompt_id(key, app.prompts[1])
    edited(manager, pid, lambda ms: [{**m.model_dump(), "text": "Réécris: " + m.text} for m in ms])
    patched = apply_versions(hand, key, latest(manager))
    assert patched.changed == {pid: "1.0.1"} and patched.style == "in-place"
    assert patched.output.startswith(b"# exported, then edited by hand\n")
    assert b"mode: workflow  # !" in patched.output
    before, after = load_yaml(hand), load_yaml(patched.output)
    field = app.prompts[1].fields[0]
    assert after == with_value(before, field.path, "Réécris: " + field.text)
    assert b"\\xE9" in patched.output or b"\\xe9" in patched.output or b"\\u00E9" in patched.output


def test_not_a_dify_file_is_one_coded_error(tmp_path: Path) -> None:
    for text, message in [
        ("a: [1", "not valid YAML"),
        ("kind: app\napp: {}\n", "not a Dify app export"),
        ("- 1\n", "not a Dify app export"),
    ]:
        with pytest.raises(DifyError, match=message) as caught:
            dsl.load_app(text, "x.yml")
        assert caught.value.error_code == "DIFY-FILE-001"


def test_workflow_keys_are_valid_stable_ids() -> None:
    assert dsl.workflow_key("Deep Researcher On Dify") == "deep_researcher_on_dify"
    assert dsl.workflow_key("llm→o1") == "llm_o1"
    assert dsl.workflow_key("Agent工具调用") == "agent工具调用"
    assert dsl.workflow_key("../..") == "app"


def test_bundled_exports_match_the_shared_fixtures_when_present() -> None:
    if not SHARED.is_dir():
        pytest.skip("shared/ is not beside this checkout")
    shared = {p.name: p.read_bytes() for p in SHARED.iterdir() if p.is_file()}
    bundled = {p.name: p.read_bytes() for p in BUNDLED.iterdir() if p.is_file()}
    assert shared == bundled


def test_a_message_without_id_is_found_by_position() -> None:
    raw, app, key, manager = imported("Deep_Researcher_On_Dify_.yml")
    found = next(p for p in app.prompts if p.node_id == "1739088190247")
    assert [f.message_id is None for f in found.fields] == [False, True]
    pid = prompt_id(key, found)
    edited(
        manager,
        pid,
        lambda ms: [
            {**m.model_dump(), "text": m.text + " (2)"} if k == 1 else m.model_dump()
            for k, m in enumerate(ms)
        ],
    )
    report = apply_versions(raw, key, latest(manager))
    after = load_yaml(report.output)
    assert get(after, found.fields[1].path) == found.fields[1].text + " (2)"
    assert after == with_value(load_yaml(raw), found.fields[1].path, found.fields[1].text + " (2)")


def test_messages_with_ids_are_found_by_id_whatever_their_order() -> None:
    raw, app, key, manager = imported("translation_workflow.yml")
    two = next(p for p in app.prompts if len(p.fields) == 2)
    pid = prompt_id(key, two)
    version = manager.get_latest_version(pid)
    assert version.prompt.messages is not None
    assert all(f.message_id is not None for f in two.fields)
    # a version whose messages carry the file's ids lands by id: texts swap back into place
    swapped = [m.model_dump() for m in reversed(version.prompt.messages)]
    swapped[0]["text"] += " [user edit]"
    stored = version.model_copy(
        update={
            "prompt": version.prompt.model_validate(
                {**version.prompt.model_dump(), "messages": swapped}
            )
        }
    )
    report = apply_versions(raw, key, lambda p: stored if p == pid else None)
    after = load_yaml(report.output)
    user_field = next(f for f in two.fields if f.role == "user")
    assert get(after, user_field.path) == user_field.text + " [user edit]"
    assert report.changed == {pid: version.version}


def test_hand_edited_literal_block_falls_back_to_a_quoted_scalar_when_it_must() -> None:
    raw, app, key, manager = imported("jinja2_chat.yml")
    pid = prompt_id(key, app.prompts[0])
    edited(
        manager,
        pid,
        lambda ms: [
            {**m.model_dump(), "text": "  indented first line\n" + m.text}
            if k == 0
            else m.model_dump()
            for k, m in enumerate(ms)
        ],
    )
    report = apply_versions(raw, key, latest(manager))
    out = report.output.decode("utf-8")
    assert 'jinja2_text: "  indented first line\\nYou are the support assistant' in out
    field = app.prompts[0].fields[0]
    assert load_yaml(out) == with_value(
        load_yaml(raw), field.path, "  indented first line\n" + field.text
    )
