"""Labels on every backend: pointers that move, with an append-only history."""

from __future__ import annotations

import multiprocessing

import pydantic
import pytest

from promptshelf import (
    InvalidPromptIdError,
    VersionNotFoundError,
    VersionStorage,
)
from promptshelf.errors import LabelInUseError
from promptshelf.models import LabelAction

from conftest import Reopen, reopen
from helpers import make_version


@pytest.fixture
def labelled(storage: VersionStorage) -> VersionStorage:
    for number in ("1.0.0", "1.1.0", "1.2.0"):
        storage.save_version(make_version("p", number))
    return storage


def test_set_move_remove_and_history(labelled: VersionStorage) -> None:
    first = labelled.set_label("p", "production", "1.0.0", actor="ana", reason="launch")
    assert (first.seq, first.action, first.from_version, first.to_version) == (
        1,
        LabelAction.SET,
        None,
        "1.0.0",
    )
    moved = labelled.set_label("p", "production", "1.2.0", actor="bo")
    assert (moved.action, moved.from_version, moved.to_version) == (
        LabelAction.MOVE,
        "1.0.0",
        "1.2.0",
    )
    labelled.set_label("p", "staging", "1.1.0")
    assert labelled.get_label("p", "production") == "1.2.0"
    assert labelled.list_labels("p") == {"production": "1.2.0", "staging": "1.1.0"}
    by_label = labelled.get_version_by_label("p", "production")
    assert by_label is not None and by_label.version == "1.2.0"
    assert labelled.remove_label("p", "staging", actor="cy", reason="retired") is True
    assert labelled.remove_label("p", "staging") is False
    assert labelled.get_label("p", "staging") is None
    assert labelled.get_version_by_label("p", "staging") is None

    history = labelled.label_history("p")
    assert [
        (e.seq, e.label, e.action.value, e.from_version, e.to_version, e.actor) for e in history
    ] == [
        (1, "production", "set", None, "1.0.0", "ana"),
        (2, "production", "move", "1.0.0", "1.2.0", "bo"),
        (3, "staging", "set", None, "1.1.0", None),
        (4, "staging", "remove", "1.1.0", None, "cy"),
    ]
    assert history[0].reason == "launch" and history[3].reason == "retired"
    assert [e.seq for e in labelled.label_history("p", "production")] == [1, 2]
    assert all(e.at is not None for e in history)


def test_a_label_points_at_an_existing_version(labelled: VersionStorage) -> None:
    with pytest.raises(VersionNotFoundError):
        labelled.set_label("p", "production", "9.9.9")
    with pytest.raises(VersionNotFoundError):
        labelled.set_label("nobody", "production", "1.0.0")
    assert labelled.label_history("p") == []
    assert labelled.list_labels("nobody") == {}


@pytest.mark.parametrize("name", ["", "../x", "a/b", ".hidden", "x\\ny", "CON"])
def test_label_names_are_validated_like_ids(labelled: VersionStorage, name: str) -> None:
    with pytest.raises(InvalidPromptIdError):
        labelled.set_label("p", name, "1.0.0")
    assert labelled.label_history("p") == []


def test_deleting_a_labelled_version(labelled: VersionStorage) -> None:
    labelled.set_label("p", "production", "1.1.0")
    labelled.set_label("p", "canary", "1.1.0")
    with pytest.raises(LabelInUseError) as caught:
        labelled.delete_version("p", "1.1.0")
    assert caught.value.error_code == "LABEL-IN-USE"
    assert caught.value.context["labels"] == ["canary", "production"]
    assert labelled.get_version("p", "1.1.0") is not None
    assert labelled.delete_version("p", "1.1.0", force=True) is True
    assert labelled.list_labels("p") == {}
    removals = labelled.label_history("p")[-2:]
    assert [(e.label, e.action.value, e.actor) for e in removals] == [
        ("canary", "remove", "promptshelf"),
        ("production", "remove", "promptshelf"),
    ]
    assert removals[0].reason == "version 1.1.0 deleted"
    assert labelled.delete_version("p", "1.0.0") is True  # unlabelled: no force needed


def test_returned_events_are_immutable(labelled: VersionStorage) -> None:
    event = labelled.set_label("p", "production", "1.0.0")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        event.to_version = "1.2.0"  # type: ignore[misc]
    assert labelled.get_label("p", "production") == "1.0.0"


def _mover(kind: str, open_store: Reopen, versions: list[str], count: int) -> None:
    with open_store() as store:
        for i in range(count):
            store.set_label("p", "production", versions[i % len(versions)], actor=kind)


def test_two_processes_moving_one_label(
    storage: VersionStorage, request: pytest.FixtureRequest
) -> None:
    open_store = reopen(storage, request)
    for number in ("1.0.0", "1.1.0", "1.2.0", "1.3.0"):
        storage.save_version(make_version("p", number))
    ctx = open_store.processes()
    movers = [
        ctx.Process(target=_mover, args=(f"w{w}", open_store, versions, 200))
        for w, versions in enumerate([["1.0.0", "1.1.0"], ["1.2.0", "1.3.0"]])
    ]
    for p in movers:
        p.start()
    for p in movers:
        p.join(180)
        assert p.exitcode == 0
    history = storage.label_history("p", "production")
    assert len(history) == 400
    assert [e.seq for e in history] == list(range(1, 401))
    previous = None
    for event in history:  # each event starts where the one before it ended
        assert event.from_version == previous
        previous = event.to_version
    assert storage.get_label("p", "production") == history[-1].to_version
    assert sum(1 for e in history if e.actor == "w0") == 200


def test_a_cache_never_serves_a_moved_label(
    storage: VersionStorage, request: pytest.FixtureRequest
) -> None:
    open_store = reopen(storage, request)
    numbers = ["1.0.0", "1.1.0", "1.2.0"]
    for number in numbers:
        storage.save_version(make_version("p", number))
    ctx = open_store.processes()
    to_child, from_child = ctx.Queue(), ctx.Queue()

    def ask() -> str:
        to_child.put("go")
        return from_child.get(timeout=60)

    child = ctx.Process(target=_follower_bridge, args=(open_store, 30, to_child, from_child))
    child.start()
    for i in range(30):
        expected = numbers[i % 3]
        storage.set_label("p", "production", expected)
        assert ask() == expected
    child.join(60)
    assert child.exitcode == 0


def _follower_bridge(
    open_store: Reopen,
    rounds: int,
    inbox: multiprocessing.Queue,  # type: ignore[type-arg]
    outbox: multiprocessing.Queue,  # type: ignore[type-arg]
) -> None:
    with open_store() as store:
        for _ in range(rounds):
            inbox.get(timeout=60)
            store.get_version("p", "1.0.0")  # warm every cache the store has
            found = store.get_version_by_label("p", "production")
            outbox.put(found.version if found else None)
