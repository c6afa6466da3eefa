"""The whole product in Debian's chromium: two officers and an auditor, every step through the UI.

Setup → admin adds Main Production (on the sandbox) and three accounts → officer A uploads a
list with problems → she cannot approve it → officer B (with two-factor sign-in) approves →
the scheduler's jobs submit and complete it → lookup → corrections (one sent, one refused by
the re-ingestion guard) → auditor C downloads the certificate and the evidence pack, runs the
pack's verify.py and verifies the audit trail. One screenshot per step: journey-NN-*.png.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile

import pyotp
import pytest
from conftest import PASSWORD
from evidence_fixtures import *  # noqa: F401,F403  (signing_key_env: PostgreSQL needs one)
from playwright.sync_api import Page, expect

from webapp.erasure.polling import poll_due
from webapp.erasure.submission import submit_due

pytestmark = pytest.mark.browser

ADMIN = "admin@example.org"
OFFICER_A = "ada.officer@example.org"
OFFICER_B = "ben.officer@example.org"
AUDITOR_C = "cy.auditor@example.org"

# Seven rows: four valid (one differing from another only in letter case), a duplicate,
# a malformed user_id and a row that fills both user_id and identity.
CSV = (
    "user_id,identity,reference\r\n"
    "7364029184,,DSR-101\r\n"
    ",ada@example.com,DSR-102\r\n"
    ",Ada@Example.com,DSR-102\r\n"
    ",bob@example.org,DSR-103\r\n"
    ",bob@example.org,DSR-103\r\n"
    "12ab34,,DSR-104\r\n"
    "5550001,cy@example.org,DSR-105\r\n"
)


class Journey:
    """The page, the server and the numbered screenshots of one walk through the desk."""

    def __init__(self, page: Page, server: str, artifacts_dir) -> None:
        self.page, self.server, self.artifacts_dir = page, server, artifacts_dir
        self.step = 0

    def shot(self, name: str) -> None:
        self.step += 1
        path = self.artifacts_dir / f"journey-{self.step:02d}-{name}.png"
        self.page.screenshot(path=path, full_page=True)

    def nav(self, label: str) -> None:
        self.page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()

    def current_nav(self) -> list[str]:
        main = self.page.get_by_role("navigation", name="Main")
        return main.locator("[aria-current=page]").all_inner_texts()

    def flash(self) -> str:
        return self.page.locator(".flashes").inner_text()

    def sign_in(self, email: str) -> None:
        self.page.goto(self.server + "/login")
        self.page.get_by_label("E-mail address").fill(email)
        self.page.get_by_label("Password").fill(PASSWORD)
        self.page.get_by_role("button", name="Sign in").click()

    def sign_out(self) -> None:
        self.page.get_by_role("button", name="Sign out").click()
        assert "You are signed out." in self.flash()


def test_two_officers_and_an_auditor_walk_the_whole_desk(
    app, signing_key_env, live_server, browser_page, artifacts_dir, sandbox, tmp_path
):
    page = browser_page
    page.on("dialog", lambda dialog: dialog.accept())
    walk = Journey(page, live_server, artifacts_dir)

    # 1. A fresh desk opens on the setup page; the first admin signs in.
    page.goto(live_server + "/")
    expect(page.get_by_role("heading", level=1)).to_contain_text("Welcome to Deletion Desk")
    page.get_by_label("Your e-mail address").fill(ADMIN)
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    walk.shot("setup")
    page.get_by_role("button", name="Create the admin account").click()
    assert "The admin account is ready" in walk.flash()
    walk.sign_in(ADMIN)
    expect(page.get_by_role("heading", name="Start here")).to_be_visible()
    walk.shot("admin-dashboard-empty")

    # 2. Main Production on the sandbox, its connection tested; three accounts.
    walk.nav("Environments")
    expect(page.get_by_role("heading", name="No Heap environment yet")).to_be_visible()
    page.get_by_role("link", name="Add environment").first.click()
    page.get_by_label("Name").fill("Main Production")
    page.get_by_label("Heap app_id").fill(sandbox.app_id)
    page.get_by_label("Base URL override").fill(sandbox.url)
    page.get_by_label("Main Production environment").check()
    page.get_by_label("Deletion API key").fill(sandbox.api_key)
    page.get_by_label("Account ID user property").fill("account_id")
    walk.shot("environment-form")
    page.get_by_role("button", name="Save environment").click()
    page.get_by_role("button", name="Test connection").click()
    assert "Heap issued a token" in walk.flash()
    assert "connection ok" in page.get_by_test_id("environments").inner_text()
    assert sandbox.api_key not in page.content()
    walk.shot("environment-connected")

    walk.nav("Accounts")
    for email, role in ((OFFICER_A, "officer"), (OFFICER_B, "officer"), (AUDITOR_C, "auditor")):
        page.get_by_label("E-mail address").fill(email)
        page.get_by_label("Role").select_option(role)
        page.get_by_label("Initial password").fill(PASSWORD)
        page.get_by_role("button", name="Create account").click()
        assert f"Account {email} created." in walk.flash()
    accounts_table = page.locator("table").inner_text()
    assert all(email in accounts_table for email in (OFFICER_A, OFFICER_B, AUDITOR_C))
    assert walk.current_nav() == ["Accounts"]  # not "Sign-in security", also an admin page
    walk.shot("accounts")
    walk.sign_out()

    # 3. Officer A uploads a list with problems; the preview shows what will happen.
    walk.sign_in(OFFICER_A)
    page.get_by_role("link", name="Upload a list").first.click()
    page.get_by_label("Heap environment").select_option(label="Main Production")
    page.get_by_label("CSV file").set_input_files(
        files=[{"name": "dsr-week-12.csv", "mimeType": "text/csv", "buffer": CSV.encode()}]
    )
    page.get_by_label("Reference").fill("DSR-2025-W12")
    walk.shot("upload")
    page.get_by_role("button", name="Upload and validate").click()
    batch = page.get_by_test_id("batch")
    assert batch.get_attribute("data-state") == "awaiting_approval"
    assert page.get_by_test_id("count-valid").inner_text() == "4"
    tiles = page.locator(".tiles").inner_text()
    assert "7\nrows read" in tiles and "2\nmalformed" in tiles and "1\nduplicates" in tiles
    problems = page.get_by_test_id("problems").inner_text()
    assert "the same identity as row 4" in problems
    assert "both user_id and identity are filled" in problems
    assert "12ab34" in problems  # the malformed user_id, as uploaded
    rows = page.get_by_test_id("subjects").inner_text()
    assert "differs only in letter case from row 2" in rows
    sha256 = page.get_by_test_id("sha256").inner_text()
    assert len(sha256) == 64
    sent = page.get_by_test_id("preview").inner_text()
    assert '"identity": "ada@example.com"' in sent and '"user_id": 7364029184' in sent
    batch_url = page.url

    # 4. The uploader cannot approve her own list.
    assert page.get_by_role("button", name="Approve and queue for submission").count() == 0
    expect(page.get_by_test_id("self-approval-note")).to_contain_text("four-eyes")
    walk.shot("preview")
    walk.sign_out()

    # 5. Officer B's role needs two-factor sign-in: he enrols at his first sign-in, sees the
    # batch waiting for him and approves it, checking the same SHA-256.
    app.config["DESK_2FA_REQUIRED_ROLES"] = "officer,admin"
    walk.sign_in(OFFICER_B)
    expect(page.get_by_role("heading", name="Set up two-factor sign-in")).to_be_visible()
    page.get_by_role("button", name="Set up an authenticator app").click()
    secret = page.get_by_label("Set-up key").inner_text().replace(" ", "")
    page.get_by_label("Code").fill(pyotp.TOTP(secret).now())
    walk.shot("two-factor-enrolment")
    page.get_by_role("button", name="Turn on two-factor sign-in").click()
    expect(page.get_by_role("heading", name="Your recovery codes")).to_be_visible()
    assert page.get_by_role("list", name="Recovery codes").locator("li").count() >= 8
    page.get_by_role("link", name="I have saved them — continue").click()
    assert page.url.endswith("/dashboard")
    assert page.get_by_test_id("awaiting-count").inner_text() == "1"
    expect(page.get_by_role("table", name="Batches awaiting your approval")).to_contain_text(
        "dsr-week-12.csv"
    )
    walk.shot("dashboard-awaiting")
    page.get_by_role("table", name="Batches awaiting your approval").get_by_role(
        "link"
    ).first.click()
    assert page.get_by_test_id("sha256").inner_text() == sha256
    page.get_by_role("link", name="Approve…").click()  # the confirmation repeats the hashes
    page.get_by_role("button", name="Approve and queue for submission").click()
    assert "approved" in walk.flash()
    walk.shot("approved")

    # 6. The scheduler's jobs: submit to Heap, then poll once Heap reports it done.
    with app.app_context():
        assert submit_due(app) == 1
        assert poll_due(app) == 1
    page.reload()
    assert page.get_by_test_id("batch").get_attribute("data-state") == "complete"
    expect(page.locator(".callout-ok")).to_contain_text("Complete.")
    assert "4 of 4 complete" in page.get_by_test_id("progress").inner_text()
    progress = page.get_by_test_id("progress").locator("progress")
    assert progress.get_attribute("value") == progress.get_attribute("max") == "4"
    requests_table = page.get_by_test_id("heap-requests").inner_text()
    deletion_id = page.get_by_test_id("heap-requests").locator("code").first.inner_text()
    assert deletion_id and deletion_id in requests_table and "complete" in requests_table
    walk.shot("complete")

    # 7. "Was Ada deleted?"
    walk.nav("Lookup")
    page.get_by_label("Identifier").fill("ada@example.com")
    page.get_by_role("button", name="Look up").click()
    verdict = page.get_by_test_id("lookup-verdict").inner_text()
    batch_id = batch_url.rstrip("/").rsplit("/", 1)[1]
    assert "Deleted." in verdict and f"batch #{batch_id}" in verdict
    assert deletion_id in page.get_by_test_id("lookup-results").inner_text()
    walk.shot("lookup")

    # 8. Corrections: a property for someone else goes out; one for Ada is refused.
    walk.nav("Corrections")
    page.get_by_role("link", name="User properties").click()
    page.get_by_label("Heap environment").select_option(label="Main Production")
    page.get_by_label("Identity").fill("dora@example.org")
    page.get_by_label("User properties 1: name").fill("plan")
    page.get_by_label("User properties 1: value").fill("enterprise")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert '"identity": "dora@example.org"' in page.get_by_test_id("call-json").inner_text()
    walk.shot("correction-preview")
    page.get_by_role("button", name="Send to Heap").click()
    assert "Heap accepted it" in walk.flash()
    walk.nav("Corrections")
    history = page.get_by_test_id("history").inner_text()
    assert "User properties" in history and OFFICER_B in history
    walk.shot("corrections-history")

    page.get_by_role("link", name="User properties").first.click()
    page.get_by_label("Heap environment").select_option(label="Main Production")
    page.get_by_label("Identity").fill("ada@example.com")
    page.get_by_label("User properties 1: name").fill("plan")
    page.get_by_label("User properties 1: value").fill("free")
    page.get_by_role("button", name="Preview", exact=True).click()
    assert "deleted or is deleting" in page.get_by_test_id("guard").inner_text()
    page.get_by_role("button", name="Send to Heap").click()
    assert "Give an override reason" in page.get_by_test_id("problems").inner_text()
    walk.shot("correction-guard")
    walk.sign_out()

    # 9. Auditor C: certificate and evidence pack from the batch page, then the audit trail.
    walk.sign_in(AUDITOR_C)
    page.goto(batch_url)
    evidence = page.get_by_test_id("evidence")
    with page.expect_download() as certificate:
        evidence.get_by_role("link", name="Certificate (PDF)").click()
    pdf = certificate.value.path().read_bytes()
    text = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode()
    assert deletion_id in text
    with page.expect_download() as pack:
        evidence.get_by_role("link", name="Evidence pack (zip)").click()
    folder = tmp_path / "pack"
    with zipfile.ZipFile(pack.value.path()) as archive:
        archive.extractall(folder)
    verified = subprocess.run(
        [sys.executable, "verify.py"], cwd=folder, capture_output=True, text=True, timeout=60
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert verified.stdout.startswith("ok")
    walk.shot("auditor-batch")

    walk.nav("Audit trail")
    page.get_by_role("button", name="Verify integrity").click()
    assert "The audit trail verifies" in walk.flash()
    assert walk.current_nav() == ["Audit trail"]
    trail = page.locator(".audit-table").inner_text()
    for action in ("batch.uploaded", "2fa.enrolled", "batch.approved", "batch.completed"):
        assert action in trail
    # The refused correction stored nothing: only Dora's was requested (and sent).
    assert trail.count("correction.requested") == 1 and "correction.sent" in trail
    walk.shot("audit-verified")

    # 10. The same desk on a phone: no page is wider than the screen (wide tables scroll).
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/dashboard", "/audit", "/audit/checkpoints", "/lookup/bulk"):
        page.goto(live_server + path)
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, path
    page.goto(batch_url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    walk.shot("phone-batch")
