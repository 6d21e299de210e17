"""Fixtures of the server tests (the helpers live in serverkit.py)."""

from __future__ import annotations

from .serverkit import server

__all__ = ["server"]
