"""Storage backends behind one contract, :class:`VersionStorage`, and one way to open them.

Each backend's module is imported when its class is first named (PEP 562), so a
process that opens one store does not pay for the others: the PostgreSQL driver
only when a ``PostgresStorage`` is created, ``S3Storage`` (which needs boto3, the
``s3`` extra) only when it is first named.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import VersionStorage
from .codec import MAX_VERSION_BYTES
from .opener import ENV_VAR, load_config, open_storage

if TYPE_CHECKING:
    from .filesystem import FileSystemStorage
    from .memory import InMemoryStorage
    from .postgres import PostgresStorage
    from .s3 import S3Storage
    from .sqlite import SQLiteStorage

_BACKENDS = {
    "FileSystemStorage": ".filesystem",
    "InMemoryStorage": ".memory",
    "PostgresStorage": ".postgres",
    "S3Storage": ".s3",
    "SQLiteStorage": ".sqlite",
}

__all__ = [
    "ENV_VAR",
    "MAX_VERSION_BYTES",
    "FileSystemStorage",
    "InMemoryStorage",
    "PostgresStorage",
    "S3Storage",
    "SQLiteStorage",
    "VersionStorage",
    "load_config",
    "open_storage",
]


def __getattr__(name: str) -> Any:
    module = _BACKENDS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value  # later lookups skip this function
    return value
