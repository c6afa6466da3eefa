"""Setup, sign-in, server-side sessions, lockout, throttling and account administration."""

from __future__ import annotations

from datetime import timedelta

import pytest
from conftest import PASSWORD
from sqlmodel import select

from webapp.accounts import users as accounts
from webapp.db import session_scope
from webapp.models import LoginSession, User, utcnow
from webapp.trail import audit


def test_first_visit_leads_to_setup_and_nothing_else(client):
    assert client.get("/").location.endswith("/setup")
    assert client.get("/audit").location.endswith("/setup")
    assert client.get("/login").location.endswith("/setup")
    api = client.get("/api/v1/audit")
    assert api.status_code == 503
    assert api.json["error"]["code"] == "not_set_up"


def test_setup_creates_the_first_admin_then_closes(client, auth, app):
    token = auth.csrf("/setup")
    response = client.post(
        "/setup",
        data={
            "email": "Boss@Example.org",
            "password": PASSWORD,
            "confirm": PASSWORD,
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    with app.app_context(), session_scope(write=False) as session:
        users = session.exec(select(User)).all()
    assert [(u.email, u.role) for u in users] == [("boss@example.org", "admin")]
    assert client.get("/setup").location.endswith("/login")
    assert auth.login("boss@example.org").location.endswith("/dashboard")


@pytest.mark.parametrize(
    ("password", "confirm", "message"),
    [
        ("short", "short", "at least 12"),
        (PASSWORD, PASSWORD + "x", "do not match"),
    ],
)
def test_setup_refuses_bad_passwords(client, auth, app, password, confirm, message):
    token = auth.csrf("/setup")
    response = client.post(
        "/setup",
        data={
            "email": "boss@example.org",
            "password": password,
            "confirm": confirm,
            "csrf_token": token,
        },
    )
    assert response.status_code == 200
    assert message in response.get_data(as_text=True)
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.user_count(session) == 0


def test_login_logout_and_replayed_cookie_is_refused(client, auth, make_user):
    email = make_user("officer")
    assert auth.login(email).status_code == 302
    assert client.get("/dashboard").status_code == 200
    cookie = client.get_cookie("desk_session").value
    auth.logout()
    assert client.get("/dashboard").status_code == 302
    # A copy of the cookie taken before sign-out must not work afterwards (PITFALLS.md #1).
    client.set_cookie("desk_session", cookie)
    assert client.get("/dashboard").location.startswith("/login")


def test_login_issues_a_new_session_each_time(client, auth, make_user, app):
    email = make_user("auditor")
    auth.login(email)
    first = client.get_cookie("desk_session").value
    auth.logout()
    auth.login(email)
    assert client.get_cookie("desk_session").value != first
    with app.app_context(), session_scope(write=False) as session:
        rows = session.exec(select(LoginSession)).all()
    assert len(rows) == 2
    assert sum(row.revoked_at is None for row in rows) == 1


def test_wrong_password_message_does_not_reveal_accounts(auth, make_user):
    email = make_user("officer")
    wrong = auth.login(email, "not the password at all").get_data(as_text=True)
    unknown = auth.login("nobody@example.org", "not the password at all").get_data(as_text=True)
    assert "The e-mail address or password is wrong." in wrong
    assert "The e-mail address or password is wrong." in unknown


def test_lockout_after_five_failures_is_audited_and_visible(client, auth, make_user, app):
    email = make_user("officer")
    for _ in range(5):
        auth.login(email, "wrong password, wrong")
    page = auth.login(email).get_data(as_text=True)  # the right password no longer works
    assert "locked" in page
    with app.app_context(), session_scope(write=False) as session:
        user = accounts.find_user(session, email)
        assert user.locked_until > utcnow() + timedelta(minutes=14)
        actions = [e["action"] for e in audit.iter_entries(session)]
    assert actions.count("login.failed") == 5
    assert "user.locked" in actions and "login.refused_locked" in actions

    admin = make_user("admin")
    auth.login(admin)
    assert email in client.get("/admin/security").get_data(as_text=True)
    with app.app_context(), session_scope(write=False) as session:
        user_id = accounts.find_user(session, email).id
    auth.post(f"/admin/users/{user_id}/unlock", form_page="/admin/security")
    auth.logout()
    assert auth.login(email).location.endswith("/dashboard")


def test_per_ip_throttling(auth, app, make_user, monkeypatch):
    monkeypatch.setattr(accounts, "IP_MAX_FAILURES", 3)
    email = make_user("officer")
    for n in range(3):
        auth.login(f"ghost{n}@example.org", "wrong password, wrong")
    page = auth.login(email).get_data(as_text=True)
    assert "Too many failed sign-ins from your network" in page
    with app.app_context(), session_scope(write=False) as session:
        assert any(e["action"] == "login.ip_throttled" for e in audit.iter_entries(session))


def test_idle_timeout_ends_the_session(client, auth, make_user, app):
    email = make_user("officer")
    auth.login(email)
    with app.app_context(), session_scope(write=True) as session:
        for row in session.exec(select(LoginSession)).all():
            row.last_seen_at = utcnow() - timedelta(
                minutes=app.config["DESK_SESSION_IDLE_MINUTES"] + 1
            )
        session.commit()
    assert client.get("/dashboard").location.startswith("/login")


def test_password_change_ends_other_sessions(app, make_user):
    email = make_user("officer")
    first, second = app.test_client(), app.test_client()
    from conftest import AuthActions

    AuthActions(first).login(email)
    AuthActions(second).login(email)
    new = "a brand new passphrase here"
    response = AuthActions(first).post(
        "/account/password", {"current": PASSWORD, "new": new, "confirm": new}
    )
    assert response.status_code == 302
    assert first.get("/dashboard").status_code == 200
    assert second.get("/dashboard").location.startswith("/login")
    assert AuthActions(app.test_client()).login(email, new).status_code == 302


def test_role_change_and_disabling_end_sessions(app, client, auth, make_user):
    victim = make_user("officer")
    other = app.test_client()
    from conftest import AuthActions

    AuthActions(other).login(victim)
    assert other.get("/dashboard").status_code == 200
    auth.login(make_user("admin"))
    with app.app_context(), session_scope(write=False) as session:
        victim_id = accounts.find_user(session, victim).id
    page = f"/admin/users/{victim_id}"
    auth.post(page, {"role": "auditor", "active": "y"})
    assert other.get("/dashboard").location.startswith("/login")
    AuthActions(other).login(victim)
    auth.post(page, {"role": "auditor"})  # unchecked box: disabled
    assert other.get("/dashboard").location.startswith("/login")
    assert AuthActions(app.test_client()).login(victim).status_code == 200  # refused


def test_last_admin_cannot_be_demoted_or_disabled(app, auth, make_user):
    admin = make_user("admin")
    auth.login(admin)
    with app.app_context(), session_scope(write=False) as session:
        admin_id = accounts.find_user(session, admin).id
    page = auth.post(
        f"/admin/users/{admin_id}", {"role": "officer", "active": "y"}, follow_redirects=True
    ).get_data(as_text=True)
    assert "last admin" in page
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.find_user(session, admin).role == "admin"


def test_admin_creates_account_with_clear_errors(app, auth, make_user):
    auth.login(make_user("admin"))
    bad = auth.post(
        "/admin/users",
        {"email": "new@example.org", "role": "officer", "password": "short"},
        form_page="/admin/users",
    )
    assert bad.status_code == 400
    assert "at least 12" in bad.get_data(as_text=True)
    ok = auth.post(
        "/admin/users",
        {"email": "New@Example.org", "role": "auditor", "password": PASSWORD},
        form_page="/admin/users",
    )
    assert ok.status_code == 302
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.find_user(session, "new@example.org").role == "auditor"


def test_passwords_are_hashed_with_argon2id(app, make_user):
    email = make_user("officer")
    with app.app_context(), session_scope(write=False) as session:
        assert accounts.find_user(session, email).password_hash.startswith("$argon2id$")


@pytest.mark.parametrize(
    "target", ["https://evil.example/x", "//evil.example", "/\\evil", "javascript:x"]
)
def test_next_redirect_stays_on_site(client, auth, make_user, target):
    email = make_user("officer")
    token = auth.csrf("/login")
    response = client.post(
        f"/login?next={target}", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.location == "/dashboard"


def test_next_redirect_follows_local_paths(client, auth, make_user):
    email = make_user("officer")
    token = auth.csrf("/login")
    response = client.post(
        "/login?next=/audit", data={"email": email, "password": PASSWORD, "csrf_token": token}
    )
    assert response.location == "/audit"
