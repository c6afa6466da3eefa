"""In Debian's chromium: every page each role can reach, at 390 px (a phone) and 1366 px (a
laptop), has no axe-core violation (WCAG 2.x A/AA and best practices) and nothing out of sight
sideways; at 768 and 1024 px (tablets) nothing out of sight sideways either. And a keyboard
alone carries a list from upload to approval, the focus seen at every step.

The pages are found from the app's own routes, so a page added later is checked too — or the
test fails until it is visited or listed in SKIPPED with a reason.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import pyotp
import pytest
from axe_helpers import axe_violations, describe, horizontal_overflow
from conftest import PASSWORD
from corrections_helpers import *  # noqa: F401,F403
from corrections_helpers import make_env as make_correction_env
from evidence_fixtures import _csv, finish_batch, signing_key_env  # noqa: F401
from sqlmodel import select
from workflow_factories import identifiers, make_batch, make_environment

from webapp import tool_policy
from webapp.accounts import users as accounts
from webapp.corrections import service as corrections
from webapp.crypto import decrypt
from webapp.db import session_scope
from webapp.erasure import batches, submission
from webapp.evidence.checkpoints import sign_checkpoint
from webapp.models import Batch, Environment, Subject, UserTotp

pytestmark = pytest.mark.browser

WIDTHS = (390, 1366)  # axe and no sideways scrolling
TABLET_WIDTHS = (768, 1024)  # no sideways scrolling (cheap: no reload, no axe)
# Each run leaves one screenshot per width of these pages (README, issue 15).
SCREENSHOTS = {"batches.detail", "home.dashboard", "corrections.index", "environments.index"}
SCREENSHOTS |= {"audit.index", "batches.index"}
SKIPPED = {
    "home.index": "redirects to the dashboard (or the sign-in page), checked there",
    "static": "files, not pages",
}
# Skipped by kind: downloads (CSV, PDF, zip, witness.py, the key, exports) are files, not
# pages; everything under api. is JSON, but for /api/v1/docs: Swagger UI, not the desk's markup.
DOWNLOAD = re.compile(r"\.(csv|pdf|zip|py|pem|jsonl?|<fmt>)$|<fmt>")
UPLOAD_CSV = (
    "identity,received_on,reference\r\n"
    "ada@example.com,{today},TICKET-1\r\n"
    "Ada@Example.com,{today},TICKET-1\r\n"
    "bob@example.org,,TICKET-2\r\n"
    "bob@example.org,,TICKET-2\r\n"
    "12345,,\r\n"
    "not-a-date@example.org,31/01/2025,\r\n"
)


def page_endpoints(app) -> dict[str, str]:
    """endpoint → URL rule of every HTML page: GET routes outside the API, not downloads."""
    found = {}
    for rule in app.url_map.iter_rules():
        if "GET" not in rule.methods or rule.endpoint.startswith("api."):
            continue
        if rule.endpoint in SKIPPED or DOWNLOAD.search(rule.rule):
            continue
        found[rule.endpoint] = rule.rule
    return found


@dataclass
class Desk:
    """What the seeding made: accounts by role, and the ids the pages' URLs need."""

    emails: dict[str, str]
    ids: dict[str, list[int]] = field(default_factory=dict)


