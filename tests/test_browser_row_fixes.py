"""In Debian's chromium (issue 15): officer A fixes two rows in the preview without starting
over; officer B compares the counts and the manifest SHA-256 on the confirmation and approves."""

from __future__ import annotations

import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import sign_in_page

pytestmark = pytest.mark.browser

CSV = (
    "identity,received_on,reference\r\n"
    "ada@example.com,31/01/2025,TICKET-1\r\n"
    "bob@example.org,,TICKET-2\r\n"
    "null,,TICKET-3\r\n"
    "dan@example.net,,TICKET-4\r\n"
)


def test_fix_rows_in_the_preview_then_confirm_and_approve(
    app, live_server, browser_page, artifacts_dir, make_user, make_env
):
    page = browser_page
    uploader = make_user("officer", email="ada.fixer@example.org")
    approver = make_user("officer", email="ben.checker@example.org")
    make_env("Main Production")

    # Officer A uploads: a bad date is only flagged; row 3 is malformed.
    sign_in_page(page, live_server, uploader)
    page.goto(live_server + "/batches/new")
    page.get_by_label("Heap environment").select_option(label="Main Production")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "fixes.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_role("button", name="Upload and validate").click()
    assert page.get_by_test_id("count-valid").inner_text() == "3"
    rows = page.get_by_test_id("subjects")
    assert "received_on “31/01/2025” is not a date" in rows.inner_text()
    before = page.get_by_test_id("manifest-sha256").inner_text()

    # She corrects row 3 in the problems list…
    fix = page.get_by_test_id("problems").get_by_test_id("correct-3")
    fix.get_by_text("Correct…").click()
    fix.get_by_label("Corrected value for row 3").fill("carl@example.com")
    fix.get_by_role("button", name="Correct row 3").click()
    assert "Row 3 corrected" in page.locator(".flashes").inner_text()
    # …and excludes row 4, with a reason.
    exclude = page.get_by_test_id("subjects").get_by_test_id("exclude-4")
    exclude.get_by_text("Exclude…").click()
    exclude.get_by_label("Reason for excluding row 4").fill("The person withdrew the request")
    page.screenshot(path=artifacts_dir / "row-fixes-1-exclude.png", full_page=True)
    exclude.get_by_role("button", name="Exclude row 4").click()
    assert "Row 4 excluded" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("count-valid").inner_text() == "3"
    assert page.get_by_test_id("count-excluded").inner_text() == "1"
    manifest = page.get_by_test_id("manifest-sha256").inner_text()
    assert manifest != before and len(manifest) == 64
    assert (
        "excluded in the preview: The person withdrew the request"
        in page.get_by_test_id("problems").inner_text()
    )
    page.screenshot(path=artifacts_dir / "row-fixes-2-fixed.png", full_page=True)
    batch_url = page.url.split("#")[0]
    page.get_by_role("button", name="Sign out").click()

    # Officer B opens the confirmation: counts and the same manifest SHA-256, then approves.
    sign_in_page(page, live_server, approver)
    page.goto(batch_url)
    assert page.get_by_test_id("exclude-1").count() == 0  # only the uploader fixes rows
    page.get_by_role("link", name="Approve…").click()
    confirmation = page.get_by_test_id("approval-confirmation")
    assert page.get_by_test_id("confirm-to-send").inner_text() == "3"
    assert page.get_by_test_id("confirm-malformed").inner_text() == "0"
    assert page.get_by_test_id("confirm-excluded").inner_text() == "1"
    assert page.get_by_test_id("confirm-manifest-sha256").inner_text() == manifest
    assert confirmation.get_by_label("I checked the preview").count() == 0  # only above 1,000
    page.screenshot(path=artifacts_dir / "row-fixes-3-confirmation.png", full_page=True)
    page.get_by_role("button", name="Approve and queue for submission").click()
    assert "approved" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("batch").get_attribute("data-state") == "approved"
