"""In Debian's chromium: officer A uploads → preview → officer B approves → Heap completes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import sign_in_page

from webapp.models import utcnow

pytestmark = pytest.mark.browser

CSV = (
    "identity,received_on,reference\r\n"
    "ada@example.com,{today},TICKET-1\r\n"
    "Ada@Example.com,{today},TICKET-1\r\n"
    "bob@example.org,,TICKET-2\r\n"
    "bob@example.org,,TICKET-2\r\n"
    "12345,,\r\n"
    "not-a-date@example.org,31/01/2025,\r\n"
)


def test_upload_preview_approve_complete(
    app, live_server, browser_page, artifacts_dir, sandbox, make_user, make_env
):
    from webapp.erasure.polling import poll_due
    from webapp.erasure.submission import submit_due

    page = browser_page
    uploader = make_user("officer", email="ada.officer@example.org")
    approver = make_user("officer", email="ben.officer@example.org")
    make_env(
        "Main Production", base_url=sandbox.url, app_id=sandbox.app_id, api_key=sandbox.api_key
    )

    # Officer A uploads a file and sees the preview: counts, problems, SHA-256, Heap body.
    sign_in_page(page, live_server, uploader)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches").click()
    page.get_by_role("link", name="Upload a list").first.click()
    page.get_by_label("Heap environment").select_option(label="Main Production")
    today = utcnow().date().isoformat()
    page.get_by_label("CSV file").set_input_files(
        files=[
            {
                "name": "erasures.csv",
                "mimeType": "text/csv",
                "buffer": CSV.format(today=today).encode(),
            }
        ]
    )
    page.get_by_label("Reference").fill("DSR-2025-001")
    assert page.locator("form[data-busy]").count() == 1  # "Validating…" while it submits
    page.screenshot(path=artifacts_dir / "workflow-1-upload.png", full_page=True)
    page.get_by_role("button", name="Upload and validate").click()

    batch = page.get_by_test_id("batch")
    assert batch.get_attribute("data-state") == "awaiting_approval"
    assert page.get_by_test_id("count-valid").inner_text() == "5"
    assert "the same identity as row 3" in page.get_by_test_id("problems").inner_text()
    # A bad date no longer blocks the person (issue 15): flagged, the batch's date used.
    assert "received_on “31/01/2025” is not a date" in page.get_by_test_id("subjects").inner_text()
    assert '"identity": "ada@example.com"' in page.get_by_test_id("preview").inner_text()
    assert page.get_by_test_id("self-approval-note").is_visible()
    assert page.get_by_role("button", name="Approve and queue for submission").count() == 0
    sha256 = page.get_by_test_id("sha256").inner_text()
    assert len(sha256) == 64
    batch_url = page.url
    page.screenshot(path=artifacts_dir / "workflow-2-preview.png", full_page=True)
    page.get_by_role("button", name="Sign out").click()

    # Officer B finds it on the dashboard, checks the same SHA-256, and approves.
    sign_in_page(page, live_server, approver)
    assert page.get_by_test_id("awaiting-count").inner_text() == "1"
    page.screenshot(path=artifacts_dir / "workflow-3-dashboard.png", full_page=True)
    page.goto(batch_url)
    assert page.get_by_test_id("sha256").inner_text() == sha256
    page.get_by_role("link", name="Approve…").click()
    page.get_by_role("button", name="Approve and queue for submission").click()
    assert "approved" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("batch").get_attribute("data-refresh-seconds") == "10"

    # The scheduler's jobs run against the sandbox: submit, then poll once Heap is done.
    assert submit_due(app) == 1
    page.reload()
    assert page.get_by_test_id("batch").get_attribute("data-state") == "polling"
    assert "pending" in page.get_by_test_id("heap-requests").inner_text()
    page.screenshot(path=artifacts_dir / "workflow-4-polling.png", full_page=True)
    # The page updates itself in place (no reload): focus stays, the change is announced.
    search = page.get_by_label("Find an identifier or row number")
    search.focus()
    page.evaluate("window.__notReloaded = true")
    assert poll_due(app, now=utcnow() + timedelta(days=1)) == 1
    page.locator('[data-testid="batch"][data-state="complete"]').wait_for(timeout=20_000)
    assert page.evaluate("window.__notReloaded") is True
    assert page.evaluate("document.activeElement.id") == "q"
    assert "complete" in page.locator("#live-status").inner_text().lower()
    assert page.get_by_test_id("evidence").count() == 1
    page.reload()
    assert page.get_by_test_id("batch").get_attribute("data-state") == "complete"
    assert "Complete." in page.locator(".callout-ok").inner_text()
    assert "5 of 5 complete" in page.get_by_test_id("progress").inner_text()
    assert "complete" in page.get_by_test_id("heap-requests").inner_text()
    page.screenshot(path=artifacts_dir / "workflow-5-complete.png", full_page=True)

    # The list shows the progress; the subject page the deletion id and the deadline.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Batches").click()
    assert "5 of 5 complete" in page.locator("table").inner_text()
    page.screenshot(path=artifacts_dir / "workflow-6-batches.png", full_page=True)
    page.goto(batch_url)
    page.get_by_test_id("subjects").get_by_role("link", name="1", exact=True).click()
    assert page.get_by_test_id("due-on").is_visible()
    page.screenshot(path=artifacts_dir / "workflow-7-subject.png", full_page=True)

    # And anyone can now answer "was Ada deleted?" from the lookup page.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Lookup").click()
    page.get_by_label("Identifier").fill("ada@example.com")
    page.get_by_role("button", name="Look up").click()
    assert "Deleted." in page.get_by_test_id("lookup-verdict").inner_text()
    page.screenshot(path=artifacts_dir / "workflow-8-lookup.png", full_page=True)
