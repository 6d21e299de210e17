"""A real server per test (a subprocess), over a file store the test can also write to."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage

from .serverproc import ServerProcess
from helpers import make_version


def seed(root: Path) -> FileSystemStorage:
    """p1 (1.0.0 labelled production, 1.1.0), p2 (production), p3 (no labels)."""
    store = FileSystemStorage(root)
    store.save_version(make_version("p1", "1.0.0", text="Hello {{name}}, v1."))
    store.save_version(make_version("p1", "1.1.0", text="Hello {{name}}, v2."))
    store.save_version(make_version("p2", "1.0.0", text="Second prompt."))
    store.save_version(make_version("p3", "1.0.0", text="Unlabelled."))
    store.set_label("p1", "production", "1.0.0")
    store.set_label("p2", "production", "1.0.0")
    return store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[FileSystemStorage]:
    opened = seed(tmp_path / "server-store")
    yield opened
    opened.close()


@pytest.fixture
def server(store: FileSystemStorage) -> Iterator[ServerProcess]:
    """A server of its own, in a subprocess (tests kill it, or count its requests)."""
    proc = ServerProcess(store.storage_dir).start()
    yield proc
    proc.stop()
