"""Storage backends behind one contract, :class:`VersionStorage`, and one way to open them.

The PostgreSQL driver is imported only when a ``PostgresStorage`` is created;
``S3Storage`` (which needs boto3, the ``s3`` extra) only when it is first named.
"""

from __future__ import annotations

from typing import Any

from .base import VersionStorage
from .codec import MAX_VERSION_BYTES
from .filesystem import FileSystemStorage
from .memory import InMemoryStorage
from .opener import ENV_VAR, load_config, open_storage
from .postgres import PostgresStorage
from .sqlite import SQLiteStorage

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
    if name == "S3Storage":
        from .s3 import S3Storage

        return S3Storage
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
