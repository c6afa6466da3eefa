"""The admins' Sign-in security page: re-authentication failures and four-eyes events, read from
the audit trail (accounts/security_log.py)."""

from __future__ import annotations

from conftest import AuthActions

from webapp.accounts import security_log
from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.trail import audit


def _ids(app, *emails: str) -> list[int]:
    with app.app_context(), session_scope(write=False) as session:
        return [accounts.find_user(session, email).id for email in emails]


def _record(app, action: str, target_id: int, details: dict, target_type: str = "batch"):
    with app.app_context(), session_scope(write=True) as session:
        audit.record(
            session,
            actor="approver@example.org",
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
        session.commit()


def _page(app, make_user) -> str:
    admin = AuthActions(app.test_client())
    admin.login(make_user("admin"))
    return admin.client.get("/admin/security").get_data(as_text=True)


def test_an_empty_page_says_what_would_show_there(app, make_user):
    page = _page(app, make_user)
    assert "No failed re-authentication" in page
    assert "No approval has been refused by the four-eyes rules" in page


def test_refusals_and_near_misses_show_who_which_batch_and_the_rule(app, make_user):
    approver, author = make_user("officer"), make_user("officer")
    approver_id, author_id = _ids(app, approver, author)
    people = {"approver_id": approver_id, "author_id": author_id}
    _record(app, "four_eyes.refused", 41, {"rule": "creator", **people})
    _record(app, "four_eyes.near_miss", 42, {"rule": "young_account", **people})
    _record(
        app,
        "four_eyes.refused",
        43,
        {"rule": "created", "approver_id": 999_999, "author_id": author_id},
    )
    page = _page(app, make_user)
    assert approver in page and author in page
    assert 'href="/batches/41"' in page and 'href="/batches/42"' in page
    assert "the approver&#39;s account was created by the uploader" in page
    assert "less than a day old" in page and "near-miss" in page and "refused" in page
    assert "account #999999" in page  # an account id that no longer resolves still shows


def test_events_are_newest_first_and_limited(app, make_user):
    approver, author = make_user("officer"), make_user("officer")
    approver_id, author_id = _ids(app, approver, author)
    for batch_id in range(1, 8):
        details = {"rule": "uploader", "approver_id": approver_id, "author_id": author_id}
        _record(app, "four_eyes.refused", batch_id, details)
    with app.app_context(), session_scope(write=False) as session:
        events = security_log.four_eyes_events(session, limit=5)
    assert [e.target_id for e in events] == ["7", "6", "5", "4", "3"]
    assert all(e.approver == approver and e.rule_text for e in events)


def test_wrong_codes_in_a_re_authentication_show_but_sign_in_codes_do_not(app, make_user):
    with app.app_context(), session_scope(write=True) as session:
        for stage in ("reauth", "sign_in"):
            audit.record(
                session,
                actor="someone@example.org",
                action="2fa.failed",
                target_type="user",
                target_id=1,
                details={"ip": "10.0.0.9", "reason": "wrong", "stage": stage},
            )
        session.commit()
    with app.app_context(), session_scope(write=False) as session:
        (failure,) = security_log.reauth_failures(session)
    assert failure.email == "someone@example.org" and failure.what == "code"


def test_a_refused_correction_approval_links_the_correction(app, make_user):
    approver, author = make_user("officer"), make_user("officer")
    approver_id, author_id = _ids(app, approver, author)
    details = {"rule": "uploader", "approver_id": approver_id, "author_id": author_id}
    _record(app, "four_eyes.refused", 7, details, target_type="correction")
    page = _page(app, make_user)
    assert 'href="/corrections/7"' in page and "asked for the correction" in page
