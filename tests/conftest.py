"""One ``storage`` fixture, parametrized over every backend.

A backend joins the contract suite by adding one factory to ``BACKENDS``.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from promptshelf import (  # noqa: E402
    FileSystemStorage,
    InMemoryStorage,
    PostgresStorage,
    SQLiteStorage,
    VersionStorage,
)

SEED_STORE = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "seed-store"
BUNDLED_SEED = Path(__file__).resolve().parents[1] / "examples" / "seed-store"


def _filesystem(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store")


def _filesystem_sharded(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store", enable_sharding=True, shard_depth=2)


def _filesystem_bare(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return FileSystemStorage(tmp_path / "store", use_index=False, use_cache=False)


def _sqlite(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return SQLiteStorage(tmp_path / "store.db")


def _postgres(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return PostgresStorage(request.getfixturevalue("postgres_url"), schema=fresh_schema(request))


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], VersionStorage]] = {
    "memory": lambda tmp_path, request: InMemoryStorage(),
    "filesystem": _filesystem,
    "filesystem-sharded": _filesystem_sharded,
    "filesystem-noindex-nocache": _filesystem_bare,
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStorage]:
    store = BACKENDS[request.param](tmp_path, request)
    yield store
    store.close()


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real PostgreSQL: $PROMPTSHELF_TEST_POSTGRES_URL, else one started with pgserver."""
    url = os.environ.get("PROMPTSHELF_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    import pgserver

    server = pgserver.get_server(str(tmp_path_factory.mktemp("pg")), cleanup_mode="stop")
    try:
        yield server.get_uri()
    finally:
        server.cleanup()


def fresh_schema(request: pytest.FixtureRequest) -> str:
    """A schema of its own for one test, dropped when the test ends."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    url = request.getfixturevalue("postgres_url")

    def drop() -> None:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')

    request.addfinalizer(drop)
    return schema


@pytest.fixture
def seed_copy(tmp_path: Path) -> Path:
    """A writable copy of the store the original implementation wrote; never the original."""
    source = SEED_STORE if SEED_STORE.is_dir() else BUNDLED_SEED
    target = tmp_path / "seed-store"
    shutil.copytree(source, target)
    for path in [target, *target.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target
