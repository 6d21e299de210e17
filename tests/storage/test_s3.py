"""S3-specific behaviour, on a real SeaweedFS (or $PROMPTSHELF_TEST_S3_URL); the shared
behaviour is in test_contract.py, which runs on s3 too."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest

from promptshelf import FileSystemStorage, OptimizerError, open_storage
from promptshelf.errors import ConfigurationError
from promptshelf.models import LabelAction
from promptshelf.storage.s3 import S3Storage
from promptshelf.storage.s3client import PreconditionFailed
from promptshelf.storage.s3labels import LabelState

from conftest import fresh_s3_url
from helpers import make_version


@pytest.fixture
def store(request: pytest.FixtureRequest) -> Iterator[S3Storage]:
    opened = open_storage(fresh_s3_url(request))
    assert isinstance(opened, S3Storage)
    yield opened
    opened.close()


def _options(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query))


def test_a_version_is_one_object_with_the_bytes_of_a_version_file(
    store: S3Storage, tmp_path: Path
) -> None:
    version = make_version("p1", "1.2.0")
    store.save_version(version)
    key = f"{store.root}p1/1.2.0.json"
    stored = store.bucket.get(key)
    assert stored is not None
    files = FileSystemStorage(tmp_path / "fs")
    files.save_version(version)
    assert stored.data == (tmp_path / "fs" / "p1" / "1.2.0.json").read_bytes()
    assert json.loads(stored.data)["sha256"]
    assert list(store.bucket.keys(store.root)) == [key]


def test_url_options_reach_the_store(s3_url: str) -> None:
    with open_storage(s3_url.replace("?", "/a/b/?") + "&cache_size=7&max_workers=3") as opened:
        assert isinstance(opened, S3Storage)
        assert (opened.prefix, opened.root, opened.max_workers) == ("a/b", "a/b/", 3)
        assert opened._cache.max_size == 7
        assert opened.bucket.name == urlsplit(s3_url).netloc


def test_credentials_in_the_url_are_refused_and_never_echoed() -> None:
    with pytest.raises(ConfigurationError) as caught:
        open_storage("s3://AKIDEXAMPLE:s3cr3t-value@bucket/prefix?region=us-east-1")
    assert "s3cr3t-value" not in str(caught.value)
    assert "s3cr3t-value" not in json.dumps(caught.value.to_dict())
    with pytest.raises(ConfigurationError) as caught:
        open_storage("s3://bucket/p?endpoint_url=http://AKID:s3cr3t-value@127.0.0.1:1")
    assert "s3cr3t-value" not in str(caught.value)
    with pytest.raises(ConfigurationError) as caught:
        open_storage("s3://bucket/p?aws_secret_access_key=s3cr3t-value")
    assert "s3cr3t-value" not in str(caught.value)


@pytest.mark.timeout(60)
def test_an_unreachable_endpoint_is_a_coded_error_within_seconds() -> None:
    import socket

    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OptimizerError) as caught:
        open_storage(f"s3://bucket/p?endpoint_url=http://127.0.0.1:{port}&max_attempts=2")
    assert caught.value.error_code == "S3-CONN-001"
    assert isinstance(caught.value, ConnectionError)
    assert f"127.0.0.1:{port}" in str(caught.value)


def test_wrong_credentials_are_a_coded_error_without_the_secret(
    s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if "AWS_SECRET_ACCESS_KEY" not in __import__("os").environ:
        pytest.fail("the S3 fixture sets the AWS credentials in the environment")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret-0123456789")
    with pytest.raises(OptimizerError) as caught:
        open_storage(s3_url)
    assert caught.value.error_code == "S3-AUTH-001"
    assert "not-the-secret" not in str(caught.value)


def test_reads_are_cached_and_revalidated_by_etag(store: S3Storage, s3_url: str) -> None:
    store.save_version(make_version("p", "1.0.0", text="first"))
    assert store.get_version("p", "1.0.0").prompt.text == "first"  # type: ignore[union-attr]
    assert store.get_version("p", "1.0.0").prompt.text == "first"  # type: ignore[union-attr]
    assert store.get_storage_stats()["cache_stats"]["hits"] >= 1
    other = S3Storage(
        store.bucket.name, store.prefix, endpoint_url=_options(s3_url).get("endpoint_url")
    )
    other.delete_version("p", "1.0.0")
    other.save_version(make_version("p", "1.0.0", text="second"))
    # The cached copy is stale: the revalidating read gets the new object, never the old one.
    assert store.get_version("p", "1.0.0").prompt.text == "second"  # type: ignore[union-attr]
    other.delete_version("p", "1.0.0")
    assert store.get_version("p", "1.0.0") is None
    other.close()


def test_a_label_moved_back_never_revives_an_old_etag(store: S3Storage) -> None:
    for number in ("1.0.0", "1.1.0"):
        store.save_version(make_version("p", number))
    store.set_label("p", "prod", "1.0.0")
    key = store.labels.state_key("p")
    stale = store.bucket.get(key)
    assert stale is not None
    store.set_label("p", "prod", "1.1.0")
    store.set_label("p", "prod", "1.0.0")  # A -> B -> A: the same labels, a new revision
    with pytest.raises(PreconditionFailed):
        store.bucket.put(key, b"{}", if_match=stale.etag)
    state, _ = store.labels.read("p")
    assert (state.rev, state.seq, state.labels) == (3, 3, {"prod": "1.0.0"})


def test_events_committed_by_a_killed_writer_are_kept(store: S3Storage) -> None:
    store.save_versions([make_version("p", "1.0.0"), make_version("p", "1.1.0")])
    store.set_label("p", "prod", "1.0.0")
    # A writer committed revision 2 and died before writing its event object.
    state, etag = store.labels.read("p")
    event = store.labels.events("p")[0].model_copy(
        update={"seq": 2, "label": "beta", "action": LabelAction.SET}
    )
    store.bucket.put(store.labels.state_key("p"), state.after([event]).encode(), if_match=etag)
    assert [e.seq for e in store.label_history("p")] == [1, 2]
    assert store.list_labels("p") == {"prod": "1.0.0", "beta": "1.0.0"}
    assert store.verify().ok
    store.set_label("p", "prod", "1.1.0", reason="next")  # writes event 2 first, then 3
    assert sorted(store.bucket.keys(store.labels.events_prefix("p")))[-2:] == [
        store.labels.event_key("p", 2),
        store.labels.event_key("p", 3),
    ]
    assert [e.seq for e in store.label_history("p")] == [1, 2, 3]


def test_verify_and_repair_on_s3(store: S3Storage) -> None:
    for number in ("1.0.0", "1.1.0"):
        store.save_version(make_version("p", number))
    store.set_label("p", "prod", "1.0.0")
    store.set_label("p", "prod", "1.1.0")
    key = f"{store.root}p/1.1.0.json"
    stored = store.bucket.get(key)
    assert stored is not None
    store.bucket.delete(key)
    store.bucket.put(key, stored.data.replace(b"Summarize", b"Summarise"))  # bit rot
    store.bucket.delete(store.labels.event_key("p", 1))  # a lost history object
    report = store.verify()
    codes = sorted(p.code for p in report.problems)
    assert codes == ["PS-CHECKSUM-001", "S3-EVENT-MISSING"]
    with pytest.raises(OptimizerError) as caught:
        store.get_version("p", "1.1.0")
    assert caught.value.error_code == "PS-CHECKSUM-001"
    actions = store.repair().actions
    assert [a.code for a in actions] == ["PS-CHECKSUM-001", "LABEL-DANGLING"]
    assert store.list_version_numbers("p") == ["1.0.0"]
    assert store.list_labels("p") == {}
    quarantined = list(store.bucket.keys(f"{store.root}.quarantine/"))
    assert len(quarantined) == 1 and quarantined[0].startswith(f"{store.root}.quarantine/p/1.1.0-")
    assert [p.code for p in store.verify().problems] == ["S3-EVENT-MISSING"]  # reported, not faked


def test_an_emptied_prompt_is_not_listed(store: S3Storage) -> None:
    store.save_version(make_version("gone", "1.0.0"))
    store.save_version(make_version("kept", "1.0.0"))
    store.delete_version("gone", "1.0.0")
    assert store.list_prompts() == ["kept"]
    assert store.get_storage_stats()["total_prompts"] == 1


def test_a_damaged_label_object_is_a_coded_error(store: S3Storage) -> None:
    store.save_version(make_version("p", "1.0.0"))
    store.bucket.put(store.labels.state_key("p"), b"{not json")
    with pytest.raises(OptimizerError) as caught:
        store.list_labels("p")
    assert caught.value.error_code == "STORE-CORRUPT-001"
    assert LabelState.decode(LabelState().encode(), "x") == LabelState()


# -- throttling and 5xx, through a proxy that answers some requests with errors ----------


class _FaultyProxy(ThreadingHTTPServer):
    """Forwards to the real endpoint, answering the first ``failures`` tries of every
    distinct request (method + path) with ``status`` instead."""

    daemon_threads = True

    def __init__(self, upstream: str, failures: int, status: int) -> None:
        super().__init__(("127.0.0.1", 0), _ProxyHandler)
        self.upstream = urlsplit(upstream)
        self.failures = failures
        self.status = status
        self.seen: dict[str, int] = {}
        self.injected = 0
        self.lock = threading.Lock()


class _ProxyHandler(BaseHTTPRequestHandler):
    server: _FaultyProxy

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _handle(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        what = f"{self.command} {self.path}"
        with self.server.lock:
            tries = self.server.seen.get(what, 0)
            self.server.seen[what] = tries + 1
            fail = tries < self.server.failures
            self.server.injected += fail
        if fail:
            code = "SlowDown" if self.server.status == 503 else "InternalError"
            payload = f"<Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
            self.send_response(self.server.status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            return
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname or "127.0.0.1", up.port, timeout=30)
        headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
        conn.request(self.command, self.path, body=body or None, headers=headers)
        response = conn.getresponse()
        data = response.read()
        self.send_response(response.status)
        for name, value in response.getheaders():
            if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle


@pytest.mark.parametrize("status", [503, 500])
def test_throttling_and_server_errors_are_retried(
    store: S3Storage, s3_url: str, status: int
) -> None:
    endpoint = _options(s3_url).get("endpoint_url")
    if endpoint is None:
        pytest.fail("this test needs an endpoint_url to put a proxy in front of")
    proxy = _FaultyProxy(endpoint, failures=2, status=status)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        via = f"http://127.0.0.1:{proxy.server_address[1]}"
        with S3Storage(store.bucket.name, store.prefix, endpoint_url=via, max_attempts=4) as s:
            s.save_version(make_version("p", "1.0.0"))
            assert s.get_version("p", "1.0.0") == make_version("p", "1.0.0")
        assert proxy.injected >= 4  # two failures before each of the requests above
        proxy.failures = 1000  # failing for good: a coded error after a bounded number of tries
        before = proxy.injected
        with pytest.raises(OptimizerError) as caught:
            S3Storage(store.bucket.name, store.prefix, endpoint_url=via, max_attempts=2)
        assert 2 <= proxy.injected - before <= 4
        assert caught.value.error_code == "S3-001"
        assert caught.value.context["status"] == status
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_a_document_written_back_never_revives_an_old_etag(store: S3Storage) -> None:
    first = store.put_document("keys", "k1", {"scope": "read"})
    key = f"{store.root}.documents/keys/k1.json"
    stale = store.bucket.get(key)
    assert stale is not None
    store.put_document("keys", "k1", {"scope": "write"}, expected_revision=first.revision)
    store.put_document("keys", "k1", {"scope": "read"}, expected_revision=2)  # A -> B -> A
    with pytest.raises(PreconditionFailed):
        store.bucket.put(key, b"{}", if_match=stale.etag)
    assert store.get_document("keys", "k1") == type(first)("k1", {"scope": "read"}, 3)
    store.save_version(make_version("p", "1.0.0"))
    store.clear_all()  # documents are not versions: they stay
    assert store.list_documents("keys")[0].revision == 3 and store.list_prompts() == []
