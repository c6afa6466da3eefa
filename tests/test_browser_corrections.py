"""In Debian's chromium: identify a user and fix a property through the forms, see the history."""

from __future__ import annotations

import pytest
from conftest import PASSWORD
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import deleted_subject, sandbox_data

pytestmark = pytest.mark.browser


def _sign_in(page, server: str, email: str) -> None:
    page.goto(server + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/dashboard")


def test_identify_and_property_fix_in_the_browser(
    app, live_server, browser_page, artifacts_dir, sandbox, heap_env, make_user
):
    page = browser_page
    shot = lambda name: page.screenshot(  # noqa: E731
        path=artifacts_dir / f"corrections-{name}.png", full_page=True
    )
    officer = make_user("officer", email="olga.officer@example.org")
    _sign_in(page, live_server, officer)
    page.get_by_role("link", name="Corrections").click()
    assert page.get_by_role("heading", name="No correction yet").is_visible()
    shot("1-index-empty")

    # Identify: form → preview (exact JSON and URL) → send → detail page.
    page.get_by_role("link", name="Identify user").click()
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    page.get_by_label("Heap user_id").fill("7364029184")
    page.get_by_label("Identity").fill("ann@example.org")
    shot("2-identify-form")
    page.get_by_role("button", name="Preview", exact=True).click()
    body = page.get_by_test_id("call-json").inner_text()
    assert '"identity": "ann@example.org"' in body and '"user_id": "7364029184"' in body
    assert page.get_by_test_id("call-url").inner_text() == f"{sandbox.url}/api/v1/identify"
    shot("3-identify-preview")
    page.get_by_role("button", name="Send to Heap").click()
    assert "Heap accepted it" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "succeeded"
    shot("4-identify-detail")
    users = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}
    assert users["ann@example.org"]["user_ids"] == ["7364029184"]

    # A property fix with a capitalised Email key: warned, sent anyway.
    page.get_by_role("link", name="Corrections", exact=True).first.click()
    page.get_by_role("link", name="User properties").click()
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    page.get_by_label("Identity").fill("ann@example.org")
    page.get_by_label("User properties 1: name").fill("plan")
    page.get_by_label("User properties 1: value").fill("enterprise")
    page.get_by_label("User properties 2: name").fill("Email")
    page.get_by_label("User properties 2: value").fill("ann@example.org")
    page.get_by_role("button", name="Add 5 more rows").click()  # a form post: the page reloads
    page.get_by_label("User properties 10: name").wait_for(state="visible")
    assert page.get_by_label("User properties 1: value").input_value() == "enterprise"
    shot("5-properties-form")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert "lower-case 'email'" in page.get_by_test_id("warnings").inner_text()
    shot("6-properties-preview")
    page.get_by_role("button", name="Send to Heap").click()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "succeeded"
    users = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}
    assert users["ann@example.org"]["properties"]["plan"] == "enterprise"

    # Both on the history page.
    page.get_by_role("link", name="Corrections", exact=True).first.click()
    history = page.get_by_test_id("history").inner_text()
    assert "Identify user" in history and "User properties" in history
    assert history.count(officer) == 2
    shot("7-history")

    # A bulk file, pasted: every request previewed, then sent.
    page.get_by_role("link", name="Bulk from a file").first.click()
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    page.get_by_label("…or paste the rows").fill(
        "identity,plan,company\nbob@example.org,pro,Acme\ncy@example.org,free,Initech\n"
    )
    page.get_by_role("button", name="Preview", exact=True).click()
    assert '"identity": "cy@example.org"' in page.get_by_test_id("call-json").inner_text()
    shot("8-bulk-preview")
    page.get_by_role("button", name="Send to Heap").click()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "succeeded"
    page.get_by_role("link", name="Corrections", exact=True).first.click()

    # The guard: a person being deleted needs an override reason.
    deleted_subject(app, heap_env, "identity", "gone@example.org")
    page.get_by_role("link", name="Link user to account").click()
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    page.get_by_label("Identity").fill("gone@example.org")
    page.get_by_label("Account ID").fill("acme-corp")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert "deleted or is deleting" in page.get_by_test_id("guard").inner_text()
    shot("9-guard-preview")
    page.get_by_role("button", name="Send to Heap").click()
    assert "Give an override reason" in page.get_by_test_id("problems").inner_text()
    assert "gone@example.org" not in {u["identity"] for u in sandbox_data(sandbox)["users"]}
