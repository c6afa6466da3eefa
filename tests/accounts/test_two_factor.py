"""Two-factor sign-in: enrolment, codes usable once, recovery codes, lockout, reset, re-auth."""

from __future__ import annotations

import json
import re
import time

import pyotp
import pytest
from conftest import PASSWORD, AuthActions
from sqlmodel import select

from webapp.accounts import two_factor
from webapp.accounts import users as accounts
from webapp.crypto import decrypt
from webapp.db import session_scope
from webapp.models import LoginSession, RecoveryCode, UserTotp
from webapp.trail import audit
from webapp.views import two_factor as two_factor_views


@pytest.fixture
def tfa_app(app):
    """The desk with two-factor sign-in required for officers and admins (the default)."""
    app.config["DESK_2FA_REQUIRED_ROLES"] = "officer,admin"
    return app


def _user(app, email):
    with app.app_context(), session_scope(write=False) as session:
        return accounts.find_user(session, email)


def _secret(app, email) -> str:
    with app.app_context(), session_scope(write=False) as session:
        row = session.get(UserTotp, accounts.find_user(session, email).id)
        return decrypt(row.secret_encrypted)


def _step() -> int:
    return int(time.time()) // two_factor.STEP_SECONDS


def _code(secret: str, offset: int = 0) -> str:
    """The code of the current 30 s step plus `offset` (the desk accepts -1..+1)."""
    return pyotp.TOTP(secret).generate_otp(_step() + offset)


def _wrong_code(secret: str) -> str:
    valid = {_code(secret, offset) for offset in range(-2, 3)}
    return next(c for c in (f"{n:06d}" for n in range(1000, 2000)) if c not in valid)


def _actions(app) -> list[dict]:
    with app.app_context(), session_scope(write=False) as session:
        return list(audit.iter_entries(session))


def _enrol(app, client, email) -> tuple[str, list[str]]:
    """Sign in with the password and complete the enrolment owed; return secret and codes."""
    auth = AuthActions(client)
    response = auth.login(email)
    assert response.location == "/login/setup"
    auth.post("/login/setup/start", form_page="/login/setup")
    secret = _secret(app, email)
    assert "data:image/svg+xml" in client.get("/login/setup").get_data(as_text=True)
    page = auth.post("/login/setup", {"code": _code(secret)}).get_data(as_text=True)
    codes = re.findall(r"<code>([a-z0-9]{5}-[a-z0-9]{5})</code>", page)
    assert len(codes) == 10
    return secret, codes


def _code_step(client, code):
    return AuthActions(client).post("/login/code", {"code": code})


def test_officer_must_enrol_before_reaching_the_dashboard(tfa_app, client, make_user):
    email = make_user("officer")
    assert AuthActions(client).login(email).location == "/login/setup"
    assert client.get("/dashboard").location.startswith("/login")  # not signed in yet
    secret, codes = _enrol(tfa_app, client, email)
    assert client.get("/dashboard").status_code == 200
    with tfa_app.app_context(), session_scope(write=False) as session:
        row = session.get(UserTotp, accounts.find_user(session, email).id)
        assert row.confirmed_at is not None and secret not in row.secret_encrypted
        hashes = [r.code_hash for r in session.exec(select(RecoveryCode)).all()]
    assert len(hashes) == 10 and not set(codes) & set(hashes)
    entries = _actions(tfa_app)
    assert "2fa.enrolled" in [e["action"] for e in entries]
    dumped = json.dumps([e["details"] for e in entries])
    assert secret not in dumped and not any(code in dumped for code in codes)


def test_wrong_enrolment_code_keeps_the_person_out(tfa_app, client, make_user):
    email = make_user("admin")
    auth = AuthActions(client)
    auth.login(email)
    auth.post("/login/setup/start", form_page="/login/setup")
    response = auth.post("/login/setup", {"code": _wrong_code(_secret(tfa_app, email))})
    assert response.status_code == 400
    assert "The code is wrong" in response.get_data(as_text=True)
    assert client.get("/dashboard").location.startswith("/login")


def test_sign_in_with_a_code_and_replay_is_refused(tfa_app, client, make_user):
    email = make_user("officer")
    secret, _ = _enrol(tfa_app, client, email)
    auth = AuthActions(client)
    auth.logout()
    assert auth.login(email).location == "/login/code"
    assert client.get("/dashboard").location.startswith("/login")
    code = _code(secret, 1)  # the enrolment used the current step
    assert _code_step(client, code).location == "/dashboard"
    auth.logout()
    auth.login(email)
    replay = _code_step(client, code)
    assert replay.status_code == 200
    assert "This code was already used; wait for the next one." in replay.get_data(as_text=True)
    assert client.get("/dashboard").location.startswith("/login")
    failed = [e for e in _actions(tfa_app) if e["action"] == "2fa.failed"]
    assert failed[-1]["details"]["reason"] == "replayed"
    assert "2fa.verified" in [e["action"] for e in _actions(tfa_app)]


def test_a_recovery_code_works_once(tfa_app, client, make_user):
    email = make_user("officer")
    _, codes = _enrol(tfa_app, client, email)
    auth = AuthActions(client)
    auth.logout()
    auth.login(email)
    assert _code_step(client, codes[0].upper()).location == "/dashboard"
    auth.logout()
    auth.login(email)
    again = _code_step(client, codes[0])
    assert "The code is wrong" in again.get_data(as_text=True)
    used = [e for e in _actions(tfa_app) if e["action"] == "2fa.recovery_used"]
    assert len(used) == 1 and used[0]["details"]["recovery_codes_left"] == 9


