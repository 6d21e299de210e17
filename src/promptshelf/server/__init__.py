"""``promptshelf serve``: the REST API (``/api/v1``) and the web page over any store.

Needs the ``server`` extra (``pip install 'promptshelf[server]'``): FastAPI and uvicorn.
"""

from __future__ import annotations

from .app import ServerState, create_app, state_of

__all__ = ["ServerState", "create_app", "state_of"]
