"""Storage backends behind one contract, :class:`VersionStorage`, and one way to open them.

The PostgreSQL driver is imported only when a ``PostgresStorage`` is created.
"""

from __future__ import annotations

from .base import MAX_VERSION_BYTES, VersionStorage
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
    "SQLiteStorage",
    "VersionStorage",
    "load_config",
    "open_storage",
]
