"""VersionManager on every backend: numbering, history, comparison, rollback, best."""

from __future__ import annotations

import pytest

from promptshelf import VersionManager, VersionNotFoundError, VersionStorage

from helpers import make_analysis, make_prompt, make_result


@pytest.fixture
def manager(storage: VersionStorage) -> VersionManager:
    return VersionManager(storage)


def test_numbering_follows_the_original_rules(manager: VersionManager) -> None:
    p = make_prompt()
    assert manager.create_version(p, make_analysis()).version == "1.0.0"
    assert manager.create_version(p, make_analysis(), make_result()).version == "1.1.0"
    assert manager.create_version(p, make_analysis()).version == "1.1.1"
    assert manager.create_version(p, make_analysis()).version == "1.1.2"
    assert manager.create_version(p, make_analysis(), make_result()).version == "1.2.0"


def test_metadata_defaults_and_extra_metadata_are_persisted(
    manager: VersionManager, storage: VersionStorage
) -> None:
    base = manager.create_version(make_prompt(), make_analysis())
    assert base.metadata == {"author": "baseline", "strategy": None}
    opt = manager.create_version(
        make_prompt(),
        make_analysis(),
        make_result(),
        parent_version="1.0.0",
        metadata={"run": "r-7"},
    )
    stored = storage.get_version("wf_001_llm_1", opt.version)
    assert stored is not None
    assert stored.metadata == {"author": "optimizer", "strategy": "clarity_focus", "run": "r-7"}
    assert stored.parent_version == "1.0.0"


def test_get_version_raises_when_missing(manager: VersionManager) -> None:
    with pytest.raises(VersionNotFoundError) as caught:
        manager.get_version("wf_001_llm_1", "1.0.0")
    assert isinstance(caught.value, LookupError)
    assert caught.value.context["version"] == "1.0.0"
    with pytest.raises(VersionNotFoundError):
        manager.get_latest_version("wf_001_llm_1")
    with pytest.raises(VersionNotFoundError):
        manager.get_best_version("wf_001_llm_1")


def test_history_latest_and_selectors(manager: VersionManager) -> None:
    for score in [60.0, 80.0, 70.0]:
        manager.create_version(make_prompt(), make_analysis(score=score), make_result())
    history = manager.get_version_history("wf_001_llm_1")
    assert [v.version for v in history] == ["1.0.0", "1.1.0", "1.2.0"]
    assert manager.get_latest_version("wf_001_llm_1").version == "1.2.0"
    assert manager.get_version("wf_001_llm_1", "latest").version == "1.2.0"
    assert manager.get_best_version("wf_001_llm_1").version == "1.1.0"
    assert manager.get_version("wf_001_llm_1", "best").version == "1.1.0"


def test_best_prefers_the_oldest_among_ties(manager: VersionManager) -> None:
    for _ in range(3):
        manager.create_version(make_prompt(), make_analysis(score=75.0))
    assert manager.get_best_version("wf_001_llm_1").version == "1.0.0"


def test_compare_versions_gives_deltas_and_a_real_diff(manager: VersionManager) -> None:
    manager.create_version(make_prompt(text="line one\nline two"), make_analysis(score=60.0))
    manager.create_version(
        make_prompt(text="line one\nline 2\nline three"), make_analysis(score=72.5), make_result()
    )
    result = manager.compare_versions("wf_001_llm_1", "1.0.0", "1.1.0")
    assert result["improvement"] == pytest.approx(12.5)
    assert result["clarity_improvement"] == pytest.approx(12.5)
    diff = result["text_diff"]
    assert diff["unified_diff"] == [
        "--- 1.0.0",
        "+++ 1.1.0",
        "@@ -1,2 +1,3 @@",
        " line one",
        "-line two",
        "+line 2",
        "+line three",
    ]
    assert (diff["lines_added"], diff["lines_removed"]) == (2, 1)
    assert 0.0 < diff["similarity"] < 1.0
    assert result["changes"] == ["clearer"]
    same = manager.compare_versions("wf_001_llm_1", "1.0.0", "1.0.0")
    assert same["text_diff"]["similarity"] == 1.0 and same["text_diff"]["unified_diff"] == []
    with pytest.raises(VersionNotFoundError):
        manager.compare_versions("wf_001_llm_1", "1.0.0", "9.0.0")


def test_rollback_persists_its_markers(manager: VersionManager, storage: VersionStorage) -> None:
    manager.create_version(make_prompt(text="original"), make_analysis(score=60.0))
    manager.create_version(make_prompt(text="worse"), make_analysis(score=40.0), make_result())
    rolled = manager.rollback("wf_001_llm_1", "1.0.0")
    assert rolled.version == "1.1.1"
    stored = storage.get_version("wf_001_llm_1", "1.1.1")
    assert stored is not None
    assert stored.prompt.text == "original"
    assert stored.analysis.overall_score == 60.0
    assert stored.parent_version == "1.1.0"
    assert stored.metadata["rollback_from"] == "1.1.0"
    assert stored.metadata["rollback_to"] == "1.0.0"
    assert stored.metadata["author"] == "rollback"
    assert [v.version for v in manager.get_version_history("wf_001_llm_1")] == [
        "1.0.0",
        "1.1.0",
        "1.1.1",
    ]
    with pytest.raises(VersionNotFoundError):
        manager.rollback("wf_001_llm_1", "7.0.0")


def test_mutating_a_created_version_does_not_change_the_store(manager: VersionManager) -> None:
    created = manager.create_version(make_prompt(), make_analysis())
    created.metadata["author"] = "tampered"
    created.prompt.text = "tampered"
    again = manager.get_version("wf_001_llm_1", "1.0.0")
    assert again.metadata["author"] == "baseline"
    assert again.prompt.text != "tampered"


def test_delete_and_clear(manager: VersionManager) -> None:
    manager.create_version(make_prompt(), make_analysis())
    manager.create_version(make_prompt(), make_analysis())
    assert manager.delete_version("wf_001_llm_1", "1.0.1") is True
    assert manager.delete_version("wf_001_llm_1", "1.0.1") is False
    assert manager.create_version(make_prompt(), make_analysis()).version == "1.0.1"
    manager.clear_all_versions()
    assert manager.get_version_history("wf_001_llm_1") == []


def test_default_storage_is_in_memory() -> None:
    manager = VersionManager()
    manager.create_version(make_prompt(), make_analysis())
    assert manager.storage.backend_name == "memory"
