"""The web page's fixtures: a seeded store, a real uvicorn serving the page, real Chromium."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from promptshelf import FileSystemStorage, Prompt, VersionManager, VersionStorage
from promptshelf.models import ChatMessage
from promptshelf.server import create_app
from promptshelf.server.auth import create_key

from helpers import make_analysis, make_prompt, make_result

#: Texts a browser must show as text, never run.
XSS_TEXT = "Reply kindly. <script>alert('prompt')</script><img src=x onerror=\"alert('img')\">"
XSS_REASON = "<script>alert('reason')</script><b>bold?</b>"


#: Two versions of a chat prompt: a system message edited, an assistant message added.
CHAT_VERSIONS = [
    (
        [
            ("system", "You are a support agent for {{product}}."),
            ("user", "Question: {{question}}"),
        ],
        {"model": "gpt-4o", "temperature": 0.2},
        "first chat version",
    ),
    (
        [
            (
                "system",
                "You are a patient support agent for {{product}}. <script>x()</script>",
            ),
            ("user", "Question: {{question}}"),
            ("assistant", "Understood."),
        ],
        {"model": "gpt-4o", "temperature": 0.7},
        "<b>warmer</b> tone",
    ),
]


@dataclass
class Site:
    url: str
    storage: VersionStorage
    keys: dict[str, str] = field(default_factory=dict)  # scope -> token


def add_keys(storage: VersionStorage) -> dict[str, str]:
    """One real API key per scope, made as ``promptshelf keys create`` makes them."""
    names = {"admin": "alice-admin", "write": "bob-writer", "read": "carol-reader"}
    return {scope: create_key(storage, name, [scope])[1] for scope, name in names.items()}


def seed(storage: VersionStorage) -> None:
    """Two prompts with history and labels, one hostile prompt, one version in the trash."""
    manager = VersionManager(storage)
    texts = [
        "Summarize the ticket {{ticket}} in three sentences.",
        "Summarize the support ticket {{ticket}} in three short sentences for an engineer.",
        "Summarize the support ticket {{ticket}} in two short sentences for an on-call engineer.",
    ]
    for i, (text, score) in enumerate(zip(texts, [41.0, 67.5, 82.0], strict=True)):
        result = make_result("summarize_ticket", text) if i else None
        manager.create_version(
            make_prompt("summarize_ticket", text), make_analysis("summarize_ticket", score), result
        )
    storage.set_label("summarize_ticket", "production", "1.0.0", actor="seed", reason="first")
    storage.set_label("summarize_ticket", "staging", "1.1.0", actor="seed", reason="try it")
    manager.create_version(make_prompt("xss_prompt", XSS_TEXT), make_analysis("xss_prompt", 50))
    manager.create_version(make_prompt("xss_prompt", XSS_TEXT + " v2"), make_analysis("xss_prompt"))
    storage.set_label("xss_prompt", "staging", "1.0.0", actor="<i>mallory</i>", reason=XSS_REASON)
    for messages, config, why in CHAT_VERSIONS:
        chat = Prompt(
            id="support_chat",
            workflow_id="wf_chat",
            node_id="llm_1",
            node_type="llm",
            messages=[ChatMessage(role=role, text=text) for role, text in messages],
        )
        manager.create_version(
            chat, make_analysis("support_chat"), config=config, commit_message=why
        )
    manager.create_version(make_prompt("old_prompt", "Gone soon."), make_analysis("old_prompt"))
    manager.create_version(make_prompt("old_prompt", "Gone now."), make_analysis("old_prompt"))
    storage.delete_version("old_prompt", "1.0.1")


@dataclass
class Running:
    server: uvicorn.Server
    thread: threading.Thread
    url: str


def start(app: Any) -> Running:
    """uvicorn on 127.0.0.1, a free port, in a thread; returns once it accepts connections."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    return Running(server, thread, f"http://127.0.0.1:{port}")


def stop(running: Running) -> None:
    running.server.should_exit = True
    running.thread.join(timeout=30)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Site]:
    """The server's app on a seeded file store with keys (admin, write, read); page at /ui."""
    storage = FileSystemStorage(tmp_path / "store")
    seed(storage)
    keys = add_keys(storage)
    running = start(create_app(storage, key_cache_seconds=0))
    yield Site(running.url + "/ui", storage, keys)
    stop(running)
    storage.close()


@pytest.fixture
def open_site(tmp_path: Path) -> Iterator[Site]:
    """The same store with no key at all: a loopback browser acts as ``local``."""
    storage = FileSystemStorage(tmp_path / "store")
    seed(storage)
    running = start(create_app(storage))
    yield Site(running.url + "/ui", storage)
    stop(running)
    storage.close()


# -- the browser ----------------------------------------------------------------------

CHROMIUM = os.environ.get("PROMPTSHELF_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium fonts-liberation"
ARTIFACTS = Path(
    os.environ.get("PROMPTSHELF_ARTIFACTS", Path(__file__).resolve().parents[1] / "artifacts")
)


def _chromium_path() -> str | None:
    """$PROMPTSHELF_CHROMIUM when set (and only it), else Debian's, else one on PATH."""
    if os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    return None if "PROMPTSHELF_CHROMIUM" in os.environ else shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Debian's Chromium under Playwright; skipped when missing, except with CI=true.

    One per module, not per session: Playwright's sync API keeps an event loop running in
    the main thread while it is open, and a later test's ``asyncio.run`` in that process
    then fails ("cannot be called from a running event loop"); with pytest-xdist any test
    may come after the browser tests in one worker."""
    path = _chromium_path()
    if path is None:
        where = CHROMIUM if "PROMPTSHELF_CHROMIUM" in os.environ else f"{CHROMIUM} or on PATH"
        message = f"no chromium at {where}; install it with: {INSTALL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=path,
            args=["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
            timeout=120_000,
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A fresh browser context (no cookies) per test; every dialog is recorded, then dismissed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(60_000)
    tab = context.new_page()
    tab.dialogs = []

    def on_dialog(dialog: Any) -> None:
        tab.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    yield tab
    context.close()


def shot(page: Any, name: str) -> Path:
    """Save a full-page screenshot under tests/artifacts/web/ (ignored by git)."""
    target = ARTIFACTS / "web" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    return target
