"""The web page over HTTP against a real uvicorn: status codes, escaping, CSRF, keys and scopes.

Fast (no browser); ``test_browser.py`` walks the same pages in Chromium.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest

from promptshelf import VersionManager
from promptshelf.server.auth import revoke_key

from .conftest import XSS_REASON, XSS_TEXT, Site
from helpers import make_analysis, make_prompt

TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def follow(browser: httpx.Client, answer: httpx.Response) -> httpx.Response:
    """GET where a redirect points (its location is a path from the server's root)."""
    root = str(browser.base_url).split("/ui")[0]
    return browser.get(root + answer.headers["location"])


def token_of(html: str) -> str:
    found = TOKEN.search(html)
    assert found, "the page has no CSRF token"
    return found.group(1)


def client(site: Site) -> httpx.Client:
    return httpx.Client(base_url=site.url, timeout=60, follow_redirects=False)


def sign_in(browser: httpx.Client, key: str) -> None:
    token = token_of(browser.get("/signin").text)
    answer = browser.post("/signin", data={"api_key": key, "csrf_token": token})
    assert answer.status_code == 303, answer.text


def signed_in(site: Site, key: str) -> httpx.Client:
    browser = client(site)
    sign_in(browser, key)
    return browser


@pytest.fixture
def admin(site: Site) -> Iterator[httpx.Client]:
    browser = signed_in(site, site.keys["admin"])
    yield browser
    browser.close()


def confirm(browser: httpx.Client, path: str, **fields: str) -> httpx.Response:
    """Open a confirmation page and post its form, as a person clicking "Yes" would."""
    page = browser.get(path, params=fields)
    assert page.status_code == 200, page.text
    expected = re.search(r'name="expected" value="([^"]*)"', page.text)
    assert expected is not None, page.text
    form = {"csrf_token": token_of(page.text), "expected": expected.group(1), **fields}
    return browser.post(path.split("?")[0], data={**form, "reason": "ship it"})


def test_reading_needs_a_key_once_keys_exist(site: Site) -> None:
    with client(site) as anonymous:
        answer = anonymous.get("/")
        assert answer.status_code == 303
        assert answer.headers["location"].endswith("/ui/signin")
        assert anonymous.get("/prompts/summarize_ticket").status_code == 303
        assert anonymous.get("/signin").status_code == 200
        assert anonymous.get("/static/style.css").status_code == 200


def test_an_unknown_key_is_refused_at_sign_in(site: Site) -> None:
    with client(site) as anonymous:
        token = token_of(anonymous.get("/signin").text)
        answer = anonymous.post("/signin", data={"api_key": "nope", "csrf_token": token})
        assert answer.status_code == 401
        assert "unknown or revoked" in answer.text
        assert "promptshelf_key" not in answer.headers.get("set-cookie", "")
    with client(site) as anonymous:  # a key revoked after sign-in stops working
        sign_in(anonymous, site.keys["read"])
        assert anonymous.get("/").status_code == 200
        revoke_key(site.storage, site.keys["read"])
        assert anonymous.get("/").status_code == 303
        assert "promptshelf_key" not in answer.headers.get("set-cookie", "")


def test_list_shows_each_prompt_with_latest_version_and_labels(admin: httpx.Client) -> None:
    page = admin.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    for prompt_id in ("summarize_ticket", "xss_prompt", "old_prompt"):
        assert f'href="/ui/prompts/{prompt_id}"' in page.text
    assert "production → 1.0.0" in page.text
    assert "staging → 1.1.0" in page.text


def test_list_search_and_label_filter(admin: httpx.Client) -> None:
    found = admin.get("/", params={"q": "SUMMAR"}).text
    assert "summarize_ticket" in found and "xss_prompt" not in found
    labelled = admin.get("/", params={"label": "staging"}).text
    assert "summarize_ticket" in labelled and "xss_prompt" in labelled
    assert "old_prompt" not in labelled
    assert admin.get("/", params={"label": "../x"}).status_code == 400


def test_prompt_page_shows_versions_scores_chart_labels_history(admin: httpx.Client) -> None:
    page = admin.get("/prompts/summarize_ticket")
    assert page.status_code == 200
    html = page.text
    for version, score in (("1.0.0", "41"), ("1.1.0", "67.5"), ("1.2.0", "82")):
        assert f'data-version="{version}"' in html
        assert f"<title>{version}: {score}</title>" in html
    assert html.count("<circle") == 3 and "<polyline" in html
    assert 'class="badge">best' in html
    assert "try it" in html and "seed" in html  # label history: why and who


def test_missing_prompt_and_hostile_ids(admin: httpx.Client) -> None:
    missing = admin.get("/prompts/nope")
    assert missing.status_code == 404 and "VERSION-NOT-FOUND" in missing.text
    assert admin.get("/prompts/%2e%2e").status_code == 400
    assert admin.get("/prompts/..%2F..%2Fetc").status_code == 400  # refused, never resolved
    bad_version = admin.get("/prompts/summarize_ticket/compare", params={"a": "../1"})
    assert bad_version.status_code == 400


def test_compare_marks_removed_and_added_words(admin: httpx.Client) -> None:
    page = admin.get("/prompts/summarize_ticket/compare", params={"a": "1.0.0", "b": "1.2.0"})
    assert page.status_code == 200
    assert "Summarize the <ins>support </ins>ticket" in page.text
    assert "<del>three</del>" in page.text and "<ins>two short</ins>" in page.text
    assert "+41" in page.text  # the overall score delta


def test_store_text_is_escaped_everywhere(admin: httpx.Client) -> None:
    pages = [
        admin.get("/prompts/xss_prompt").text,
        admin.get("/prompts/xss_prompt/compare").text,
        admin.get("/prompts/xss_prompt/render", params={"version": "1.0.0"}).text,
    ]
    for html in pages:
        assert "<script>alert" not in html and "<img src=x" not in html
        assert "&lt;script&gt;alert(" in html
    prompt_page = pages[0]
    assert "&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;&lt;b&gt;bold?" in prompt_page
    assert "&lt;i&gt;mallory&lt;/i&gt;" in prompt_page
    assert XSS_TEXT not in prompt_page and XSS_REASON not in prompt_page


def test_pages_send_a_strict_content_security_policy(admin: httpx.Client) -> None:
    headers = admin.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-frame-options"] == "DENY"


def test_a_post_without_the_csrf_token_is_refused(admin: httpx.Client, site: Site) -> None:
    form = {"version": "1.2.0", "label": "staging", "expected": "1.1.0"}
    missing = admin.post("/prompts/summarize_ticket/promote", data=form)
    assert missing.status_code == 403 and "CSRF-FAILED" in missing.text
    forged = admin.post("/prompts/summarize_ticket/promote", data={**form, "csrf_token": "x" * 43})
    assert forged.status_code == 403
    token = token_of(admin.get("/").text)
    elsewhere = admin.post(
        "/prompts/summarize_ticket/promote",
        data={**form, "csrf_token": token},
        headers={"Origin": "http://evil.example"},
    )
    assert elsewhere.status_code == 403
    assert site.storage.get_label("summarize_ticket", "staging") == "1.1.0"


def test_promote_after_confirmation_records_who_and_why(admin: httpx.Client, site: Site) -> None:
    page = admin.get(
        "/prompts/summarize_ticket/promote", params={"version": "1.2.0", "label": "production"}
    )
    assert "from <strong>1.0.0</strong> to <strong>1.2.0</strong>" in page.text
    # the confirmation page changes nothing
    assert site.storage.get_label("summarize_ticket", "production") == "1.0.0"
    done = confirm(admin, "/prompts/summarize_ticket/promote", version="1.2.0", label="production")
    assert done.status_code == 303
    assert site.storage.get_label("summarize_ticket", "production") == "1.2.0"
    event = site.storage.label_history("summarize_ticket", "production")[-1]
    assert (event.reason, event.from_version) == ("ship it", "1.0.0")
    assert event.actor is not None and event.actor.startswith("alice-admin (")
    after = follow(admin, done).text
    assert "now points at 1.2.0" in after


def test_a_stale_confirmation_is_refused(admin: httpx.Client, site: Site) -> None:
    page = admin.get("/prompts/summarize_ticket/promote", params={"version": "1.2.0"})
    site.storage.set_label("summarize_ticket", "production", "1.1.0", actor="someone else")
    answer = admin.post(
        "/prompts/summarize_ticket/promote",
        data={
            "version": "1.2.0",
            "label": "production",
            "expected": "1.0.0",
            "csrf_token": token_of(page.text),
        },
    )
    assert answer.status_code == 412 and "LABEL-MOVED" in answer.text
    assert site.storage.get_label("summarize_ticket", "production") == "1.1.0"


def test_rollback_label_returns_it_to_its_previous_version(admin: httpx.Client, site: Site) -> None:
    site.storage.set_label("summarize_ticket", "staging", "1.2.0", actor="seed")
    page = admin.get("/prompts/summarize_ticket/labels/staging/rollback")
    assert "from <strong>1.2.0</strong> to <strong>1.1.0</strong>" in page.text
    done = confirm(admin, "/prompts/summarize_ticket/labels/staging/rollback")
    assert done.status_code == 303
    assert site.storage.get_label("summarize_ticket", "staging") == "1.1.0"
    never_moved = admin.get("/prompts/xss_prompt/labels/staging/rollback")
    assert never_moved.status_code == 409 and "no earlier version" in never_moved.text


def test_scopes_are_enforced_for_writes(site: Site) -> None:
    with client(site) as reader:
        sign_in(reader, site.keys["read"])
        assert reader.get("/prompts/summarize_ticket").status_code == 200
        page = reader.get("/prompts/summarize_ticket/promote", params={"label": "staging"})
        assert page.status_code == 403 and "AUTH-SCOPE" in page.text
    with client(site) as writer:
        sign_in(writer, site.keys["write"])
        moved = confirm(
            writer, "/prompts/summarize_ticket/promote", version="1.2.0", label="staging"
        )
        assert moved.status_code == 303
        page = writer.get("/prompts/summarize_ticket/promote", params={"label": "production"})
        assert page.status_code == 403 and "LABEL-PROTECTED" in page.text
        token = token_of(page.text)
        forced = writer.post(
            "/prompts/summarize_ticket/promote",
            data={
                "version": "1.2.0",
                "label": "production",
                "expected": "1.0.0",
                "csrf_token": token,
            },
        )
        assert forced.status_code == 403
    assert site.storage.get_label("summarize_ticket", "staging") == "1.2.0"
    assert site.storage.get_label("summarize_ticket", "production") == "1.0.0"


def test_render_shows_missing_variables_inline(admin: httpx.Client) -> None:
    page = admin.get("/prompts/summarize_ticket/render", params={"version": "1.0.0"})
    token = token_of(page.text)
    missing = admin.post(
        "/prompts/summarize_ticket/render", data={"version": "1.0.0", "csrf_token": token}
    )
    assert missing.status_code == 422
    assert "RENDER-MISSING" in missing.text and "no value for ticket" in missing.text
    done = admin.post(
        "/prompts/summarize_ticket/render",
        data={"version": "1.0.0", "csrf_token": token, "var.ticket": "<b>#42</b>"},
    )
    assert done.status_code == 200
    assert "Summarize the ticket &lt;b&gt;#42&lt;/b&gt; in three sentences." in done.text


def test_trash_lists_deleted_versions_and_restores_them(admin: httpx.Client, site: Site) -> None:
    page = admin.get("/trash")
    assert page.status_code == 200 and "old_prompt" in page.text and "1.0.1" in page.text
    done = admin.post(
        "/trash/restore",
        data={"prompt_id": "old_prompt", "version": "1.0.1", "csrf_token": token_of(page.text)},
    )
    assert done.status_code == 303
    assert site.storage.get_version("old_prompt", "1.0.1") is not None
    assert "Restored old_prompt 1.0.1" in follow(admin, done).text
    again = admin.post(
        "/trash/restore",
        data={"prompt_id": "old_prompt", "version": "1.0.1", "csrf_token": token_of(page.text)},
    )
    assert again.status_code == 404 and "not in the trash" in again.text


def test_sign_out_forgets_the_key(admin: httpx.Client) -> None:
    token = token_of(admin.get("/").text)
    out = admin.post("/signout", data={"csrf_token": token})
    assert out.status_code == 303
    assert admin.get("/").status_code == 303


def test_oversized_and_malformed_forms(admin: httpx.Client) -> None:
    token = token_of(admin.get("/").text)
    huge = admin.post("/trash/restore", data={"csrf_token": token, "x": "a" * 300_000})
    assert huge.status_code == 413
    broken = admin.post(
        "/trash/restore",
        content=b"csrf_token=\xff\xfe",
        headers={"content-type": "application/x-www-form-urlencoded"},
    )
    assert broken.status_code == 400


def test_without_keys_a_local_user_acts_without_signing_in(open_site: Site) -> None:
    with client(open_site) as local:
        assert local.get("/").status_code == 200
        moved = confirm(
            local, "/prompts/summarize_ticket/promote", version="1.2.0", label="production"
        )
        assert moved.status_code == 303
    event = open_site.storage.label_history("summarize_ticket", "production")[-1]
    assert event.actor == "local" and event.to_version == "1.2.0"


def test_the_server_root_leads_to_the_page(site: Site) -> None:
    root = site.url.removesuffix("/ui")
    with httpx.Client(timeout=60) as plain:
        answer = plain.get(root + "/")
        assert answer.status_code == 307 and answer.headers["location"] == "/ui/"
        assert plain.get(root + "/ui/static/app.js").status_code == 200
        assert plain.get(root + "/healthz").status_code == 200  # the API's routes stay its own


def test_the_list_pages_through_many_prompts(admin: httpx.Client, site: Site) -> None:
    manager = VersionManager(site.storage)
    for n in range(60):
        manager.create_version(make_prompt(f"bulk_{n:03d}"), make_analysis(f"bulk_{n:03d}"))
    first = admin.get("/", params={"q": "bulk_"}).text
    assert "60 prompts match" in first and "bulk_049" in first and "bulk_050" not in first
    second = admin.get("/", params={"q": "bulk_", "page": "2"}).text
    assert "bulk_050" in second and "bulk_059" in second and "bulk_049" not in second


def test_ids_with_spaces_ampersands_and_accents_link_correctly(
    admin: httpx.Client, site: Site
) -> None:
    odd = "café & co's prompt"
    VersionManager(site.storage).create_version(make_prompt(odd), make_analysis(odd))
    listing = admin.get("/", params={"q": "café"}).text
    href = "/ui/prompts/caf%C3%A9%20%26%20co%27s%20prompt"
    assert f'href="{href}"' in listing
    assert "café &amp; co&#39;s prompt" in listing
    page = admin.get(href.removeprefix("/ui"))
    assert page.status_code == 200 and "café &amp; co&#39;s prompt" in page.text


def test_chat_prompts_message_by_message(admin: httpx.Client) -> None:
    page = admin.get("/prompts/support_chat").text
    assert "chat, 3 messages" in page and "chat, 2 messages" in page
    assert '<span class="role">assistant</span><pre class="text">Understood.</pre>' in page
    assert "&lt;b&gt;warmer&lt;/b&gt; tone" in page  # the commit message, escaped
    compared = admin.get("/prompts/support_chat/compare", params={"a": "1.0.0", "b": "1.0.1"})
    html = compared.text
    assert compared.status_code == 200 and 'data-testid="messages"' in html
    ops = re.findall(r'<span class="badge op">(\w+)</span>', html)
    assert ops == ["changed", "equal", "added"]
    assert "You are a <ins>patient </ins>support agent" in html
    assert "<ins>Understood.</ins>" in html
    assert "<code>temperature</code></td><td>0.2</td><td>0.7</td>" in html
    assert "<script>x()" not in html and "&lt;script&gt;x()" in html


def test_chat_render_gives_messages(admin: httpx.Client) -> None:
    page = admin.get("/prompts/support_chat/render", params={"version": "1.0.1"})
    token = token_of(page.text)
    missing = admin.post(
        "/prompts/support_chat/render",
        data={"version": "1.0.1", "csrf_token": token, "var.product": "Acme"},
    )
    assert missing.status_code == 422 and "no value for question" in missing.text
    done = admin.post(
        "/prompts/support_chat/render",
        data={
            "version": "1.0.1",
            "csrf_token": token,
            "var.product": "Acme",
            "var.question": "Where is my order?",
        },
    )
    assert done.status_code == 200 and "Result: 3 messages" in done.text
    assert '<span class="role">user</span><pre class="text">Question: Where is my order?</pre>' in (
        done.text
    )


def test_a_confirmation_is_refused_once_the_label_moved_even_back(
    admin: httpx.Client, site: Site
) -> None:
    """The confirmation carries the label's state (its last event), and the move is a
    compare-and-swap on it: a label moved away and back since the page was shown (same
    version, another event) is refused too, and nothing changes."""
    page = admin.get("/prompts/summarize_ticket/promote", params={"version": "1.2.0"})
    shown = re.search(r'name="expected_seq" value="(\d+)"', page.text)
    assert shown is not None
    before = site.storage.get_label("summarize_ticket", "production")
    assert before is not None and before != "1.2.0"
    site.storage.set_label(
        "summarize_ticket", "production", "1.1.0" if before != "1.1.0" else "1.0.0"
    )
    site.storage.set_label("summarize_ticket", "production", before)  # back where it was
    events = len(site.storage.label_history("summarize_ticket"))
    answer = admin.post(
        "/prompts/summarize_ticket/promote",
        data={
            "version": "1.2.0",
            "label": "production",
            "expected": before,
            "expected_seq": shown[1],
            "csrf_token": token_of(page.text),
        },
    )
    assert answer.status_code == 412 and "LABEL-MOVED" in answer.text
    assert site.storage.get_label("summarize_ticket", "production") == before
    assert len(site.storage.label_history("summarize_ticket")) == events
    fresh = admin.get("/prompts/summarize_ticket/promote", params={"version": "1.2.0"})
    done = admin.post(
        "/prompts/summarize_ticket/promote",
        data={
            "version": "1.2.0",
            "label": "production",
            "expected": before,
            "expected_seq": re.search(r'name="expected_seq" value="(\d+)"', fresh.text)[1],  # type: ignore[index]
            "csrf_token": token_of(fresh.text),
        },
    )
    assert (
        done.status_code == 303
        and site.storage.get_label("summarize_ticket", "production") == "1.2.0"
    )
