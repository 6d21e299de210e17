"""PromptClient and AsyncPromptClient against a real server in a subprocess.

Freshness-window tests use small windows and poll for the condition; nothing
asserts on elapsed time except through the client's own deadlines.
"""

from __future__ import annotations

import asyncio
import threading
import time
import warnings
from pathlib import Path

import pytest

from promptshelf import FileSystemStorage
from promptshelf.client import AsyncPromptClient, PromptClient, StalePromptWarning
from promptshelf.errors import (
    ConfigurationError,
    LabelNotFoundError,
    ServerUnavailableError,
    VersionNotFoundError,
)

from .serverproc import ServerProcess, free_port, wait_for
from helpers import make_version

KEY = ("p1", "label", "production")
PROMPT_ROUTE = "/api/v1/prompts/{prompt_id}"
BATCH_ROUTE = "/api/v1/prompts:batch-get"


def deadline_of(client: PromptClient | AsyncPromptClient, key: tuple[str, str, str]) -> float:
    return client._core.entries[key].fresh_until


def wait_expired(client: PromptClient, key: tuple[str, str, str]) -> None:
    """Wait until ``key``'s window has passed and the sync client's clock-free hot path has
    dropped it (its expiry thread runs a little late when the machine is loaded)."""
    deadline = deadline_of(client, key)
    table = client._fresh_labels if key[1] == "label" else client._fresh_pinned

    def expired() -> bool:
        return time.monotonic() >= deadline and (key[0], key[2]) not in table

    wait_for(expired, 10, f"{key} to leave the freshness window")


async def await_expired(client: AsyncPromptClient, key: tuple[str, str, str]) -> None:
    """``wait_expired`` for the asyncio client (whose hot path is the same clock-free table),
    yielding to the event loop while it waits."""
    deadline = deadline_of(client, key)
    table = client._fresh_labels if key[1] == "label" else client._fresh_pinned
    give_up = time.monotonic() + 10
    while time.monotonic() < deadline or (key[0], key[2]) in table:
        assert time.monotonic() < give_up, f"{key} never left the freshness window"
        await asyncio.sleep(0.01)


# -- freshness and revalidation ---------------------------------------------------------


def test_label_move_is_seen_after_the_window_not_before(
    server: ServerProcess, store: FileSystemStorage
) -> None:
    with PromptClient(server.url, ttl=1.0, stale_while_revalidate=0) as client:
        assert client.get("p1").version == "1.0.0"
        fresh_until = deadline_of(client, KEY)
        requests = client.stats.requests
        store.set_label("p1", "production", "1.1.0")
        answer = client.get("p1")
        if time.monotonic() < fresh_until:  # still inside the window: the cache answers
            assert answer.version == "1.0.0"
            assert client.stats.requests == requests
        moved = wait_for(lambda: client.get("p1").version == "1.1.0" and time.monotonic(), 10)
        assert moved >= fresh_until
        assert client.get("p1").stale is False


def test_revalidation_is_a_304_counted_by_the_server(server: ServerProcess) -> None:
    with PromptClient(server.url, ttl=0.05, stale_while_revalidate=0) as client:
        first = client.get("p1")
        before = server.count(status=304)
        for _ in range(3):
            wait_expired(client, KEY)
            assert client.get("p1") == first
        assert client.stats.not_modified == 3
        assert client.stats.fetched == 1
        assert server.count(status=304) - before == 3


def test_stale_while_revalidate_answers_at_once_and_refreshes_in_the_background(
    server: ServerProcess, store: FileSystemStorage
) -> None:
    with PromptClient(server.url, ttl=0.05, stale_while_revalidate=60) as client:
        assert client.get("p1").version == "1.0.0"
        store.set_label("p1", "production", "1.1.0")
        wait_expired(client, KEY)
        assert client.get("p1").version == "1.0.0"  # served at once, within the bound
        wait_for(lambda: client.stats.fetched == 2, 10, "the background refresh")
        assert client.get("p1").version == "1.1.0"
        assert client.stats.background_refreshes >= 1
        assert client.staleness_bound == pytest.approx(60.05)


def test_pinned_versions_and_render(server: ServerProcess) -> None:
    with PromptClient(server.url) as client:
        pinned = client.get("p1", version="1.1.0")
        assert pinned.version == "1.1.0" and pinned.source == "server"
        assert client.render("p1", {"name": "Ada"}) == "Hello Ada, v1."
        assert client.render("p1", version="1.1.0", name="Bo") == "Hello Bo, v2."
        with pytest.raises(VersionNotFoundError) as caught:
            client.get("p1", version="9.9.9")
        assert caught.value.error_code == "VERSION-NOT-FOUND"
        with pytest.raises(LabelNotFoundError):
            client.get("p3")
        with pytest.raises(ConfigurationError):
            client.get("p1", "production", version="1.0.0")


