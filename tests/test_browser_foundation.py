"""In Debian's chromium: setup page → admin created → sign in → add environment → listed."""

from __future__ import annotations

import pytest
from conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_setup_login_and_add_environment(live_server, browser_page, artifacts_dir, sandbox):
    page = browser_page
    page.goto(live_server + "/")
    assert page.url.endswith("/setup")
    page.get_by_label("Your e-mail address").fill("admin@example.org")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.screenshot(path=artifacts_dir / "foundation-1-setup.png", full_page=True)
    page.get_by_role("button", name="Create the admin account").click()

    assert page.url.endswith("/login")
    page.get_by_label("E-mail address").fill("admin@example.org")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert page.url.endswith("/dashboard")
    page.screenshot(path=artifacts_dir / "foundation-2-dashboard.png", full_page=True)

    page.get_by_role("link", name="Environments").click()
    page.get_by_role("link", name="Add environment").first.click()
    page.get_by_label("Name").fill("Main Production")
    page.get_by_label("Heap app_id").fill(sandbox.app_id)
    page.get_by_label("Base URL override").fill(sandbox.url)
    page.get_by_label("Main Production environment").check()
    page.get_by_label("Deletion API key").fill(sandbox.api_key)
    page.get_by_label("Account ID user property").fill("account_id")
    page.screenshot(path=artifacts_dir / "foundation-3-environment-form.png", full_page=True)
    page.get_by_role("button", name="Save environment").click()

    table = page.get_by_test_id("environments")
    assert "Main Production" in table.inner_text()
    assert sandbox.app_id in table.inner_text()
    assert sandbox.api_key not in page.content()
    page.get_by_role("button", name="Test connection").click()
    assert "Heap issued a token" in page.locator(".flashes").inner_text()
    page.screenshot(path=artifacts_dir / "foundation-4-environments.png", full_page=True)
