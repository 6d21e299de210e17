"""One ``storage`` fixture, parametrized over every backend.

A backend joins the contract suite by adding one factory to ``BACKENDS``, and
the multi-process tests and the state machine by adding how a store of its
kind is opened again to ``REOPENERS`` (see :func:`reopen`).
"""

from __future__ import annotations

import multiprocessing
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

sys.path.insert(0, os.path.dirname(__file__))

from localserver import LocalServer  # noqa: E402
from promptshelf import (  # noqa: E402
    FileSystemStorage,
    InMemoryStorage,
    PostgresStorage,
    SQLiteStorage,
    VersionStorage,
    open_storage,
)


def pytest_configure(config: pytest.Config) -> None:
    """A temp root of this run's own, unless --basetemp is given.

    pytest's default root (/tmp/pytest-of-USER/pytest-N) keeps the last three runs
    and deletes older ones when a run starts: a second test run on the same machine
    (another checkout, a developer beside CI) deleted the first run's live PostgreSQL
    data directory and socket under it, and every later PostgreSQL test failed.
    """
    if config.option.basetemp is None and not hasattr(config, "workerinput"):
        root = Path(tempfile.gettempdir()) / f"promptshelf-tests-{os.getpid()}"
        config.option.basetemp = str(root)
        config.add_cleanup(lambda: shutil.rmtree(root, ignore_errors=True))


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


def _s3(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    return open_storage(fresh_s3_url(request))


def _http(tmp_path: Path, request: pytest.FixtureRequest) -> VersionStorage:
    """HTTPStorage against a real uvicorn (one per session) serving a fresh store per test."""
    from promptshelf.storage.http import HTTPStorage

    server: LocalServer = request.getfixturevalue("http_server")
    server.serve(FileSystemStorage(tmp_path / "server-store", durable=False))
    return HTTPStorage(server.url)


BACKENDS: dict[str, Callable[[Path, pytest.FixtureRequest], VersionStorage]] = {
    "memory": lambda tmp_path, request: InMemoryStorage(),
    "filesystem": _filesystem,
    "filesystem-sharded": _filesystem_sharded,
    "filesystem-noindex-nocache": _filesystem_bare,
    "sqlite": _sqlite,
    "postgres": _postgres,
    "s3": _s3,
    "http": _http,
}


@dataclass(frozen=True)
class Reopen:
    """Opens one store again, in this process or in another: picklable, so a spawned or
    forked worker gets it as an argument and calls it."""

    opener: Callable[..., VersionStorage]  # a class or a module-level function
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    fork_safe: bool = True  # False: workers must be spawned (a pool's sockets and threads)

    def __call__(self) -> VersionStorage:
        return self.opener(*self.args, **self.kwargs)

    def processes(self) -> Any:
        """The multiprocessing context workers of this store start in."""
        return multiprocessing.get_context("fork" if self.fork_safe else "spawn")


def _reopen_filesystem(store: Any, request: pytest.FixtureRequest) -> Reopen:
    options = {
        "use_index": store.use_index,
        "use_cache": store.use_cache,
        "enable_sharding": store.enable_sharding,
        "shard_depth": store.shard_depth,
        "checksums": store.checksums,
    }
    return Reopen(FileSystemStorage, (str(store.storage_dir),), options)


#: backend_name -> how a store of that backend is opened again. A backend whose stores live
#: in one process (memory) has none: the tests that need a second process skip it.
REOPENERS: dict[str, Callable[[Any, pytest.FixtureRequest], Reopen]] = {
    "filesystem": _reopen_filesystem,
    "sqlite": lambda store, request: Reopen(SQLiteStorage, (str(store.path),)),
    "postgres": lambda store, request: Reopen(
        PostgresStorage,
        (request.getfixturevalue("postgres_url"),),
        {"schema": store.schema},
        fork_safe=False,
    ),
    "s3": lambda store, request: Reopen(
        open_storage,
        (store.url,),
        fork_safe=False,  # a pool of threads and connections
    ),
    # Another process reaches the same server; spawned, as this one runs the server's thread.
    "http": lambda store, request: Reopen(type(store), (store.url,), fork_safe=False),
}


def reopen(store: VersionStorage, request: pytest.FixtureRequest) -> Reopen:
    """How to open ``store`` again (same data, same options), here or in another process;
    skips the test for a backend that keeps its data in one process."""
    factory = REOPENERS.get(store.backend_name)
    if factory is None:
        pytest.skip(f"a {store.backend_name} store cannot be opened by another process")
    return factory(store, request)


@pytest.fixture(params=sorted(BACKENDS))
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[VersionStorage]:
    store = BACKENDS[request.param](tmp_path, request)
    yield store
    store.close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    server = LocalServer()
    yield server
    server.stop()


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


@pytest.fixture(scope="session")
def s3_url() -> Iterator[str]:
    """A real S3: $PROMPTSHELF_TEST_S3_URL (credentials from the AWS environment), else a
    SeaweedFS started here (see tests/s3server.py). If it cannot start, every S3 test
    fails with the reason: there is no silent skip."""
    url = os.environ.get("PROMPTSHELF_TEST_S3_URL")
    if url:
        yield url
        return
    import s3server

    server = s3server.start()
    saved = {name: os.environ.get(name) for name in server.env}
    os.environ.update(server.env)  # boto3 and child processes find the credentials here
    try:
        yield server.url("promptshelf-test")
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def fresh_s3_url(request: pytest.FixtureRequest) -> str:
    """A prefix of its own for one test; on an external endpoint it is emptied afterwards."""
    base = request.getfixturevalue("s3_url")
    url = with_prefix(base, f"t-{uuid.uuid4().hex[:16]}")
    if os.environ.get("PROMPTSHELF_TEST_S3_URL"):

        def empty() -> None:
            with open_storage(url) as store:
                store.clear_all()

        request.addfinalizer(empty)
    return url


def with_prefix(url: str, name: str) -> str:
    """``url`` (s3://bucket[/prefix]?query) with ``name`` appended to its prefix."""
    head, sep, query = url.partition("?")
    return f"{head.rstrip('/')}/{name}{sep}{query}"


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
