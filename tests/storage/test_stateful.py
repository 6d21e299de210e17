"""A hypothesis state machine: random saves, deletes, restores, label moves and reopenings on
every backend in conftest.BACKENDS, checked after every step against a plain dict model."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from promptshelf import VersionConflictError, VersionNotFoundError, VersionStorage
from promptshelf.errors import LabelInUseError

from conftest import BACKENDS, REOPENERS, Reopen
from helpers import make_version

PROMPTS = st.sampled_from(["a", "b"])
VERSIONS = st.sampled_from(["1.0.0", "1.1.0", "1.2.0", "2.0.0"])
LABELS = st.sampled_from(["production", "staging"])


class StoreMachine(RuleBasedStateMachine):
    #: a fresh store in a directory, and how to open it again (None: it cannot be)
    make: Callable[[Path], tuple[VersionStorage, Reopen | None]]

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="shelf-state-"))
        self.store, self.reopener = type(self).make(self.dir)
        self.live: dict[tuple[str, str], str] = {}  # (prompt, version) -> text
        self.trash: dict[tuple[str, str], list[str]] = {}
        self.labels: dict[tuple[str, str], str] = {}  # (prompt, label) -> version
        self.history: dict[str, int] = {}
        self.counter = 0

    def teardown(self) -> None:
        self.store.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    @rule(prompt=PROMPTS, version=VERSIONS)
    def save(self, prompt: str, version: str) -> None:
        self.counter += 1
        text = f"text {self.counter}"
        try:
            self.store.save_version(make_version(prompt, version, text=text))
        except VersionConflictError:
            assert (prompt, version) in self.live
            return
        assert (prompt, version) not in self.live
        self.live[(prompt, version)] = text

    @rule(prompt=PROMPTS, version=VERSIONS, force=st.booleans())
    def delete(self, prompt: str, version: str, force: bool) -> None:
        key = (prompt, version)
        labelled = [name for (p, name), v in self.labels.items() if p == prompt and v == version]
        try:
            removed = self.store.delete_version(prompt, version, force=force)
        except LabelInUseError:
            assert labelled and not force
            return
        assert removed == (key in self.live)
        if removed:
            self.trash.setdefault(key, []).append(self.live.pop(key))
            for name in labelled:
                del self.labels[(prompt, name)]
                self.history[prompt] = self.history.get(prompt, 0) + 1

    @rule(prompt=PROMPTS, version=VERSIONS)
    def restore(self, prompt: str, version: str) -> None:
        key = (prompt, version)
        try:
            restored = self.store.restore_version(prompt, version)
        except VersionNotFoundError:
            assert not self.trash.get(key)
            return
        except VersionConflictError:
            assert key in self.live and self.trash.get(key)
            return
        assert restored.prompt.text == self.trash[key][-1]
        self.live[key] = self.trash[key].pop()

    @rule(prompt=PROMPTS, label=LABELS, version=VERSIONS)
    def set_label(self, prompt: str, label: str, version: str) -> None:
        try:
            self.store.set_label(prompt, label, version)
        except VersionNotFoundError:
            assert (prompt, version) not in self.live
            return
        if self.labels.get((prompt, label)) != version:  # a no-op records nothing
            self.history[prompt] = self.history.get(prompt, 0) + 1
        self.labels[(prompt, label)] = version

    @rule(prompt=PROMPTS, label=LABELS)
    def remove_label(self, prompt: str, label: str) -> None:
        removed = self.store.remove_label(prompt, label)
        assert removed == ((prompt, label) in self.labels)
        if removed:
            del self.labels[(prompt, label)]
            self.history[prompt] = self.history.get(prompt, 0) + 1

    @precondition(lambda self: self.reopener is not None)
    @rule()
    def reopen(self) -> None:
        """Close the store and open it again: what was acknowledged is all still there."""
        assert self.reopener is not None
        self.store.close()
        self.store = self.reopener()

    @invariant()
    def matches_the_model(self) -> None:
        for prompt in ("a", "b"):
            expected = sorted(
                (v for p, v in self.live if p == prompt),
                key=lambda v: tuple(map(int, v.split("."))),
            )
            assert self.store.list_version_numbers(prompt) == expected
            latest = self.store.get_latest_version(prompt)
            assert (latest.version if latest else None) == (expected[-1] if expected else None)
            if latest is not None:
                assert latest.prompt.text == self.live[(prompt, latest.version)]
            assert self.store.list_labels(prompt) == {
                name: v for (p, name), v in self.labels.items() if p == prompt
            }
            assert len(self.store.label_history(prompt)) == self.history.get(prompt, 0)
        assert self.store.list_prompts() == sorted({p for p, _ in self.live})


#: Examples per backend (each of up to 25 steps); a networked backend costs ~35 ms a step.
EXAMPLES = {"postgres": 12, "s3": 8}  # s3: ~10 requests a step


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_state_machine(backend: str, request: pytest.FixtureRequest) -> None:
    def make(directory: Path) -> tuple[VersionStorage, Reopen | None]:
        store = BACKENDS[backend](directory, request)
        reopener = REOPENERS.get(store.backend_name)
        return store, None if reopener is None else reopener(store, request)

    machine = type(f"{backend.title()}Machine", (StoreMachine,), {"make": staticmethod(make)})
    runner = machine.TestCase
    runner.settings = settings(
        max_examples=EXAMPLES.get(backend, 40),
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    runner().runTest()
