"""In Debian's chromium: an auditor checks a list of people, one person, and a batch's row, and
no identifier ever reaches the address bar (so neither history nor a proxy's log)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from batch_fixtures import *  # noqa: F401,F403
from conftest import sign_in_page

pytestmark = pytest.mark.browser

SECRETS = ("ada@example.com", "bob@example.org", "nobody@example.net")


def _no_identifier_in_urls(page) -> None:
    """Not in the address bar, not in any link or form target of the page."""
    urls = [page.url] + page.eval_on_selector_all(
        "a[href], form[action]", "els => els.map(e => e.href || e.action)"
    )
    for secret in SECRETS:
        for spelling in (secret, secret.replace("@", "%40")):
            assert [url for url in urls if spelling in url] == [], spelling


def test_bulk_lookup_keeps_identifiers_out_of_urls(
    live_server, browser_page, artifacts_dir, make_user, upload, complete_batch
):
    page = browser_page
    officer = make_user("officer")
    done = upload(officer, "identity\nada@example.com\n")
    complete_batch(done)
    waiting = upload(officer, "identity\nbob@example.org\n")
    seen = []
    page.on("request", lambda request: seen.append(request.url))

    sign_in_page(page, live_server, make_user("auditor", email="ida.auditor@example.org"))
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Lookup").click()
    page.get_by_role("link", name="Look up a list").click()
    page.get_by_label("Paste a list").fill(
        "ada@example.com\nbob@example.org\nnobody@example.net\n" + "x" * 300
    )
    page.get_by_role("button", name="Look up", exact=True).click()
    summary = page.get_by_test_id("bulk-summary").inner_text()
    assert "1 deleted, 1 awaiting approval, 1 never requested, 1 malformed" in summary
    answers = page.get_by_test_id("bulk-answers").inner_text()
    assert f"#{done}" in answers and f"#{waiting}" in answers
    _no_identifier_in_urls(page)
    page.screenshot(path=artifacts_dir / "search-1-bulk.png", full_page=True)

    # The CSV of the answer: a POST from the page, downloaded, its URL clean too.
    with page.expect_download() as started:
        page.get_by_role("button", name="Download this answer (CSV)").click()
    download = started.value
    assert all(secret not in download.url for secret in SECRETS)
    rows = list(csv.reader(io.StringIO(Path(download.path()).read_text())))
    assert [row[3] for row in rows[1:]] == [
        "deleted",
        "awaiting_approval",
        "never_requested",
        "malformed",
    ]

    # One person, then a row of the batch: the same rule.
    page.get_by_role("link", name="Lookup").first.click()
    page.get_by_label("Identifier").fill("ada@example.com")
    page.get_by_role("button", name="Look up").click()
    assert "Deleted." in page.get_by_test_id("lookup-verdict").inner_text()
    _no_identifier_in_urls(page)
    page.goto(f"{live_server}/batches/{done}")
    page.get_by_label("Find an identifier or row number").fill("ada@example.com")
    page.get_by_role("button", name="Find").click()
    assert "ada@example.com" in page.get_by_test_id("subjects").inner_text()
    _no_identifier_in_urls(page)
    page.screenshot(path=artifacts_dir / "search-2-find.png", full_page=True)

    # Nothing the browser asked for carried an identifier: history holds none.
    for secret in SECRETS:
        assert [url for url in seen if secret in url or secret.replace("@", "%40") in url] == []