# -- gone means gone --------------------------------------------------------------------


def test_a_removed_label_is_gone_not_stale(
    server: ServerProcess, store: FileSystemStorage, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with PromptClient(server.url, ttl=0.05, stale_while_revalidate=0, cache_dir=cache) as client:
        assert client.get("p1").version == "1.0.0"
        assert client.get("p2").version == "1.0.0"
        store.remove_label("p1", "production")
        wait_expired(client, KEY)
        with pytest.raises(LabelNotFoundError) as caught:
            client.get("p1")
        assert caught.value.error_code == "LABEL-NOT-FOUND"
        assert KEY not in client._core.entries
        assert client.stats.gone == 1
    server.kill()  # the disk cache forgot it too: offline, nothing is served for it
    with PromptClient(server.url, cache_dir=cache) as offline:
        with pytest.raises(ServerUnavailableError) as down:
            offline.get("p1")
        assert down.value.error_code == "CLIENT-OFFLINE-001"
        with pytest.warns(StalePromptWarning):
            assert offline.get("p2").stale is True  # what is still cached is served, flagged


def test_a_deleted_version_is_gone(server: ServerProcess, store: FileSystemStorage) -> None:
    with PromptClient(server.url, ttl=0.05, stale_while_revalidate=60) as client:
        assert client.get("p1", version="1.1.0").version == "1.1.0"
        store.delete_version("p1", "1.1.0")
        key = ("p1", "version", "1.1.0")
        wait_expired(client, key)
        client.get("p1", version="1.1.0")  # within the stale-while-revalidate bound
        wait_for(lambda: key not in client._core.entries, 10, "the background 404")
        with pytest.raises(VersionNotFoundError):
            client.get("p1", version="1.1.0")


# -- the server down --------------------------------------------------------------------


def test_server_killed_serves_stale_then_fresh_when_back(
    server: ServerProcess, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    client = PromptClient(
        server.url, ttl=0.05, stale_while_revalidate=0, cache_dir=cache, retry_after=0
    )
    try:
        assert client.get("p1").stale is False
        server.kill()
        wait_expired(client, KEY)
        with pytest.warns(StalePromptWarning, match="stale"):
            first = client.get("p1")
        assert (first.stale, first.source, first.version) == (True, "memory", "1.0.0")
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # one warning per outage, not one per call
            assert client.get("p1").stale is True

        with PromptClient(server.url, cache_dir=cache) as restarted:  # a new process
            with pytest.warns(StalePromptWarning):
                from_disk = restarted.get("p1")
            assert (from_disk.stale, from_disk.source) == (True, "disk")
            assert from_disk == first

        server.start()
        back = wait_for(lambda: (v := client.get("p1")) and not v.stale and v, 15)
        assert back.source == "server" and back.version == "1.0.0"
        assert client.stats.stale_served >= 2
    finally:
        client.close()


def test_no_server_no_cache_fallback_or_a_coded_error(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with PromptClient(url, timeout=2.0, fallback={"p1": "Fallback for {{name}}."}) as client:
        with pytest.warns(StalePromptWarning):
            answer = client.get("p1")
        assert (answer.stale, answer.source) == (True, "fallback")
        assert client.render("p1", name="Ada") == "Fallback for Ada."
        with pytest.warns(StalePromptWarning):
            chat = client.get("p2", fallback=[{"role": "system", "content": "Be brief."}])
        assert chat.source == "fallback" and "Be brief." in chat.prompt.text
        with pytest.raises(ServerUnavailableError) as caught:
            client.get("p3")
        assert caught.value.error_code == "CLIENT-OFFLINE-001"
        assert str(caught.value).startswith("[CLIENT-OFFLINE-001] cannot reach")


def test_bad_client_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        PromptClient("ftp://example")
    with pytest.raises(ConfigurationError):
        PromptClient("http://127.0.0.1:1", ttl=-1)


# -- the disk cache ---------------------------------------------------------------------


def test_a_bit_flipped_disk_cache_entry_is_detected_and_refetched(
    server: ServerProcess, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    with PromptClient(server.url, cache_dir=cache) as client:
        original = client.get("p1")
    [path] = list((cache / "p1").glob("1.0.0.json"))
    data = bytearray(path.read_bytes())
    data[data.index(b"Hello") + 1] ^= 0x01  # 'e' -> 'd': still valid JSON, wrong bytes
    path.write_bytes(bytes(data))

    with PromptClient(server.url, cache_dir=cache) as client:
        again = client.get("p1")
        assert again == original and again.source == "server"
        assert client.stats.disk_corrupt == 1
    server.kill()  # the refetched copy was written back whole
    with PromptClient(server.url, cache_dir=cache) as offline, pytest.warns(StalePromptWarning):
        assert offline.get("p1") == original


# -- one refresh per key ----------------------------------------------------------------


def test_sixteen_threads_share_one_refresh(server: ServerProcess) -> None:
    with PromptClient(server.url, ttl=1.0, stale_while_revalidate=0) as client:
        barrier = threading.Barrier(16)
        answers: list[str] = []

        def get() -> None:
            barrier.wait()
            answers.append(client.get("p1").version)

        def herd() -> None:
            threads = [threading.Thread(target=get) for _ in range(16)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        before = server.count(route=PROMPT_ROUTE)
        herd()  # cold: one fetch
        assert answers == ["1.0.0"] * 16
        assert client.stats.requests == 1
        wait_expired(client, KEY)
        herd()  # expired: one revalidation
        assert client.stats.requests == 2 and client.stats.not_modified == 1
        assert server.count(route=PROMPT_ROUTE) - before == 2


def test_an_asyncio_gather_of_200_gets_shares_one_refresh(server: ServerProcess) -> None:
    async def main() -> None:
        async with AsyncPromptClient(server.url, ttl=1.0, stale_while_revalidate=0) as client:
            cold = await asyncio.gather(*(client.get("p1") for _ in range(200)))
            assert {v.version for v in cold} == {"1.0.0"}
            assert client.stats.requests == 1
            await await_expired(client, KEY)
            warm = await asyncio.gather(*(client.get("p1") for _ in range(200)))
            assert {v.version for v in warm} == {"1.0.0"}
            assert client.stats.requests == 2 and client.stats.not_modified == 1
            # counted before the render: on a loaded machine the window may close meanwhile
            assert server.count(route=PROMPT_ROUTE) - before == 2
            assert await client.render("p1", name="Ada") == "Hello Ada, v1."

    before = server.count(route=PROMPT_ROUTE)
    asyncio.run(main())


def test_async_client_offline_and_gone(
    server: ServerProcess, store: FileSystemStorage, tmp_path: Path
) -> None:
    async def main() -> None:
        cache = tmp_path / "cache"
        async with AsyncPromptClient(
            server.url, ttl=0.05, stale_while_revalidate=0, cache_dir=cache
        ) as client:
            assert (await client.get("p2")).version == "1.0.0"
            assert (await client.get("p1")).version == "1.0.0"
            store.remove_label("p2", "production")
            await await_expired(client, ("p2", "label", "production"))
            with pytest.raises(LabelNotFoundError):
                await client.get("p2")
            server.kill()
            await await_expired(client, KEY)
            with pytest.warns(StalePromptWarning):
                stale = await client.get("p1")
            assert stale.stale and stale.version == "1.0.0"

    asyncio.run(main())


# -- prefetch and bundles ---------------------------------------------------------------


def test_prefetch_fills_the_cache_in_one_request(server: ServerProcess) -> None:
    with PromptClient(server.url) as client:
        before = server.count(route=BATCH_ROUTE), server.count(route=PROMPT_ROUTE)
        found = client.prefetch(["p1", "p2", "p3", ("p1", "staging")])
        assert server.count(route=BATCH_ROUTE) - before[0] == 1
        assert found["p2"].version == "1.0.0"  # type: ignore[union-attr]
        assert isinstance(found["p3"], LabelNotFoundError)
        requests = client.stats.requests
        assert client.get("p1").version == "1.0.0"
        assert client.get("p2").version == "1.0.0"
        assert client.stats.requests == requests  # served from what prefetch cached
        assert server.count(route=PROMPT_ROUTE) == before[1]


def test_a_client_starts_from_a_pulled_bundle(
    server: ServerProcess, store: FileSystemStorage, tmp_path: Path
) -> None:
    from click.testing import CliRunner

    from promptshelf.cli import cli

    bundle = tmp_path / "bundle"
    result = CliRunner().invoke(
        cli, ["pull", "--store", server.url, "--label", "production", "-o", str(bundle)]
    )
    assert result.exit_code == 0, result.output
    assert "pulled 2 version(s) of 2 prompt(s)" in result.output
    assert FileSystemStorage(bundle).get_label("p1", "production") == "1.0.0"

    with PromptClient(server.url, bundle=bundle) as client:  # server up: revalidated, 304
        answer = client.get("p1")
        assert answer.source == "server" and client.stats.not_modified == 1
    server.kill()
    with PromptClient(server.url, bundle=bundle) as offline:
        with pytest.warns(StalePromptWarning):
            answer = offline.get("p1")
        assert (answer.stale, answer.source, answer.version) == (True, "bundle", "1.0.0")
        with pytest.raises(ServerUnavailableError):
            offline.get("p3")


def test_saved_versions_reach_the_client(server: ServerProcess, store: FileSystemStorage) -> None:
    store.save_version(make_version("p4", "1.0.0", text="New prompt."))
    store.set_label("p4", "production", "1.0.0")
    with PromptClient(server.url) as client:
        assert client.get("p4").prompt.text == "New prompt."
