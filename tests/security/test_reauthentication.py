"""Issue 12, finding 5: re-authentication (a signed-in person typing their password or a code
again before a security change) was not throttled — 12 wrong current passwords on the password
page and 6 on two-factor setup went through with no lockout and no audit entry, so a stolen
session could guess the password at argon2 speed.

Now every wrong re-authentication counts toward the same lockout as sign-in failures, is audited
as `account.reauth_failed` (never with the password), and the fifth signs the session out.
"""

from __future__ import annotations

import json
import time

import pyotp
import pytest
from conftest import PASSWORD, AuthActions

from webapp.accounts import two_factor
from webapp.accounts import users as accounts
from webapp.crypto import decrypt
from webapp.db import session_scope
from webapp.models import UserTotp, utcnow
from webapp.trail import audit

WRONG = "not my password, honestly"
NEW = "a brand new long passphrase"


def _user(app, email):
    with app.app_context(), session_scope(write=False) as session:
        return accounts.find_user(session, email)


def _entries(app, action: str) -> list[dict]:
    with app.app_context(), session_scope(write=False) as session:
        return [e for e in audit.iter_entries(session) if e["action"] == action]


def _change(auth: AuthActions, current: str, **extra):
    data = {"current": current, "new": NEW, "confirm": NEW, **extra}
    return auth.post("/account/password", data)


def test_wrong_current_passwords_on_the_password_page_lock_the_account(app, client, make_user):
    """The finding replayed: 12 wrong current passwords on the password page."""
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    answers = [_change(auth, WRONG) for _ in range(4)]
    assert all("The current password is wrong." in a.get_data(as_text=True) for a in answers)
    assert _user(app, email).failed_logins == 4

    fifth = _change(auth, WRONG)
    assert fifth.status_code == 302 and fifth.location.startswith("/login")
    page = client.get(fifth.location).get_data(as_text=True)
    assert "locked" in page and "signed out" in page
    assert client.get("/dashboard").location.startswith("/login")  # the session is over
    for _ in range(7):  # the rest of the replay changes nothing: there is no session left
        assert client.post("/account/password", data={"current": WRONG}).status_code in {302, 400}
    user = _user(app, email)
    assert user.locked_until is not None and user.locked_until > utcnow()
    assert "locked" in auth.login(email).get_data(as_text=True)  # the right password is refused

    failures = _entries(app, "account.reauth_failed")
    assert [e["details"]["failures"] for e in failures] == [1, 2, 3, 4, 5]
    assert {e["details"]["where"] for e in failures} == {"password_change"}
    assert all(e["target_id"] == str(user.id) and e["actor"] == email for e in failures)
    assert WRONG not in json.dumps(failures)
    assert len(_entries(app, "user.locked")) == 1
    assert not _entries(app, "user.password_changed")


def test_sign_in_failures_and_re_authentication_failures_share_one_count(app, client, make_user):
    email = make_user("officer")
    other = AuthActions(app.test_client())
    for _ in range(2):
        other.login(email, WRONG)
    auth = AuthActions(client)
    auth.login(email)  # a right password clears what came before
    assert _user(app, email).failed_logins == 0
    for _ in range(2):
        _change(auth, WRONG)
    for _ in range(2):
        other.login(email, WRONG)
    assert _user(app, email).failed_logins == 4
    assert _change(auth, WRONG).location.startswith("/login")
    assert _user(app, email).locked_until is not None


def test_a_right_re_authentication_resets_the_count(app, client, make_user):
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    for _ in range(4):
        _change(auth, WRONG)
    assert _change(auth, PASSWORD).status_code == 302
    assert _user(app, email).failed_logins == 0
    for _ in range(4):
        _change(auth, WRONG, new="another long passphrase", confirm="another long passphrase")
    assert _user(app, email).locked_until is None


