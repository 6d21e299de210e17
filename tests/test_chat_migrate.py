"""migrate carries chat prompts, their config and commit messages, on every backend pair."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptshelf import migrate

from conftest import BACKENDS
from helpers import make_chat_version, make_version

CHAIN = ["filesystem", "sqlite", "postgres", "filesystem-sharded", "memory"]


def test_chat_versions_travel_the_whole_chain(
    tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    stores = [BACKENDS[kind](tmp_path / kind, request) for kind in CHAIN]
    versions = [
        make_chat_version(version="1.0.0"),
        make_chat_version(
            version="1.0.1",
            parent="1.0.0",
            messages=[{"role": "system", "text": "Only this now."}],
            config={"temperature": 0.9},
            commit_message="shorter",
        ),
        make_version(version="1.0.0"),
    ]
    stores[0].save_versions(versions)
    try:
        for source, dest in zip(stores, stores[1:], strict=False):
            report = migrate(source, dest)
            assert report.ok and report.copied == len(versions), report.to_dict()
        last = stores[-1]
        for original in versions:
            held = last.get_version(original.prompt_id, original.version)
            assert held == original
            assert held is not None and held.prompt.kind == original.prompt.kind
            if original.prompt.messages is not None:
                assert held.prompt.messages == original.prompt.messages
        for source, dest in zip(stores, stores[1:], strict=False):
            again = migrate(source, dest)  # a re-run copies nothing and finds no conflict
            assert again.ok and again.skipped_identical == len(versions), again.to_dict()
    finally:
        for store in stores:
            store.close()