def seed_desk(app, sandbox, make_user) -> Desk:
    """Admin, two officers, an auditor; an environment on the sandbox; batches awaiting approval,
    complete and failed; corrections sent and awaiting approval; a signed checkpoint."""
    emails = {
        "admin": make_user("admin", email="adele.admin@example.org"),
        "officer_a": make_user("officer", email="ada.officer@example.org"),
        "officer_b": make_user("officer", email="ben.officer@example.org"),
        "auditor": make_user("auditor", email="aude.auditor@example.org"),
    }
    env_id = make_environment(app, sandbox)
    complete = finish_batch(app, env_id, make_user, _csv(), reference="DSR-2026-114").id
    with app.app_context(), session_scope(write=True) as session:
        officer_a = accounts.find_user(session, emails["officer_a"]).id
    failed = make_batch(app, env_id, identifiers(3), uploaded_by=officer_a)
    sandbox.add_faults({"kind": "400", "path": "/user_deletion", "message": "users: invalid"})
    submission.submit_due(app)  # Heap refuses it for good: the batch fails
    today = time.strftime("%Y-%m-%d")
    with app.app_context(), session_scope(write=True) as session:
        awaiting, _ = batches.create_batch(
            session,
            actor=emails["officer_a"],
            environment_id=env_id,
            data=UPLOAD_CSV.format(today=today).encode(),
            filename="erasures.csv",
            reference="DSR-2026-201",
        )
        awaiting_id = awaiting.id
    correction_env = make_correction_env(app, sandbox, name="Sandbox corrections")
    with app.app_context(), session_scope(write=True) as session:
        env = session.get(Environment, correction_env)
        tool_policy.update_policy(
            session, actor=emails["admin"], env=env, changes={"corrections_four_eyes_above": 2}
        )
    people = [{"identity": f"p{n}@example.org", "properties": {"plan": "gold"}} for n in range(3)]
    sent = _correction(app, emails["officer_a"], correction_env, {"users": people[:1]})
    waiting = _correction(app, emails["officer_a"], correction_env, {"users": people})
    with app.app_context(), session_scope(write=True) as session:
        sign_checkpoint(session, actor=emails["admin"], app=app)
        subject = session.exec(select(Subject.id).where(Subject.batch_id == complete)).first()
        assert session.get(Batch, failed).state == "failed"
    return Desk(
        emails=emails,
        ids={
            "batch_id": [awaiting_id, complete, failed],
            "subject_id": [subject],
            "correction_id": [waiting, sent],
            "environment_id": [correction_env],
            "user_id": [officer_a],
        },
    )


def _correction(app, actor: str, env_id: int, data: dict) -> int:
    with app.app_context(), session_scope(write=True) as session:
        correction = corrections.send(
            session, actor=actor, environment_id=env_id, family="user-properties", data=data
        )
        return correction.id


def urls_for(rule: str, ids: dict[str, list[int]]) -> list[str]:
    """The rule with each path parameter filled from the seeded ids (one URL per id)."""
    names = re.findall(r"<(?:\w+:)?(\w+)>", rule)
    if not names:
        return [rule]
    (name,) = names
    return [re.sub(r"<(?:\w+:)?\w+>", str(value), rule) for value in ids[name]]


class Checker:
    """Visits pages at both widths and collects every problem (the test reports them all)."""

    def __init__(self, artifacts_dir):
        self.problems: list[str] = []
        self.checked = 0
        self.artifacts_dir = artifacts_dir

    def check(self, page, label: str, shot: str | None = None) -> None:
        page.wait_for_load_state("load")
        for width in sorted(WIDTHS + TABLET_WIDTHS):
            page.set_viewport_size({"width": width, "height": 860})
            overflow = horizontal_overflow(page)
            if overflow:
                self.problems.append(f"{label} at {width} px: out of sight sideways: {overflow}")
            if width not in WIDTHS:
                continue
            found = axe_violations(page)
            if found:
                self.problems.append(f"{label} at {width} px:\n{describe(found)}")
            if shot:
                path = self.artifacts_dir / f"a11y-{width}-{shot}.png"
                page.screenshot(path=path, full_page=True)
        self.checked += 1


def sign_in(page, server: str, email: str) -> None:
    page.goto(server + "/login")
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(r"/(dashboard|login/\w+)$"))


