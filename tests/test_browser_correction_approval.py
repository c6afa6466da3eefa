"""In Debian's chromium: officer A requests a bulk correction over the environment's four-eyes
limit; nothing reaches Heap; officer B finds it on the dashboard and approves it on its page."""

from __future__ import annotations

import pytest
from conftest import sign_in_page
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import sandbox_data

from webapp import tool_policy
from webapp.db import session_scope
from webapp.models import Environment

pytestmark = pytest.mark.browser


def _sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()


def test_officer_b_approves_officer_as_bulk_correction_in_the_browser(
    app, live_server, browser_page, artifacts_dir, sandbox, heap_env, make_user
):
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, heap_env)
        changes = {"corrections_four_eyes_above": 2}
        tool_policy.update_policy(session, actor="admin@example.org", env=env, changes=changes)
    page = browser_page
    shot = lambda name: page.screenshot(  # noqa: E731
        path=artifacts_dir / f"correction-approval-{name}.png", full_page=True
    )
    author = make_user("officer", email="anna.author@example.org")
    approver = make_user("officer", email="ben.approver@example.org")

    # Officer A: a bulk paste of three rows, over the limit of two.
    sign_in_page(page, live_server, author)
    page.get_by_role("link", name="Corrections").click()
    page.get_by_role("link", name="Bulk from a file").first.click()
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    page.get_by_label("…or paste the rows").fill(
        "identity,plan\nann@example.org,gold\nbob@example.org,gold\ncy@example.org,gold\n"
    )
    page.get_by_role("button", name="Preview", exact=True).click()
    notice = page.get_by_test_id("approval-needed").inner_text()
    assert "This correction carries 3 items" in notice and "nothing reaches Heap" in notice
    shot("1-preview")
    page.get_by_role("button", name="Request approval").click()
    assert "recorded for approval" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "awaiting_approval"
    assert "cannot approve it" in page.get_by_test_id("self-approval-note").inner_text()
    assert page.get_by_role("button", name="Approve and send to Heap").count() == 0
    shot("2-awaiting-author")
    assert sandbox.state.request_paths() == []
    _sign_out(page)

    # Officer B: the dashboard lists it; the page shows the calls; approve sends them.
    sign_in_page(page, live_server, approver)
    listed = page.get_by_test_id("awaiting-corrections")
    assert author in listed.inner_text()
    shot("3-dashboard")
    listed.get_by_role("link").first.click()
    assert '"identity": "cy@example.org"' in page.get_by_test_id("sent-json").first.inner_text()
    shot("4-awaiting-approver")
    page.get_by_role("button", name="Approve and send to Heap").click()
    assert "approved and sent" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "succeeded"
    assert approver in page.get_by_test_id("four-eyes").inner_text()
    shot("5-sent")
    users = {user["identity"]: user for user in sandbox_data(sandbox)["users"]}
    assert {identity: users[identity]["properties"] for identity in users} == {
        identity: {"plan": "gold"}
        for identity in ("ann@example.org", "bob@example.org", "cy@example.org")
    }
