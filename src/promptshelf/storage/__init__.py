"""Storage backends behind one contract, :class:`VersionStorage`."""

from __future__ import annotations

from .base import MAX_VERSION_BYTES, VersionStorage
from .filesystem import FileSystemStorage
from .memory import InMemoryStorage

__all__ = ["MAX_VERSION_BYTES", "FileSystemStorage", "InMemoryStorage", "VersionStorage"]
