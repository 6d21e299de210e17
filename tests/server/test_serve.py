"""``promptshelf serve`` and ``promptshelf keys``: start-up rules, workers, TCP_NODELAY, and two
server processes on one PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from promptshelf import InMemoryStorage
from promptshelf.cli import cli as shelf_cli
from promptshelf.server import create_app
from promptshelf.server.auth import LOCAL, Authenticator, create_key
from promptshelf.server.problems import ApiError
from promptshelf.server.run import bind_socket

from .serverkit import Server, cli, drop_schema, start_server, version_body
from .serverkit import create_key as create_key_cli


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(shelf_cli, list(args), catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def test_serve_refuses_a_public_address_without_keys(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    done = cli("serve", "--store", store, "--host", "0.0.0.0", "--port", "0", cwd=tmp_path)
    assert done.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in done.stderr
    assert "[SERVE-NO-KEYS]" in done.stderr and "Traceback" not in done.stderr


def test_serve_reports_a_port_in_use(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = str(busy.getsockname()[1])
        done = cli("serve", "--store", str(tmp_path / "s"), "--port", port, cwd=tmp_path)
    assert done.returncode == 2 and "[SERVE-BIND]" in done.stderr


def test_without_keys_loopback_clients_get_every_scope(tmp_path: Path) -> None:
    server = start_server(str(tmp_path / "store"), tmp_path)
    try:
        with httpx.Client(base_url=server.url) as c:  # no Authorization at all
            made = c.post("/api/v1/prompts/local_1/versions", json=version_body())
            assert made.status_code == 201
            moved = c.put("/api/v1/prompts/local_1/labels/production", json={"version": "1.0.0"})
            assert moved.status_code == 200 and moved.json()["actor"] == "local"
            assert c.post("/api/v1/admin/verify").json()["ok"] is True
    finally:
        server.stop()
    posted = [e for e in server.access_log() if e["method"] == "POST"][0]
    assert {"principal": "local", "status": 201, "client": "127.0.0.1"}.items() <= posted.items()
    assert posted["route"] == "/api/v1/prompts/{prompt_id}/versions"
    assert isinstance(posted["ms"], float) and posted["ms"] > 0


def test_without_keys_other_clients_are_refused() -> None:
    auth = Authenticator(InMemoryStorage())
    assert auth.principal(None, "127.0.0.1") is LOCAL
    assert auth.principal(None, "::1") is LOCAL
    for host in ("10.1.2.3", "192.168.0.4", None):
        with pytest.raises(ApiError) as caught:
            auth.principal(None, host)
        assert caught.value.status == 401


def test_once_a_key_exists_loopback_needs_it_too() -> None:
    storage = InMemoryStorage()
    auth = Authenticator(storage, ttl=0.0)
    key, token = create_key(storage, "ci", ["write"])
    assert key.scopes == ("read", "write")
    with pytest.raises(ApiError):
        auth.principal(None, "127.0.0.1")
    who = auth.principal(f"Bearer {token}", "127.0.0.1")
    assert who.has("write") and not who.has("admin") and who.key_id == key.key_id
    assert token not in json.dumps([d.data for d in storage.list_documents("api-keys")])


def test_keys_commands(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    assert run("keys", "list", "--store", store)[0] == 1  # no store yet
    code, token, err = run("keys", "create", "deploy", "--scope", "admin", "--store", store)
    assert code == 0 and token.startswith("psk_") and "shown only now" in err
    code, out, _ = run("keys", "list", "--json", "--store", store)
    listed = json.loads(out)
    assert [(k["name"], k["scopes"]) for k in listed] == [("deploy", ["read", "write", "admin"])]
    assert token.strip() not in out
    assert run("keys", "create", "x", "--scope", "root", "--store", store)[0] == 2
    assert run("keys", "create", "../x", "--store", store)[0] == 2
    code, _, err = run("keys", "revoke", "abcdefabcdef", "--store", store)
    assert code == 1 and "KEY-NOT-FOUND" in err
    assert run("keys", "revoke", listed[0]["key_id"], "--store", store)[0] == 0
    assert "No keys" in run("keys", "list", "--store", store)[1]


def test_bound_socket_gives_accepted_connections_tcp_nodelay() -> None:
    """uvicorn #3149: a listener with proto 0 leaves Nagle on in every worker."""
    sock = bind_socket("127.0.0.1", 0)
    assert sock.proto == socket.IPPROTO_TCP
    seen: list[int] = []

    class Probe(asyncio.Protocol):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            accepted = transport.get_extra_info("socket")
            seen.append(accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
            transport.close()

    async def main() -> None:
        server = await asyncio.get_running_loop().create_server(Probe, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not seen:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()

    asyncio.run(asyncio.wait_for(main(), 30))
    assert seen == [1]


def test_several_workers_serve_one_store_and_one_set_of_metrics(tmp_path: Path) -> None:
    """Two workers: writes through either are seen by both, and /metrics (whichever worker
    answers it) counts every request of both workers, with both listed."""
    store = str(tmp_path / "store")
    token = create_key_cli(store, tmp_path, "k", "admin")
    server = start_server(store, tmp_path, "--workers", "2")
    try:
        headers = {"authorization": f"Bearer {token}"}
        with httpx.Client(base_url=server.url, headers=headers) as c:
            for _i in range(10):
                assert c.post("/api/v1/prompts/w/versions", json=version_body()).status_code == 201
            assert len(c.get("/api/v1/prompts/w/versions").json()["versions"]) == 10
        gets = 0
        while gets < 200:  # each on a new connection: the kernel hands them to both workers
            with httpx.Client(base_url=server.url, headers=headers) as c:
                assert c.get("/api/v1/prompts/w").status_code == 200
            gets += 1
            if gets >= 40 and len(_scrape(server.url)[1]) == 2:
                break
        deadline = time.monotonic() + 30
        while True:  # a worker's counters reach the others within half a second
            counts, pids = _scrape(server.url)
            posts = counts.get(("POST", "/api/v1/prompts/{prompt_id}/versions", "201"), 0)
            got = counts.get(("GET", "/api/v1/prompts/{prompt_id}", "200"), 0)
            if (posts, got, len(pids)) == (10, gets, 2) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert (posts, got, len(pids)) == (10, gets, 2), (counts, pids)
        warmed = re.findall(r"worker (\d+) warmed up in \d+ ms", server.log.read_text())
        assert sorted(warmed) == sorted(pids)  # each built its routes before its first request
    finally:
        server.stop()


def _scrape(url: str) -> tuple[dict[tuple[str, str, str], int], set[str]]:
    """``/metrics`` on a new connection: request counts by (method, route, status); pids."""
    text = httpx.get(f"{url}/metrics").text
    counts: dict[tuple[str, str, str], int] = {}
    for m in re.finditer(
        r'^promptshelf_http_requests_total\{method="(\w+)",route="([^"]+)",status="(\d+)"\} (\d+)$',
        text,
        re.M,
    ):
        counts[(m[1], m[2], m[3])] = int(m[4])
    pids = set(re.findall(r'^promptshelf_worker_info\{pid="(\d+)"', text, re.M))
    return counts, pids


def _race_moves(
    servers: list[Server], auth: dict[str, str], etag: str, targets: list[str]
) -> list[httpx.Response]:
    """Client n (through server n % 2) moves ``raced``'s production label to ``targets[n]``
    with ``If-Match: etag``; all are connected first and released together."""
    gate = threading.Barrier(len(targets))
    answers: list[httpx.Response | BaseException | None] = [None] * len(targets)

    def mover(n: int) -> None:
        try:
            with httpx.Client(base_url=servers[n % 2].url, headers=auth) as c:
                c.get("/healthz")  # connected before the gate opens
                gate.wait()
                answers[n] = c.put(
                    "/api/v1/prompts/raced/labels/production",
                    json={"version": targets[n]},
                    headers={"if-match": etag},
                )
        except BaseException as exc:  # surfaced below
            answers[n] = exc

    threads = [threading.Thread(target=mover, args=(n,)) for n in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(isinstance(a, httpx.Response) for a in answers), answers
    return [a for a in answers if isinstance(a, httpx.Response)]


@pytest.fixture(scope="module")
def pg_pair(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[list[Server], str]]:
    """Two ``promptshelf serve`` processes on one PostgreSQL schema, and an admin key."""
    tmp_path = tmp_path_factory.mktemp("pg-pair")
    url = request.getfixturevalue("postgres_url")
    schema = f"s_{uuid.uuid4().hex[:12]}"
    store = f"{url}{'&' if '?' in url else '?'}schema={schema}"
    token = create_key_cli(store, tmp_path, "writer", "admin")
    servers = [start_server(store, tmp_path) for _ in range(2)]
    try:
        yield servers, token
    finally:
        for s in servers:
            s.stop()
        drop_schema(request, schema)


def test_two_servers_on_one_postgres_lose_no_version(
    pg_pair: tuple[list[Server], str],
) -> None:
    """8 clients create versions of one prompt through two server processes at once."""
    servers, token = pg_pair
    created: list[str] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def client(n: int) -> None:
        base = servers[n % 2].url
        try:
            with httpx.Client(base_url=base, headers={"authorization": f"Bearer {token}"}) as c:
                for i in range(8):
                    made = c.post("/api/v1/prompts/shared/versions", json=version_body(f"{n}-{i}"))
                    assert made.status_code == 201, made.text
                    with lock:
                        created.append(made.json()["version"])
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(created) == len(set(created)) == 64
    with httpx.Client(base_url=servers[1].url, headers={"authorization": f"Bearer {token}"}) as c:
        listed = [v["version"] for v in c.get("/api/v1/prompts/shared/versions").json()["versions"]]
    assert sorted(listed) == sorted(created)


def test_two_servers_on_one_postgres_race_if_match_moves(
    pg_pair: tuple[list[Server], str],
) -> None:
    """8 clients, 4 on each server process, move one label with the same If-Match at once,
    each to another version, 3 rounds: each round exactly one gets 200, the 7 others 412
    LABEL-MOVED naming the winner's ETag, and the history holds only the winners' moves."""
    servers, token = pg_pair
    auth = {"authorization": f"Bearer {token}"}
    with httpx.Client(base_url=servers[0].url, headers=auth) as c:
        for i in range(25):
            made = c.post("/api/v1/prompts/raced/versions", json=version_body(f"v{i}"))
            assert made.status_code == 201, made.text
        numbers = [v["version"] for v in c.get("/api/v1/prompts/raced/versions").json()["versions"]]
        first = c.put("/api/v1/prompts/raced/labels/production", json={"version": numbers[0]})
        etag = first.headers["etag"]
    for round_ in range(3):
        targets = numbers[1 + round_ * 8 : 9 + round_ * 8]
        answers = _race_moves(servers, auth, etag, targets)
        won = [n for n, a in enumerate(answers) if a.status_code == 200]
        lost = [a for a in answers if a.status_code != 200]
        assert len(won) == 1, [a.text for a in answers]
        assert len(lost) == 7 and {a.status_code for a in lost} == {412}
        new_etag = answers[won[0]].headers["etag"]
        assert {a.json()["error_code"] for a in lost} == {"LABEL-MOVED"}
        assert {a.json()["context"]["current_etag"] for a in lost} == {new_etag}
        with httpx.Client(base_url=servers[1 - won[0] % 2].url, headers=auth) as c:
            now = c.get("/api/v1/prompts/raced/labels/production")
        assert now.headers["etag"] == new_etag and now.json()["version"] == targets[won[0]]
        etag = new_etag
    with httpx.Client(base_url=servers[1].url, headers=auth) as c:
        history = c.get("/api/v1/prompts/raced/labels/production/history").json()
    assert [e["action"] for e in history] == ["set", "move", "move", "move"]


def test_readyz_says_503_when_the_store_does_not_answer() -> None:
    storage = InMemoryStorage()
    app = create_app(storage)

    async def probe() -> tuple[int, dict[str, object]]:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
            assert (await c.get("/readyz")).status_code == 200
            storage.close()  # what an unreachable database looks like to the server
            answer = await c.get("/readyz")
            return answer.status_code, answer.json()

    status, body = asyncio.run(probe())
    assert status == 503 and body["error_code"] == "NOT-READY"
