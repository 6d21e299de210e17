"""The web page in a real browser: Debian's Chromium driven by Playwright against real uvicorn.

Screenshots of each step go to tests/artifacts/web/ (ignored by git). Every
wait is on a condition (a URL, a visible element), with generous timeouts.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect  # the dev extra pins it: missing is a failure

from .conftest import XSS_REASON, Site, shot

expect.set_options(timeout=60_000)


def sign_in(page: Any, site: Site, key: str) -> None:
    page.goto(site.url + "/")
    expect(page).to_have_url(re.compile(r"/ui/signin$"))
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_test_id("principal")).to_be_visible()


def test_walk_list_prompt_compare_promote_history(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["admin"])
    expect(page.get_by_test_id("prompts")).to_contain_text("summarize_ticket")
    shot(page, "1-list")

    page.get_by_role("link", name="summarize_ticket").click()
    expect(page.get_by_test_id("prompt-id")).to_have_text("summarize_ticket")
    expect(page.get_by_test_id("chart").locator("circle")).to_have_count(3)
    shot(page, "2-prompt")

    compare = page.get_by_test_id("compare-form")
    compare.locator("select[name=a]").select_option("1.0.0")
    compare.locator("select[name=b]").select_option("1.2.0")
    compare.get_by_role("button", name="Compare").click()
    expect(page).to_have_url(re.compile(r"/compare\?a=1\.0\.0&b=1\.2\.0$"))
    expect(page.get_by_test_id("left").locator("del")).to_contain_text(["three"])
    expect(page.get_by_test_id("right").locator("ins").first).to_have_text("support ")
    shot(page, "3-compare")

    page.get_by_role("link", name="summarize_ticket").click()
    promote = page.get_by_test_id("promote-form")
    promote.locator("select[name=version]").select_option("1.2.0")
    promote.locator("input[name=label]").fill("production")
    promote.get_by_role("button", name="Promote…").click()
    expect(page.get_by_test_id("confirm-text")).to_contain_text("from 1.0.0 to 1.2.0")
    page.get_by_label("Why").fill("best score so far")
    shot(page, "4-confirm")
    page.get_by_test_id("confirm").click()

    expect(page.get_by_test_id("notice")).to_contain_text("production now points at 1.2.0")
    newest = page.get_by_test_id("history").locator("tbody tr").first
    expect(newest).to_contain_text("alice-admin")
    expect(newest).to_contain_text("production")
    expect(newest.locator("td").nth(5)).to_have_text("1.0.0")
    expect(newest.locator("td").nth(6)).to_have_text("1.2.0")
    expect(newest).to_contain_text("best score so far")
    shot(page, "5-history")
    assert site.storage.get_label("summarize_ticket", "production") == "1.2.0"
    assert page.dialogs == []


def test_script_in_a_prompt_and_a_reason_shows_as_text(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["admin"])
    page.goto(site.url + "/prompts/xss_prompt")
    row = page.locator("tr[data-version='1.0.0']")
    row.locator("summary").click()
    expect(row.locator("pre.text")).to_contain_text("<script>alert('prompt')</script>")
    expect(page.get_by_test_id("history").locator("td.why")).to_have_text(XSS_REASON)
    expect(page.get_by_test_id("history")).to_contain_text("<i>mallory</i>")
    page.goto(site.url + "/prompts/xss_prompt/compare")
    expect(page.get_by_test_id("right")).to_contain_text("<img src=x")
    shot(page, "xss")
    assert page.locator("script").count() == 1  # the page's own app.js, nothing from the store
    assert page.locator("main img").count() == 0
    assert page.dialogs == []


def test_a_form_without_its_csrf_token_is_refused(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["admin"])
    page.goto(site.url + "/prompts/summarize_ticket/promote?version=1.2.0&label=staging")
    page.locator("main input[name=csrf_token]").evaluate("input => input.remove()")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("error-code")).to_have_text("CSRF-FAILED")
    shot(page, "csrf-refused")
    assert site.storage.get_label("summarize_ticket", "staging") == "1.1.0"


def test_a_protected_label_needs_an_admin_key(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["write"])
    page.goto(site.url + "/prompts/summarize_ticket/promote?version=1.2.0&label=production")
    expect(page.get_by_test_id("error-code")).to_have_text("LABEL-PROTECTED")
    expect(page.get_by_role("alert")).to_contain_text("protected")
    shot(page, "protected-write-key")
    page.goto(site.url + "/prompts/summarize_ticket/promote?version=1.2.0&label=staging")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("notice")).to_contain_text("staging now points at 1.2.0")

    page.get_by_role("button", name="Sign out").click()
    sign_in(page, site, site.keys["admin"])
    page.goto(site.url + "/prompts/summarize_ticket/promote?version=1.2.0&label=production")
    page.get_by_test_id("confirm").click()
    expect(page.get_by_test_id("notice")).to_contain_text("production now points at 1.2.0")
    shot(page, "protected-admin-key")
    history = site.storage.label_history("summarize_ticket")
    assert [(e.label, (e.actor or "").split(" (")[0]) for e in history[-2:]] == [
        ("staging", "bob-writer"),
        ("production", "alice-admin"),
    ]


def test_render_errors_inline_then_trash_restore(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["admin"])
    page.goto(site.url + "/prompts/summarize_ticket/render?version=1.0.0")
    page.get_by_role("button", name="Render").click()
    expect(page.get_by_test_id("missing")).to_have_text("no value for ticket")
    page.get_by_label("ticket").fill("#42")
    page.get_by_role("button", name="Render").click()
    expect(page.get_by_test_id("rendered")).to_have_text(
        "Summarize the ticket #42 in three sentences."
    )
    shot(page, "render")
    page.get_by_role("link", name="Trash").click()
    expect(page.get_by_test_id("trash")).to_contain_text("old_prompt")
    page.get_by_role("button", name="Restore").click()
    expect(page.get_by_test_id("notice")).to_contain_text("Restored old_prompt 1.0.1")
    shot(page, "trash-restored")
    assert site.storage.get_version("old_prompt", "1.0.1") is not None


def test_chat_prompt_compared_message_by_message(page: Any, site: Site) -> None:
    sign_in(page, site, site.keys["read"])
    page.goto(site.url + "/prompts/support_chat")
    page.get_by_test_id("compare-form").get_by_role("button", name="Compare").click()
    rows = page.get_by_test_id("messages").locator("tbody tr")
    expect(rows).to_have_count(3)
    expect(rows.nth(0).locator("ins").first).to_have_text("patient ")
    expect(rows.nth(0)).to_contain_text("<script>x()</script>")
    expect(rows.nth(2)).to_contain_text("added")
    expect(page.get_by_test_id("config")).to_contain_text("temperature")
    shot(page, "chat-compare")
    assert page.dialogs == []


def test_docs_render_offline(page: Any, open_site: Site) -> None:
    """/docs draws the API's operations with every request to another host refused."""
    origin = open_site.url.removesuffix("/ui")
    elsewhere: list[str] = []

    def only_here(route: Any) -> None:
        if route.request.url.startswith(origin + "/"):
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort()

    page.route("**/*", only_here)
    page.goto(origin + "/docs")
    page.locator(".opblock-summary-path", has_text="/api/v1/prompts/{prompt_id}").first.wait_for()
    assert page.locator(".opblock").count() > 20
    assert elsewhere == []
    shot(page, "docs-offline")
