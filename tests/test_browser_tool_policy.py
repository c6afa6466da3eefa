"""In Debian's chromium: an admin switches an operation off and rewrites a description on the
Tool policy page; an officer's forms follow. Screenshots at 1366 and 390 px (SHOTS_DIR)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import sign_in_page
from corrections_helpers import *  # noqa: F401,F403

from webapp import tool_policy

pytestmark = pytest.mark.browser
SHOTS_DIR = Path(os.environ.get("DESK_POLICY_SHOTS", "/tmp/shots14a"))


def _sign_out(page) -> None:
    page.get_by_role("button", name="Sign out").click()


def test_admin_switches_track_off_and_rewrites_identify_officer_sees_it(
    app, live_server, browser_page, artifacts_dir, heap_env, make_user
):
    page = browser_page
    SHOTS_DIR.mkdir(parents=True, exist_ok=True)
    admin = make_user("admin", email="ada.admin@example.org")
    officer = make_user("officer", email="olga.officer@example.org")

    # The admin finds the policy from the environment's row and switches tracking off.
    sign_in_page(page, live_server, admin)
    page.get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="Tool policy of Sandbox").click()
    assert page.get_by_role("heading", name="Tool policy · Sandbox").is_visible()
    track = page.get_by_role("checkbox", name="Track events")
    assert track.is_checked()
    track.uncheck()
    page.get_by_role("radio", name="Corrections of more than this many items:").check()
    page.get_by_label("Number of items").fill("250")
    page.get_by_label("Forbidden property keys").fill("email\nssn_*")
    page.get_by_role("button", name="Save the policy").click()
    assert "Tool policy of “Sandbox” saved." in page.locator(".flashes").inner_text()
    assert not page.get_by_role("checkbox", name="Track events").is_checked()
    assert "Track events" in page.get_by_test_id("policy-now").inner_text()
    assert "ada.admin@example.org" in page.get_by_test_id("last-change").inner_text()
    for width in (1366, 390):
        page.set_viewport_size({"width": width, "height": 900})
        page.screenshot(path=SHOTS_DIR / f"policy-{width}.png", full_page=True)
        # Nothing wider than the window at a phone's width.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{overflow}px wider than {width}"
    page.set_viewport_size({"width": 1280, "height": 860})
    _sign_out(page)

    # The officer no longer sees the track form; the identify form is there.
    sign_in_page(page, live_server, officer)
    page.get_by_role("link", name="Corrections").click()
    assert page.get_by_role("link", name="Identify user").is_visible()
    assert page.get_by_role("link", name="Track event").count() == 0
    page.goto(live_server + "/corrections/track")
    assert "Track events is switched off" in page.get_by_test_id("switched-off").inner_text()
    assert page.get_by_label("Event name").count() == 0
    _sign_out(page)

    # The admin rewrites the identify description ...
    sign_in_page(page, live_server, admin)
    page.goto(f"{live_server}/environments/{heap_env}/policy")
    text = page.get_by_role("textbox", name="Identify", exact=True)
    text.fill("Only with a ticket from the data team.")
    page.get_by_role("button", name="Save the policy").click()
    assert "saved" in page.locator(".flashes").inner_text()
    _sign_out(page)

    # ... and the officer reads it on the identify form.
    sign_in_page(page, live_server, officer)
    page.get_by_role("link", name="Corrections").click()
    page.get_by_role("link", name="Identify user").click()
    note = page.get_by_test_id("operation-description")
    assert note.inner_text() == "Only with a ticket from the data team."
    # Picking no environment shows the desk's own text (static/desk.js swaps it).
    page.get_by_label("Heap environment").select_option(label="Choose…")
    assert note.inner_text() == tool_policy.DEFAULT_DESCRIPTIONS["identify"]
    page.get_by_label("Heap environment").select_option(label="Sandbox")
    assert note.inner_text() == "Only with a ticket from the data team."
    page.screenshot(path=artifacts_dir / "policy-identify-form.png", full_page=True)