@pytest.mark.usefixtures("paced", "signing_key_env")
def test_every_page_at_390_and_1366_px_passes_axe_and_never_scrolls_sideways(
    app, live_server, browser, artifacts_dir, sandbox, make_user
):
    started = time.monotonic()
    checker = Checker(artifacts_dir)
    pages = page_endpoints(app)
    visited: set[str] = set()
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)

    # Before anyone exists: the set-up page; then the sign-in page and its errors.
    page.goto(live_server + "/setup")
    checker.check(page, "/setup (first run)")
    visited.add("auth.setup")
    desk = seed_desk(app, sandbox, make_user)
    page.goto(live_server + "/login")
    checker.check(page, "/login")
    page.get_by_role("button", name="Sign in").click()
    checker.check(page, "/login with errors")
    visited.add("auth.login")
    _two_factor_pages(app, page, live_server, checker, make_user)
    visited |= {"two_factor.enrol", "two_factor.verify"}
    context.close()

    # Each role, in its own context: every page it may open, at both widths.
    for role, email in desk.emails.items():
        context = browser.new_context(viewport={"width": 1366, "height": 860})
        page = context.new_page()
        page.set_default_timeout(15_000)
        sign_in(page, live_server, email)
        for endpoint, rule in sorted(pages.items()):
            if endpoint in {"auth.setup", "auth.login", "two_factor.enrol", "two_factor.verify"}:
                continue
            for url in urls_for(rule, desk.ids):
                response = page.goto(live_server + url)
                if response.status == 403:
                    continue  # not this role's page (one 403 page is checked below)
                assert response.ok, f"{role}: {url} answered {response.status}"
                shot = f"{endpoint}-{url.rsplit('/', 1)[-1]}" if endpoint in SCREENSHOTS else None
                if role != "officer_b":
                    shot = None
                checker.check(page, f"{role}: {url}", shot)
                visited.add(endpoint)
        if role == "auditor":
            page.goto(live_server + "/admin/users")
            checker.check(page, "auditor: 403 page")
            page.goto(live_server + "/no-such-page")
            checker.check(page, "auditor: 404 page")
        context.close()

    elapsed = time.monotonic() - started
    print(f"\naccessibility: {checker.checked} pages checked in {elapsed:.0f} s")
    assert not set(pages) - visited, f"pages never visited: {sorted(set(pages) - visited)}"
    assert not checker.problems, "\n".join(checker.problems)


def _two_factor_pages(app, page, server: str, checker: Checker, make_user) -> None:
    """Set-up owed at sign-in, the recovery codes, then the code step at the next sign-in."""
    app.config["DESK_2FA_REQUIRED_ROLES"] = "admin"
    try:
        email = make_user("admin", email="tessa.twofactor@example.org")
        sign_in(page, server, email)
        checker.check(page, "/login/setup (before starting)")
        page.get_by_role("button", name=re.compile("Set up|Start|Show", re.I)).first.click()
        checker.check(page, "/login/setup (the key)")
        with app.app_context(), session_scope(write=False) as session:
            user = accounts.find_user(session, email)
            secret = decrypt(session.get(UserTotp, user.id).secret_encrypted)
        page.get_by_label(re.compile("code", re.I)).first.fill(pyotp.TOTP(secret).now())
        page.get_by_role("button", name=re.compile("Confirm|Turn on|Verify", re.I)).first.click()
        checker.check(page, "/login/setup (recovery codes)")
        page.get_by_role("link", name="I have saved them — continue").click()
        page.get_by_role("button", name="Sign out").click()
        page.wait_for_url(re.compile(r"/login$"))
        sign_in(page, server, email)
        assert page.url.endswith("/login/code")
        checker.check(page, "/login/code")
    finally:
        app.config["DESK_2FA_REQUIRED_ROLES"] = ""


# --- keyboard only ----------------------------------------------------------------------------

