"""One ``storage`` fixture, parametrized over every backend.

A backend joins the contract suite by adding one factory to ``BACKENDS``.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from promptshelf import FileSystemStorage, InMemoryStorage, VersionStorage  # noqa: E402

SEED_STORE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "seed-store"
BUNDLED_SEED = Path(__file__).resolve().parent / "fixtures" / "seed-store"


def _filesystem(tmp_path: Path) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store")


def _filesystem_sharded(tmp_path: Path) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store", enable_sharding=True, shard_depth=2)


def _filesystem_bare(tmp_path: Path) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store", use_index=False, use_cache=False)


BACKENDS: dict[str, Callable[[Path], VersionStorage]] = {
    "memory": lambda tmp_path: InMemoryStorage(),
    "filesystem": _filesystem,
    "filesystem-sharded": _filesystem_sharded,
    "filesystem-noindex-nocache": _filesystem_bare,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStorage]:
    store = BACKENDS[request.param](tmp_path)
    yield store
    store.close()


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """A writable copy of the store the original implementation wrote; never the original."""
    source = SEED_STORE if SEED_STORE.is_dir() else BUNDLED_SEED
    target = tmp_path / "seed-store"
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