def test_five_bad_codes_lock_the_account(tfa_app, client, make_user):
    email = make_user("officer")
    secret, _ = _enrol(tfa_app, client, email)
    auth = AuthActions(client)
    auth.logout()
    auth.login(email)
    for _ in range(5):
        _code_step(client, _wrong_code(secret))
    assert _user(tfa_app, email).locked_until is not None
    page = _code_step(client, _code(secret, 1)).get_data(as_text=True)
    assert "locked" in page
    assert "locked" in auth.login(email).get_data(as_text=True)  # the password is refused too
    actions = [e["action"] for e in _actions(tfa_app)]
    assert actions.count("2fa.failed") == 5 and "user.locked" in actions


def test_admin_reset_ends_sessions_and_enrolment_is_owed_again(tfa_app, make_user):
    tfa_app.config["DESK_2FA_REQUIRED_ROLES"] = "officer"
    officer_client, admin_client = tfa_app.test_client(), tfa_app.test_client()
    email = make_user("officer")
    _enrol(tfa_app, officer_client, email)
    admin = AuthActions(admin_client)
    assert admin.login(make_user("admin")).location == "/dashboard"
    user_id = _user(tfa_app, email).id
    status_page = f"/admin/users/{user_id}/two-factor"
    assert "Reset two-factor sign-in" in admin_client.get(status_page).get_data(as_text=True)
    admin.post(f"{status_page}/reset", form_page=status_page)
    assert officer_client.get("/dashboard").location.startswith("/login")
    with tfa_app.app_context(), session_scope(write=False) as session:
        assert session.get(UserTotp, user_id) is None
        live = session.exec(select(LoginSession).where(LoginSession.user_id == user_id)).all()
        assert all(row.revoked_at is not None for row in live)
    reset = [e for e in _actions(tfa_app) if e["action"] == "2fa.reset"]
    assert reset and reset[0]["details"] == {"by": "admin"}
    assert AuthActions(officer_client).login(email).location == "/login/setup"


def test_password_change_needs_a_current_code(tfa_app, client, make_user):
    email = make_user("officer")
    secret, _ = _enrol(tfa_app, client, email)
    auth = AuthActions(client)
    new = {
        "current": PASSWORD,
        "new": "a brand new passphrase",
        "confirm": "a brand new passphrase",
    }
    page = auth.post("/account/password", new).get_data(as_text=True)
    assert "The code is wrong" in page
    assert auth.post("/account/password", {**new, "code": _code(secret, 1)}).status_code == 302
    with tfa_app.app_context(), session_scope(write=False) as session:
        assert accounts.password_matches(
            accounts.find_user(session, email), new["new"], where="test"
        )


def test_auditors_may_opt_in_and_then_need_a_code(tfa_app, client, make_user):
    email = make_user("auditor")
    auth = AuthActions(client)
    assert auth.login(email).location == "/dashboard"  # optional for auditors
    assert "Set up an authenticator app" in client.get("/account/two-factor").get_data(as_text=True)
    auth.post("/account/two-factor/start", {"password": PASSWORD}, form_page="/account/two-factor")
    secret = _secret(tfa_app, email)
    page = auth.post("/account/two-factor/confirm", {"code": _code(secret)}, "/account/two-factor")
    assert (
        len(re.findall(r"<code>[a-z0-9]{5}-[a-z0-9]{5}</code>", page.get_data(as_text=True))) == 10
    )
    assert "Recovery codes left: <strong>10</strong>" in client.get("/account/two-factor").get_data(
        as_text=True
    )
    auth.logout()
    assert auth.login(email).location == "/login/code"


def test_removing_ones_authenticator_needs_password_and_code(tfa_app, client, make_user):
    email = make_user("officer")
    secret, _ = _enrol(tfa_app, client, email)
    auth = AuthActions(client)
    page = "/account/two-factor"
    wrong = {"remove-password": "not my password at all", "remove-code": _code(secret, 1)}
    auth.post("/account/two-factor/remove", wrong, form_page=page)
    assert "The current password is wrong." in client.get(page).get_data(as_text=True)
    with tfa_app.app_context(), session_scope(write=False) as session:
        assert two_factor.authenticator(session, _user(tfa_app, email).id) is not None
    right = {"remove-password": PASSWORD, "remove-code": _code(secret, 1)}
    assert auth.post("/account/two-factor/remove", right, form_page=page).location == "/login"
    assert client.get("/dashboard").location.startswith("/login")
    assert auth.login(email).location == "/login/setup"


def test_the_pending_marker_expires(tfa_app, client, make_user, monkeypatch):
    monkeypatch.setattr(two_factor_views, "PENDING_MINUTES", 0)
    email = make_user("officer")
    AuthActions(client).login(email)
    assert client.get("/login/setup").location == "/login"


def test_api_tokens_are_not_affected(tfa_app, api_token):
    token = api_token("officer")
    response = tfa_app.test_client().get(
        "/api/v1/environments", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200


def test_the_recovery_codes_page_after_enrolment_can_sign_out(tfa_app, client, make_user):
    """The page that shows the codes is rendered in the request that opens the new session:
    its forms (the header's Sign out) must carry that session's CSRF token, not the old one."""
    email = make_user("officer")
    auth = AuthActions(client)
    auth.login(email)
    auth.post("/login/setup/start", form_page="/login/setup")
    page = auth.post("/login/setup", {"code": _code(_secret(tfa_app, email))})
    html = page.get_data(as_text=True)
    token = re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', html).group(1)
    response = client.post("/logout", data={"csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    assert client.get("/dashboard").location.startswith("/login")