def test_wrong_passwords_on_two_factor_setup_lock_the_account(app, client, make_user):
    """The finding replayed: 6 wrong current passwords on two-factor setup."""
    email = make_user("auditor")  # two-factor sign-in is optional for auditors here
    auth = AuthActions(client)
    auth.login(email)
    page = "/account/two-factor"
    first = auth.post("/account/two-factor/start", {"password": WRONG}, form_page=page)
    assert first.location == page
    assert "The current password is wrong." in client.get(page).get_data(as_text=True)
    answers = [
        first,
        *(
            auth.post("/account/two-factor/start", {"password": WRONG}, form_page=page)
            for _ in range(4)
        ),
        client.post("/account/two-factor/start", data={"password": WRONG}),
    ]
    assert answers[3].location == page
    assert answers[4].location.startswith("/login")  # the fifth signs the session out
    assert answers[5].status_code in {302, 400}  # and there is no session left to try with
    assert _user(app, email).locked_until is not None
    failures = _entries(app, "account.reauth_failed")
    assert len(failures) == 5
    assert {e["details"]["where"] for e in failures} == {"two_factor_setup"}
    with app.app_context(), session_scope(write=False) as session:
        assert session.get(UserTotp, _user(app, email).id) is None  # nothing was set up


def test_a_locked_account_cannot_re_authenticate_even_with_the_right_password(
    app, client, make_user
):
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    before = _user(app, email).password_hash
    for _ in range(5):
        AuthActions(app.test_client()).login(email, WRONG)  # locked from elsewhere
    # This session was opened before the lock; it may not change the password now.
    answer = _change(auth, PASSWORD)
    assert answer.status_code == 302 and answer.location.startswith("/login")
    assert _user(app, email).password_hash == before  # unchanged
    assert not _entries(app, "user.password_changed")


# --- with an authenticator: recovery codes and removal ---------------------------------------


@pytest.fixture
def enrolled(app, client, make_user):
    """An auditor signed in with an authenticator set up: (email, TOTP secret)."""
    email = make_user("auditor")
    auth = AuthActions(client)
    auth.login(email)
    auth.post("/account/two-factor/start", {"password": PASSWORD}, form_page="/account/two-factor")
    with app.app_context(), session_scope(write=False) as session:
        secret = decrypt(
            session.get(UserTotp, accounts.find_user(session, email).id).secret_encrypted
        )
    auth.post("/account/two-factor/confirm", {"code": _code(secret)}, "/account/two-factor")
    return email, secret


def _code(secret: str, offset: int = 0) -> str:
    step = int(time.time()) // two_factor.STEP_SECONDS
    return pyotp.TOTP(secret).generate_otp(step + offset)


def _wrong_code(secret: str) -> str:
    valid = {_code(secret, offset) for offset in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1000, 2000)) if c not in valid)


@pytest.mark.parametrize("form", ["regenerate", "remove"])
def test_wrong_passwords_for_recovery_codes_or_removal_lock_the_account(
    app, client, enrolled, form
):
    email, secret = enrolled
    auth = AuthActions(client)
    url = {
        "regenerate": "/account/two-factor/recovery-codes",
        "remove": "/account/two-factor/remove",
    }
    data = {f"{form}-password": WRONG, f"{form}-code": _code(secret)}
    answers = [auth.post(url[form], data, form_page="/account/two-factor") for _ in range(5)]
    assert answers[3].location == "/account/two-factor"
    assert answers[4].location.startswith("/login")
    assert _user(app, email).locked_until is not None
    assert len(_entries(app, "account.reauth_failed")) == 5
    with app.app_context(), session_scope(write=False) as session:
        assert two_factor.authenticator(session, _user(app, email).id) is not None


def test_a_right_password_does_not_reset_the_count_while_a_code_is_owed(app, client, enrolled):
    """Otherwise the right password would buy unlimited guesses at the code."""
    email, secret = enrolled
    auth = AuthActions(client)
    for _ in range(5):
        _change(auth, PASSWORD, code=_wrong_code(secret))
    user = _user(app, email)
    assert user.locked_until is not None
    assert client.get("/dashboard").location.startswith("/login")


# --- the admin's view -----------------------------------------------------------------------


def test_re_authentication_failures_show_under_sign_in_security(app, client, make_user):
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    _change(auth, WRONG)
    admin = AuthActions(app.test_client())
    admin.login(make_user("admin"))
    page = admin.client.get("/admin/security").get_data(as_text=True)
    assert "Re-authentication failures" in page
    assert email in page and "changing the password" in page
