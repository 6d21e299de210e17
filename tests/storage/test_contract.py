"""The behaviour every backend keeps, run unchanged against each one (see conftest.BACKENDS)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from promptshelf import (
    InvalidPromptIdError,
    InvalidVersionError,
    OptimizerError,
    ValidationError,
    VersionConflictError,
    VersionManager,
    VersionNotFoundError,
    VersionStorage,
)
from promptshelf.errors import (
    LabelHistoryDivergedError,
    LabelInUseError,
    LabelMovedError,
)
from promptshelf.models import LabelAction, LabelEvent, TrashEntry
from promptshelf.storage import MAX_VERSION_BYTES
from promptshelf.storage.base import TrashedVersion

from helpers import make_chat_version, make_version


def test_save_then_get_round_trips(storage: VersionStorage) -> None:
    original = make_version(version="1.0.0", metadata={"author": "me", "nested": {"k": [1, 2]}})
    storage.save_version(original)
    loaded = storage.get_version("wf_001_llm_1", "1.0.0")
    assert loaded == original
    assert loaded is not original


def test_get_missing_returns_none(storage: VersionStorage) -> None:
    assert storage.get_version("nobody", "1.0.0") is None
    storage.save_version(make_version(version="1.0.0"))
    assert storage.get_version("wf_001_llm_1", "9.9.9") is None
    assert storage.get_latest_version("nobody") is None
    assert storage.list_versions("nobody") == []


def test_list_is_ordered_semantically_not_lexically(storage: VersionStorage) -> None:
    for number in ["1.10.0", "1.9.0", "1.2.0", "2.0.0", "1.0.0", "1.9.10", "1.9.2"]:
        storage.save_version(make_version(version=number))
    expected = ["1.0.0", "1.2.0", "1.9.0", "1.9.2", "1.9.10", "1.10.0", "2.0.0"]
    assert [v.version for v in storage.list_versions("wf_001_llm_1")] == expected
    assert storage.list_version_numbers("wf_001_llm_1") == expected
    latest = storage.get_latest_version("wf_001_llm_1")
    assert latest is not None and latest.version == "2.0.0"


def test_saving_an_existing_version_conflicts_and_keeps_the_first(storage: VersionStorage) -> None:
    storage.save_version(make_version(version="1.0.0", text="first text"))
    with pytest.raises(VersionConflictError) as caught:
        storage.save_version(make_version(version="1.0.0", text="second text"))
    assert caught.value.error_code == "VERSION-CONFLICT"
    assert caught.value.context == {"prompt_id": "wf_001_llm_1", "version": "1.0.0"}
    assert "1.0.0" in str(caught.value)
    assert isinstance(caught.value, FileExistsError)
    kept = storage.get_version("wf_001_llm_1", "1.0.0")
    assert kept is not None and kept.prompt.text == "first text"


def test_delete(storage: VersionStorage) -> None:
    storage.save_version(make_version(version="1.0.0"))
    storage.save_version(make_version(version="1.1.0"))
    assert storage.delete_version("wf_001_llm_1", "1.1.0") is True
    assert storage.delete_version("wf_001_llm_1", "1.1.0") is False
    assert storage.delete_version("nobody", "1.0.0") is False
    assert storage.get_version("wf_001_llm_1", "1.1.0") is None
    assert [v.version for v in storage.list_versions("wf_001_llm_1")] == ["1.0.0"]


def test_latest_after_deleting_the_latest(storage: VersionStorage) -> None:
    for number in ["1.0.0", "1.1.0", "1.2.0"]:
        storage.save_version(make_version(version=number))
    assert storage.get_latest_version("wf_001_llm_1").version == "1.2.0"  # type: ignore[union-attr]
    storage.delete_version("wf_001_llm_1", "1.2.0")
    assert storage.get_latest_version("wf_001_llm_1").version == "1.1.0"  # type: ignore[union-attr]
    storage.delete_version("wf_001_llm_1", "1.1.0")
    storage.delete_version("wf_001_llm_1", "1.0.0")
    assert storage.get_latest_version("wf_001_llm_1") is None
    assert storage.list_prompts() == []


def test_deleted_version_can_be_saved_again_with_new_content(storage: VersionStorage) -> None:
    storage.save_version(make_version(version="1.0.0", text="old"))
    assert storage.get_version("wf_001_llm_1", "1.0.0").prompt.text == "old"  # type: ignore[union-attr]
    storage.delete_version("wf_001_llm_1", "1.0.0")
    storage.save_version(make_version(version="1.0.0", text="new"))
    assert storage.get_version("wf_001_llm_1", "1.0.0").prompt.text == "new"  # type: ignore[union-attr]


def test_clear_all(storage: VersionStorage) -> None:
    for prompt_id in ["a", "b", "c"]:
        storage.save_version(make_version(prompt_id, "1.0.0"))
    storage.clear_all()
    assert storage.list_prompts() == []
    assert storage.get_version("a", "1.0.0") is None
    storage.save_version(make_version("a", "1.0.0"))
    assert storage.list_prompts() == ["a"]


def test_list_prompts_and_statistics(storage: VersionStorage) -> None:
    for prompt_id, count in [("p1", 3), ("p2", 1), ("p3", 2)]:
        for minor in range(count):
            storage.save_version(make_version(prompt_id, f"1.{minor}.0"))
    assert storage.list_prompts() == ["p1", "p2", "p3"]
    stats = storage.get_storage_stats()
    assert stats["total_prompts"] == 3
    assert stats["total_versions"] == 6
    storage.delete_version("p2", "1.0.0")
    stats = storage.get_storage_stats()
    assert (stats["total_prompts"], stats["total_versions"]) == (2, 5)


def test_returned_objects_are_isolated_from_the_store(storage: VersionStorage) -> None:
    saved = make_version(version="1.0.0", metadata={"author": "me", "tags": ["a"]})
    storage.save_version(saved)
    saved.metadata["author"] = "changed after save"
    saved.prompt.text = "changed after save"

    first = storage.get_version("wf_001_llm_1", "1.0.0")
    assert first is not None
    first.metadata["tags"].append("mutated")
    first.prompt.context["label"] = "mutated"
    first.analysis.issues.clear()
    for getter in (
        lambda: storage.get_version("wf_001_llm_1", "1.0.0"),
        lambda: storage.get_latest_version("wf_001_llm_1"),
        lambda: storage.list_versions("wf_001_llm_1")[0],
    ):
        again = getter()
        assert again is not None
        assert again.metadata == {"author": "me", "tags": ["a"]}
        assert again.prompt.text != "changed after save"
        assert again.prompt.context["label"] == "WF_001_LLM_1"


@pytest.mark.parametrize(
    "prompt_id",
    [
        "",
        ".",
        "..",
        "../escape",
        "a/b",
        "a\\b",
        "/abs",
        "x\x00y",
        "line\nbreak",
        "tab\t",
        ".hidden",
        "trailing.",
        " padded",
        "padded ",
        "CON",
        "nul.txt",
        "COM1",
        "a:b",
        "wild*",
        "q?",
        "x" * 256,
        "é" * 128,
        "cafe\u0301",
        "bidi\u202eevil",
        "\ud800",
    ],
)
def test_hostile_prompt_ids_are_refused_and_nothing_is_written(
    storage: VersionStorage, prompt_id: str, tmp_path: object
) -> None:
    before = storage.list_prompts()
    version = make_version("safe", "1.0.0").model_copy(update={"prompt_id": prompt_id})
    with pytest.raises(InvalidPromptIdError) as caught:
        storage.save_version(version)
    assert caught.value.error_code == "PS-ID-001"
    assert isinstance(caught.value, ValueError)
    with pytest.raises(InvalidPromptIdError):
        storage.get_version(prompt_id, "1.0.0")
    with pytest.raises(InvalidPromptIdError):
        storage.get_latest_version(prompt_id)
    with pytest.raises(InvalidPromptIdError):
        storage.delete_version(prompt_id, "1.0.0")
    assert storage.list_prompts() == before


@pytest.mark.parametrize(
    "version",
    [
        "",
        "1",
        "1.0",
        "1.0.0.0",
        "v1.0.0",
        "01.0.0",
        "1.0.0 ",
        " 1.0.0",
        "1e3.0.0",
        "-1.0.0",
        "+1.0.0",
        "1_0.0.0",
        "\u0663.0.0",
        "\uff13.0.0",
        "99999999999.0.0",
        "1.0.0/../../x",
        "1.0.0\x00",
    ],
)
def test_invalid_versions_are_refused(storage: VersionStorage, version: str) -> None:
    with pytest.raises(InvalidVersionError) as caught:
        storage.get_version("wf_001_llm_1", version)
    assert caught.value.error_code == "PS-VERSION-001"
    with pytest.raises(InvalidVersionError):
        storage.delete_version("wf_001_llm_1", version)
    bad = make_version(version="1.0.0").model_copy(update={"version": version})
    with pytest.raises(InvalidVersionError):
        storage.save_version(bad)
    assert storage.list_prompts() == []


def test_not_a_version_is_refused(storage: VersionStorage) -> None:
    with pytest.raises(ValidationError):
        storage.save_version({"prompt_id": "x"})  # type: ignore[arg-type]


def test_unserializable_metadata_is_refused(storage: VersionStorage) -> None:
    version = make_version(version="1.0.0")
    version.metadata["bad"] = object()
    with pytest.raises(ValidationError):
        storage.save_version(version)
    assert storage.get_version("wf_001_llm_1", "1.0.0") is None


def test_oversized_version_is_refused_before_writing(storage: VersionStorage) -> None:
    huge = make_version(version="1.0.0", text="x" * (MAX_VERSION_BYTES + 1))
    with pytest.raises(ValidationError) as caught:
        storage.save_version(huge)
    assert caught.value.error_code == "PS-SIZE-001"
    assert storage.list_prompts() == []


def test_unicode_text_round_trips_exactly(storage: VersionStorage) -> None:
    text = "Traduis {{text}} — 日本語も可。 emoji 🧪, RTL \u05d0\u05d1, NUL-free \\u0000 literal"
    storage.save_version(make_version(version="1.0.0", text=text))
    assert storage.get_version("wf_001_llm_1", "1.0.0").prompt.text == text  # type: ignore[union-attr]


def test_many_threads_saving_distinct_versions(storage: VersionStorage) -> None:
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(15):
                storage.save_version(make_version(f"p{thread % 3}", f"{thread}.{i}.0"))
                storage.get_latest_version(f"p{thread % 3}")
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert storage.get_storage_stats()["total_versions"] == 8 * 15
    assert storage.get_latest_version("p0").version == "6.14.0"  # type: ignore[union-attr]


def test_many_threads_creating_versions_of_one_prompt(storage: VersionStorage) -> None:
    from helpers import make_analysis, make_prompt

    manager = VersionManager(storage)
    created: list[str] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            v = manager.create_version(make_prompt(), make_analysis())
            with lock:
                created.append(v.version)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(created) == len(set(created)) == 60
    assert sorted(storage.list_version_numbers("wf_001_llm_1")) == sorted(created)


def test_context_manager_closes(storage: VersionStorage) -> None:
    with storage as store:
        store.save_version(make_version(version="1.0.0"))
    assert storage.closed
    with pytest.raises(OptimizerError) as caught:
        storage.get_version("wf_001_llm_1", "1.0.0")
    assert caught.value.error_code == "PS-CLOSED-001"


def test_verify_a_sound_store(storage: VersionStorage) -> None:
    for prompt_id, count in [("a", 3), ("b", 1)]:
        for minor in range(count):
            storage.save_version(make_version(prompt_id, f"1.{minor}.0"))
    report = storage.verify()
    assert report.ok, report.problems
    assert (report.checked_prompts, report.checked_versions) == (2, 4)
    assert report.to_dict()["ok"] is True
    assert storage.rebuild_index()["total_versions"] == 4


# -- the trash -------------------------------------------------------------------------


def test_delete_keeps_a_copy_in_the_trash(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0", text="kept in the trash"))
    storage.save_version(make_version("p", "1.1.0"))
    assert storage.delete_version("p", "1.0.0")
    trash = storage.list_trash()
    assert [(e.prompt_id, e.version) for e in trash] == [("p", "1.0.0")]
    assert storage.list_trash("other") == []
    restored = storage.restore_version("p", "1.0.0")
    assert restored.prompt.text == "kept in the trash"
    assert storage.get_version("p", "1.0.0") == restored
    assert storage.list_trash() == []
    with pytest.raises(VersionNotFoundError):
        storage.restore_version("p", "1.0.0")


def test_restore_never_overwrites(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0", text="first"))
    storage.delete_version("p", "1.0.0")
    storage.save_version(make_version("p", "1.0.0", text="second"))
    with pytest.raises(VersionConflictError):
        storage.restore_version("p", "1.0.0")
    assert storage.get_version("p", "1.0.0").prompt.text == "second"  # type: ignore[union-attr]
    assert len(storage.list_trash("p")) == 1
    storage.delete_version("p", "1.0.0")
    assert storage.restore_version("p", "1.0.0").prompt.text == "second"  # the newest deletion
    assert storage.empty_trash() == 1
    assert storage.list_trash() == []


def test_empty_trash_older_than(storage: VersionStorage) -> None:
    from datetime import timedelta

    storage.save_version(make_version("p", "1.0.0"))
    storage.delete_version("p", "1.0.0")
    assert storage.empty_trash(older_than=timedelta(hours=1)) == 0
    assert len(storage.list_trash()) == 1
    assert storage.empty_trash(older_than=timedelta(0)) == 1
    with pytest.raises(VersionNotFoundError):
        storage.restore_version("p", "1.0.0")


def test_ids_are_case_sensitive_and_nfc_only(storage: VersionStorage) -> None:
    storage.save_version(make_version("Prompt", "1.0.0", text="upper"))
    storage.save_version(make_version("prompt", "1.0.0", text="lower"))
    assert storage.list_prompts() == ["Prompt", "prompt"]
    assert storage.get_version("Prompt", "1.0.0").prompt.text == "upper"  # type: ignore[union-attr]
    storage.save_version(make_version("café", "1.0.0"))  # NFC: accepted
    with pytest.raises(InvalidPromptIdError):  # the same word in NFD: refused, never a twin
        storage.save_version(make_version("cafe\u0301", "1.0.0"))
    assert storage.list_prompts() == ["Prompt", "café", "prompt"]


# -- carrying a store: verbatim imports of label history and trash ------------------------


def _history() -> list[LabelEvent]:
    """A history as another store recorded it: its own sequence, actors, reasons and times."""
    at = datetime(2025, 3, 1, 9, 30, 15, 123456)
    steps = [
        ("production", LabelAction.SET, None, "1.0.0", "ci", "first release"),
        ("staging", LabelAction.SET, None, "1.1.0", None, None),
        ("production", LabelAction.MOVE, "1.0.0", "1.1.0", "alice", "better score"),
        ("staging", LabelAction.REMOVE, "1.1.0", None, "bob", "done"),
    ]
    return [
        LabelEvent(
            seq=i,
            prompt_id="p",
            label=label,
            action=action,
            from_version=before,
            to_version=after,
            actor=actor,
            reason=reason,
            # times as written: the original's naive ones, promptshelf's with an offset
            at=at + timedelta(minutes=i)
            if i % 2
            else (at + timedelta(minutes=i)).replace(tzinfo=UTC),
        )
        for i, (label, action, before, after, actor, reason) in enumerate(steps, start=1)
    ]


def test_import_label_events_keeps_them_verbatim_and_is_idempotent(
    storage: VersionStorage,
) -> None:
    storage.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    history = _history()
    assert storage.import_label_events("p", history[:2]) == 2
    assert storage.import_label_events("p", history) == 2  # only the rest is appended
    assert storage.import_label_events("p", history) == 0
    assert storage.label_history("p") == history
    assert storage.list_labels("p") == {"production": "1.1.0"}
    event = storage.set_label("p", "staging", "1.0.0", actor="me")  # the history goes on
    assert event.seq == 5 and len(storage.label_history("p")) == 5


def test_import_label_events_refuses_a_diverged_history_and_writes_nothing(
    storage: VersionStorage,
) -> None:
    storage.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    storage.set_label("p", "production", "1.0.0", actor="someone else")
    with pytest.raises(LabelHistoryDivergedError) as caught:
        storage.import_label_events("p", _history())
    assert caught.value.error_code == "LABEL-DIVERGED"
    assert [e.actor for e in storage.label_history("p")] == ["someone else"]


def test_import_label_events_checks_the_history_and_its_versions(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0"))
    history = _history()
    with pytest.raises(VersionNotFoundError):  # production ends on 1.1.0, which is not here
        storage.import_label_events("p", history)
    with pytest.raises(ValidationError):  # not numbered from 1
        storage.import_label_events("p", history[1:])
    with pytest.raises(ValidationError):  # a move that does not start where the label stood
        storage.import_label_events("p", [history[2].model_copy(update={"seq": 1})])
    with pytest.raises(ValidationError):  # another prompt's history
        storage.import_label_events("q", history[:1])
    assert storage.label_history("p") == [] and storage.list_labels("p") == {}


def test_read_trash_and_import_trashed_keep_deletion_times(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0", text="deleted here"))
    storage.delete_version("p", "1.0.0")
    [mine] = storage.read_trash()
    assert mine.version.prompt.text == "deleted here"
    assert mine.entry == storage.list_trash()[0]
    when = datetime(2025, 1, 2, 3, 4, 5, 678901)
    older = TrashedVersion(
        TrashEntry(prompt_id="p", version="1.0.0", deleted_at=when),
        make_version("p", "1.0.0", text="deleted elsewhere, earlier"),
    )
    assert storage.import_trashed(older) is True
    assert storage.import_trashed(older) is False  # identical: skipped
    other = TrashedVersion(older.entry, make_version("p", "1.0.0", text="a different copy"))
    with pytest.raises(VersionConflictError):
        storage.import_trashed(other)
    utc = when.replace(tzinfo=UTC)  # a naive deletion time is taken as UTC
    assert [t.entry.deleted_at for t in storage.read_trash("p")] == [utc, mine.entry.deleted_at]
    assert mine.entry.deleted_at.utcoffset() == timedelta(0)  # made by promptshelf: UTC
    assert storage.read_trash("p")[0].version == older.version
    elsewhere = utc.astimezone(timezone(timedelta(hours=2)))  # the same instant, another zone
    aware = TrashedVersion(
        TrashEntry(prompt_id="p", version="1.1.0", deleted_at=elsewhere),
        make_version("p", "1.1.0"),
    )
    assert storage.import_trashed(aware) is True
    assert storage.import_trashed(aware) is False  # the same instant: already there
    [copy] = [t for t in storage.read_trash("p") if t.entry.version == "1.1.0"]
    assert copy.entry.deleted_at.tzinfo == UTC  # reported in UTC, like every deletion
    assert copy.entry.deleted_at == utc
    storage.empty_trash()
    storage.import_trashed(older)
    storage.save_version(make_version("p", "1.0.0", text="deleted here"))
    storage.delete_version("p", "1.0.0")
    assert storage.restore_version("p", "1.0.0").prompt.text == "deleted here"  # the newest
    assert [t.version.prompt.text for t in storage.read_trash()] == ["deleted elsewhere, earlier"]


def test_held_prompts_include_history_and_trash_without_versions(storage: VersionStorage) -> None:
    storage.save_versions([make_version("kept", "1.0.0"), make_version("gone", "1.0.0")])
    storage.save_version(make_version("labelled", "1.0.0"))
    storage.set_label("labelled", "production", "1.0.0")
    storage.delete_version("gone", "1.0.0")
    storage.delete_version("labelled", "1.0.0", force=True)
    storage.empty_trash()
    storage.save_version(make_version("trashed", "1.0.0"))
    storage.delete_version("trashed", "1.0.0")
    assert storage.list_prompts() == ["kept"]
    assert storage.list_held_prompts() == ["kept", "labelled", "trashed"]


# -- chat prompts, config and commit messages: stored and returned unchanged -----------


def test_chat_version_round_trips_unchanged(storage: VersionStorage) -> None:
    original = make_chat_version()
    storage.save_version(original)
    loaded = storage.get_version(original.prompt_id, "1.0.0")
    assert loaded == original
    assert loaded is not None and loaded.prompt.kind == "chat"
    assert loaded.prompt.messages == original.prompt.messages
    assert loaded.config == original.config and loaded.commit_message == "first chat version"
    # message order and every per-message field survive (PostgreSQL's jsonb may reorder the
    # keys of a free dict such as config, as it does for metadata: equal, not byte-equal)
    assert [m.model_dump() for m in loaded.prompt.messages or []] == [
        m.model_dump() for m in original.prompt.messages or []
    ]
    assert loaded.prompt.text == original.prompt.text
    [listed] = storage.list_versions(original.prompt_id)
    assert listed == original
    assert storage.get_latest_version(original.prompt_id) == original


def test_text_and_chat_prompts_live_side_by_side(storage: VersionStorage) -> None:
    text = make_version(version="1.0.0")
    chat = make_chat_version(config={}, commit_message=None)
    storage.save_versions([text, chat])
    assert storage.get_version(text.prompt_id, "1.0.0") == text
    loaded = storage.get_version(chat.prompt_id, "1.0.0")
    assert loaded == chat and loaded is not None and loaded.config == {}
    assert loaded.commit_message is None
    assert sorted(storage.list_prompts()) == sorted([text.prompt_id, chat.prompt_id])


def test_manager_keeps_the_kind_of_a_prompt(storage: VersionStorage) -> None:
    from promptshelf.errors import PromptKindError

    manager = VersionManager(storage)
    first = make_chat_version()
    storage.save_version(first)
    with pytest.raises(PromptKindError) as caught:
        manager.create_version(
            make_version(first.prompt_id).prompt.model_copy(update={"id": first.prompt_id}),
            first.analysis,
        )
    assert caught.value.error_code == "PS-KIND-001"
    assert storage.list_version_numbers(first.prompt_id) == ["1.0.0"]


# -- documents: small JSON objects with compare-and-swap (the server's keys and settings) --


def test_document_create_read_replace_delete(storage: VersionStorage) -> None:
    from promptshelf.errors import DocumentConflictError

    assert storage.get_document("keys", "k1") is None
    created = storage.put_document("keys", "k1", {"scopes": ["read"], "name": "ci — 日本"})
    assert (created.key, created.revision) == ("k1", 1)
    assert storage.get_document("keys", "k1") == created
    with pytest.raises(DocumentConflictError) as caught:
        storage.put_document("keys", "k1", {"scopes": ["admin"]})  # create-only
    assert caught.value.error_code == "DOC-CONFLICT"
    replaced = storage.put_document("keys", "k1", {"scopes": ["write"]}, expected_revision=1)
    assert replaced.revision == 2 and replaced.data == {"scopes": ["write"]}
    with pytest.raises(DocumentConflictError):  # a stale revision loses
        storage.put_document("keys", "k1", {"scopes": ["admin"]}, expected_revision=1)
    with pytest.raises(DocumentConflictError):  # replacing what does not exist
        storage.put_document("keys", "nope", {}, expected_revision=1)
    storage.put_document("keys", "k0", {"n": 0})
    storage.put_document("settings", "k1", {"other": True})
    assert [d.key for d in storage.list_documents("keys")] == ["k0", "k1"]
    assert storage.get_document("keys", "k1").data == {"scopes": ["write"]}  # type: ignore[union-attr]
    with pytest.raises(DocumentConflictError):
        storage.delete_document("keys", "k1", expected_revision=1)
    assert storage.delete_document("keys", "k1", expected_revision=2)
    assert not storage.delete_document("keys", "k1")
    assert storage.get_document("keys", "k1") is None
    assert storage.put_document("keys", "k1", {}).revision == 1  # created anew
    storage.clear_all()  # versions go; documents stay
    assert [d.key for d in storage.list_documents("keys")] == ["k0", "k1"]
    assert storage.list_prompts() == []


def test_document_namespaces_are_listed_and_a_clear_is_noted(storage: VersionStorage) -> None:
    """``list_document_namespaces`` names every namespace holding a document (what
    migrate, backup and sync walk); ``clear_all`` notes itself in a document, a fresh
    token each time (how sync tells an emptied source from a diverged standby)."""
    from promptshelf.storage.documents import CLEARED_KEY, STORE_NAMESPACE

    assert storage.list_document_namespaces() == []
    storage.put_document("keys", "k1", {"n": 1})
    storage.put_document("notes", "a", {})
    storage.put_document("gone", "x", {})
    storage.delete_document("gone", "x")
    assert storage.list_document_namespaces() == ["keys", "notes"]
    storage.save_version(make_version("p", "1.0.0"))
    storage.clear_all()
    first = storage.get_document(STORE_NAMESPACE, CLEARED_KEY)
    assert first is not None and len(first.data["token"]) == 32
    storage.clear_all()
    second = storage.get_document(STORE_NAMESPACE, CLEARED_KEY)
    assert second is not None and second.data["token"] != first.data["token"]
    assert storage.list_document_namespaces() == ["keys", "notes", STORE_NAMESPACE]
    assert storage.list_prompts() == [] and storage.get_document("keys", "k1") is not None


def test_a_snapshot_listing_is_what_the_store_holds(storage: VersionStorage) -> None:
    """Optional: where a backend lists the whole store at one instant (backup and sync's
    watermark), the listing equals what its per-prompt reads return."""
    from helpers import fill_everything

    fill_everything(storage)
    storage.put_document("notes", "a", {"x": [1, "ü"]})
    listing = storage.snapshot_listing()
    if storage.backend_name in ("memory", "sqlite", "postgres"):
        assert listing is not None
    if listing is None:
        return
    assert sorted(listing.prompts) == storage.list_held_prompts()
    for prompt_id, (history, numbers, trash) in listing.prompts.items():
        assert history == storage.label_history(prompt_id)
        assert numbers == storage.list_version_numbers(prompt_id)
        assert trash == storage.list_trash(prompt_id)
    assert listing.documents == {"notes": {"a": {"x": [1, "ü"]}}}


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", "", "x\x00"])
def test_document_names_are_validated(storage: VersionStorage, name: str) -> None:
    with pytest.raises(InvalidPromptIdError):
        storage.put_document(name, "k", {})
    with pytest.raises(InvalidPromptIdError):
        storage.get_document("keys", name)
    assert storage.list_documents("keys") == []


def test_document_bad_data_is_refused(storage: VersionStorage) -> None:
    from promptshelf.errors import PayloadTooLargeError
    from promptshelf.storage.documents import MAX_DOCUMENT_BYTES

    for bad in ([1, 2], {"x": float("nan")}, {"x": {1, 2}}):
        with pytest.raises(ValidationError):
            storage.put_document("keys", "k", bad)  # type: ignore[arg-type]
    with pytest.raises(PayloadTooLargeError):
        storage.put_document("keys", "k", {"x": "a" * MAX_DOCUMENT_BYTES})
    with pytest.raises(ValidationError):
        storage.put_document("keys", "k", {}, expected_revision=0)
    assert storage.get_document("keys", "k") is None
    assert storage.verify().ok


def test_document_compare_and_swap_under_threads(storage: VersionStorage) -> None:
    """8 threads each add 5 items to one document by read-modify-CAS: none is lost."""
    from promptshelf.errors import DocumentConflictError

    storage.put_document("settings", "counter", {"items": []})
    errors: list[BaseException] = []

    def work(thread: int) -> None:
        try:
            for i in range(5):
                while True:
                    doc = storage.get_document("settings", "counter")
                    assert doc is not None
                    items = [*doc.data["items"], f"{thread}-{i}"]
                    try:
                        storage.put_document(
                            "settings", "counter", {"items": items}, expected_revision=doc.revision
                        )
                        break
                    except DocumentConflictError:
                        continue
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    final = storage.get_document("settings", "counter")
    assert final is not None and final.revision == 41
    assert sorted(final.data["items"]) == sorted(f"{t}-{i}" for t in range(8) for i in range(5))


def test_purge_removes_for_good_without_a_trash_copy(storage: VersionStorage) -> None:
    storage.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    storage.set_label("p", "production", "1.1.0")
    with pytest.raises(LabelInUseError):  # a purge records no label events: move them first
        storage.purge_version("p", "1.1.0")
    assert storage.purge_version("p", "1.0.0") is True
    assert storage.purge_version("p", "1.0.0") is False
    assert storage.list_version_numbers("p") == ["1.1.0"] and storage.list_trash() == []
    storage.delete_version("p", "1.1.0", force=True)
    [entry] = storage.list_trash()
    other = TrashEntry(prompt_id="p", version="1.1.0", deleted_at=datetime(2020, 1, 1))
    assert storage.purge_trashed(other) is False
    assert storage.purge_trashed(entry) is True
    assert storage.list_trash() == [] and storage.list_prompts() == []
    with pytest.raises(InvalidPromptIdError):
        storage.purge_version("../x", "1.0.0")


def test_a_label_set_where_it_points_is_not_recorded(storage: VersionStorage) -> None:
    storage.save_version(make_version("p", "1.0.0"))
    storage.save_version(make_version("p", "1.1.0"))
    first = storage.set_label("p", "production", "1.0.0", actor="ana")
    again = storage.set_label("p", "production", "1.0.0", actor="bo")  # a no-op
    assert (again.seq, again.to_version, again.actor) == (first.seq, "1.0.0", "ana")
    storage.set_label("p", "production", "1.1.0")
    storage.set_label("p", "production", "1.1.0")
    assert [(e.action.value, e.from_version, e.to_version) for e in storage.label_history("p")] == [
        ("set", None, "1.0.0"),
        ("move", "1.0.0", "1.1.0"),
    ]


def test_label_compare_and_swap_by_event(storage: VersionStorage) -> None:
    """``expected_seq``: 0 = unset, n = set by event n and untouched since; anything else is
    ``LabelMovedError`` (LABEL-MOVED) and changes nothing, even when the label came back
    to the same version in between (no ABA)."""
    storage.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    first = storage.set_label("p", "production", "1.0.0", expected_seq=0)
    with pytest.raises(LabelMovedError) as unset:
        storage.set_label("p", "production", "1.1.0", expected_seq=0)
    assert unset.value.error_code == "LABEL-MOVED"
    assert unset.value.context["current_seq"] == first.seq
    moved = storage.set_label("p", "production", "1.1.0", expected_seq=first.seq)
    back = storage.set_label("p", "production", "1.0.0", expected_seq=moved.seq)
    with pytest.raises(LabelMovedError):  # at 1.0.0 again, but not by event `first`
        storage.set_label("p", "production", "1.1.0", expected_seq=first.seq)
    with pytest.raises(LabelMovedError):  # a no-op on a stale condition is refused too
        storage.set_label("p", "production", "1.0.0", expected_seq=moved.seq)
    other = storage.set_label("p", "staging", "1.1.0", expected_seq=0)
    assert storage.get_label("p", "production") == "1.0.0"  # another label's event: no move
    with pytest.raises(LabelMovedError):
        storage.remove_label("p", "production", expected_seq=first.seq)
    assert storage.remove_label("p", "production", expected_seq=back.seq) is True
    assert storage.remove_label("p", "production", expected_seq=0) is False  # unset: holds
    with pytest.raises(LabelMovedError):  # removed: no event names it any more
        storage.set_label("p", "production", "1.1.0", expected_seq=back.seq)
    again = storage.set_label("p", "production", "1.1.0", expected_seq=0)
    assert [e.seq for e in storage.label_history("p")] == [
        first.seq,
        moved.seq,
        back.seq,
        other.seq,
        back.seq + 2,
        again.seq,
    ]
    assert storage.list_labels("p") == {"production": "1.1.0", "staging": "1.1.0"}
    for bad in (-1, True, "3", 1.0):
        with pytest.raises(ValidationError):
            storage.set_label("p", "production", "1.0.0", expected_seq=bad)  # type: ignore[arg-type]
    storage.save_version(make_version("q", "1.0.0"))
    with pytest.raises(LabelMovedError):  # a prompt with no label history at all
        storage.set_label("q", "production", "1.0.0", expected_seq=1)
    assert storage.label_history("q") == []


def _race(count: int, work: Callable[[int], object]) -> list[object]:
    """``work(0..count-1)`` in threads released together: each one's result or exception."""
    gate = threading.Barrier(count)
    results: list[object] = [None] * count

    def run(n: int) -> None:
        gate.wait()
        try:
            results[n] = work(n)
        except BaseException as exc:  # returned to the caller
            results[n] = exc

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_label_compare_and_swap_under_threads(storage: VersionStorage) -> None:
    """6 threads race to move one label from the same state: exactly one wins each round."""
    storage.save_versions([make_version("p", f"{m}.{i}.0") for m in (1, 2) for i in range(7)])
    seq = storage.set_label("p", "production", "1.0.0").seq
    for major in (1, 2):  # each thread moves it somewhere else: no no-op can "win"
        results = _race(
            6,
            lambda n, seq=seq, major=major: storage.set_label(
                "p", "production", f"{major}.{n + 1}.0", expected_seq=seq
            ),
        )
        won = [n for n, r in enumerate(results) if isinstance(r, LabelEvent)]
        assert len(won) == 1, results
        assert sum(isinstance(r, LabelMovedError) for r in results) == 5, results
        assert storage.get_label("p", "production") == f"{major}.{won[0] + 1}.0"
        seq = storage.label_history("p", "production")[-1].seq
    assert len(storage.label_history("p", "production")) == 3


