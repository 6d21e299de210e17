"""Rendering, variable checks, skipping unchanged saves, selectors, promote and rollback_label."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st

from promptshelf import VersionManager, VersionStorage
from promptshelf.errors import (
    LabelError,
    LabelNotFoundError,
    RenderError,
    VariableMismatchError,
    VersionNotFoundError,
)
from promptshelf.models import RenderWarning, placeholders

from helpers import make_analysis, make_prompt, make_version


def test_render_fills_placeholders_with_tolerated_whitespace() -> None:
    v = make_version(text="Hi {{name}}, see {{ doc }} and {{name }} again.")
    assert v.render(name="Ana", doc="the spec") == "Hi Ana, see the spec and Ana again."
    assert v.render({"name": 1, "doc": 2.5}) == "Hi 1, see 2.5 and 1 again."


def test_strict_render_names_every_missing_variable() -> None:
    v = make_version(text="{{a}} {{b}} {{c}}")
    with pytest.raises(RenderError) as caught:
        v.render(b="x")
    assert caught.value.error_code == "RENDER-MISSING"
    assert caught.value.context["missing"] == ["a", "c"]
    assert "a, c" in str(caught.value)


def test_lenient_render_keeps_unknown_placeholders_visible() -> None:
    v = make_version(text="Dear {{ name }}, {{greeting}}")
    assert v.render(strict=False, greeting="hello") == "Dear {{ name }}, hello"


def test_extra_variables_are_reported() -> None:
    v = make_version(text="Hello {{name}}")
    with pytest.warns(RenderWarning, match="surplus"):
        assert v.render(name="x", surplus=1) == "Hello x"
    report = v.render_report({"name": "x", "surplus": 1, "strict": 2})
    assert (report.missing, report.unused) == ((), ("surplus", "strict"))


def test_values_are_not_rescanned() -> None:
    v = make_version(text="{{a}} {{b}}")
    assert v.render(a="{{b}}", b="B") == "{{b}} B"


texts = st.text(alphabet=st.characters(blacklist_characters="{}"), max_size=200)


@given(texts)
def test_render_without_placeholders_is_the_identity(text: str) -> None:
    if not text.strip():
        return
    assert make_version(text=text).render() == text


@given(
    st.lists(st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True), min_size=1, max_size=5), texts
)
def test_strict_render_never_leaves_a_placeholder(names: list[str], filler: str) -> None:
    text = filler + " ".join(f"{{{{ {n} }}}}" for n in names) + "."
    version = make_version(text=text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RenderWarning)
        out = version.render({n: "v" for n in names})
    assert not placeholders(out)
    assert "{{" not in out  # the filler has no braces and every value is "v"


# -- variables checked at creation ---------------------------------------------------------


def test_variable_disagreements_are_recorded(storage: VersionStorage) -> None:
    manager = VersionManager(storage)
    prompt = make_prompt(text="Use {{document}} and {{style}}").model_copy(
        update={"variables": ["document", "unused"]}
    )
    created = manager.create_version(prompt, make_analysis())
    stored = storage.get_version(created.prompt_id, created.version)
    assert stored is not None
    assert stored.analysis.metadata["variable_warnings"] == [
        "declared variable 'unused' is not used in the text",
        "placeholder {{style}} is not a declared variable",
    ]
    clean = manager.create_version(make_prompt(text="Only {{document}}"), make_analysis())
    assert "variable_warnings" not in clean.analysis.metadata


def test_strict_variables_refuse(storage: VersionStorage) -> None:
    manager = VersionManager(storage, strict_variables=True)
    with pytest.raises(VariableMismatchError) as caught:
        manager.create_version(make_prompt(text="{{x}}"), make_analysis())
    assert caught.value.error_code == "PS-VARIABLES-001"
    assert storage.list_prompts() == []


# -- skip_if_unchanged -------------------------------------------------------------------


def test_skip_if_unchanged(storage: VersionStorage) -> None:
    manager = VersionManager(storage)
    first = manager.create_version(make_prompt(text="Same {{document}}"), make_analysis())
    again = manager.create_version(
        make_prompt(text="Same {{document}}"), make_analysis(score=99), skip_if_unchanged=True
    )
    assert again.version == first.version == "1.0.0"
    assert storage.list_version_numbers(first.prompt_id) == ["1.0.0"]
    changed_role = make_prompt(text="Same {{document}}").model_copy(update={"role": "user"})
    assert (
        manager.create_version(changed_role, make_analysis(), skip_if_unchanged=True).version
        == "1.0.1"
    )
    assert manager.create_version(changed_role, make_analysis()).version == "1.0.2"


# -- selectors, promote, rollback_label ----------------------------------------------------


@pytest.fixture
def manager(storage: VersionStorage) -> VersionManager:
    m = VersionManager(storage)
    for score in (60.0, 90.0, 70.0):
        m.create_version(make_prompt(), make_analysis(score=score))
    return m


def test_selectors(manager: VersionManager) -> None:
    pid = "wf_001_llm_1"
    manager.promote(pid, "best", "production")
    assert manager.resolve(pid, "label:production") == "1.0.1"
    assert manager.get_version(pid, "label:production").version == "1.0.1"
    assert manager.resolve(pid, "latest") == "1.0.2"
    assert manager.compare_versions(pid, "label:production", "latest")["improvement"] == -20.0
    with pytest.raises(LabelNotFoundError):
        manager.get_version(pid, "label:staging")


def test_promote_and_rollback_label(manager: VersionManager) -> None:
    pid = "wf_001_llm_1"
    manager.promote(pid, "1.0.0", actor="ci")
    manager.promote(pid, "latest", actor="ci")
    event = manager.rollback_label(pid, "production", actor="oncall")
    assert (event.from_version, event.to_version, event.actor) == ("1.0.2", "1.0.0", "oncall")
    assert event.reason == "rollback of production from 1.0.2"
    assert manager.storage.get_label(pid, "production") == "1.0.0"
    assert len(manager.storage.label_history(pid, "production")) == 3
    manager.promote(pid, "label:production", "staging")
    with pytest.raises(LabelError):
        manager.rollback_label(pid, "staging")  # it pointed nowhere before
    with pytest.raises(LabelNotFoundError):
        manager.rollback_label(pid, "canary")


def test_rollback_label_twice_steps_back_twice(manager: VersionManager) -> None:
    pid = "wf_001_llm_1"
    for number in ("1.0.0", "1.0.1", "1.0.2"):
        manager.promote(pid, number)
    assert manager.rollback_label(pid, "production").to_version == "1.0.1"
    assert manager.rollback_label(pid, "production").to_version == "1.0.0"  # not 1.0.2 again
    with pytest.raises(LabelError):
        manager.rollback_label(pid, "production")  # nothing before 1.0.0
    manager.promote(pid, "1.0.2")  # a new move after the undos: one undo goes back to 1.0.0
    assert manager.rollback_label(pid, "production").to_version == "1.0.0"


def test_a_parent_must_be_an_existing_version(manager: VersionManager) -> None:
    pid = "wf_001_llm_1"
    with pytest.raises(VersionNotFoundError):
        manager.create_version(make_prompt(text="x {{document}}"), make_analysis(), None, "9.9.9")
    assert manager.storage.list_version_numbers(pid) == ["1.0.0", "1.0.1", "1.0.2"]
    made = manager.create_version(
        make_prompt(text="y {{document}}"), make_analysis(), None, "1.0.0"
    )
    assert made.parent_version == "1.0.0"
