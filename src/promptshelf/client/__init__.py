"""Clients of a promptshelf server: cached, revalidated with ETags, safe when it is down.

``PromptClient`` (threads) and ``AsyncPromptClient`` (asyncio) share one set of
caching rules (:mod:`promptshelf.client.core`). The HTTP storage backend
(``open_storage("http://host:8420")``) lives in :mod:`promptshelf.storage.http`.
"""

from __future__ import annotations

from .aio import AsyncPromptClient
from .core import ClientStats, ServedVersion, StalePromptWarning
from .sync import PromptClient

__all__ = [
    "AsyncPromptClient",
    "ClientStats",
    "PromptClient",
    "ServedVersion",
    "StalePromptWarning",
]
