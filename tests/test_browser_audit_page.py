"""In Debian's chromium: an auditor filters the audit trail by an action that exists, picks a
page size, reads an entry's details as lines and opens its JSON (issue 15, item 8)."""

from __future__ import annotations

import pytest
from conftest import PASSWORD

from webapp.db import session_scope
from webapp.trail import audit

pytestmark = pytest.mark.browser


def test_an_auditor_filters_pages_and_reads_the_trail(app, live_server, browser_page, make_user):
    page = browser_page
    auditor = make_user("auditor", email="cy.auditor@example.org")
    with app.app_context(), session_scope(write=True) as session:
        for number in range(30):
            audit.record(
                session,
                actor="robot@example.org",
                action="test.nested",
                target_type="batch",
                target_id=number,
                details={"after": {"max_items": number, "on": True}, "changed": ["max_items"]},
            )
        session.commit()

    page.goto(live_server + "/login")
    page.get_by_label("E-mail address").fill(auditor)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.goto(live_server + "/audit")

    # The action filter offers the actions that exist; no one has to know their names.
    page.get_by_label("Action").select_option("test.nested")
    page.get_by_label("Per page").select_option("100")
    page.get_by_role("button", name="Filter").click()
    rows = page.locator(".audit-table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 30 and page.get_by_role("link", name="Older »").count() == 0
    assert "action=test.nested" in page.url and "per_page=100" in page.url

    # Details read as lines; the JSON is one click away.
    newest = rows.first
    assert "after.max_items: 29" in newest.inner_text()
    assert "after.on: yes" in newest.inner_text()
    json_block = newest.locator("pre.json")
    assert not json_block.is_visible()
    newest.locator("summary").click()
    assert '"max_items": 29' in json_block.inner_text()

    # A smaller page size pages through the rest.
    page.get_by_label("Per page").select_option("25")
    page.get_by_role("button", name="Filter").click()
    page.get_by_role("link", name="Older »").click()
    page.locator(".audit-table tbody tr").first.wait_for()
    assert page.locator(".audit-table tbody tr").count() == 5
