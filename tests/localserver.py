"""The real application under uvicorn in a thread, for the http backend of the contract suite."""

from __future__ import annotations

import threading
import time

from promptshelf import InMemoryStorage, VersionStorage


class LocalServer:
    """The real application under uvicorn in a thread, on a free loopback port; the store
    it serves is swapped per test (a new store costs no restart)."""

    def __init__(self) -> None:
        import uvicorn

        from promptshelf.server.app import create_app
        from promptshelf.server.run import bind_socket

        self._store: VersionStorage = InMemoryStorage()
        self.app = create_app(self._store, web=False)
        self._sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        config = uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 30
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.005)

    def serve(self, store: VersionStorage) -> None:
        from promptshelf import VersionManager
        from promptshelf.server.auth import Authenticator

        state = self.app.state.promptshelf
        old, self._store = self._store, store
        state.storage, state.manager, state.auth = (
            store,
            VersionManager(store),
            Authenticator(store),
        )
        state.inline_reads = True
        if old is not store:
            old.close()

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)
        self._sock.close()
        self._store.close()
