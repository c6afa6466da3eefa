"""In Debian's chromium: an approver learns of a waiting batch without opening the dashboard.

Officer A uploads; officer B, in a browser context of its own (a phone-sized one), sees the
header's unread count rise on the page she has open, reads the notification and approves; once
Heap completes, A's header tells her too.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import CHROMIUM, CHROMIUM_ARGS, sign_in_page

from webapp.models import utcnow

pytestmark = pytest.mark.browser

CSV = "identity\r\nada.lovelace@example.com\r\ngrace.hopper@example.org\r\n"


@pytest.fixture
def browser():
    """Debian's chromium (never `playwright install`), for several contexts."""
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: `make test` installs it")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser, width: int, height: int):
    page = browser.new_context(viewport={"width": width, "height": height}).new_page()
    page.set_default_timeout(15_000)
    return page


def _wait_for_label(page, label: str) -> None:
    page.locator(f'[data-testid="notifications-link"][aria-label="{label}"]').wait_for(
        timeout=10_000
    )


def test_the_approver_is_told_without_the_dashboard_and_the_uploader_of_completion(
    app, live_server, browser, artifacts_dir, sandbox, make_user, make_env
):
    from webapp.erasure.polling import poll_due
    from webapp.erasure.submission import submit_due

    app.config["DESK_NOTIFICATION_POLL_SECONDS"] = 1  # the header asks every second here
    uploader = make_user("officer", email="ada.officer@example.org")
    approver = make_user("officer", email="ben.officer@example.org")
    make_env(
        "Main Production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )
    a = _page(browser, 1280, 860)
    b = _page(browser, 390, 844)

    # B is signed in and reading something else: the lookup page.
    sign_in_page(b, live_server, approver)
    b.goto(live_server + "/subjects/lookup")
    _wait_for_label(b, "Notifications, 0 unread")
    assert b.get_by_test_id("unread-count").is_hidden()

    # A uploads a list.
    sign_in_page(a, live_server, uploader)
    a.goto(live_server + "/batches/new")
    a.get_by_label("Heap environment").select_option(label="Main Production")
    a.get_by_label("CSV file").set_input_files(
        files=[{"name": "erasures.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    a.get_by_role("button", name="Upload and validate").click()
    assert a.get_by_test_id("batch").get_attribute("data-state") == "awaiting_approval"
    batch_path = a.url.removeprefix(live_server)

    # B's header counts it without a reload, and says so to a screen reader.
    assert b.url.endswith("/subjects/lookup")
    _wait_for_label(b, "Notifications, 1 unread")
    assert b.get_by_test_id("unread-count").inner_text() == "1"
    assert b.locator("#notifications-status").inner_text() == "1 new notification."
    b.screenshot(path=artifacts_dir / "notifications-1-header-390.png", full_page=True)

    b.get_by_test_id("notifications-link").click()
    note = b.get_by_test_id("notification").first
    assert "awaits your approval: 2 subjects to delete in Main Production" in note.inner_text()
    assert "ada.lovelace" not in b.content()
    assert b.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    b.screenshot(path=artifacts_dir / "notifications-2-inbox-390.png", full_page=True)
    note.get_by_role("button", name="Mark read").click()
    _wait_for_label(b, "Notifications, 0 unread")
    b.get_by_role("link", name="Open batch").first.click()
    assert b.url.endswith(batch_path)
    b.get_by_role("link", name="Approve…").click()  # the confirmation repeats counts and hash
    b.get_by_role("button", name="Approve and queue for submission").click()
    assert "approved" in b.locator(".flashes").inner_text()

    # Heap completes it; A, on her batches list, is told.
    a.goto(live_server + "/batches")
    _wait_for_label(a, "Notifications, 0 unread")
    assert submit_due(app) == 1
    assert poll_due(app, now=utcnow() + timedelta(days=1)) == 1
    _wait_for_label(a, "Notifications, 1 unread")
    a.get_by_test_id("notifications-link").click()
    done = a.get_by_test_id("notification").first
    assert done.get_attribute("data-kind") == "batch_completed"
    assert "is complete: Heap deleted 2 subjects" in done.inner_text()
    a.get_by_role("button", name="Mark all read").click()
    assert "1 notification marked read." in a.locator(".flashes").inner_text()
    a.screenshot(path=artifacts_dir / "notifications-3-complete.png", full_page=True)