def test_timestamps_are_utc_and_naive_ones_read_unchanged(storage: VersionStorage) -> None:
    """What promptshelf records carries UTC; a naive time (the original's) is taken as UTC,
    compares with aware ones, and is written back as it was: the bytes (the ETag) never
    change when a version is read back."""
    from promptshelf import PromptAnalysis, VersionManager, timestamps
    from promptshelf.retention import RetentionPolicy
    from promptshelf.storage import integrity
    from promptshelf.storage.codec import encode_version

    from helpers import make_prompt

    old = make_version("p", "1.0.0")  # naive times, as the original wrote them
    storage.save_version(old)
    analysis = PromptAnalysis(prompt_id="p", overall_score=1, clarity_score=2, efficiency_score=3)
    new = VersionManager(storage).create_version(make_prompt("p"), analysis)
    read_old, read_new = storage.get_version("p", "1.0.0"), storage.get_version("p", new.version)
    assert read_old is not None and read_new is not None
    assert encode_version(read_old) == encode_version(old)  # naive, as written
    assert b'"created_at": "2026-01-01T12:00:00"' in encode_version(read_old)
    assert integrity.digest(encode_version(read_old)) == integrity.digest(encode_version(old))
    assert read_old.created_at == datetime(2026, 1, 1, 12, tzinfo=UTC)  # taken as UTC
    for moment in (read_new.created_at, read_new.analysis.analyzed_at):
        assert moment.utcoffset() == timedelta(0)
    assert b'Z"' in encode_version(read_new)  # written with its zone
    history = [read_new, read_old]
    assert sorted(history, key=lambda v: v.created_at)[0] is read_old  # naive and aware compare
    event = storage.set_label("p", "production", "1.0.0")
    assert event.at.utcoffset() == timedelta(0)
    assert storage.label_history("p")[0].at == event.at
    kept = storage.apply_retention(
        RetentionPolicy(keep_younger_than=timedelta(days=1)), dry_run=True
    )
    assert kept.removed == []  # 1.0.0 (2026-01-01, naive) is labelled; the new one is young
    storage.delete_version("p", new.version)
    [entry] = storage.list_trash("p")
    assert entry.deleted_at.utcoffset() == timedelta(0)
    assert timestamps.utc_now() - entry.deleted_at < timedelta(hours=1)