FOCUSED = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const style = getComputedStyle(el), box = el.getBoundingClientRect();
    return {
        tag: el.tagName.toLowerCase(), type: el.type || "", id: el.id || "",
        text: (el.innerText || el.value || el.getAttribute("aria-label") || "").trim().slice(0, 60),
        label: el.labels && el.labels.length ? el.labels[0].innerText.trim() : "",
        focusVisible: el.matches(":focus-visible"),
        ring: style.outlineStyle !== "none" && parseFloat(style.outlineWidth) >= 2,
        onScreen: box.width > 0 && box.height > 0 && box.bottom > 0 && box.top < innerHeight,
    };
}"""


class Keyboard:
    """Tab, type and Enter only; after every key that moves focus, the focus must be seen."""

    def __init__(self, page):
        self.page = page
        self.stops = 0

    def focused(self) -> dict | None:
        return self.page.evaluate(FOCUSED)

    def tab_to(self, matches, limit: int = 80) -> dict:
        """Press Tab until the focused element satisfies `matches`; every stop shows its ring."""
        for _ in range(limit):
            self.page.keyboard.press("Tab")
            self.stops += 1
            now = self.focused()
            assert now, "Tab left the page"
            assert now["focusVisible"] and now["ring"], f"focus not visible on {now}"
            assert now["onScreen"], f"focused element out of view: {now}"
            if matches(now):
                return now
        raise AssertionError(f"no element matched within {limit} Tab presses")

    def field(self, label: str) -> dict:
        return self.tab_to(lambda el: el["label"].startswith(label))

    def control(self, text: str) -> dict:
        return self.tab_to(lambda el: el["text"] == text)


def _keyboard_sign_in(page, keys: Keyboard, server: str, email: str) -> None:
    page.goto(server + "/login")
    keys.field("E-mail address")
    page.keyboard.type(email)
    keys.field("Password")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/dashboard$"))


def test_keyboard_only_officer_a_uploads_and_officer_b_approves(
    app, live_server, browser, sandbox, make_user, artifacts_dir
):
    uploader = make_user("officer", email="ada.officer@example.org")
    approver = make_user("officer", email="ben.officer@example.org")
    make_environment(app, sandbox)

    # Officer A, on a phone-sized window: sign in, open the upload form, paste, upload.
    context = browser.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.set_default_timeout(15_000)
    keys = Keyboard(page)
    _keyboard_sign_in(page, keys, live_server, uploader)
    keys.control("Upload a list")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/batches/new$"))
    keys.field("Heap environment")
    page.keyboard.type("Sandbox")  # a select chooses by typing its option's name
    keys.field("…or paste")
    page.keyboard.type("ada@example.com\nbob@example.org\nbob@example.org")
    keys.field("Reference")
    page.keyboard.type("DSR-KEYBOARD-1")
    keys.control("Upload and validate")
    page.screenshot(path=artifacts_dir / "keyboard-1-upload.png", full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/batches/\d+$"))
    batch = page.get_by_test_id("batch")
    assert batch.get_attribute("data-state") == "awaiting_approval"
    assert page.get_by_test_id("count-valid").inner_text() == "2"
    sha256 = page.get_by_test_id("sha256").inner_text()
    batch_path = page.url.removeprefix(live_server)
    keys.control("Sign out")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/login$"))
    context.close()

    # Officer B, on a laptop: the dashboard links the batch; approve it from its page.
    context = browser.new_context(viewport={"width": 1366, "height": 860})
    page = context.new_page()
    page.set_default_timeout(15_000)
    keys = Keyboard(page)
    _keyboard_sign_in(page, keys, live_server, approver)
    batch_id = batch_path.rsplit("/", 1)[1]
    keys.control(f"#{batch_id}")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(batch_path) + "$"))
    assert page.get_by_test_id("sha256").inner_text() == sha256
    # The batch page links the confirmation, which repeats the counts and the manifest.
    keys.control("Approve…")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(batch_path) + "/approve$"))
    keys.control("Approve and queue for submission")
    page.screenshot(path=artifacts_dir / "keyboard-2-approve.png", full_page=True)
    page.keyboard.press("Enter")
    page.wait_for_load_state("load")
    assert "approved" in page.locator(".flashes").inner_text()
    assert page.get_by_test_id("batch").get_attribute("data-state") == "approved"
    context.close()
    assert keys.stops > 10  # it really went through the page by Tab
