"""In Debian's chromium: identify a user and fix a property through the forms, see the history."""

from __future__ import annotations

import pytest
from conftest import sign_in_page
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import deleted_subject, sandbox_data

pytestmark = pytest.mark.browser


def test_identify_and_property_fix_in_the_browser(
    app, live_server, browser_page, artifacts_dir, sandbox, heap_env, make_user
):
    page = browser_page
    shot = lambda name: page.screenshot(  # noqa: E731
        path=artifacts_dir / f"corrections-{name}.png", full_page=True
    )
    officer = make_user("officer", email="olga.officer@example.org")
    sign_in_page(page, live_server, officer)
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
    page.get_by_role("button", name="Add a row").click()  # in the page: no request
    page.get_by_label("User properties 6: name").wait_for(state="visible")
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


@pytest.fixture
def berlin_page(artifacts_dir):
    """A Playwright page in Debian's chromium whose clock reads Europe/Berlin."""
    from conftest import CHROMIUM, CHROMIUM_ARGS
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(
            viewport={"width": 1280, "height": 860}, timezone_id="Europe/Berlin", locale="en-GB"
        )
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def test_rows_typed_values_and_local_times_in_the_browser(
    app, live_server, berlin_page, artifacts_dir, sandbox, heap_env, make_user
):
    page = berlin_page
    sign_in_page(page, live_server, make_user("officer"))
    page.goto(f"{live_server}/corrections/track")
    page.wait_for_load_state("networkidle")
    # The only environment is chosen already; "Add 5 more rows" is the no-script fallback.
    assert page.get_by_label("Heap environment").input_value() == str(heap_env)
    assert not page.get_by_role("button", name="Add 5 more rows").first.is_visible()

    requests, navigations = [], []
    page.on("request", lambda request: requests.append(request.url))
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    event_rows = page.locator("fieldset.prop-rows").first
    for _ in range(2):
        event_rows.get_by_role("button", name="Add a row").click()
    assert event_rows.locator("tbody tr").count() == 7
    page.get_by_label("Event properties 7: name").fill("note")
    page.get_by_label("Event properties 7: value").fill("late")
    page.get_by_label("Event properties 1: name").fill("amount")
    page.get_by_label("Event properties 1: type").select_option(label="Number")
    page.get_by_label("Event properties 1: value").fill("30")
    page.get_by_label("Event properties 2: name").fill("dropped")
    page.get_by_label("Event properties 2: value").fill("never sent")
    # Removing row 2 renumbers the rows after it: row 7 becomes row 6, names and labels alike.
    event_rows.get_by_role("button", name="Remove row 2").click()
    assert event_rows.locator("tbody tr").count() == 6
    assert page.get_by_label("Event properties 6: name").input_value() == "note"
    assert page.get_by_label("Event properties 6: name").get_attribute("name") == (
        "properties-5-key"
    )
    assert page.get_by_label("Event properties 1: type").input_value() == "number"
    assert requests == [] and navigations == [], "rows change in the page, without a request"
    page.screenshot(path=artifacts_dir / "corrections-rows-in-page.png", full_page=True)

    page.get_by_label("Event name").fill("Refund issued")
    page.get_by_label("Identity").fill("ann@example.org")
    page.get_by_role("button", name="Preview", exact=True).click()
    body = page.get_by_test_id("call-json").first.inner_text()
    assert '"amount": 30' in body and '"note": "late"' in body and "dropped" not in body
    page.get_by_role("button", name="Send to Heap").click()
    assert page.get_by_test_id("correction").get_attribute("data-state") == "succeeded"
    users = {u["identity"]: u for u in sandbox_data(sandbox)["users"]}
    assert users["ann@example.org"]["events"][0]["properties"] == {"amount": 30, "note": "late"}

    # The detail page's times: the viewer's zone in the text, the UTC on hover.
    created = page.locator("dd time").first
    moment = created.get_attribute("datetime")
    from datetime import datetime
    from zoneinfo import ZoneInfo

    local = datetime.fromisoformat(moment).astimezone(ZoneInfo("Europe/Berlin"))
    assert created.inner_text() == local.strftime("%Y-%m-%d %H:%M:%S ") + local.tzname()
    assert created.get_attribute("title") == (
        datetime.fromisoformat(moment).strftime("%Y-%m-%d %H:%M:%S") + " UTC"
    )
    page.screenshot(path=artifacts_dir / "corrections-local-times.png", full_page=True)