def test_a_number_removed_for_good_is_never_reused(storage: VersionStorage) -> None:
    """empty_trash retires the numbers first (a document in "retired-versions"):
    save_version refuses them unless it is the very bytes removed, and VersionManager moves
    on to the next number; purge_trashed (replication) records nothing; clear_all starts
    over."""
    storage.save_versions([make_version("p", "1.0.0"), make_version("p", "1.0.1", text="two")])
    storage.delete_version("p", "1.0.1")
    assert storage.empty_trash() == 1
    assert list(storage.retired_versions("p")) == ["1.0.1"]
    with pytest.raises(VersionConflictError) as refused:
        storage.save_version(make_version("p", "1.0.1", text="THREE"))
    assert "never reused" in refused.value.context["reason"]
    with pytest.raises(VersionConflictError):
        storage.save_versions([make_version("p", "1.0.1", text="THREE")])
    storage.save_version(make_version("p", "1.0.1", text="two"))  # the same bytes: allowed
    storage.delete_version("p", "1.0.1")
    assert storage.empty_trash() == 1
    created = VersionManager(storage).create_version(
        make_version("p", "9.9.9", text="THREE").prompt, make_version().analysis
    )
    assert created.version == "1.0.2"
    storage.save_version(make_version("q", "1.0.0"))
    storage.delete_version("q", "1.0.0")
    [entry] = storage.list_trash("q")
    assert storage.purge_trashed(entry) is True  # for replication: the source's record rules
    assert storage.retired_versions("q") == {}
    storage.save_version(make_version("q", "1.0.1"))
    storage.delete_version("q", "1.0.1")
    storage.empty_trash()
    with pytest.raises(VersionConflictError):
        storage.save_version(make_version("q", "1.0.1", text="other"))
    storage.clear_all()
    assert storage.retired_versions("p") == {} and storage.retired_versions("q") == {}
    storage.save_version(make_version("q", "1.0.1", text="other"))
