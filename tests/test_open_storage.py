"""open_storage: every way of naming a store, and a clear error for every wrong one."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptshelf import (
    ConfigurationError,
    FileSystemStorage,
    InMemoryStorage,
    PostgresStorage,
    SQLiteStorage,
    open_storage,
)
from promptshelf.storage.opener import parse_url


@pytest.mark.parametrize(
    ("target", "backend", "options"),
    [
        ("memory://", "memory", {}),
        ("file:///abs/path", "filesystem", {"storage_dir": "/abs/path"}),
        ("file:relative/path", "filesystem", {"storage_dir": "relative/path"}),
        ("file://localhost/abs", "filesystem", {"storage_dir": "/abs"}),
        (
            "file:///d?enable_sharding=true&shard_depth=3",
            "filesystem",
            {"storage_dir": "/d", "enable_sharding": "true", "shard_depth": "3"},
        ),
        ("./plain/dir", "filesystem", {"storage_dir": "./plain/dir"}),
        ("sqlite:///rel.db", "sqlite", {"path": "rel.db"}),
        ("sqlite:////abs/x.db", "sqlite", {"path": "/abs/x.db"}),
        ("sqlite:///x.db?durable=false", "sqlite", {"path": "x.db", "durable": "false"}),
        ("store.sqlite3", "sqlite", {"path": "store.sqlite3"}),
        (
            "postgresql://u@h:5432/db?schema=s1&sslmode=disable",
            "postgres",
            {"url": "postgresql://u@h:5432/db?sslmode=disable", "schema": "s1"},
        ),
        ("postgres://u@h/db", "postgres", {"url": "postgres://u@h/db"}),
        (
            "s3://bkt/team/prompts/?endpoint_url=http://127.0.0.1:8333&region=eu-west-1",
            "s3",
            {
                "bucket": "bkt",
                "prefix": "team/prompts",
                "endpoint_url": "http://127.0.0.1:8333",
                "region": "eu-west-1",
            },
        ),
        ("s3://bkt", "s3", {"bucket": "bkt", "prefix": ""}),
    ],
)
def test_urls(target: str, backend: str, options: dict[str, str]) -> None:
    assert parse_url(target) == (backend, options)


def test_opens_each_local_backend(tmp_path: Path) -> None:
    assert isinstance(open_storage("memory://"), InMemoryStorage)
    fs = open_storage(f"file://{tmp_path}/fs?enable_sharding=yes&cache_size=7")
    assert isinstance(fs, FileSystemStorage) and fs.enable_sharding and fs.shard_depth == 2
    assert fs.get_storage_stats()["cache_stats"]["max_size"] == 7
    db = open_storage(f"sqlite:///{tmp_path}/x.db", durable=False)
    assert isinstance(db, SQLiteStorage) and db.durable is False
    db.close()


def test_opens_postgres(postgres_url: str, request: pytest.FixtureRequest) -> None:
    from conftest import fresh_schema

    schema = fresh_schema(request)
    sep = "&" if "?" in postgres_url else "?"
    store = open_storage(f"{postgres_url}{sep}schema={schema}")
    assert isinstance(store, PostgresStorage) and store.schema == schema
    store.close()


def test_environment_variable_and_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PROMPTSHELF_URL", "memory://")
    assert isinstance(open_storage(), InMemoryStorage)
    monkeypatch.delenv("PROMPTSHELF_URL")
    monkeypatch.chdir(tmp_path)
    store = open_storage()
    assert isinstance(store, FileSystemStorage)
    assert store.storage_dir == tmp_path / "promptshelf-data"


ORIGINAL_YAML = """
optimizer:
  storage:
    backend: "filesystem"        # memory | filesystem | sqlite | postgres
    config:
      storage_dir: "{dir}"
      use_index: true
      use_cache: true
      cache_size: 100
      enable_sharding: false
"""


def test_the_original_yaml_configuration(tmp_path: Path) -> None:
    config = tmp_path / "env_config.yaml"
    config.write_text(ORIGINAL_YAML.format(dir=tmp_path / "versions"))
    store = open_storage(str(config))
    assert isinstance(store, FileSystemStorage)
    assert store.storage_dir == tmp_path / "versions"
    assert open_storage({"storage": {"backend": "memory"}}).backend_name == "memory"
    assert (
        open_storage({"backend": "sqlite", "config": {"path": str(tmp_path / "c.db")}}).backend_name
        == "sqlite"
    )
    assert open_storage({"url": "memory://"}).backend_name == "memory"


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("ftp://host/x", "valid: memory://, file://, sqlite://, postgresql://"),
        ({"backend": "mongo"}, "valid: filesystem, http, memory, postgres, s3, sqlite"),
        (
            {"backend": "filesystem", "config": {"storage_dir": "x", "colour": "red"}},
            "valid: cache_size, create, durable, enable_sharding",
        ),
        ("file:///x?shard_depth=deep", "bad value for 'shard_depth'"),
        ("file:///x?use_cache=maybe", "bad value for 'use_cache'"),
        ("file://otherhost/x", "local path, not a host"),
        ({"storage": {"config": {}}}, "needs 'backend'"),
        (
            "memory://?durable=false",
            "unknown option 'durable' for the memory backend; valid: create",
        ),
    ],
)
def test_bad_targets_say_what_is_valid(target: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_storage(target)  # type: ignore[arg-type]
    assert message in str(caught.value)
    assert caught.value.error_code == "PS-CONFIG-001"


def test_bad_yaml(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("optimizer: [unclosed")
    with pytest.raises(ConfigurationError, match="not valid YAML"):
        open_storage(str(tmp_path / "bad.yaml"))
    with pytest.raises(ConfigurationError, match="cannot read"):
        open_storage(str(tmp_path / "missing.yaml"))
