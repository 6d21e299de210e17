"""``open_storage``: one way to open any store, from a URL, a config mapping or a YAML file.

Targets::

    memory://
    file:///abs/path   file:relative/path   ./plain/path           -> FileSystemStorage
    sqlite:///relative.db   sqlite:////abs/path.db   store.db      -> SQLiteStorage
    postgresql://user@host:5432/db?schema=shelf                     -> PostgresStorage
    s3://bucket/prefix?endpoint_url=http://127.0.0.1:8333&region=us-east-1  -> S3Storage
    http://host:8420   https://host/?api_key=...                    -> HTTPStorage (a server)
    config.yaml (the original design's ``optimizer.storage`` block)

Options go in the query string (``file:///data?enable_sharding=true``) or as
keyword arguments. With no target, ``$PROMPTSHELF_URL`` is used, else the
embedded store ``./promptshelf-data``. Backends are imported only when used,
so a missing optional driver is reported with what to install.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from ..errors import ConfigurationError, OptimizerError, StorageError, StoreNotFoundError
from .base import VersionStorage
from .filesystem.index import detect_layout

ENV_VAR = "PROMPTSHELF_URL"
DEFAULT_TARGET = "./promptshelf-data"


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r}")


@dataclass(frozen=True)
class Backend:
    module: str
    cls: str
    options: dict[str, Callable[[Any], Any]]
    install: str | None = None


BACKENDS: dict[str, Backend] = {
    "memory": Backend("promptshelf.storage.memory", "InMemoryStorage", {"create": _bool}),
    "filesystem": Backend(
        "promptshelf.storage.filesystem",
        "FileSystemStorage",
        {
            "storage_dir": str,
            "use_index": _bool,
            "use_cache": _bool,
            "cache_size": int,
            "enable_sharding": _bool,
            "shard_depth": int,
            "durable": _bool,
            "lock_timeout": float,
            "create": _bool,
        },
    ),
    "sqlite": Backend(
        "promptshelf.storage.sqlite",
        "SQLiteStorage",
        {"path": str, "durable": _bool, "busy_timeout": float, "create": _bool},
    ),
    "postgres": Backend(
        "promptshelf.storage.postgres",
        "PostgresStorage",
        {
            "url": str,
            "schema": str,
            "min_size": int,
            "max_size": int,
            "timeout": float,
            "durable": _bool,
            "check": _bool,
            "create": _bool,
            "connect_timeout": float,
        },
        install="pip install 'promptshelf[postgres]'",
    ),
    "s3": Backend(
        "promptshelf.storage.s3",
        "S3Storage",
        {
            "bucket": str,
            "prefix": str,
            "endpoint_url": str,
            "region": str,
            "cache_size": int,
            "max_workers": int,
            "connect_timeout": float,
            "read_timeout": float,
            "max_attempts": int,
            "create": _bool,
        },
        install="pip install 'promptshelf[s3]'",
    ),
    "http": Backend(
        "promptshelf.storage.http",
        "HTTPStorage",
        {"url": str, "api_key": str, "timeout": float, "create": _bool},
    ),
}

ALIASES = {
    "file": "filesystem",
    "fs": "filesystem",
    "postgresql": "postgres",
    "mem": "memory",
    "https": "http",
}
SQLITE_SUFFIXES = (".db", ".sqlite", ".sqlite3")


def open_storage(
    target: str | os.PathLike[str] | Mapping[str, Any] | None = None, **options: Any
) -> VersionStorage:
    """Open the store that ``target`` names (see the module docstring)."""
    if target is None:
        target = os.environ.get(ENV_VAR) or DEFAULT_TARGET
    if isinstance(target, Mapping):
        backend, config = parse_config(target)
    else:
        text = os.fspath(target)
        if not text.strip():
            raise ConfigurationError("an empty store target names no store; give a path or URL")
        if text.endswith((".yaml", ".yml")) and "://" not in text:
            backend, config = parse_config(load_config(text))
        else:
            backend, config = parse_url(text)
    config.update(options)
    if ALIASES.get(backend, backend) == "filesystem":
        root = str(config.get("storage_dir", DEFAULT_TARGET))
        check_store_dir(root, create=_bool(config.get("create", True)))
        if "enable_sharding" not in config:
            config.update(detect_layout(root))
    return build(backend, config)


#: A version file's name, plain or compressed: what makes a directory a store.
_VERSION_FILE = re.compile(r"\d+\.\d+\.\d+\.json(\.gz)?")
#: Names only promptshelf puts at the top of a store.
_STORE_MARKERS = (".index.json", ".trash", ".quarantine", ".documents")


def check_store_dir(root: str, *, create: bool) -> None:
    """Refuse, before anything is written, a directory store that cannot be one.

    A path under a file is an error (``FS-DIR-001``). Without ``create`` (a command
    that only reads or changes an existing store) a directory that holds other
    things than a store is refused (``STORE-NOT-FOUND``), so no index or lock is
    ever written into someone's home directory.
    """
    probe = Path(root)
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        itself = str(probe) == str(Path(root))
        if probe.is_symlink() and not probe.exists():  # its target is missing
            where = "is" if itself else f"is under {str(probe)!r}, which is"
            what = f"{where} a dangling symlink (to {os.readlink(probe)!r}, which does not exist)"
        else:
            what = "is a file" if itself else f"is under the file {probe}"
        raise ConfigurationError(
            f"{root!r} {what}, not a directory: a store needs a directory",
            error_code="FS-DIR-001",
            context={"storage_dir": root, "file": str(probe)},
        )
    if create or not os.path.isdir(root) or _looks_like_store(root):
        return
    raise StoreNotFoundError(
        f"{root!r} is a directory but not a promptshelf store (no .index.json, no version "
        "files); nothing was written. Use init or save to create a store elsewhere",
        context={"storage_dir": root},
    )


def _looks_like_store(root: str, depth: int = 3) -> bool:
    """Empty, or holding promptshelf's own names or a version file (at most ``depth``
    levels down: prompt dir, or shard then prompt dir); stops at the first sign."""
    try:
        with os.scandir(root) as scan:
            entries = list(scan)
    except OSError:
        return True  # unreadable: let the backend report it with its own code
    if depth == 3 and (not entries or any(e.name in _STORE_MARKERS for e in entries)):
        return True
    for entry in entries:
        if depth < 3 and _VERSION_FILE.fullmatch(entry.name):
            return True
    return depth > 1 and any(
        _looks_like_store(e.path, depth - 1)
        for e in entries
        if not e.name.startswith(".") and e.is_dir(follow_symlinks=False)
    )


def build(backend: str, config: Mapping[str, Any]) -> VersionStorage:
    """Instantiate ``backend`` with ``config``, checking every key and value first."""
    name = ALIASES.get(backend, backend)
    spec = BACKENDS.get(name)
    if spec is None:
        raise ConfigurationError(
            f"unknown storage backend {backend!r}; valid: {', '.join(sorted(BACKENDS))}",
            context={"backend": backend},
        )
    kwargs: dict[str, Any] = {}
    for key, value in config.items():
        convert = spec.options.get(key)
        if convert is None:
            valid = ", ".join(sorted(spec.options)) or "none"
            raise ConfigurationError(
                f"unknown option {key!r} for the {name} backend; valid: {valid}",
                context={"backend": name, "option": key},
            )
        try:
            kwargs[key] = convert(value)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"bad value for {key!r}: {exc}", context={"backend": name, "option": key}
            ) from None
    try:
        module = importlib.import_module(spec.module)
    except ImportError as exc:
        raise ConfigurationError(
            f"the {name} backend needs {exc.name}: {spec.install or 'pip install promptshelf'}",
            context={"backend": name, "missing": exc.name},
        ) from exc
    try:
        storage: VersionStorage = getattr(module, spec.cls)(**kwargs)
    except OptimizerError:
        raise
    except OSError as exc:  # a directory that cannot be created or opened
        raise StorageError(
            f"cannot open the {name} store: {exc.strerror or exc}: {exc.filename or ''}".rstrip(
                ": "
            ),
            error_code="FS-DIR-001",
            context={"backend": name, "errno": exc.errno},
        ) from exc
    return storage


def parse_url(target: str) -> tuple[str, dict[str, Any]]:
    """``(backend, options)`` for a URL or a plain path."""
    scheme, sep, rest = target.partition(":")
    scheme = scheme.lower()
    known = {*BACKENDS, *ALIASES}
    if sep and scheme not in known and rest.startswith("//"):
        raise ConfigurationError(
            f"unknown storage URL scheme {scheme!r}; valid: memory://, file://, sqlite://, "
            "postgresql://, s3://, http://, https://",
            context={"target": target},
        )
    if not sep or scheme not in known:  # a plain path
        kind = "sqlite" if target.lower().endswith(SQLITE_SUFFIXES) else "filesystem"
        return kind, {"path" if kind == "sqlite" else "storage_dir": target}
    if scheme == "s3":
        return "s3", parse_s3_url(target)
    parts = urlsplit(target)
    backend = ALIASES.get(scheme, scheme)
    spec = BACKENDS[backend]
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    if backend == "memory":
        return backend, options
    if backend == "http":  # our options come out of the query; the rest is the server's URL
        if "api_key" not in options and os.environ.get("PROMPTSHELF_API_KEY"):
            options["api_key"] = os.environ["PROMPTSHELF_API_KEY"]
        options["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
        return backend, options
    if backend == "postgres":  # our options come out of the query; libpq's stay in the URL
        libpq = "&".join(f"{k}={v}" for k, v in parse_qsl(parts.query) if k not in spec.options)
        options = {k: v for k, v in options.items() if k in spec.options}
        options["url"] = urlunsplit((parts.scheme, parts.netloc, parts.path, libpq, ""))
        _check_libpq_url(options["url"], spec.options)
        return backend, options
    if parts.netloc not in ("", "localhost"):
        raise ConfigurationError(
            f"{scheme}: URLs name a local path, not a host ({parts.netloc!r})",
            context={"target": target},
        )
    path = parts.path
    if backend == "sqlite" and target.lower().startswith("sqlite:///"):
        path = path[1:]  # SQLAlchemy's rule: sqlite:///rel.db relative, sqlite:////abs.db absolute
    if not path:
        raise ConfigurationError(f"{target!r} names no path", context={"target": target})
    options["path" if backend == "sqlite" else "storage_dir"] = path
    return backend, options


def _check_libpq_url(url: str, ours: Mapping[str, Any]) -> None:
    """Refuse a query option neither promptshelf nor libpq knows, as for the other backends."""
    try:
        import psycopg
        from psycopg.conninfo import conninfo_to_dict
    except ImportError:  # build() says which package the backend needs
        return
    try:
        conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        raise ConfigurationError(
            f"bad postgresql:// URL: {str(exc).strip()}; promptshelf options: "
            f"{', '.join(sorted(k for k in ours if k != 'url'))}, else libpq's connection "
            "parameters",
            context={"backend": "postgres"},
        ) from None


def parse_s3_url(target: str) -> dict[str, Any]:
    """``s3://bucket/prefix?endpoint_url=...&region=...`` as S3Storage options.

    Credentials never go in the URL (they come from the AWS environment or
    files); a URL carrying any is refused without being echoed.
    """
    parts = urlsplit(target)
    if "@" in parts.netloc:
        raise ConfigurationError(
            "s3:// URLs carry no credentials: use AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY "
            "or a profile in ~/.aws",
            context={"backend": "s3"},
        )
    if not parts.netloc:
        raise ConfigurationError(
            "an s3:// URL names a bucket: s3://bucket/prefix", context={"target": target}
        )
    options: dict[str, Any] = dict(parse_qsl(parts.query, keep_blank_values=True))
    options["bucket"] = parts.netloc
    options["prefix"] = parts.path.strip("/")
    return options


def load_config(path: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Read a YAML configuration file."""
    try:
        import yaml
    except ImportError as exc:
        raise ConfigurationError("YAML configuration needs PyYAML: pip install pyyaml") from exc
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}", context={"path": str(path)}) from exc
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"{path} is not valid YAML: {exc}") from exc
    if not isinstance(loaded, Mapping):
        raise ConfigurationError(f"{path} does not hold a mapping", context={"path": str(path)})
    return loaded


def parse_config(config: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
    """``(backend, options)`` from the original design's configuration block.

    Accepts ``{"optimizer": {"storage": {...}}}``, ``{"storage": {...}}``,
    ``{"backend": ..., "config": {...}}`` and ``{"url": ...}``.
    """
    block: Any = config
    for key in ("optimizer", "storage"):
        if isinstance(block, Mapping) and key in block and "backend" not in block:
            block = block[key]
    if not isinstance(block, Mapping):
        raise ConfigurationError("storage configuration must be a mapping")
    if "url" in block and "backend" not in block:
        backend, options = parse_url(str(block["url"]))
        options.update({k: v for k, v in block.items() if k != "url"})
        return backend, options
    unknown = set(block) - {"backend", "config"}
    if unknown or "backend" not in block:
        raise ConfigurationError(
            "storage configuration needs 'backend' (and optionally 'config'); "
            f"got keys {sorted(block)}",
            context={"keys": sorted(block)},
        )
    options = block.get("config") or {}
    if not isinstance(options, Mapping):
        raise ConfigurationError("storage 'config' must be a mapping")
    return str(block["backend"]), dict(options)
